/**
 * @module The network-namespace primitives every kernel test uses: one naming scheme, create and
 * remove, commands run inside (`ip netns exec`, `ip -n`), and cleanup that also happens when a
 * run is interrupted or crashes. Tests never setns in their own process; code runs inside a
 * namespace as a child process.
 *
 * Names are `wf-<owner pid base36>-<random>[-<part>…]`. Every namespace made by `addNetns` is
 * removed by `delNetns`, and else at exit, SIGINT or SIGTERM; what a killed run still left is
 * removed by `cleanupStale()` in a later run, because the name says whose it was and that
 * process is gone.
 *
 * @example
 *   const ns = addNetns(uniqueName("vxlan"));
 *   try {
 *     ip(ns, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1");
 *     const links = ipJson(ns, "link", "show");
 *   } finally {
 *     delNetns(ns);
 *   }
 */
import { spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

// ------------------------------------------------------------------ commands

/** What a command printed and how it exited. */
export interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/** How to run a command; every field is optional. */
export interface RunOptions {
  /** Fed to its stdin (default: nothing). */
  stdin?: string;
  /** Replaces the environment (default: this process's). */
  env?: Record<string, string>;
  cwd?: string;
  /** Kill it (SIGTERM) after this long (default: no limit). */
  timeoutMs?: number;
}

/**
 * Runs `argv` to completion; throws only when it cannot start. One killed by a signal (or by
 * `timeoutMs`, which stderr then says) exits 128.
 */
export function run(argv: string[], opts: RunOptions = {}): Run {
  const r = spawnSync(argv[0]!, argv.slice(1), {
    input: opts.stdin ?? "", env: opts.env ?? process.env, cwd: opts.cwd, timeout: opts.timeoutMs,
    encoding: "utf8", maxBuffer: 64 << 20,
  });
  const timedOut = (r.error as NodeJS.ErrnoException | undefined)?.code === "ETIMEDOUT";
  if (r.error && !timedOut) throw new Error(`cannot run '${argv.join(" ")}': ${r.error.message}`);
  const note = timedOut ? `\n(killed after ${opts.timeoutMs} ms)` : "";
  return { code: r.status ?? 128, stdout: r.stdout ?? "", stderr: (r.stderr ?? "") + note };
}

/** Runs `argv` and throws, with its stderr, unless it exits 0. Returns stdout. */
export function sh(argv: string[], opts: RunOptions = {}): string {
  const r = run(argv, opts);
  if (r.code !== 0) throw new Error(`'${argv.join(" ")}' exited ${r.code}: ${r.stderr.trim()}`);
  return r.stdout;
}

/** Runs `argv` inside namespace `ns` to completion: `ip netns exec <ns> argv…`. */
export function nsExec(ns: string, argv: string[], opts: RunOptions = {}): Run {
  return run(["ip", "netns", "exec", ns, ...argv], opts);
}

/**
 * The argv that runs `argv` in `ns` with `dir` bind-mounted on /run/wireguard, inside the mount
 * namespace `ip netns exec` makes (MS_SLAVE: nothing leaks out). WireGuard's control sockets
 * (`/var/run/wireguard/<dev>.sock`, wireguard-go's and weft's) live in one directory for every
 * namespace, so two hosts' flannel-wg would collide without it.
 */
export function inNsWgRunDir(ns: string, dir: string, argv: string[]): string[] {
  mkdirSync("/run/wireguard", { recursive: true }); // the mount point; wireguard-go makes it too
  mkdirSync(dir, { recursive: true });
  return ["ip", "netns", "exec", ns, "sh", "-c", 'mount --bind "$0" /run/wireguard && exec "$@"', dir, ...argv];
}

/** `ip netns exec <ns> argv…`; throws, with its stderr, unless it exits 0. Returns stdout. */
export function nsSh(ns: string, argv: string[], opts: RunOptions = {}): string {
  return sh(["ip", "netns", "exec", ns, ...argv], opts);
}

/**
 * Runs a script inside `ns` (`ip netns exec <ns> argv…`) that ends by printing a JSON line, and
 * returns that last line parsed; throws with everything it printed unless it exits 0.
 */
export function nsExecJson<T = any>(ns: string, argv: string[], opts: RunOptions = {}): T {
  const r = nsExec(ns, argv, opts);
  if (r.code !== 0) throw new Error(`'${argv.join(" ")}' in ${ns} exited ${r.code}:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1) ?? "");
}

/** `ip -n <ns> <args…>`; throws unless it succeeds. Returns stdout. */
export function ip(ns: string, ...args: string[]): string {
  return sh(["ip", "-n", ns, ...args]);
}

/** `ip -n <ns> -j <args…>` parsed (iproute2's JSON; no output reads as `[]`). */
export function ipJson<T = Record<string, unknown>[]>(ns: string, ...args: string[]): T {
  const out = sh(["ip", "-n", ns, "-j", ...args]).trim();
  return JSON.parse(out === "" ? "[]" : out) as T;
}

/** Whether this process may make namespaces: root, with iproute2 (kernel tests skip otherwise). */
export const isRoot = process.getuid?.() === 0 && spawnSync("ip", ["-V"]).status === 0;

// ------------------------------------------------------------------ names

const NAME_RE = /^wf-([0-9a-z]+)-([0-9a-z]+)(-|$)/;

/**
 * A name no other run uses: `wf-<pid base36>-<random>` followed by `parts`, e.g.
 * `uniqueName("cni", "c1")` is `wf-ig6-x9k2qa-cni-c1`. Namespaces and temp dirs named so are
 * what `cleanupStale()` recognises.
 */
export function uniqueName(...parts: string[]): string {
  const rand = Math.random().toString(36).slice(2, 8).padEnd(6, "0");
  return [`wf-${process.pid.toString(36)}-${rand}`, ...parts].join("-");
}

/** The file a named namespace is bound to: what runtimes pass as CNI_NETNS. */
export function netnsPath(name: string): string {
  return `/var/run/netns/${name}`;
}

// ------------------------------------------------------------------ create, remove, clean up

const live = new Set<string>();
const hooks: (() => void)[] = [];
let handlersInstalled = false;

/** Synchronous teardown: the registered hooks, then every namespace still made by this run. */
function cleanupAllSync(): void {
  for (const hook of hooks.splice(0)) {
    try { hook(); } catch { /* the namespaces still go */ }
  }
  for (const ns of [...live]) delNetns(ns);
}

function installHandlers(): void {
  if (handlersInstalled) return;
  handlersInstalled = true;
  process.on("exit", cleanupAllSync);
  for (const sig of ["SIGINT", "SIGTERM"] as const) {
    process.on(sig, () => {
      cleanupAllSync();
      process.exit(sig === "SIGINT" ? 130 : 143);
    });
  }
}

/**
 * Runs `hook` (synchronously) at exit, SIGINT or SIGTERM, before the namespaces still registered
 * are removed: for what a suite owns besides namespaces (child processes, temp dirs).
 */
export function onCleanup(hook: () => void): void {
  installHandlers();
  hooks.push(hook);
}

/**
 * Creates namespace `name` with loopback up and registers it for removal at exit; returns the
 * name. Equivalent to `ip netns add <name> && ip -n <name> link set lo up`.
 */
export function addNetns(name: string): string {
  installHandlers();
  sh(["ip", "netns", "add", name]);
  live.add(name);
  ip(name, "link", "set", "lo", "up");
  return name;
}

/**
 * Kills every process inside `name`, then deletes it (`ip netns pids`, `ip netns del`); absent
 * is fine, so cleanup paths may call it twice.
 */
export function delNetns(name: string): void {
  const pids = run(["ip", "netns", "pids", name]).stdout.split(/\s+/).filter(Boolean).map(Number);
  for (const pid of pids) {
    try { process.kill(pid, "SIGKILL"); } catch { /* gone already */ }
  }
  run(["ip", "netns", "del", name]);
  live.delete(name);
}

function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes the namespaces and temp dirs named by `uniqueName` whose owner process is dead: what
 * crashed runs left behind. Live runs' names are never touched. Returns what it removed.
 */
export function cleanupStale(): string[] {
  const removed: string[] = [];
  const stale = (name: string) => {
    const m = NAME_RE.exec(name);
    return m !== null && !pidAlive(parseInt(m[1]!, 36));
  };
  const names = run(["ip", "netns", "list"]).stdout.split("\n").map((l) => l.split(" ")[0]!).filter(Boolean);
  for (const ns of names) {
    if (stale(ns)) { delNetns(ns); removed.push(ns); }
  }
  for (const d of readdirSync(tmpdir())) {
    if (stale(d)) { rmSync(join(tmpdir(), d), { recursive: true, force: true }); removed.push(join(tmpdir(), d)); }
  }
  return removed;
}
