/**
 * @module The Kubernetes client's transport over node:https (and node:http for an http:// API
 * URL): keep-alive connections with the CA, client certificate and server name of the config.
 * Used where Bun's fetch options are not available (Deno).
 */
import * as http from "node:http";
import * as https from "node:https";
import type { HttpTransport, TransportConfig, TransportRequest, TransportResponse } from "./transport.ts";

type Tls = Pick<https.RequestOptions, "ca" | "cert" | "key" | "rejectUnauthorized" | "servername">;

export class NodeTransport implements HttpTransport {
  readonly #tls: Tls;
  readonly #https: https.Agent;
  readonly #http = new http.Agent({ keepAlive: true });

  constructor(cfg: TransportConfig) {
    const tls: Tls = { rejectUnauthorized: cfg.rejectUnauthorized };
    if (cfg.ca) tls.ca = cfg.ca;
    if (cfg.cert) tls.cert = cfg.cert;
    if (cfg.key) tls.key = cfg.key;
    if (cfg.serverName) tls.servername = cfg.serverName;
    this.#tls = tls;
    this.#https = new https.Agent({ keepAlive: true, ...tls });
  }

  send(req: TransportRequest): Promise<TransportResponse> {
    const secure = req.url.protocol === "https:";
    return new Promise((resolve, reject) => {
      if (req.signal?.aborted) return reject(req.signal.reason);
      const headers: http.OutgoingHttpHeaders = { ...req.headers };
      if (req.body !== undefined) headers["Content-Length"] = Buffer.byteLength(req.body);
      const r = (secure ? https : http).request({
        hostname: req.url.hostname.replace(/^\[|\]$/g, ""), port: req.url.port || undefined,
        method: req.method, path: req.url.pathname + req.url.search, headers,
        agent: secure ? this.#https : this.#http, ...(secure ? this.#tls : {}),
      }, (res) => {
        res.setEncoding("utf8");
        resolve({
          status: res.statusCode ?? 0,
          text: () => new Promise((ok, fail) => {
            let s = "";
            res.on("data", (d: string) => (s += d));
            res.once("end", () => ok(s));
            res.once("error", fail);
          }),
          async *chunks() {
            for await (const chunk of res) yield chunk as string;
            if (!res.complete) throw new Error("the connection closed mid-response");
          },
          cancel: () => res.destroy(),
        });
      });
      const onAbort = () => r.destroy(req.signal!.reason instanceof Error ? req.signal!.reason : new Error("aborted"));
      req.signal?.addEventListener("abort", onAbort, { once: true });
      r.once("close", () => req.signal?.removeEventListener("abort", onAbort));
      r.once("error", reject);
      r.end(req.body);
    });
  }

  close(): void {
    this.#https.destroy();
    this.#http.destroy();
  }
}
