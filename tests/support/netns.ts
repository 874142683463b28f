/**
 * @module A cluster of hosts made of network namespaces, for the multi-host tests, the demo and
 * the benches. One underlay namespace holds a bridge (`br0`, 192.168.77.254/24) and a real etcd;
 * each host is a namespace joined to it by a veth (`eth0`, 192.168.77.10+i/24, default route via
 * the underlay) running a weft agent as a child process; each host has a `cni0` bridge built from
 * its subnet.env (the .1 of FLANNEL_SUBNET, FLANNEL_MTU) and container namespaces (.2, .3, …)
 * routed through it. The root namespace is never touched: the test process reaches etcd and the
 * agents' status pages through forwarders (tools/netns_forward.ts).
 *
 * Dual stack (`ipv6Network`): the underlay also carries 2001:db8:77::/64 (br0 ::fe, host i
 * ::10+i, all `nodad` so nothing waits for DAD; IPv6 default route via ::fe; forwarding on), the
 * config gets `EnableIPv6`/`IPv6Network` (and `EnableIPv4: false` with `ipv6Only`), and
 * containers come from the CNI plugin (`dist/weft` as `flannel`, Debian's bridge and host-local),
 * each with an address of every family the host's subnet.env has.
 *
 * Backend wireguard: each host's agent gets its own WIREGUARD_KEY_FILE (`<host dir>/wgkey`, kept
 * across agent restarts); a flanneld-like wireguard-go host joins with tests/support/wireguard_go.ts.
 *
 * Namespaces come from ns.ts (names `wf-<pid base36>-<rand>[-<label>]-<role>`); they, the cluster's
 * processes and its temp dir are removed by `destroy()`, and else on SIGINT/SIGTERM and at exit;
 * `cleanupStale()` removes what crashed runs left behind, only when their owner process is gone.
 *
 * @example
 *   const c = await Cluster.create({ hosts: 3, backend: "vxlan" });
 *   // or dual stack: Cluster.create({ backend: "vxlan", ipv6Network: "fd10::/48" }); containers then have ip and ip6
 *   try {
 *     const [a, b] = c.hosts;
 *     const r = await ping(a!.containers[0]!.ns, b!.containers[0]!.ip, { count: 3 });
 *   } finally {
 *     await c.destroy();
 *   }
 */
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { containsV6Net, formatIPv4, formatIPv6Net, parseIPv4Net, parseIPv6Net } from "../../src/net/ip.ts";
import { readSubnetEnv } from "../../src/subnet_env.ts";
import { type NetnsForward, forwardIntoNetns } from "../../tools/netns_forward.ts";
import { type NetnsExpose, exposeIntoNetns } from "../../tools/netns_expose.ts";
import { KUBE_API_ACCESS } from "../../src/kube/access.ts";
import { cniExec, makeCniBinDir } from "../cni/cni_exec.ts";
import { type Runtime, weftCommand } from "./agent.ts";
import { EtcdServer } from "./etcd.ts";
import { KubeApiServer } from "./kube_api_server.ts";
import { addNetns, cleanupStale, delNetns, inNsWgRunDir, ip, ipJson, netnsPath, nsExec as exec, onCleanup, run, uniqueName } from "./ns.ts";

export const ROOT = join(import.meta.dir, "..", "..");
const PROBE = join(import.meta.dir, "ns_probe.ts");
const BUN = process.execPath;

/** How the agent runs: the compiled `dist/weft`, `bun src/main.ts` or `deno run -A src/main.ts`. */
export type { Runtime } from "./agent.ts";

/** The agent's status port inside each host namespace. */
export const STATUS_PORT = 8471;

// ------------------------------------------------------------------ processes and commands

// The namespace primitives live in ns.ts; this module re-exports the ones its callers import.
export { type Run, cleanupStale, ip, ipJson, nsExec as exec, sh } from "./ns.ts";

/** Polls `pred` every `everyMs` until it returns a truthy value (returned) or `timeoutMs` passes. */
export async function waitFor<T>(pred: () => T | Promise<T>, timeoutMs = 10_000, what = "condition", everyMs = 20): Promise<NonNullable<T>> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await pred();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}

/** Wall-clock milliseconds with sub-ms precision (comparable across processes). */
export function wallMs(): number {
  return performance.timeOrigin + performance.now();
}

// ------------------------------------------------------------------ cleanup registry

/** What the harness owns besides namespaces; ns.ts removes it at exit, SIGINT and SIGTERM. */
const live = { procs: new Set<ChildProcess>(), dirs: new Set<string>() };
let hookInstalled = false;

function registerCleanup(): void {
  if (hookInstalled) return;
  hookInstalled = true;
  onCleanup(() => {
    for (const p of live.procs) {
      if (p.exitCode === null && p.signalCode === null) p.kill("SIGKILL");
    }
    live.procs.clear();
    for (const d of live.dirs) rmSync(d, { recursive: true, force: true });
    live.dirs.clear();
  });
}

function trackProc(p: ChildProcess): ChildProcess {
  registerCleanup();
  live.procs.add(p);
  p.once("exit", () => live.procs.delete(p));
  return p;
}

// ------------------------------------------------------------------ probes

/** One ping target's outcome. */
export interface PingResult {
  ip: string;
  sent: number;
  received: number;
  /** Round-trip times in ms, in order. */
  rtts: number[];
}

/** A line from ns_probe's ping mode. */
export interface PingEvent {
  ip: string;
  seq: number;
  rtt?: number;
  lost?: true;
  /** Wall-clock ms. */
  t: number;
}

function summarize(events: PingEvent[], targets: string[]): Map<string, PingResult> {
  const out = new Map<string, PingResult>(targets.map((t) => [t, { ip: t, sent: 0, received: 0, rtts: [] }]));
  for (const e of events) {
    const r = out.get(e.ip) ?? { ip: e.ip, sent: 0, received: 0, rtts: [] };
    out.set(e.ip, r);
    r.sent++;
    if (e.rtt !== undefined) { r.received++; r.rtts.push(e.rtt); }
  }
  return out;
}

/**
 * ICMP echo from namespace `from` to each of `targets` (`count` rounds, `intervalMs` apart);
 * equivalent to `ip netns exec <from> ping -c <count> <ip>` for each target. `stagger` spreads each
 * round's echoes over the interval, one target at a time (ns_probe `--stagger`).
 */
export async function ping(from: string, targets: string | string[], opts: { count?: number; intervalMs?: number; timeoutMs?: number; stagger?: boolean } = {}): Promise<Map<string, PingResult>> {
  const list = Array.isArray(targets) ? targets : [targets];
  const r = exec(from, [BUN, PROBE, "ping", "--count", String(opts.count ?? 1), "--interval", String(opts.intervalMs ?? 100), "--timeout", String(opts.timeoutMs ?? 1000), ...(opts.stagger ? ["--stagger"] : []), ...list]);
  if (r.code !== 0) throw new Error(`ping from ${from} failed (${r.code}): ${r.stderr.trim()}`);
  return summarize(r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as PingEvent), list);
}

/** A ping running in the background; `stop()` ends it and returns every reply and loss. */
/** Icmp InEchos of namespace `ns` (/proc/net/snmp): echo requests that reached its stack. */
export function inEchos(ns: string): number {
  const lines = exec(ns, ["cat", "/proc/net/snmp"]).stdout.split("\n").filter((l) => l.startsWith("Icmp:"));
  const [head, vals] = [lines[0]!.split(/\s+/), lines[1]!.split(/\s+/)];
  return Number(vals[head.indexOf("InEchos")]);
}

/** `ping` (iputils) from namespace `ns` with source address `src`; the replies received. */
export function pingFrom(ns: string, src: string, dst: string, count = 3): number {
  const r = exec(ns, ["ping", "-n", "-q", "-c", String(count), "-i", "0.2", "-W", "1", "-I", src, dst]);
  return Number(/(\d+) received/.exec(r.stdout)?.[1] ?? 0);
}

export interface Pinger {
  readonly events: PingEvent[];
  /** Adds a target (pinged from the next round on). */
  add(ip: string): void;
  stop(): Promise<{ events: PingEvent[]; byTarget: Map<string, PingResult> }>;
}

/** Starts pinging `targets` from namespace `from` every `intervalMs` until `stop()`. */
export function startPinger(from: string, targets: string[], intervalMs = 20, timeoutMs = 1000): Pinger {
  const p = trackProc(spawn("ip", ["netns", "exec", from, BUN, PROBE, "ping", "--count", "0", "--stdin", "--interval", String(intervalMs), "--timeout", String(timeoutMs), ...targets], { stdio: ["pipe", "pipe", "pipe"] }));
  const events: PingEvent[] = [];
  const all = new Set(targets);
  let rest = "", err = "";
  p.stdout!.on("data", (d: Buffer) => {
    const lines = (rest + d).split("\n");
    rest = lines.pop()!;
    for (const l of lines) if (l) events.push(JSON.parse(l) as PingEvent);
  });
  p.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<number>((r) => p.on("close", (c) => r(c ?? -1)));
  return {
    events,
    add(ip) { all.add(ip); p.stdin!.write(`${ip}\n`); },
    async stop() {
      p.stdin!.end();
      const code = await exited;
      if (code !== 0) throw new Error(`pinger in ${from} exited ${code}: ${err.trim()}`);
      return { events, byTarget: summarize(events, [...all]) };
    },
  };
}

/** A TCP echo server in a namespace (`ns_probe serve`), listening on [::]:port (IPv4 too). */
export function startEchoServer(ns: string, port: number): Promise<{ stop(): void }> {
  return startProbeServer(ns, "serve", port);
}

/** A TCP server in a namespace answering each connection with its source address (`ns_probe whoami`). */
export function startWhoamiServer(ns: string, port: number): Promise<{ stop(): void }> {
  return startProbeServer(ns, "whoami", port);
}

/** `ns_probe MODE PORT` in `ns`, resolved once it prints that it listens. */
async function startProbeServer(ns: string, mode: "serve" | "whoami", port: number): Promise<{ stop(): void }> {
  const p = trackProc(spawn("ip", ["netns", "exec", ns, BUN, PROBE, mode, String(port)], { stdio: ["ignore", "pipe", "pipe"] }));
  await new Promise<void>((resolve, reject) => {
    let err = "";
    p.stderr!.on("data", (d) => (err += d));
    p.stdout!.once("data", () => resolve());
    p.once("exit", (c) => reject(new Error(`${mode} server in ${ns} exited ${c}: ${err}`)));
  });
  return { stop: () => { p.kill("SIGKILL"); } };
}

/** The source address each whoami server at `ip:port` saw a connection from `from` come with. */
export function sourceSeenBy(from: string, targets: string[], port: number): Map<string, string> {
  const r = exec(from, [BUN, PROBE, "ask", ...targets.map((t) => `[${t}]:${port}`)]);
  if (r.code !== 0) throw new Error(`ask from ${from} failed (${r.code}): ${r.stderr.trim()}`);
  const out = new Map<string, string>();
  for (const l of r.stdout.split("\n").filter(Boolean)) {
    const { target, source } = JSON.parse(l) as { target: string; source: string };
    out.set(target.slice(1, target.lastIndexOf("]")), source);
  }
  return out;
}

/** One TCP connection attempt's outcome. */
export interface ConnectResult {
  target: string;
  ok: boolean;
  ms: number;
  error?: string;
}

/**
 * Opens a TCP connection from namespace `from` to each `ip:port` and checks a line echoes back
 * (an echo server must listen there: `startEchoServer`).
 */
export function tcpConnect(from: string, targets: string | string[], port?: number): ConnectResult[] {
  const list = (Array.isArray(targets) ? targets : [targets]).map((t) => (port === undefined ? t : `${t}:${port}`));
  const r = exec(from, [BUN, PROBE, "connect", ...list]);
  if (r.code !== 0) throw new Error(`tcp connect from ${from} failed (${r.code}): ${r.stderr.trim()}`);
  return r.stdout.split("\n").filter(Boolean).map((l) => JSON.parse(l) as ConnectResult);
}

/** `ip monitor` running in a namespace; `lines` fills as events arrive. */
export interface IpMonitor {
  readonly lines: string[];
  stop(): Promise<string[]>;
}

const MARKER = "198.51.100.254";

/**
 * Starts `ip -n <ns> -o -ts monitor <objects…>` and resolves once it is subscribed (a marker
 * blackhole route is added and deleted and seen; its lines are left out of `lines`).
 */
export async function ipMonitor(ns: string, objects: string[] = ["route", "neigh"]): Promise<IpMonitor> {
  const p = trackProc(spawn("ip", ["-n", ns, "-o", "-ts", "monitor", ...objects], { stdio: ["ignore", "pipe", "pipe"] }));
  const lines: string[] = [];
  let rest = "", seen = false;
  p.stdout!.on("data", (d: Buffer) => {
    const parts = (rest + d).split("\n");
    rest = parts.pop()!;
    for (const l of parts) {
      if (l.includes(MARKER)) seen = true;
      else if (l.trim()) lines.push(l);
    }
  });
  const exited = new Promise<void>((r) => p.on("close", () => r()));
  const withRoutes = objects.includes("route") || objects.length === 0;
  if (withRoutes) {
    await waitFor(() => {
      // An identical replace makes no event: delete and add so every try makes some.
      run(["ip", "-n", ns, "route", "del", "blackhole", `${MARKER}/32`]);
      run(["ip", "-n", ns, "route", "add", "blackhole", `${MARKER}/32`]);
      return seen;
    }, 5000, `ip monitor in ${ns} to start`, 30);
    run(["ip", "-n", ns, "route", "del", "blackhole", `${MARKER}/32`]);
    await Bun.sleep(20);
  } else {
    await Bun.sleep(300);
  }
  return {
    lines,
    async stop() {
      p.kill("SIGTERM");
      await exited;
      return lines;
    },
  };
}

/** A kernel event seen by netlink_watch.ts (wall-clock `t` in ms). */
export interface KernelEvent {
  t: number;
  k: "route" | "neigh" | "fdb" | "overrun";
  a?: "new" | "del";
  dst?: string;
  table?: number;
  ip?: string;
  mac?: string;
}

/** A JSON-lines event source running in a namespace; `events` fills as they arrive. */
export interface EventStream<T> {
  readonly events: T[];
  /** Resolves with the first event (already seen or future) that `pred` accepts. */
  until(pred: (e: T) => boolean, timeoutMs?: number): Promise<T>;
  /** Writes a line to its stdin. */
  send(line: string): void;
  /** Closes its stdin (the script exits) and returns every event. */
  stop(): Promise<T[]>;
}

/**
 * Runs `argv` in `ns`, a script that prints `{"ready":true}` and then one JSON event per line
 * until its stdin closes; resolves once it is ready.
 */
export async function startEventStream<T>(ns: string, argv: string[]): Promise<EventStream<T>> {
  const p = trackProc(spawn("ip", ["netns", "exec", ns, ...argv], { stdio: ["pipe", "pipe", "pipe"] }));
  const events: T[] = [];
  const waiters = new Set<{ pred: (e: T) => boolean; resolve: (e: T) => void }>();
  let rest = "", err = "";
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout!.on("data", (d: Buffer) => {
    const lines = (rest + d).split("\n");
    rest = lines.pop()!;
    for (const l of lines) {
      if (!l) continue;
      const e = JSON.parse(l) as T & { ready?: true };
      if (e.ready) { onReady(); continue; }
      events.push(e);
      for (const w of waiters) if (w.pred(e)) { waiters.delete(w); w.resolve(e); }
    }
  });
  p.stderr!.on("data", (d) => (err += d));
  const exited = new Promise<void>((r) => p.on("close", () => r()));
  await Promise.race([ready, exited.then(() => { throw new Error(`'${argv.join(" ")}' in ${ns} exited: ${err}`); })]);
  return {
    events,
    until(pred, timeoutMs = 10_000) {
      const seen = events.find(pred);
      if (seen) return Promise.resolve(seen);
      return new Promise((resolve, reject) => {
        const w = { pred, resolve: (e: T) => { clearTimeout(t); resolve(e); } };
        const t = setTimeout(() => { waiters.delete(w); reject(new Error(`${argv.at(-1)} in ${ns}: no matching event within ${timeoutMs} ms`)); }, timeoutMs);
        waiters.add(w);
      });
    },
    send(line) {
      p.stdin!.write(`${line}\n`);
    },
    async stop() {
      p.stdin!.end();
      await exited;
      return events;
    },
  };
}

/** Route and neighbour/FDB changes in `ns` with timestamps (tests/support/netlink_watch.ts). */
export function startNetlinkWatch(ns: string): Promise<EventStream<KernelEvent>> {
  return startEventStream<KernelEvent>(ns, [BUN, join(import.meta.dir, "netlink_watch.ts")]);
}

/** An etcd event seen by etcd_watch.ts (wall-clock `t` in ms). */
export interface EtcdEvent {
  t: number;
  type: "put" | "delete";
  key: string;
}

/** The agent's resident set size in KiB (`VmRSS` of /proc/PID/status). */
export function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  if (!m) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(m[1]);
}

// ------------------------------------------------------------------ the cluster

export type BackendName = "vxlan" | "host-gw" | "alloc" | "udp" | "extension" | "wireguard";

export interface ClusterOptions {
  /** Hosts to create and start (default 3). */
  hosts?: number;
  /** Containers per host (default 1). */
  containersPerHost?: number;
  /** Backend.Type (default vxlan). */
  backend?: BackendName;
  /** Extra Backend keys, e.g. `{ VNI: 2 }`. */
  backendOptions?: Record<string, unknown>;
  /** The cluster network (default 10.244.0.0/16), and SubnetLen if not the default. */
  network?: string;
  subnetLen?: number;
  runtime?: Runtime;
  /** Extra agent flags and environment. */
  agentArgs?: string[];
  agentEnv?: Record<string, string>;
  /** A command the agent runs under inside its namespace, e.g. `["setpriv", …]`. */
  agentWrap?: string[];
  /** Start agents (and containers) right away (default true). */
  start?: boolean;
  /**
   * Dual stack: the IPv6Network of the config (e.g. "fd10::/48"); the underlay gets IPv6 too and
   * containers come from the CNI plugin with both families.
   */
  ipv6Network?: string;
  /** With `ipv6Network`: an IPv6-only cluster network (`EnableIPv4: false`). */
  ipv6Only?: boolean;
  /** IPv6Network's IPv6SubnetLen, if not the default. */
  ipv6SubnetLen?: number;
  /** Containers from the CNI plugin (default: only with `ipv6Network`; else made by hand). */
  cni?: boolean;
  /**
   * Kube mode: no etcd; the test Kubernetes API server (tests/support/kube_api_server.ts) runs in
   * this process and is reachable on the underlay at 192.168.77.254:6443; each host is a Node
   * (registered when its namespace is made, its podCIDR assigned as the controller manager
   * does) and its agent runs `--kube-subnet-mgr` with its own kubeconfig, service account token
   * file and NODE_NAME.
   */
  kube?: boolean;
  /**
   * A word put in every name this cluster makes (namespaces `wf-<pid>-<rand>-<label>-h1`, its temp
   * dir), so a helper's runs are told apart from others' on a shared machine.
   */
  label?: string;
}

/** A container namespace on a host. */
export interface Container {
  readonly ns: string;
  /** Its IPv4 address (its IPv6 one in an IPv6-only cluster). */
  readonly ip: string;
  /** Its IPv6 address, in a dual-stack or IPv6-only cluster. */
  readonly ip6?: string;
  readonly host: Host;
}

/** A host namespace and its agent. */
export class Host {
  agent?: ChildProcess;
  /** Agent stdout+stderr (last 64 KiB). */
  log = "";
  runtime: Runtime;
  readonly containers: Container[] = [];
  forward?: NetnsForward;

  /** `ip6`: its IPv6 underlay address, with ClusterOptions.ipv6Network. */
  constructor(readonly name: string, readonly ns: string, readonly ip: string, readonly dir: string, runtime: Runtime, readonly ip6?: string) {
    this.runtime = runtime;
  }

  get subnetFile(): string {
    return join(this.dir, "subnet.env");
  }

  /** Backend wireguard: this host's private key file (WIREGUARD_KEY_FILE), kept across restarts. */
  get wgKeyFile(): string {
    return join(this.dir, "wgkey");
  }

  /**
   * Backend wireguard: `argv` in this host's namespace with its own /run/wireguard (the agent's
   * `wg` control sockets; see ns.ts inNsWgRunDir), as the agent runs and each `wg` against it.
   */
  inWgRunDir(argv: string[]): string[] {
    return inNsWgRunDir(this.ns, join(this.dir, "wireguard"), argv);
  }

  /** Kube mode: the agent's kubeconfig and its service account token file. */
  get kubeconfig(): string {
    return join(this.dir, "kubeconfig.json");
  }

  get tokenFile(): string {
    return join(this.dir, "token");
  }

  /** subnet.env as written by the agent (undefined before the first start). */
  get env(): ReturnType<typeof readSubnetEnv> {
    return readSubnetEnv(this.subnetFile);
  }

  /** The lease's network, e.g. `10.244.7.0/24` (from subnet.env). */
  get subnet(): string {
    const s = this.env?.subnet;
    if (!s) throw new Error(`host ${this.name} has no FLANNEL_SUBNET in ${this.subnetFile} (no subnet.env yet, or an IPv6-only network: see subnet6)`);
    const n = parseIPv4Net(s);
    return `${formatIPv4(n.ip)}/${n.len}`;
  }

  /** The lease's IPv6 network, e.g. `fd10:0:0:7::/64` (from subnet.env). */
  get subnet6(): string {
    const s = this.env?.ipv6Subnet;
    if (!s) throw new Error(`host ${this.name} has no FLANNEL_IPV6_SUBNET in ${this.subnetFile}`);
    return formatIPv6Net(parseIPv6Net(s));
  }

  get running(): boolean {
    return this.agent !== undefined && this.agent.exitCode === null && this.agent.signalCode === null;
  }
}

/** The argv that runs weft under `runtime`. */
export class Cluster {
  readonly hosts: Host[] = [];
  /** The endpoints agents and admin commands use instead of the underlay's etcd (e.g. an EtcdCluster's). */
  etcdEndpoints?: string;
  /** Hosts ever added: names and addresses are never reused after `removeHost()`. */
  private hostsAdded = 0;
  /** Every namespace of this cluster still standing (underlay, hosts, containers). */
  private readonly namespaces: Set<string>;
  /** Kube mode: the API server (in this process) and its door into the underlay. */
  kube?: KubeApiServer;
  kubeExpose?: NetnsExpose;
  private constructor(
    readonly id: string,
    readonly dir: string,
    readonly underlay: string,
    private readonly etcdServer: EtcdServer | undefined,
    readonly opts: Required<Pick<ClusterOptions, "backend" | "network" | "runtime" | "containersPerHost">> & ClusterOptions,
  ) {
    this.namespaces = new Set([underlay]);
  }

  /** The cluster's etcd (etcd mode only). */
  get etcd(): EtcdServer {
    if (!this.etcdServer) throw new Error(`cluster ${this.id} runs in kube mode: it has no etcd`);
    return this.etcdServer;
  }

  /** Kube mode: the API server as the agents reach it on the underlay. */
  static readonly KUBE_API = { host: "192.168.77.254", port: 6443 };

  /** The test's handle on the API server (kube mode only). */
  get api(): KubeApiServer {
    if (!this.kube) throw new Error(`cluster ${this.id} runs in etcd mode: it has no Kubernetes API`);
    return this.kube;
  }

  /** `addNetns(name)`, remembered so `destroy()` removes it. */
  private addNetns(name: string): string {
    this.namespaces.add(name);
    return addNetns(name);
  }

  /** `delNetns(name)`, forgotten by `destroy()`. */
  private delNetns(name: string): void {
    delNetns(name);
    this.namespaces.delete(name);
  }

  /** Underlay prefix; hosts are .10+i, etcd .254. */
  static readonly UNDERLAY = "192.168.77";
  /** IPv6 underlay prefix (dual stack); hosts are ::10+i (hex), br0 ::fe. */
  static readonly UNDERLAY6 = "2001:db8:77::";

  /** No duplicate address detection for addresses of links created later in `ns` (ipv6Network). */
  private static noDad(ns: string): void {
    exec(ns, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]);
  }

  /** Builds the underlay, etcd and config, then `hosts` hosts (agents started unless start=false). */
  static async create(options: ClusterOptions = {}): Promise<Cluster> {
    registerCleanup();
    cleanupStale();
    const opts = { backend: "vxlan" as const, network: "10.244.0.0/16", runtime: "binary" as const, containersPerHost: 1, ...options };
    const id = opts.label ? uniqueName(opts.label) : uniqueName();
    const dir = mkdtempSync(join(tmpdir(), `${id}-`));
    live.dirs.add(dir);
    const underlay = addNetns(`${id}-u`);
    ip(underlay, "link", "add", "br0", "type", "bridge");
    ip(underlay, "addr", "add", `${Cluster.UNDERLAY}.254/24`, "dev", "br0");
    if (opts.ipv6Network) ip(underlay, "addr", "add", `${Cluster.UNDERLAY6}fe/64`, "dev", "br0", "nodad");
    ip(underlay, "link", "set", "br0", "up");
    const etcd = opts.kube ? undefined : await EtcdServer.start({ netns: underlay, host: `${Cluster.UNDERLAY}.254`, port: 2379, dataDir: join(dir, "etcd") });
    const c = new Cluster(id, dir, underlay, etcd, opts);
    try {
      if (opts.kube) await c.startKubeApi();
      c.setConfig();
      const n = opts.hosts ?? 3;
      for (let i = 0; i < n; i++) c.addHostNamespace();
      if (opts.start !== false) {
        await Promise.all(c.hosts.map((h) => c.startAgent(h)));
        for (const h of c.hosts) c.addContainers(h, opts.containersPerHost);
      }
    } catch (e) {
      await c.destroy();
      throw e;
    }
    return c;
  }

  /** The network config JSON stored in etcd. */
  get config(): string {
    const o = this.opts;
    const cfg: Record<string, unknown> = o.ipv6Only ? { EnableIPv4: false } : { Network: o.network };
    if (o.subnetLen !== undefined && !o.ipv6Only) cfg.SubnetLen = o.subnetLen;
    if (o.ipv6Network) {
      cfg.EnableIPv6 = true;
      cfg.IPv6Network = o.ipv6Network;
      if (o.ipv6SubnetLen !== undefined) cfg.IPv6SubnetLen = o.ipv6SubnetLen;
    }
    cfg.Backend = { Type: o.backend, ...o.backendOptions };
    return JSON.stringify(cfg);
  }

  /** Watches `prefix` from inside the underlay (as close to etcd as the agents are). */
  watchEtcd(prefix = "/coreos.com/network/subnets/"): Promise<EventStream<EtcdEvent>> {
    return startEventStream<EtcdEvent>(this.underlay, [BUN, join(import.meta.dir, "etcd_watch.ts"), this.etcd.endpoint, prefix]);
  }

  /**
   * Stores the network config: `weft config set -` from inside the underlay namespace, or in
   * kube mode the net-conf.json every agent reads (as the kube-flannel-cfg ConfigMap).
   */
  setConfig(json = this.config): void {
    if (this.opts.kube) writeFileSync(this.netConfPath, json);
    else this.weft(["config", "set", "-"], json);
  }

  /** Kube mode: the agents' --net-config-path. */
  get netConfPath(): string {
    return join(this.dir, "net-conf.json");
  }

  /** Starts the API server (no Nodes yet, podCIDRs assigned by addHostNamespace) and exposes it. */
  private async startKubeApi(): Promise<void> {
    const net = parseIPv4Net(this.opts.network);
    this.kube = await KubeApiServer.start({ clusterCidrs: [this.opts.network], nodeCidrMasks: [this.opts.subnetLen ?? Math.max(24, net.len + 4)], allocateNodeCidrs: false });
    this.kubeExpose = await exposeIntoNetns(this.underlay, Cluster.KUBE_API.host, Cluster.KUBE_API.port, this.kube.port);
  }

  /**
   * Kube mode: registers the Node of `h` (as its kubelet would) and, unless `podCIDR` is false,
   * assigns its podCIDR (as kube-controller-manager --allocate-node-cidrs does); writes its
   * service account token file and its kubeconfig (JSON; the server certificate names
   * `localhost`, so `tls-server-name` says so).
   */
  registerNode(h: Host, opts: { podCIDR?: boolean; rules?: typeof KUBE_API_ACCESS } = {}): void {
    const api = this.api;
    if (!api.getNode(h.name)) api.addNode(h.name, { internalIP: h.ip });
    if (opts.podCIDR !== false) api.assignPodCidrs(h.name);
    writeFileSync(h.tokenFile, api.addServiceAccountToken("kube-flannel", `flannel-${h.name}`, opts.rules ?? KUBE_API_ACCESS), { mode: 0o600 });
    writeFileSync(h.kubeconfig, JSON.stringify({
      apiVersion: "v1", kind: "Config", "current-context": "weft",
      clusters: [{ name: "test", cluster: { server: `https://${Cluster.KUBE_API.host}:${Cluster.KUBE_API.port}`, "certificate-authority-data": Buffer.from(api.caCert).toString("base64"), "tls-server-name": "localhost" } }],
      users: [{ name: "flannel", user: { tokenFile: h.tokenFile } }],
      contexts: [{ name: "weft", context: { cluster: "test", user: "flannel" } }],
    }, null, 2), { mode: 0o600 });
  }

  /** Runs an admin command (`dist/weft --etcd-endpoints=… ARGS`) in the underlay; throws on failure. */
  weft(args: string[], stdin = ""): string {
    const r = exec(this.underlay, weftCommand("binary", [`--etcd-endpoints=${this.etcdEndpoints ?? this.etcd.endpoint}`, ...args]), { stdin });
    if (r.code !== 0) throw new Error(`weft ${args.join(" ")} exited ${r.code}: ${r.stderr.trim()}`);
    return r.stdout;
  }

  /**
   * Creates the next host's namespace and underlay link (no agent); in kube mode also its Node,
   * with a podCIDR unless `podCIDR` is false.
   */
  addHostNamespace(podCIDR?: boolean): Host {
    const i = ++this.hostsAdded;
    if (i > 200) throw new RangeError(`Cluster: host ${i} exceeds the underlay's 200 host addresses`);
    const name = `h${i}`;
    const ns = this.addNetns(`${this.id}-${name}`);
    if (this.opts.ipv6Network) Cluster.noDad(ns);
    const addr = `${Cluster.UNDERLAY}.${9 + i}`;
    // The veth is created in the underlay with its peer straight in the host namespace.
    ip(this.underlay, "link", "add", name, "type", "veth", "peer", "name", "eth0", "netns", ns);
    ip(this.underlay, "link", "set", name, "master", "br0", "up");
    ip(ns, "addr", "add", `${addr}/24`, "dev", "eth0");
    ip(ns, "link", "set", "eth0", "up");
    ip(ns, "route", "add", "default", "via", `${Cluster.UNDERLAY}.254`);
    exec(ns, ["sysctl", "-qw", "net.ipv4.ip_forward=1"]);
    let addr6: string | undefined;
    if (this.opts.ipv6Network) {
      addr6 = `${Cluster.UNDERLAY6}${(9 + i).toString(16)}`;
      ip(ns, "addr", "add", `${addr6}/64`, "dev", "eth0", "nodad");
      ip(ns, "-6", "route", "add", "default", "via", `${Cluster.UNDERLAY6}fe`);
      exec(ns, ["sysctl", "-qw", "net.ipv6.conf.all.forwarding=1"]);
      // No DAD on what the CNI plugin makes here later (cni0 and its gateway addresses), so no
      // first packet waits on a tentative address.
      exec(ns, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]);
    }
    const dir = join(this.dir, name);
    mkdirSync(dir, { recursive: true });
    const h = new Host(name, ns, addr, dir, this.opts.runtime, addr6);
    this.hosts.push(h);
    if (this.opts.kube) this.registerNode(h, { podCIDR: podCIDR !== false });
    return h;
  }

  /** Adds a host: namespace, agent (ready), and its containers. */
  async addHost(opts: { containers?: number; runtime?: Runtime } = {}): Promise<Host> {
    const h = this.addHostNamespace();
    await this.startAgent(h, opts.runtime);
    this.addContainers(h, opts.containers ?? this.opts.containersPerHost);
    return h;
  }

  /** Takes `h` out of the cluster: kills its agent, removes its namespaces and containers. */
  async removeHost(h: Host): Promise<void> {
    await this.killAgent(h);
    await h.forward?.close();
    for (const ns of [...h.containers.map((c) => c.ns), h.ns]) this.delNetns(ns);
    this.hosts.splice(this.hosts.indexOf(h), 1);
  }

  host(name: string): Host {
    const h = this.hosts.find((x) => x.name === name);
    if (!h) throw new Error(`no host ${JSON.stringify(name)} in cluster ${this.id} (hosts: ${this.hosts.map((x) => x.name).join(", ")})`);
    return h;
  }

  /** Every container of every host. */
  get containers(): Container[] {
    return this.hosts.flatMap((h) => h.containers);
  }

  /**
   * Starts the agent of `h` in its namespace and waits until it is ready (its subnet.env
   * rewritten after the start).
   */
  async startAgent(h: Host, runtime: Runtime = h.runtime, timeoutMs = 30_000): Promise<void> {
    if (h.running) throw new Error(`agent of ${h.name} is already running`);
    h.runtime = runtime;
    const source = this.opts.kube
      ? ["--kube-subnet-mgr", `--kubeconfig-file=${h.kubeconfig}`, `--net-config-path=${this.netConfPath}`]
      : [`--etcd-endpoints=${this.etcdEndpoints ?? this.etcd.endpoint}`];
    const args = [
      ...source, `--subnet-file=${h.subnetFile}`,
      `--healthz-ip=${h.ip}`, `--healthz-port=${STATUS_PORT}`, ...(this.opts.agentArgs ?? []),
    ];
    const started = Date.now();
    const argv = [...(this.opts.agentWrap ?? []), ...weftCommand(runtime, args)];
    const [cmd, ...rest] = this.opts.backend === "wireguard" ? h.inWgRunDir(argv) : ["ip", "netns", "exec", h.ns, ...argv];
    const p = trackProc(spawn(cmd!, rest, {
      stdio: ["ignore", "pipe", "pipe"], env: {
        ...process.env, ...this.opts.agentEnv, ...(this.opts.kube ? { NODE_NAME: h.name } : {}),
        // One key per host: a shared WIREGUARD_KEY_FILE (or flanneld's default path) would give every host the same key.
        ...(this.opts.backend === "wireguard" ? { WIREGUARD_KEY_FILE: h.wgKeyFile } : {}),
      },
    }));
    h.agent = p;
    const append = (d: Buffer) => { h.log = (h.log + d).slice(-65536); };
    p.stdout!.on("data", append);
    p.stderr!.on("data", append);
    await waitFor(() => {
      if (p.exitCode !== null || p.signalCode !== null) throw new Error(`agent of ${h.name} exited (${p.exitCode ?? p.signalCode}) before ready`);
      try {
        return statSync(h.subnetFile).mtimeMs >= started - 10;
      } catch {
        return false;
      }
    }, timeoutMs, `agent of ${h.name} to be ready`).catch((e) => {
      throw new Error(`${(e as Error).message}\n--- agent log ---\n${h.log}`);
    });
  }

  /** Stops the agent of `h` (SIGTERM, as systemd does) and waits for it; returns its exit code. */
  async stopAgent(h: Host, signal: NodeJS.Signals = "SIGTERM"): Promise<number | null> {
    const p = h.agent;
    if (!p) return null;
    if (p.exitCode === null && p.signalCode === null) {
      const done = new Promise<void>((r) => p.once("exit", () => r()));
      p.kill(signal);
      const t = setTimeout(() => p.kill("SIGKILL"), 10_000);
      await done;
      clearTimeout(t);
    }
    h.agent = undefined;
    return p.exitCode;
  }

  /** Kills the agent of `h` (SIGKILL: no shutdown path runs, as on a power loss). */
  killAgent(h: Host): Promise<number | null> {
    return this.stopAgent(h, "SIGKILL");
  }

  /**
   * Creates `cni0` on `h` from its subnet.env if missing and `n` more containers on it, each a
   * namespace with `eth0` (.2, .3, …), the bridge as default gateway and FLANNEL_MTU.
   */
  addContainers(h: Host, n = 1): Container[] {
    if (this.opts.cni ?? this.opts.ipv6Network !== undefined) return this.addCniContainers(h, n);
    const env = h.env;
    if (!env?.subnet || !env.mtu) throw new Error(`host ${h.name}: subnet.env has no FLANNEL_SUBNET/FLANNEL_MTU: ${JSON.stringify(env?.raw)}`);
    const net = parseIPv4Net(env.subnet); // masked: the lease's network address
    const gw = formatIPv4((net.ip + 1) >>> 0);
    const mtu = String(env.mtu);
    // With ipv6Network: FLANNEL_IPV6_SUBNET is the gateway's address/len (as FLANNEL_SUBNET is).
    const v6 = this.opts.ipv6Network && env.ipv6Subnet ? env.ipv6Subnet : undefined;
    const gw6 = v6?.split("/")[0];
    const addr6 = (j: number) => `${gw6!.replace(/[0-9a-f]+$/, "")}${(1 + j).toString(16)}`;
    if (!ipJson(h.ns, "link", "show").some((l) => l.ifname === "cni0")) {
      ip(h.ns, "link", "add", "cni0", "type", "bridge");
      ip(h.ns, "addr", "add", env.subnet, "dev", "cni0");
      if (v6) ip(h.ns, "-6", "addr", "add", v6, "dev", "cni0", "nodad");
      ip(h.ns, "link", "set", "cni0", "mtu", mtu, "up");
    }
    const made: Container[] = [];
    for (let k = 0; k < n; k++) {
      const j = h.containers.length + 1;
      const ns = this.addNetns(`${h.ns}c${j}`);
      if (v6) Cluster.noDad(ns);
      const addr = formatIPv4((net.ip + 1 + j) >>> 0);
      const veth = `vc${j}`;
      ip(h.ns, "link", "add", veth, "mtu", mtu, "type", "veth", "peer", "name", "eth0", "mtu", mtu, "netns", ns);
      ip(h.ns, "link", "set", veth, "master", "cni0", "up");
      ip(ns, "addr", "add", `${addr}/${net.len}`, "dev", "eth0");
      ip(ns, "link", "set", "eth0", "up");
      ip(ns, "route", "add", "default", "via", gw);
      if (v6) {
        ip(ns, "-6", "addr", "add", `${addr6(j)}/${v6.split("/")[1]}`, "dev", "eth0", "nodad");
        ip(ns, "-6", "route", "add", "default", "via", gw6!);
      }
      const c: Container = { ns, ip: addr, host: h, ...(v6 ? { ip6: addr6(j) } : {}) };
      h.containers.push(c);
      made.push(c);
    }
    return made;
  }

  /** The CNI_PATH of this cluster: `flannel` is dist/weft, beside Debian's bridge and host-local. */
  private get cniBinDir(): string {
    const dir = join(this.dir, "cni-bin");
    try {
      statSync(join(dir, "flannel"));
    } catch {
      mkdirSync(dir, { recursive: true });
      makeCniBinDir(dir, join(ROOT, "dist", "weft"));
    }
    return dir;
  }

  /** flannel's netconf for `h`, as a runtime would pass it (bridge cbr0, hairpin, default gateway). */
  cniNetconf(h: Host): Record<string, unknown> {
    return {
      cniVersion: "0.3.1", name: "cbr0", type: "flannel",
      subnetFile: h.subnetFile, dataDir: join(h.dir, "cni-flannel"),
      ipam: { dataDir: join(h.dir, "cni-ipam") },
      delegate: { hairpinMode: true, isDefaultGateway: true },
    };
  }

  /**
   * `n` more containers on `h` made as a container runtime makes them: `flannel` ADD (delegating
   * to bridge and host-local) into a fresh namespace; each gets an address of every family.
   */
  addCniContainers(h: Host, n = 1): Container[] {
    const made: Container[] = [];
    for (let k = 0; k < n; k++) {
      const j = h.containers.length + 1;
      const ns = this.addNetns(`${h.ns}c${j}`);
      exec(ns, ["sysctl", "-qw", "net.ipv6.conf.default.accept_dad=0", "net.ipv6.conf.all.accept_dad=0"]); // as on the host
      const r = cniExec({ hostNs: h.ns, binDir: this.cniBinDir, command: "ADD", containerId: `${h.name}c${j}`, netns: netnsPath(ns), config: this.cniNetconf(h) });
      if (r.code !== 0) throw new Error(`CNI ADD on ${h.name} failed (${r.code}): ${r.stdout} ${r.stderr}`);
      const addrs = (r.json.ips as { address: string }[]).map((x) => x.address.split("/")[0]!);
      const ip4 = addrs.find((a) => !a.includes(":"));
      const ip6 = addrs.find((a) => a.includes(":"));
      const c: Container = { ns, ip: (ip4 ?? ip6)!, ...(ip6 ? { ip6 } : {}), host: h };
      h.containers.push(c);
      made.push(c);
    }
    return made;
  }

  /** GET `path` on the agent's status server (through a forwarder into the host namespace). */
  async fetch(h: Host, path: string): Promise<Response> {
    h.forward ??= await forwardIntoNetns(h.ns, h.ip, STATUS_PORT);
    return fetch(`${h.forward.url}${path}`, { signal: AbortSignal.timeout(5000) });
  }

  /** The agent's `/status` JSON. */
  async status(h: Host): Promise<any> {
    const r = await this.fetch(h, "/status");
    if (!r.ok) throw new Error(`GET /status on ${h.name}: HTTP ${r.status}`);
    return r.json();
  }

  /** Peers' subnets routed on `h` (any route inside the cluster network but its own subnet). */
  peerRoutes(h: Host): Record<string, unknown>[] {
    const net = parseIPv4Net(this.opts.network);
    const own = h.env?.subnet ? h.subnet : "";
    return ipJson(h.ns, "route", "show").filter((r) => {
      const dst = String(r.dst);
      if (!dst.includes("/") || dst === own) return false;
      const n = parseIPv4Net(dst);
      return n.len >= net.len && ((n.ip ^ net.ip) >>> (32 - net.len)) === 0;
    });
  }

  /** Peers' IPv6 subnets routed on `h` (any IPv6 route inside IPv6Network but its own subnet). */
  peerRoutes6(h: Host): Record<string, unknown>[] {
    const net = parseIPv6Net(this.opts.ipv6Network!);
    const own = h.env?.ipv6Subnet ? h.subnet6 : "";
    return ipJson(h.ns, "-6", "route", "show").filter((r) => {
      const dst = String(r.dst);
      if (!dst.includes("/") || dst === own) return false;
      const n = parseIPv6Net(dst);
      return n.len > net.len && containsV6Net(net, n);
    });
  }

  /** Removes every namespace, process, forwarder and file of this cluster. */
  async destroy(): Promise<void> {
    await Promise.all(this.hosts.map((h) => this.stopAgent(h, "SIGKILL")));
    for (const h of this.hosts) await h.forward?.close();
    await this.etcdServer?.destroy();
    await this.kubeExpose?.close();
    await this.kube?.stop();
    for (const ns of [...this.namespaces]) this.delNetns(ns);
    rmSync(this.dir, { recursive: true, force: true });
    live.dirs.delete(this.dir);
  }
}
