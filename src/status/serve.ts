/**
 * @module Serves a fetch-style handler (the Hono app) over node:http, which Bun, Deno and Node
 * all provide, so the agent needs no runtime-specific server API.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";

export interface RunningServer {
  readonly port: number;
  close(): Promise<void>;
}

async function toRequest(req: IncomingMessage, origin: string): Promise<Request> {
  const chunks: Buffer[] = [];
  if (req.method !== "GET" && req.method !== "HEAD") for await (const c of req) chunks.push(c as Buffer);
  const headers = new Headers();
  for (const [k, v] of Object.entries(req.headers)) if (typeof v === "string") headers.set(k, v);
  return new Request(new URL(req.url ?? "/", origin), {
    method: req.method,
    headers,
    body: chunks.length ? Buffer.concat(chunks) : undefined,
  });
}

/** Listens on `hostname:port` (port 0: any free port). Rejects when the address is unusable. */
export function serve(fetch: (req: Request) => Response | Promise<Response>, hostname: string, port: number): Promise<RunningServer> {
  const server: Server = createServer(async (req, res) => {
    try {
      const r = await fetch(await toRequest(req, `http://${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`));
      res.writeHead(r.status, Object.fromEntries(r.headers));
      if (r.body && req.method !== "HEAD") {
        for await (const chunk of r.body as unknown as AsyncIterable<Uint8Array>) res.write(chunk);
      }
      res.end();
    } catch (e) {
      res.writeHead(500).end(String(e));
    }
  });
  return new Promise((resolve, reject) => {
    server.once("error", (e) => reject(new Error(`cannot listen on ${hostname}:${port} for the status server: ${(e as Error).message}`)));
    server.listen(port, hostname, () => {
      const addr = server.address();
      resolve({
        port: typeof addr === "object" && addr ? addr.port : port,
        close: () => new Promise<void>((r) => { server.closeAllConnections?.(); server.close(() => r()); }),
      });
    });
  });
}
