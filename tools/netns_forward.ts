/**
 * @module A TCP port on the root namespace's 127.0.0.1 that leads to HOST:PORT inside a network
 * namespace, without touching the root namespace's links: every accepted connection spawns
 * `ip netns exec <ns> bun tools/netns_pipe.ts HOST PORT` and pipes the socket through its
 * stdin/stdout. Used by the demo (agents' status pages) and the test harness (etcd, /status).
 * Each connection costs one short-lived process; keep connections long (HTTP keep-alive, gRPC).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { type Server, type Socket, createServer } from "node:net";
import { join } from "node:path";

const PIPE = join(import.meta.dir, "netns_pipe.ts");

/** A listening forwarder; `close()` stops it and every connection's child. */
export interface NetnsForward {
  readonly port: number;
  readonly url: string;
  close(): Promise<void>;
}

/**
 * Listens on 127.0.0.1 (`listenPort`, 0 = any free port) and forwards each connection to
 * `host:port` inside namespace `ns`.
 *
 * @example
 *   const fwd = await forwardIntoNetns("wf-1a2b-x9-h1", "127.0.0.1", 8471);
 *   await fetch(`${fwd.url}/status`);
 *   await fwd.close();
 */
export async function forwardIntoNetns(ns: string, host: string, port: number, listenPort = 0): Promise<NetnsForward> {
  const children = new Set<ChildProcess>();
  const sockets = new Set<Socket>();
  const server: Server = createServer((sock) => {
    sock.setNoDelay(true);
    const child = spawn("ip", ["netns", "exec", ns, process.execPath, PIPE, host, String(port)], { stdio: ["pipe", "pipe", "ignore"] });
    children.add(child);
    sockets.add(sock);
    sock.on("data", (d) => child.stdin!.write(d));
    sock.on("end", () => child.stdin!.end());
    sock.on("error", () => child.kill("SIGKILL"));
    sock.on("close", () => { sockets.delete(sock); if (child.exitCode === null) child.kill("SIGKILL"); });
    child.stdin!.on("error", () => sock.destroy());
    child.stdout!.on("data", (d) => sock.write(d));
    child.on("exit", () => { children.delete(child); sock.end(); });
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listenPort, "127.0.0.1", () => resolve());
  });
  const bound = (server.address() as { port: number }).port;
  return {
    port: bound,
    url: `http://127.0.0.1:${bound}`,
    async close() {
      for (const c of children) c.kill("SIGKILL");
      for (const s of sockets) s.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}
