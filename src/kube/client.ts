/**
 * @module A small Kubernetes API client over node:https (Bun, `dist/weft` and Deno alike): the
 * requests flannel's kube subnet manager makes, and no others — each method names its RBAC verb
 * and resource, and a request that KUBE_API_ACCESS (access.ts) does not list is refused before
 * it is sent.
 *
 * Authentication as client-go: client certificate, bearer token, basic auth. A token file is
 * re-read when it is a minute old (client-go's cached file token source) and at once after a
 * 401, so a rotated service account token keeps working.
 *
 * Why not `@kubernetes/client-node`: importing it costs ~43 MiB of VmRSS under Bun (measured:
 * 27.2 → 70.6 MiB), more than kube mode's whole 40 MiB budget; weft needs five requests.
 */
import { readFileSync } from "node:fs";
import * as http from "node:http";
import * as https from "node:https";
import { kubeAccessAllowed } from "./access.ts";
import type { KubeClientConfig } from "./kubeconfig.ts";
import type { KubeNode, KubeNodeList, KubePod, KubeStatus, WatchEvent } from "./types.ts";

/** How long a token read from a file is used before the file is read again (client-go: 1 min). */
const TOKEN_FILE_CACHE_MS = 60_000;
/** A request (not a watch) that takes longer than this is abandoned. */
const REQUEST_TIMEOUT_MS = 30_000;

/** An answer of the API server other than success (a Status object), or a refused request. */
export class KubeApiError extends Error {
  constructor(
    /** The HTTP status (401, 403, 404, 409, 410, 5xx). */
    readonly code: number,
    /** The Status reason (`Forbidden`, `NotFound`, `Expired`, …). */
    readonly reason: string,
    readonly verb: string,
    readonly resource: string,
    message: string,
  ) {
    super(message);
    this.name = "KubeApiError";
  }

  /** 401 or 403: retrying will not help until an administrator acts. */
  get denied(): boolean {
    return this.code === 401 || this.code === 403;
  }
}

/** The API server could not be reached or broke off (connection refused, TLS, timeout). */
export class KubeUnreachableError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "KubeUnreachableError";
  }
}

export interface ListOptions {
  resourceVersion?: string;
  resourceVersionMatch?: "NotOlderThan" | "Exact";
  limit?: number;
  continue?: string;
}

export interface WatchOptions {
  resourceVersion?: string;
  allowWatchBookmarks?: boolean;
  /** The server ends the watch after this many seconds (client-go: 5–10 min, random). */
  timeoutSeconds?: number;
}

interface Call {
  verb: string;
  resource: string;
  /** The object's name, for error messages. */
  name?: string;
  method: string;
  path: string;
  body?: string;
  contentType?: string;
  signal?: AbortSignal;
}

export class KubeClient {
  readonly #url: URL;
  readonly #agent: http.Agent;
  readonly #mod: typeof https | typeof http;
  readonly #tls: Pick<https.RequestOptions, "ca" | "cert" | "key" | "rejectUnauthorized" | "servername">;
  #token?: string;
  #tokenReadAt = 0;

  constructor(readonly config: KubeClientConfig) {
    this.#url = new URL(config.server);
    const tls: Pick<https.RequestOptions, "ca" | "cert" | "key" | "rejectUnauthorized" | "servername"> = {
      ca: config.ca, cert: config.cert, key: config.key,
      rejectUnauthorized: !config.insecureSkipTLSVerify,
      servername: config.tlsServerName,
    };
    this.#tls = Object.fromEntries(Object.entries(tls).filter(([, v]) => v !== undefined));
    const https_ = this.#url.protocol === "https:";
    this.#mod = https_ ? https : http;
    this.#agent = https_ ? new https.Agent({ keepAlive: true, ...this.#tls }) : new http.Agent({ keepAlive: true });
    this.#token = config.token;
    this.#tokenReadAt = Date.now();
  }

  /** GET /api/v1/nodes/{name} */
  getNode(name: string, signal?: AbortSignal): Promise<KubeNode> {
    return this.#json({ verb: "get", resource: "nodes", name, method: "GET", path: `/api/v1/nodes/${encodeURIComponent(name)}`, signal });
  }

  /** GET /api/v1/nodes (one page). */
  listNodes(opts: ListOptions = {}, signal?: AbortSignal): Promise<KubeNodeList> {
    return this.#json({ verb: "list", resource: "nodes", method: "GET", path: `/api/v1/nodes${query({ ...opts })}`, signal });
  }

  /**
   * GET /api/v1/nodes?watch=1: calls `onEvents` with the events of each chunk, in order (the
   * stream waits while it runs), and resolves when the server ends the watch. Rejects with
   * KubeApiError (the watch was refused) or KubeUnreachableError (the connection broke).
   * `idleMs`: no byte for that long (not even a bookmark) counts as a broken connection.
   */
  watchNodes(opts: WatchOptions, onEvents: (events: WatchEvent[]) => Promise<void>, signal: AbortSignal, idleMs = ((opts.timeoutSeconds ?? 600) + 30) * 1000): Promise<void> {
    const path = `/api/v1/nodes${query({ watch: "1", ...opts })}`;
    return this.#stream({ verb: "watch", resource: "nodes", method: "GET", path, signal }, onEvents, idleMs);
  }

  /**
   * PATCH /api/v1/nodes/{name}/status with a strategic-merge patch (client-go's
   * `Nodes().Patch(…, StrategicMergePatchType, …, "status")` and `PatchStatus`).
   */
  patchNodeStatus(name: string, patch: string, signal?: AbortSignal): Promise<KubeNode> {
    return this.#json({
      verb: "patch", resource: "nodes/status", name, method: "PATCH", path: `/api/v1/nodes/${encodeURIComponent(name)}/status`,
      body: patch, contentType: "application/strategic-merge-patch+json", signal,
    });
  }

  /** GET /api/v1/namespaces/{ns}/pods/{name} */
  getPod(namespace: string, name: string, signal?: AbortSignal): Promise<KubePod> {
    return this.#json({
      verb: "get", resource: "pods", name: `${namespace}/${name}`, method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/pods/${encodeURIComponent(name)}`, signal,
    });
  }

  /** Closes idle connections. */
  close(): void {
    this.#agent.destroy();
  }

  /** The bearer token, re-read from its file when it is a minute old (or `force`). */
  #currentToken(force = false): string | undefined {
    const file = this.config.tokenFile;
    if (file && (force || Date.now() - this.#tokenReadAt >= TOKEN_FILE_CACHE_MS)) {
      try {
        this.#token = readFileSync(file, "utf8").trim();
      } catch {
        // keep the last token: the file may be mid-rotation
      }
      this.#tokenReadAt = Date.now();
    }
    return this.#token;
  }

  #headers(c: Call, token: string | undefined): http.OutgoingHttpHeaders {
    const h: http.OutgoingHttpHeaders = { Accept: "application/json", "User-Agent": "weft (flanneld-compatible)" };
    if (token) h.Authorization = `Bearer ${token}`;
    else if (this.config.username !== undefined) h.Authorization = `Basic ${Buffer.from(`${this.config.username}:${this.config.password ?? ""}`).toString("base64")}`;
    if (c.body !== undefined) {
      h["Content-Type"] = c.contentType ?? "application/json";
      h["Content-Length"] = Buffer.byteLength(c.body);
    }
    return h;
  }

  /** Sends `c`; on a 401 with a token file, re-reads the token and tries once more. */
  async #send(c: Call): Promise<http.IncomingMessage> {
    if (!kubeAccessAllowed(c.verb, c.resource)) {
      throw new KubeApiError(0, "NotInAccessList", c.verb, c.resource,
        `weft refuses to ${c.verb} ${c.resource}: not in KUBE_API_ACCESS (src/kube/access.ts), which the ClusterRole grants`);
    }
    const before = this.#currentToken();
    const res = await this.#once(c, before);
    if (res.statusCode !== 401 || !this.config.tokenFile) return res;
    const after = this.#currentToken(true);
    if (after === before) return res;
    res.resume();
    return this.#once(c, after);
  }

  #once(c: Call, token: string | undefined): Promise<http.IncomingMessage> {
    return new Promise((resolve, reject) => {
      if (c.signal?.aborted) return reject(abortError(c.signal));
      const req = this.#mod.request({
        protocol: this.#url.protocol, hostname: this.#url.hostname.replace(/^\[|\]$/g, ""), port: this.#url.port || undefined,
        method: c.method, path: this.#url.pathname.replace(/\/$/, "") + c.path, headers: this.#headers(c, token),
        agent: this.#agent, ...this.#tls,
      }, resolve);
      const onAbort = () => req.destroy(abortError(c.signal!));
      c.signal?.addEventListener("abort", onAbort, { once: true });
      req.once("close", () => c.signal?.removeEventListener("abort", onAbort));
      req.once("error", (e) => reject(c.signal?.aborted ? abortError(c.signal) : this.#unreachable(c, e)));
      req.end(c.body);
    });
  }

  #unreachable(c: Call, e: Error): KubeUnreachableError {
    return new KubeUnreachableError(`cannot ${c.verb} ${c.resource} at ${this.config.server}: ${e.message}`, { cause: e });
  }

  async #json<T>(c: Call): Promise<T> {
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const signal = c.signal ? AbortSignal.any([c.signal, timeout]) : timeout;
    let res: http.IncomingMessage, text: string;
    try {
      res = await this.#send({ ...c, signal });
      text = await readBody(res);
    } catch (e) {
      if (timeout.aborted && !c.signal?.aborted) throw this.#unreachable(c, new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`));
      throw e;
    }
    if (res.statusCode! >= 300) throw this.#apiError(c, res.statusCode!, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeUnreachableError(`${c.verb} ${c.resource} at ${this.config.server}: the answer is not JSON: ${text.slice(0, 120)}`);
    }
  }

  async #stream(c: Call, onEvents: (events: WatchEvent[]) => Promise<void>, idleMs: number): Promise<void> {
    const res = await this.#send(c);
    if (res.statusCode! >= 300) throw this.#apiError(c, res.statusCode!, await readBody(res));
    res.setEncoding("utf8");
    return new Promise<void>((resolve, reject) => {
      let rest = "", done = false, busy = Promise.resolve();
      const finish = (e?: Error) => {
        if (done) return;
        done = true;
        clearTimeout(idle);
        c.signal?.removeEventListener("abort", onAbort);
        res.destroy();
        busy.then(() => (e ? reject(e) : resolve()), reject);
      };
      const onAbort = () => finish(abortError(c.signal!));
      c.signal?.addEventListener("abort", onAbort, { once: true });
      let idle = setTimeout(() => finish(this.#unreachable(c, new Error(`watch silent for ${idleMs / 1000} s`))), idleMs);
      res.on("data", (chunk: string) => {
        clearTimeout(idle);
        idle = setTimeout(() => finish(this.#unreachable(c, new Error(`watch silent for ${idleMs / 1000} s`))), idleMs);
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        const events: WatchEvent[] = [];
        for (const l of lines) {
          if (!l.trim()) continue;
          try {
            events.push(JSON.parse(l) as WatchEvent);
          } catch {
            return finish(new KubeUnreachableError(`watch ${c.resource} at ${this.config.server}: an event is not JSON: ${l.slice(0, 120)}`));
          }
        }
        if (events.length === 0) return;
        res.pause();
        busy = busy.then(() => onEvents(events)).then(() => { if (!done) res.resume(); });
        busy.catch((e) => finish(e as Error));
      });
      res.once("end", () => finish());
      res.once("error", (e) => finish(c.signal?.aborted ? abortError(c.signal) : this.#unreachable(c, e)));
      res.once("close", () => finish(res.complete ? undefined : this.#unreachable(c, new Error("the connection closed mid-watch"))));
    });
  }

  #apiError(c: Call, code: number, text: string): KubeApiError {
    let status: Partial<KubeStatus> = {};
    try {
      status = JSON.parse(text) as KubeStatus;
    } catch {
      status = { message: text.trim().slice(0, 200) };
    }
    const reason = status.reason ?? "";
    const what = `${c.verb} ${c.resource}${c.name ? ` ${JSON.stringify(c.name)}` : ""}`;
    let msg = `Kubernetes API ${this.config.server} refused to ${what}: ${code}${reason ? ` ${reason}` : ""}: ${status.message ?? ""}`;
    if (code === 403) {
      msg += ` — weft needs verb "${c.verb}" on resource "${c.resource}": grant it in flannel's ClusterRole (deploy/kubernetes/kube-flannel.yml)`;
    } else if (code === 401) {
      msg += ` — the credentials of ${this.config.source} were not accepted (expired or rotated token? wrong client certificate?)`;
    }
    return new KubeApiError(code, reason, c.verb, c.resource, msg);
  }
}

function query(params: Record<string, string | number | boolean | undefined>): string {
  const q = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, String(v));
  const s = q.toString();
  return s ? `?${s}` : "";
}

function readBody(res: http.IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    res.on("data", (d: Buffer) => parts.push(d));
    res.once("end", () => resolve(Buffer.concat(parts).toString("utf8")));
    res.once("error", reject);
  });
}

function abortError(signal: AbortSignal): Error {
  const r = signal.reason;
  if (r instanceof Error && r.name === "AbortError") return r;
  const e = new Error("aborted", { cause: r });
  e.name = "AbortError";
  return e;
}
