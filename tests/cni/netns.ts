/**
 * @module Network-namespace helpers for kernel tests: unique names per run, create/remove, and
 * running a command inside a namespace as a child process (`ip netns exec`), never by setns in
 * the test process. Reusable by any suite that needs "hosts" and "containers" (the CNI tests,
 * later the two-host vxlan test).
 */
import { spawn, spawnSync } from "node:child_process";

/** What a child process printed and how it exited. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** A namespace name no other run uses: `weft-<area>-<pid>-<random>[-<role>]` (≤ 40 chars). */
export function uniqueNsName(area: string, role = ""): string {
  const rand = Math.random().toString(36).slice(2, 8);
  return `weft-${area}-${process.pid}-${rand}${role ? `-${role}` : ""}`;
}

/** Runs `argv` to completion; `stdin` is fed to it, `env` replaces the environment if given. */
export function run(argv: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Run {
  const r = spawnSync(argv[0]!, argv.slice(1), { env: opts.env ?? process.env, input: opts.stdin ?? "", encoding: "utf8" });
  if (r.error) throw new Error(`cannot run ${argv.join(" ")}: ${r.error.message}`);
  return { code: r.status ?? 128, stdout: r.stdout, stderr: r.stderr };
}

/** Runs `argv` and throws, with its stderr, unless it exits 0. Returns stdout. */
export function runOk(argv: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): string {
  const r = run(argv, opts);
  if (r.code !== 0) throw new Error(`'${argv.join(" ")}' exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** `ip netns add <name>` and `ip -n <name> link set lo up`. */
export function addNetns(name: string): void {
  runOk(["ip", "netns", "add", name]);
  runOk(["ip", "-n", name, "link", "set", "lo", "up"]);
}

/** `ip netns del <name>`; absent is fine (for cleanup paths). */
export function delNetns(name: string): void {
  run(["ip", "netns", "del", name]);
}

/** The path runtimes pass as CNI_NETNS for a named namespace. */
export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

/** Runs `argv` inside namespace `ns`: `ip netns exec <ns> argv...`. */
export function nsExec(ns: string, argv: string[], opts: { env?: Record<string, string>; stdin?: string } = {}): Run {
  return run(["ip", "netns", "exec", ns, ...argv], opts);
}

/** `ip -n <ns> -j <args>` parsed (iproute2's JSON output). */
export function ipJson<T = unknown>(ns: string, args: string[]): T {
  const out = runOk(["ip", "-n", ns, "-j", ...args]);
  return JSON.parse(out.trim() === "" ? "[]" : out) as T;
}

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
