/**
 * @module A small Kubernetes API client (Bun, `dist/weft` and Deno alike; transport.ts picks
 * fetch or node:https): the requests flannel's kube subnet manager makes, and no others — each method names its RBAC verb
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
import { kubeAccessAllowed } from "./access.ts";
import type { KubeClientConfig } from "./kubeconfig.ts";
import { type HttpTransport, type TransportResponse, createTransport } from "./transport.ts";
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
  #transport?: Promise<HttpTransport>;
  #token?: string;
  #tokenReadAt = 0;

  constructor(readonly config: KubeClientConfig) {
    this.#url = new URL(config.server);
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
   * stream is not read while it runs), and resolves when the server ends the watch. Rejects
   * with KubeApiError (the watch was refused) or KubeUnreachableError (the connection broke).
   * `onOpen`: the server accepted the watch. `idleMs`: no byte for that long (not even a
   * bookmark) counts as a broken connection.
   */
  async watchNodes(opts: WatchOptions, onEvents: (events: WatchEvent[]) => Promise<void>, signal: AbortSignal,
    hooks: { onOpen?: () => void; idleMs?: number } = {}): Promise<void> {
    const idleMs = hooks.idleMs ?? ((opts.timeoutSeconds ?? 600) + 30) * 1000;
    const c: Call = { verb: "watch", resource: "nodes", method: "GET", path: `/api/v1/nodes${query({ watch: "1", ...opts })}`, signal };
    const res = await this.#send(c);
    if (res.status >= 300) throw this.#apiError(c, res.status, await res.text());
    hooks.onOpen?.();
    let idle = false;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const arm = () => {
      clearTimeout(timer);
      timer = setTimeout(() => { idle = true; res.cancel(); }, idleMs);
    };
    let rest = "";
    let handlerError: unknown;
    try {
      arm();
      for await (const chunk of res.chunks()) {
        arm();
        const lines = (rest + chunk).split("\n");
        rest = lines.pop()!;
        const events: WatchEvent[] = [];
        for (const l of lines) {
          if (!l.trim()) continue;
          try {
            events.push(JSON.parse(l) as WatchEvent);
          } catch {
            throw new KubeUnreachableError(`watch ${c.resource} at ${this.config.server}: an event is not JSON: ${l.slice(0, 120)}`);
          }
        }
        if (events.length) {
          try {
            await onEvents(events);
          } catch (e) {
            handlerError = e;
            throw e;
          }
        }
      }
    } catch (e) {
      if (signal.aborted) throw abortError(signal);
      if (e === handlerError || e instanceof KubeUnreachableError) throw e;
      throw this.#unreachable(c, idle ? new Error(`watch silent for ${idleMs / 1000} s`) : e as Error);
    } finally {
      clearTimeout(timer);
      res.cancel();
    }
    if (idle) throw this.#unreachable(c, new Error(`watch silent for ${idleMs / 1000} s`));
    if (signal.aborted) throw abortError(signal);
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
    this.#transport?.then((t) => t.close(), () => {});
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

  #headers(c: Call, token: string | undefined): Record<string, string> {
    const h: Record<string, string> = { Accept: "application/json", "User-Agent": "weft (flanneld-compatible)" };
    if (token) h.Authorization = `Bearer ${token}`;
    else if (this.config.username !== undefined) h.Authorization = `Basic ${Buffer.from(`${this.config.username}:${this.config.password ?? ""}`).toString("base64")}`;
    if (c.body !== undefined) h["Content-Type"] = c.contentType ?? "application/json";
    return h;
  }

  /** Sends `c`; on a 401 with a token file, re-reads the token and tries once more. */
  async #send(c: Call): Promise<TransportResponse> {
    if (!kubeAccessAllowed(c.verb, c.resource)) {
      throw new KubeApiError(0, "NotInAccessList", c.verb, c.resource,
        `weft refuses to ${c.verb} ${c.resource}: not in KUBE_API_ACCESS (src/kube/access.ts), which the ClusterRole grants`);
    }
    this.#transport ??= createTransport({
      ca: this.config.ca, cert: this.config.cert, key: this.config.key,
      rejectUnauthorized: !this.config.insecureSkipTLSVerify, serverName: this.config.tlsServerName,
    });
    const transport = await this.#transport;
    const once = async (token: string | undefined) => {
      try {
        return await transport.send({ method: c.method, url: new URL(this.#url.pathname.replace(/\/$/, "") + c.path, this.#url), headers: this.#headers(c, token), body: c.body, signal: c.signal });
      } catch (e) {
        if (c.signal?.aborted) throw abortError(c.signal);
        throw this.#unreachable(c, e as Error);
      }
    };
    const before = this.#currentToken();
    const res = await once(before);
    if (res.status !== 401 || !this.config.tokenFile) return res;
    const after = this.#currentToken(true);
    if (after === before) return res;
    res.cancel();
    return once(after);
  }

  #unreachable(c: Call, e: Error): KubeUnreachableError {
    const code = (e as { code?: string }).code;
    const msg = code && !e.message.includes(code) ? `${code}: ${e.message}` : e.message;
    return new KubeUnreachableError(`cannot ${c.verb} ${c.resource} at ${this.config.server}: ${msg}`, { cause: e });
  }

  async #json<T>(c: Call): Promise<T> {
    const timeout = AbortSignal.timeout(REQUEST_TIMEOUT_MS);
    const signal = c.signal ? AbortSignal.any([c.signal, timeout]) : timeout;
    let status: number, text: string;
    try {
      const res = await this.#send({ ...c, signal });
      status = res.status;
      text = await res.text();
    } catch (e) {
      if (timeout.aborted && !c.signal?.aborted) throw this.#unreachable(c, new Error(`no answer within ${REQUEST_TIMEOUT_MS / 1000} s`));
      if (c.signal?.aborted) throw abortError(c.signal);
      if (e instanceof KubeApiError || e instanceof KubeUnreachableError) throw e;
      throw this.#unreachable(c, e as Error);
    }
    if (status >= 300) throw this.#apiError(c, status, text);
    try {
      return JSON.parse(text) as T;
    } catch {
      throw new KubeUnreachableError(`${c.verb} ${c.resource} at ${this.config.server}: the answer is not JSON: ${text.slice(0, 120)}`);
    }
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

function abortError(signal: AbortSignal): Error {
  const r = signal.reason;
  if (r instanceof Error && r.name === "AbortError") return r;
  const e = new Error("aborted", { cause: r });
  e.name = "AbortError";
  return e;
}
