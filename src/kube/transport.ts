/**
 * @module How the Kubernetes client's HTTP requests leave the process: one small interface, two
 * implementations, chosen once per client. Under Bun, the runtime's own `fetch` with its `tls`
 * option (CA, client certificate, server name): it costs ~9 MiB less VmRSS than node:https,
 * whose module alone is ~5 MiB there (measured: a process that lists and watches Nodes, 35.4
 * against 44.3 MiB). Elsewhere (Deno), node:https, which carries the same TLS settings. Each is
 * loaded only when chosen.
 */

/** TLS and where to send: from the client config. */
export interface TransportConfig {
  ca?: string;
  cert?: string;
  key?: string;
  rejectUnauthorized: boolean;
  /** The name the server certificate must carry (kubeconfig `tls-server-name`). */
  serverName?: string;
}

export interface TransportRequest {
  method: string;
  url: URL;
  headers: Record<string, string>;
  body?: string;
  signal?: AbortSignal;
}

/** A response whose body is read once: whole, or as text chunks (a watch). */
export interface TransportResponse {
  status: number;
  text(): Promise<string>;
  chunks(): AsyncIterable<string>;
  /** Stops reading and drops the connection's body. */
  cancel(): void;
}

export interface HttpTransport {
  /** Rejects with the runtime's network error (refused, TLS, reset) or an AbortError. */
  send(req: TransportRequest): Promise<TransportResponse>;
  close(): void;
}

/** The transport for this runtime: fetch under Bun, node:https elsewhere. */
export async function createTransport(cfg: TransportConfig): Promise<HttpTransport> {
  if (typeof process !== "undefined" && process.versions?.bun) {
    const { FetchTransport } = await import("./transport_fetch.ts");
    return new FetchTransport(cfg);
  }
  const { NodeTransport } = await import("./transport_node.ts");
  return new NodeTransport(cfg);
}
