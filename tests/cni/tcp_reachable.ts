/** @module tcpReachable(): the CNI tests' reachability check between two namespaces. */
import { spawn } from "node:child_process";
import { nsExec } from "../support/ns.ts";

const TCP_PROBE = `${import.meta.dir}/tcp_probe.ts`;

/**
 * True when a TCP connection from namespace `clientNs` reaches `ip:port` served in `serverNs`
 * and echoes a line back (a one-shot echo server and client, each a child process in its
 * namespace). The tests' stand-in for ping.
 */
export async function tcpReachable(serverNs: string, clientNs: string, ip: string, port = 7777): Promise<boolean> {
  const server = spawn("ip", ["netns", "exec", serverNs, process.execPath, TCP_PROBE, "listen", ip, String(port)], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  try {
    const ready = await new Promise<boolean>((resolve) => {
      server.stdout.on("data", (d: Buffer) => { if (d.toString().includes("ready")) resolve(true); });
      server.on("close", () => resolve(false));
    });
    if (!ready) return false;
    return nsExec(clientNs, [process.execPath, TCP_PROBE, "connect", ip, String(port)]).code === 0;
  } finally {
    if (server.exitCode === null) server.kill();
  }
}
