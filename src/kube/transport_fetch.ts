/**
 * @module The Kubernetes client's transport under Bun: the runtime's `fetch`, with Bun's `tls`
 * request option for the CA, the client certificate and the server name (other runtimes ignore
 * that option, so transport.ts picks this one only under Bun). Connections are pooled by fetch.
 */
import type { HttpTransport, TransportConfig, TransportRequest, TransportResponse } from "./transport.ts";

export class FetchTransport implements HttpTransport {
  readonly #tls: Record<string, unknown>;

  constructor(cfg: TransportConfig) {
    const tls: Record<string, unknown> = { rejectUnauthorized: cfg.rejectUnauthorized };
    if (cfg.ca) tls.ca = cfg.ca;
    if (cfg.cert) tls.cert = cfg.cert;
    if (cfg.key) tls.key = cfg.key;
    if (cfg.serverName) tls.serverName = cfg.serverName;
    this.#tls = tls;
  }

  async send(req: TransportRequest): Promise<TransportResponse> {
    const init = { method: req.method, headers: req.headers, body: req.body, signal: req.signal, tls: this.#tls, redirect: "manual" };
    const res = await fetch(req.url, init as RequestInit);
    const reader = () => res.body!.pipeThrough(new TextDecoderStream()).getReader();
    let r: ReadableStreamDefaultReader<string> | undefined;
    return {
      status: res.status,
      text: () => res.text(),
      async *chunks() {
        r = reader();
        for (;;) {
          const { done, value } = await r.read();
          if (done) return;
          yield value;
        }
      },
      cancel() {
        (r ?? res.body)?.cancel().catch(() => {});
      },
    };
  }

  close(): void {}
}
