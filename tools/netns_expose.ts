/**
 * @module The reverse of `netns_forward.ts`: makes a TCP service of the root namespace's
 * 127.0.0.1 reachable at HOST:PORT inside a network namespace, without touching the root
 * namespace's links. A listener runs in the namespace (`netns_expose_listen.ts`) and joins each
 * connection to a Unix socket that this process serves and relays to 127.0.0.1:`target`.
 * `pause()` drops every connection and refuses new ones (the service looks down from inside the
 * namespace, while it keeps running here); `resume()` brings it back. Used by the kube-mode test
 * harness: the test's Kubernetes API server runs in the test process and the agents reach it on
 * the underlay.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { type Server, type Socket, createConnection, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const LISTEN = join(import.meta.dir, "netns_expose_listen.ts");

export interface NetnsExpose {
  /** Drops every connection and refuses new ones until `resume()`. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  close(): Promise<void>;
}

/** Serves 127.0.0.1:`target` at `host:port` inside namespace `ns`. */
export async function exposeIntoNetns(ns: string, host: string, port: number, target: number): Promise<NetnsExpose> {
  const dir = mkdtempSync(join(tmpdir(), "weft-expose-"));
  const path = join(dir, "sock");
  const sockets = new Set<Socket>();
  const relay: Server = createServer((sock) => {
    const down = createConnection({ host: "127.0.0.1", port: target, noDelay: true });
    for (const s of [sock, down]) {
      sockets.add(s);
      s.on("close", () => sockets.delete(s));
    }
    sock.pipe(down);
    down.pipe(sock);
    sock.on("error", () => down.destroy());
    down.on("error", () => sock.destroy());
    sock.on("close", () => down.destroy());
    down.on("close", () => sock.destroy());
  });
  await new Promise<void>((resolve, reject) => {
    relay.once("error", reject);
    relay.listen(path, () => resolve());
  });
  let child: ChildProcess | undefined;
  const start = async () => {
    const p = spawn("ip", ["netns", "exec", ns, process.execPath, LISTEN, host, String(port), path], { stdio: ["ignore", "pipe", "pipe"] });
    child = p;
    let err = "";
    p.stderr!.on("data", (d) => (err += d));
    await new Promise<void>((resolve, reject) => {
      p.stdout!.once("data", () => resolve());
      p.once("exit", (c) => reject(new Error(`netns_expose_listen in ${ns} exited ${c}: ${err.trim()}`)));
    });
  };
  const stop = async () => {
    const p = child;
    child = undefined;
    if (p && p.exitCode === null && p.signalCode === null) {
      const gone = new Promise<void>((r) => p.once("exit", () => r()));
      p.kill("SIGKILL");
      await gone;
    }
    for (const s of sockets) s.destroy();
  };
  process.once("exit", () => child?.kill("SIGKILL"));
  await start();
  return {
    pause: stop,
    resume: start,
    async close() {
      await stop();
      await new Promise<void>((r) => relay.close(() => r()));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
