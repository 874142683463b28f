/**
 * @module A few lines of HTTPS client for the API server's tests: one request (bearer token or
 * client certificate, trusting the server's CA) and a watch read event by event. Deliberately
 * plain fetch, so the tests see the wire answers, not a client library's reading of them.
 */
import type { KubeApiServer } from "../support/kube_api_server.ts";

export interface CallOptions {
  token?: string;
  cert?: { cert: string; key: string };
  body?: unknown;
  contentType?: string;
  accept?: string;
}

/** One request; the JSON answer (or text) and the status code. */
export async function call(api: KubeApiServer, method: string, path: string, o: CallOptions = {}): Promise<{ code: number; body: any }> {
  const res = await fetch(`${api.url}${path}`, {
    method,
    headers: {
      ...(o.token !== undefined ? { authorization: `Bearer ${o.token}` } : {}),
      ...(o.body !== undefined ? { "content-type": o.contentType ?? "application/json" } : {}),
      ...(o.accept ? { accept: o.accept } : {}),
    },
    ...(o.body !== undefined ? { body: typeof o.body === "string" ? o.body : JSON.stringify(o.body) } : {}),
    tls: { ca: api.caCert, ...(o.cert ?? {}) },
  });
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* text */ }
  return { code: res.status, body };
}

/** A watch stream read one event at a time. */
export interface WatchReader {
  /** The next event, or undefined when the stream ended. */
  next(): Promise<{ type: string; object: any } | undefined>;
  close(): void;
}

export async function watch(api: KubeApiServer, path: string, token: string): Promise<WatchReader> {
  const ctl = new AbortController();
  const res = await fetch(`${api.url}${path}`, { headers: { authorization: `Bearer ${token}` }, tls: { ca: api.caCert }, signal: ctl.signal });
  if (res.status !== 200) throw new Error(`watch ${path}: HTTP ${res.status}: ${await res.text()}`);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffered = "";
  return {
    async next() {
      for (;;) {
        const nl = buffered.indexOf("\n");
        if (nl >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          if (line.trim()) return JSON.parse(line);
          continue;
        }
        const { done, value } = await reader.read().catch(() => ({ done: true, value: undefined }));
        if (done) return undefined;
        buffered += decoder.decode(value, { stream: true });
      }
    },
    close: () => ctl.abort(),
  };
}
