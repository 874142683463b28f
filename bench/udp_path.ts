/**
 * @module The udp backend's data path against kernel VXLAN, in one run on one machine. Prints
 * figures, asserts nothing. Needs root; every namespace and process is removed at the end.
 *
 *   bun bench/udp_path.ts [--seconds 3] [--runtime bun|binary|deno] [--only all,no-gso,…,spin]
 *                         [--rtt-only] [--rounds N] [--trace] [--no-ref-proxy] [--ref-spin US]
 *                         [--env WEFT_UDP_X=1,…]… [--agent-log RE] [--no-interleaved]
 *                         [--ref-js [worker,mmsg,wasm-buffer,core,ref-core,loop]]
 *
 * Topology (tests/support/netns.ts): two hosts joined by an underlay bridge, real etcd, weft
 * with `{"Network":"10.50.0.0/16","Backend":{"Type":"udp"}}`, one container per host. Kernel
 * VXLAN is set up by hand beside it on the same hosts and containers: `vxb` (VNI 42, port 4789,
 * MTU 1450) on each host, the containers get a second address 10.60.<i>.2 and a route
 * `10.60.0.0/16 via <cni0> src 10.60.<i>.2 mtu 1450`, so the same two containers talk over
 * flannel0 (10.50/16) or over VXLAN (10.60/16).
 *
 * Per configuration (the agents restarted with the WEFT_UDP_* switches): iperf3 with one TCP
 * stream and with four (`--seconds` each), and median RTT of ICMP echoes (ns_probe) 10 ms apart
 * (200: the machine idles between them, as with sparse traffic) and 1 ms apart (2000: the
 * forwarding threads stay warm), each right after the same for kernel VXLAN;
 * CPU is utime+stime of both agents (/proc/<pid>/stat, workers included) over the iperf3 runs,
 * given as CPU-seconds per second per Gbit/s, i.e. cores busy per Gbit/s; over the echoes, CPU µs
 * per echo of every thread of those processes (/proc/<pid>/task/<tid>/schedstat), by thread name
 * (the packet workers, the main thread, the JIT and GC threads; kernel work done in a thread's
 * syscalls, such as the other host's receive path inside a sendmmsg, counts as that thread's).
 *
 * A reference in the same run (unless `--no-ref-proxy`, or without a C compiler): the C proxy of
 * bench/ref/tun_proxy.c, flanneld's udp design (one thread, poll, one packet per syscall) with no
 * runtime, on the same hosts and containers (see setUpRefProxy). `--ref-spin US` gives it
 * weft's busy-poll (WEFT_UDP_SPIN_US=US: after a packet, poll without sleeping as SCHED_IDLE for
 * up to US µs) on both hosts, to compare like with like with the `spin` configuration. `--ref-js`
 * adds the same proxy in JavaScript (bench/ref/tun_proxy.ts, through ffi/, under the agents'
 * runtime), which splits weft's distance to the C proxy into what the runtime costs a wake-up
 * and what weft's loop adds to that.
 *
 * `--rtt-only` skips iperf3; `--rounds N` repeats the RTT pair (VXLAN, then udp) N times and
 * reports the median round (other engineers' load on a shared machine only ever slows a round);
 * `--trace` runs the agents with WEFT_UDP_TRACE=1 and prints each worker's per-stage timings;
 * `--agent-log RE` prints the agents' log lines matching RE written during the measurement (with
 * `--env BUN_JSC_reportDFGCompileTimes=1,…`: what the JIT still compiled while being measured).
 * For a profile of the agents with their JavaScript and Wasm named, see bench/lib/jitdump_map.ts.
 * With the C reference, VXLAN, weft's udp path (in the first configuration measured) and the C
 * proxy, and the JS proxy with `--ref-js`, are also measured with their echoes taking turns, for
 * paired differences that hold still (see interleaved(); `--no-interleaved` skips it).
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, type Host, exec, ip, ping } from "../tests/support/netns.ts";
import { figure, median } from "./lib/figures.ts";
import { setUpVxlan } from "./lib/vxlan_beside.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const SECONDS = Number(opt("--seconds", "3"));
const RUNTIME = opt("--runtime", "bun") as "bun" | "binary" | "deno";

/** The configurations: name -> WEFT_UDP_* environment (`spin`: busy-poll, 20 ms window; see README). */
const CONFIGS: [string, Record<string, string>][] = [
  ["all", {}],
  ["no-gso", { WEFT_UDP_NO_GSO: "1" }],
  ["no-gro", { WEFT_UDP_NO_GRO: "1" }],
  ["no-vnet", { WEFT_UDP_NO_VNET: "1" }],
  ["none", { WEFT_UDP_NO_VNET: "1", WEFT_UDP_NO_GSO: "1", WEFT_UDP_NO_GRO: "1" }],
  ["2-workers", { WEFT_UDP_WORKERS: "2" }],
  ["spin", { WEFT_UDP_SPIN_US: "20000" }],
];
// Each `--env K=V,K=V` adds a configuration named by that text, run after the --only ones.
const extraEnvs = argv.flatMap((a, i) => (a === "--env" ? [argv[i + 1]!] : []));
for (const e of extraEnvs) CONFIGS.push([e, Object.fromEntries(e.split(",").map((kv) => kv.split("=") as [string, string]))]);
const only = opt("--only", "").split(",").filter(Boolean);
const RTT_ONLY = argv.includes("--rtt-only");
const ROUNDS = Number(opt("--rounds", "1"));
const TRACE = argv.includes("--trace");
/** The interleaved measurement (see interleaved()) runs with the C reference unless --no-interleaved. */
const INTERLEAVED = !argv.includes("--no-interleaved");
/** The C reference proxy runs unless --no-ref-proxy, when a C compiler is there. */
const REF = !argv.includes("--no-ref-proxy") && spawnSync("cc", ["--version"]).status === 0;
/**
 * `--ref-js [worker,mmsg,wasm-buffer,core,ref-core,loop]`: also the same proxy in JavaScript (bench/ref/tun_proxy.ts),
 * under the agents' runtime, with the named traits of weft's loop (tun_proxy.ts says what each is).
 */
const REF_JS = REF && argv.includes("--ref-js");
const REF_JS_TRAITS = ["worker", "mmsg", "wasm-buffer", "core", "ref-core", "loop"];
const refJsNext = argv[argv.indexOf("--ref-js") + 1];
const REF_JS_WITH = REF_JS && refJsNext !== undefined && !refJsNext.startsWith("--") ? refJsNext.split(",") : [];
for (const t of REF_JS_WITH) {
  if (!REF_JS_TRAITS.includes(t)) throw new RangeError(`--ref-js ${JSON.stringify(refJsNext)}: "${t}" is not one of ${REF_JS_TRAITS.join(", ")}`);
}
for (const t of ["ref-core", "loop"]) {
  if (REF_JS_WITH.includes(t) && !REF_JS_WITH.includes("core")) throw new RangeError(`--ref-js ${JSON.stringify(refJsNext)}: ${t} needs core too (the two hosts' subnets come with it)`);
}
if (REF_JS_WITH.includes("loop") && REF_JS_WITH.length > 2) {
  throw new RangeError(`--ref-js ${JSON.stringify(refJsNext)}: loop runs weft's own worker and goes with core alone (core,loop)`);
}
const REF_SPIN = Number(opt("--ref-spin", "0"));
if (!Number.isInteger(REF_SPIN) || REF_SPIN < 0) throw new RangeError(`--ref-spin ${JSON.stringify(opt("--ref-spin", "0"))}: must be a whole number of µs, 0 or more`);
const TICK = 100; // CLK_TCK
/** `--agent-log RE`: print the agents' log lines matching RE that appeared during the measurement. */
const AGENT_LOG = argv.includes("--agent-log") ? agentLogPattern(opt("--agent-log", "")) : null;
function agentLogPattern(text: string): RegExp {
  try {
    return new RegExp(text);
  } catch (e) {
    throw new SyntaxError(`--agent-log ${JSON.stringify(text)}: not a regular expression (${(e as Error).message})`);
  }
}
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new RangeError(`--rounds ${JSON.stringify(opt("--rounds", "1"))}: must be a whole number, 1 or more`);
if (!(SECONDS > 0)) throw new RangeError(`--seconds ${JSON.stringify(opt("--seconds", "3"))}: must be a number of seconds above 0`);

interface Figures {
  one: number; // Gbit/s
  four: number;
  /** Median RTT (ms) with echoes 10 ms apart (the machine idles in between) and 1 ms apart. */
  rttIdle: number;
  rttBusy: number;
  cpuPerGbit?: number; // agent cores per Gbit/s
  /** CPU µs per echo of the path's processes (agents, proxies) by thread name, 10 ms and 1 ms apart. */
  cpuIdle?: Record<string, number>;
  cpuBusy?: Record<string, number>;
  /** The kernel VXLAN path's, measured right before this path's. */
  base?: { rttIdle: number; rttBusy: number };
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime (fields 14, 15)
}

function iperf(from: string, to: string, streams: number): number {
  const r = exec(from, ["iperf3", "-c", to, "-t", String(SECONDS), "-P", String(streams), "-J", "-O", "0.5"]);
  if (r.code !== 0) throw new Error(`iperf3 -c ${to} -P ${streams} failed: ${r.stdout.slice(0, 500)} ${r.stderr}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
}

async function p50(from: string, to: string, count: number, intervalMs: number): Promise<number> {
  const rtts = (await ping(from, to, { count, intervalMs })).get(to)!.rtts;
  if (rtts.length === 0) throw new Error(`no echo replies from ${to}`);
  return median(rtts);
}

/** CPU time (ns) each thread of `pids` has run so far (/proc/<pid>/task/<tid>/schedstat), by tid, with its name. */
function threadCpu(pids: number[]): Map<string, { comm: string; ns: number }> {
  const m = new Map<string, { comm: string; ns: number }>();
  for (const pid of pids) {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      try {
        const ns = Number(readFileSync(`/proc/${pid}/task/${tid}/schedstat`, "utf8").split(" ")[0]);
        m.set(`${pid}/${tid}`, { comm: readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim(), ns });
      } catch { /* the thread ended */ }
    }
  }
  return m;
}

/** CPU µs per echo between two threadCpu() readings, by thread name (threads that ended meanwhile are not counted). */
function cpuPerEcho(a: Map<string, { comm: string; ns: number }>, b: Map<string, { comm: string; ns: number }>, echoes: number): Record<string, number> {
  const by: Record<string, number> = {};
  for (const [tid, t] of b) by[t.comm] = (by[t.comm] ?? 0) + (t.ns - (a.get(tid)?.ns ?? 0)) / echoes / 1000;
  return by;
}

const total = (by?: Record<string, number>) => Object.values(by ?? {}).reduce((x, y) => x + y, 0);

interface Rtt {
  rttIdle: number;
  rttBusy: number;
  /** CPU µs per echo of the path's processes (`pids`) by thread name, 10 ms and 1 ms apart. */
  cpuIdle?: Record<string, number>;
  cpuBusy?: Record<string, number>;
}

/** Median RTTs: 200 echoes 10 ms apart, then 2000 echoes 1 ms apart; with `pids`, their CPU per echo. */
async function rtt(from: string, to: string, pids: number[] = []): Promise<Rtt> {
  await ping(from, to, { count: 20, intervalMs: 5 }); // warm up
  const c0 = threadCpu(pids);
  const rttIdle = await p50(from, to, 200, 10);
  const c1 = threadCpu(pids);
  const rttBusy = await p50(from, to, 2000, 1);
  const c2 = threadCpu(pids);
  return pids.length ? { rttIdle, rttBusy, cpuIdle: cpuPerEcho(c0, c1, 200), cpuBusy: cpuPerEcho(c1, c2, 2000) } : { rttIdle, rttBusy };
}

/**
 * Kernel VXLAN, weft's udp path, the C proxy and (`t.js`) the JS proxy measured together: their
 * echoes take turns (ns_probe --stagger; each path still 10 ms or 1 ms apart), so a change in the
 * machine's state hits all alike and the paired differences hold still where separate rounds drift.
 * `--rounds` rounds of 200 + 2000 echoes per path; prints each round and the medians.
 */
async function interleaved(from: string, t: { vxlan: string; udp: string; ref: string; js?: string }): Promise<void> {
  // Index 0 is the kernel path every other is compared with; the C proxy is the floor of the design.
  const paths: [label: string, key: string, ip: string][] = [["vxlan", "vxlan", t.vxlan], ["weft", "udp", t.udp], ["C ref", "c_ref", t.ref]];
  if (t.js) paths.push(["JS ref", "js_ref", t.js]);
  const targets = paths.map((p) => p[2]);
  const p50s = async (count: number, intervalMs: number) => {
    const by = await ping(from, targets, { count, intervalMs, stagger: true });
    return targets.map((ip) => {
      const rtts = by.get(ip)!.rtts;
      if (rtts.length === 0) throw new Error(`interleaved: no echo replies from ${ip}`);
      return median(rtts) * 1000;
    });
  };
  const rounds: { idle: number[]; busy: number[] }[] = [];
  for (let i = 0; i < ROUNDS; i++) {
    await ping(from, targets, { count: 20, intervalMs: 5, stagger: true });
    rounds.push({ idle: await p50s(200, 10), busy: await p50s(2000, 1) });
  }
  const diff = (k: "idle" | "busy", a: number, b: number) => median(rounds.map((r) => r[k][a]! - r[k][b]!));
  const f = (x: number) => `${x >= 0 ? "+" : ""}${x.toFixed(0)}`;
  const names = paths.slice(1).map((p) => p[0]).join(", ");
  console.log(`interleaved (VXLAN, ${names} taking turns; µs, 10 ms / 1 ms apart, median of ${ROUNDS} round${ROUNDS > 1 ? "s" : ""}):`);
  const added = (r: (typeof rounds)[number], i: number) => `${paths[i]![0]} added ${f(r.idle[i]! - r.idle[0]!)} / ${f(r.busy[i]! - r.busy[0]!)}`;
  rounds.forEach((r, n) => console.log(`  round ${n + 1}: vxlan ${r.idle[0]!.toFixed(0)} / ${r.busy[0]!.toFixed(0)}, ${paths.slice(1).map((_, i) => added(r, i + 1)).join(", ")}`));
  // Each path over VXLAN, then the differences that split weft's cost: weft − C, and with the JS
  // proxy, JS − C (what the runtime adds) and weft − JS (what weft's loop adds to it).
  const pairs: [number, number][] = t.js ? [[1, 0], [2, 0], [3, 0], [1, 2], [3, 2], [1, 3]] : [[1, 0], [2, 0], [1, 2]];
  const text = pairs.map(([a, b]) => `${paths[a]![0]}${b === 0 ? " added" : ` − ${paths[b]![0]}`} ${f(diff("idle", a, b))} / ${f(diff("busy", a, b))}`);
  console.log(`  ${text.join(", ")}`);
  for (const [a, b] of pairs) {
    // Names as before the JS proxy came: interleaved_udp_added_rtt_10ms_apart, interleaved_udp_minus_c_ref_10ms_apart.
    const name = b === 0 ? `${paths[a]![1]}_added_rtt` : `${paths[a]![1]}_minus_${paths[b]![1]}`;
    figure("udp_path", `interleaved_${name}_10ms_apart`, diff("idle", a, b), "µs");
    figure("udp_path", `interleaved_${name}_1ms_apart`, diff("busy", a, b), "µs");
  }
}

/** `pids`: the processes whose CPU time the path costs (agents, or the reference proxies). */
async function measure(from: string, to: string, pids: number[], rttBase?: string): Promise<Figures> {
  const t0 = performance.now();
  const c0 = pids.reduce((a, p) => a + cpuTicks(p), 0);
  const one = RTT_ONLY ? NaN : iperf(from, to, 1);
  const four = RTT_ONLY ? NaN : iperf(from, to, 4);
  const cpuSeconds = (pids.reduce((a, p) => a + cpuTicks(p), 0) - c0) / TICK;
  const wall = (performance.now() - t0) / 1000;
  // RTT of the kernel path right before, so both see the same machine load; the median round.
  const rounds: { base?: Rtt; r: Rtt }[] = [];
  for (let i = 0; i < ROUNDS; i++) rounds.push({ base: rttBase ? await rtt(from, rttBase) : undefined, r: await rtt(from, to, pids) });
  const added = (x: (typeof rounds)[number]) => x.r.rttIdle - (x.base?.rttIdle ?? 0) + x.r.rttBusy - (x.base?.rttBusy ?? 0);
  if (ROUNDS > 1) {
    const us = (ms: number) => Math.round(ms * 1000);
    const each = rounds.map((x) => x.base ? `+${us(x.r.rttIdle - x.base.rttIdle)}/+${us(x.r.rttBusy - x.base.rttBusy)}` : `${us(x.r.rttIdle)}/${us(x.r.rttBusy)}`);
    console.log(`  rounds in order, ${rounds[0]!.base ? "added" : "RTT"} µs 10 ms / 1 ms apart: ${each.join(", ")}`);
  }
  const { base, r } = rounds.sort((a, b) => added(a) - added(b))[Math.floor(rounds.length / 2)]!;
  // iperf3 runs SECONDS + 0.5 s omitted each; traffic dominates the wall time.
  const avgGbit = (one + four) / 2;
  return { one, four, ...r, cpuPerGbit: pids.length ? cpuSeconds / wall / avgGbit : undefined, base };
}

/** Collects what a process writes from now until stop() (the host's own log keeps only its tail). */
function listen(p: ChildProcess): { stop(): string } {
  let text = "";
  const add = (d: Buffer) => { text += d; };
  p.stdout!.on("data", add);
  p.stderr!.on("data", add);
  return {
    stop() {
      p.stdout!.off("data", add);
      p.stderr!.off("data", add);
      return text;
    },
  };
}

/** FIGURE lines for one path: TCP against kernel VXLAN, RTT added to it, CPU. */
function headline(path: string, f: Figures, vxlan: Figures): void {
  if (!RTT_ONLY) {
    figure("udp_path", `${path}_1_stream_over_vxlan`, f.one / vxlan.one, "x");
    figure("udp_path", `${path}_4_streams`, f.four, "Gbit/s");
    if (f.cpuPerGbit !== undefined) figure("udp_path", `${path}_cores_per_gbit`, f.cpuPerGbit, "cores/(Gbit/s)");
  }
  if (f.base) {
    figure("udp_path", `${path}_added_rtt_10ms_apart`, (f.rttIdle - f.base.rttIdle) * 1000, "µs");
    figure("udp_path", `${path}_added_rtt_1ms_apart`, (f.rttBusy - f.base.rttBusy) * 1000, "µs");
  }
  if (f.cpuIdle !== undefined) {
    figure("udp_path", `${path}_cpu_per_echo_10ms_apart`, total(f.cpuIdle), "µs");
    figure("udp_path", `${path}_cpu_per_echo_1ms_apart`, total(f.cpuBusy), "µs");
  }
}

const us = (ms: number) => `${(ms * 1000).toFixed(0).padStart(5)}`;

function row(name: string, f: Figures, vxlan?: Figures): string {
  const ratio = vxlan ? (f.one / vxlan.one).toFixed(2).padStart(6) : "      ";
  const added = (a: number, b?: number) => (b === undefined ? "    —" : us(a - b));
  return `${name.padEnd(14)} ${f.one.toFixed(2).padStart(6)} ${ratio} ${f.four.toFixed(2).padStart(6)}   ` +
    `${us(f.rttIdle)} ${added(f.rttIdle, f.base?.rttIdle)}   ${us(f.rttBusy)} ${added(f.rttBusy, f.base?.rttBusy)}   ` +
    `${f.cpuPerGbit === undefined ? "    —" : f.cpuPerGbit.toFixed(2).padStart(5)}`;
}

/** A reference proxy: the C one (flanneld's design, no runtime) or its JavaScript twin. */
interface RefKind {
  /** Its own TUN, UDP port and container network 10.<net>.0.0/16, beside flannel0 and vxb. */
  dev: string;
  port: number;
  net: number;
  /** The command that runs it on host `i` (after `ip netns exec <ns>`), given its arguments. */
  command(args: string[], i: number): string[];
  stop(): void;
}

/** bench/ref/tun_proxy.c, compiled here with cc. */
function cRef(): RefKind {
  const dir = mkdtempSync(join(tmpdir(), "weft-ref-"));
  const bin = join(dir, "tun_proxy");
  const cc = spawnSync("cc", ["-O2", "-o", bin, join(import.meta.dir, "ref", "tun_proxy.c")], { encoding: "utf8" });
  if (cc.status !== 0) {
    rmSync(dir, { recursive: true, force: true });
    throw new Error(`reference proxy: cc failed (status ${cc.status}): ${cc.stderr ?? cc.error}`);
  }
  return { dev: "refp0", port: 8385, net: 70, command: (args) => [bin, ...args], stop: () => rmSync(dir, { recursive: true, force: true }) };
}

/** bench/ref/tun_proxy.ts, run by this runtime (`--ref-js`). */
function jsRef(): RefKind {
  const runtime = RUNTIME === "deno" ? [join(import.meta.dir, "..", "node_modules", ".bin", "deno"), "run", "-A"] : [process.execPath];
  return { dev: "refj0", port: 8485, net: 71, command: (args, i) => [...runtime, join(import.meta.dir, "ref", "tun_proxy.ts"), ...REF_JS_WITH.map((t) => t === "core" ? `--core=10.71.${i + 1}.0,10.71.${2 - i}.0` : `--${t}`), ...args], stop: () => {} };
}

/**
 * A reference proxy on the two hosts: a TUN<->UDP proxy of flanneld's udp design (one thread,
 * poll() and one packet per syscall) on its own TUN, port and addresses 10.<net>.<i>.2 on the
 * same containers. The C one shows what that design's thread wake-ups and kernel entries cost
 * here without any runtime; the JavaScript one what a runtime adds to them. `spinUs` (C only):
 * both proxies busy-poll that long after each packet, as weft's WEFT_UDP_SPIN_US. Returns the
 * container addresses, the proxies' pids and a stop function.
 */
async function setUpRefProxy(hosts: Host[], kind: RefKind, spinUs = 0): Promise<{ targets: string[]; pids: number[]; stop(): void }> {
  const procs = hosts.map((h, i) => {
    const peer = hosts[1 - i]!;
    const args = [kind.dev, h.ip, String(kind.port), peer.ip, ...(spinUs > 0 ? [String(spinUs)] : [])];
    const p = spawn("ip", ["netns", "exec", h.ns, ...kind.command(args, i)], { stdio: ["ignore", "pipe", "inherit"] });
    const ready = new Promise<void>((resolve, reject) => {
      p.stdout!.once("data", () => resolve());
      p.once("exit", (code) => reject(new Error(`reference proxy ${kind.dev} on ${h.name} exited (${code}) before it was ready (its error is above)`)));
    });
    return { p, ready };
  });
  const stop = () => { procs.forEach((x) => x.p.kill("SIGKILL")); kind.stop(); };
  try {
    await Promise.all(procs.map((x) => x.ready));
    hosts.forEach((h, i) => {
      const net = `10.${kind.net}`;
      ip(h.ns, "link", "set", kind.dev, "mtu", "1472", "up");
      ip(h.ns, "addr", "add", `${net}.${i + 1}.0/32`, "dev", kind.dev);
      ip(h.ns, "route", "add", `${net}.${i + 1}.0/24`, "dev", "cni0");
      ip(h.ns, "route", "add", `${net}.${2 - i}.0/24`, "dev", kind.dev);
      const ct = h.containers[0]!;
      ip(ct.ns, "addr", "add", `${net}.${i + 1}.2/32`, "dev", "eth0");
      const gw = h.env!.subnet!.split("/")[0]!;
      ip(ct.ns, "route", "add", `${net}.0.0/16`, "via", gw, "src", `${net}.${i + 1}.2`, "mtu", "1472");
    });
  } catch (e) {
    stop();
    throw e;
  }
  // `ip netns exec` execs the proxy: its pid is the proxy's.
  return { targets: hosts.map((_, i) => `10.${kind.net}.${i + 1}.2`), pids: procs.map((x) => x.p.pid!), stop };
}

/** The kernel VXLAN RTTs measured right before a path's, under its row. */
function printBase(f: Figures): void {
  if (f.base) console.log(`${"".padEnd(39)}vxlan:${us(f.base.rttIdle)}       vxlan:${us(f.base.rttBusy)}`);
  if (f.cpuIdle === undefined) return;
  const parts = (by: Record<string, number>) => Object.entries(by).filter(([, v]) => v >= 0.5).sort((x, y) => y[1] - x[1]).map(([k, v]) => `${k} ${v.toFixed(0)}`).join(", ");
  console.log(`${"".padEnd(32)}CPU per echo:${total(f.cpuIdle).toFixed(0).padStart(5)} µs     ${total(f.cpuBusy).toFixed(0).padStart(5)} µs   (both hosts' processes, all threads)`);
  console.log(`${"".padEnd(34)}by thread, 10 ms apart: ${parts(f.cpuIdle)}; 1 ms apart: ${parts(f.cpuBusy!)}`);
}

/** Round trips of a 64-byte datagram between two processes on loopback in `ns`, µs. */
function wakeupBaseline(ns: string): { p10: number; p50: number; p90: number } {
  const echo = spawnSync("ip", ["netns", "exec", ns, process.execPath, import.meta.path, "--wakeup"], { encoding: "utf8" });
  if (echo.status !== 0) throw new Error(`wake-up baseline failed: ${echo.stderr}`);
  return JSON.parse(echo.stdout);
}

/** `--wakeup`: the baseline's two processes (this one pings, a child echoes). */
async function wakeupProbe(): Promise<void> {
  const { loadSys } = await import("../ffi/sys.ts");
  const { openUdpSocket } = await import("../ffi/udp.ts");
  const { sockaddrIn, structBuffer } = await import("../ffi/linux.ts");
  const sys = await loadSys();
  if (argv.includes("--echo")) {
    const fd = openUdpSocket(sys, { ip: "127.0.0.1", port: 9911 });
    const buf = structBuffer(2048), from = structBuffer(16);
    process.stdout.write("ready\n");
    for (;;) sys.sendto(fd, buf, sys.recvfrom(fd, buf, 2048, 0, from), 0, from);
  }
  const child = spawn(process.execPath, [import.meta.path, "--wakeup", "--echo"], { stdio: ["ignore", "pipe", "inherit"] });
  await new Promise((r) => child.stdout!.once("data", r));
  const fd = openUdpSocket(sys, { ip: "127.0.0.1", port: 0 });
  const buf = structBuffer(2048), to = sockaddrIn(0x7f000001, 9911);
  const rtts: number[] = [];
  for (let i = 0; i < 1000; i++) {
    const t = performance.now();
    sys.sendto(fd, buf, 64, 0, to);
    sys.recvfrom(fd, buf, 2048, 0, null);
    rtts.push((performance.now() - t) * 1000);
    await Bun.sleep(1); // let both sides go idle, as between pings
  }
  child.kill("SIGKILL");
  rtts.sort((a, b) => a - b);
  process.stdout.write(JSON.stringify({ p10: rtts[100], p50: rtts[500], p90: rtts[900] }));
  process.exit(0);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/udp_path.ts needs root (it creates network namespaces)");
  const c = await Cluster.create({ hosts: 2, backend: "udp", network: "10.50.0.0/16", runtime: RUNTIME });
  const servers: { stop(): void }[] = [];
  try {
    const [h1, h2] = c.hosts as [Host, Host];
    const [vx1, vx2] = setUpVxlan(c.hosts);
    const from = h1.containers[0]!.ns, to = h2.containers[0]!.ns;
    const udpTarget = h2.containers[0]!.ip;
    const server = spawn("ip", ["netns", "exec", to, "iperf3", "-s"], { stdio: "ignore" });
    servers.push({ stop: () => server.kill("SIGKILL") });
    await Bun.sleep(300);
    console.log(`udp_path: ${RUNTIME} agents, iperf3 ${SECONDS} s per run, ${readFileSync("/proc/cpuinfo", "utf8").match(/^processor/gm)!.length} CPUs\n`);
    const vxlan = await measure(from, vx2!, []);
    let first: { name: string; f: Figures; env: Record<string, string> } | undefined;
    void vx1;
    console.log("                 TCP Gbit/s             RTT p50 µs, echoes 10 ms apart | 1 ms apart   agent");
    console.log("path            1 stream /vxlan 4 str.    udp added          udp added         cores/Gbit/s");
    console.log(row("kernel vxlan", vxlan));
    for (const [name, env] of CONFIGS) {
      const extra = extraEnvs.includes(name);
      if (!extra && (only.length ? !only.includes(name) : extraEnvs.length > 0)) continue;
      await Promise.all(c.hosts.map((h) => c.stopAgent(h)));
      c.opts.agentEnv = TRACE ? { ...env, WEFT_UDP_TRACE: "1" } : env;
      for (const h of c.hosts) h.log = "";
      await Promise.all(c.hosts.map((h) => c.startAgent(h)));
      const st = (await c.status(h1)).dataPath;
      await ping(from, udpTarget, { count: 30, intervalMs: 5 }); // peers programmed, JIT warm
      const during = AGENT_LOG ? c.hosts.map((h) => listen(h.agent!)) : [];
      const f = await measure(from, udpTarget, c.hosts.map((h) => h.agent!.pid!), vx2);
      if (!first) {
        first = { name, f, env: c.opts.agentEnv ?? {} };
        headline(`udp_${name}`, f, vxlan);
      } else if (name === "spin") {
        headline("udp_spin", f, vxlan); // the busy-poll figures, beside the default's
      }
      if (extra) console.log(`udp ${name}:`);
      console.log(`${row(extra ? "  same, env" : `udp ${name}`, f, vxlan)}   (${extra ? "" : st.offloads})`);
      printBase(f);
      if (TRACE) {
        await Bun.sleep(1500); // the workers report after a second without traffic
        for (const h of c.hosts) for (const l of h.log.split("\n").filter((l) => l.includes("stage µs"))) console.log(`  ${h.name} ${l.slice(l.indexOf("worker"))}`);
      }
      during.forEach((d, i) => {
        for (const l of d.stop().split("\n").filter((l) => AGENT_LOG!.test(l))) console.log(`  ${c.hosts[i]!.name} during the runs: ${l.slice(0, 240)}`);
      });
    }
    if (REF) {
      const ref = await setUpRefProxy(c.hosts, cRef(), REF_SPIN);
      servers.push(ref);
      await ping(from, ref.targets[1]!, { count: 30, intervalMs: 5 });
      const f = await measure(from, ref.targets[1]!, ref.pids, vx2);
      console.log(`${row("C ref proxy", f, vxlan)}   (bench/ref/tun_proxy.c: flanneld's udp design${REF_SPIN ? `, busy-poll ${REF_SPIN} µs` : ""})`);
      printBase(f);
      headline("c_ref", f, vxlan);
      if (first && !RTT_ONLY) {
        figure("udp_path", `udp_${first.name}_over_c_ref_1_stream`, first.f.one / f.one, "x");
        console.log(`${"".padEnd(16)}udp ${first.name} / C ref proxy, 1 stream: ${(first.f.one / f.one).toFixed(1)}×`);
      }
      let js: Awaited<ReturnType<typeof setUpRefProxy>> | undefined;
      if (REF_JS) {
        js = await setUpRefProxy(c.hosts, jsRef());
        servers.push(js);
        await ping(from, js.targets[1]!, { count: 30, intervalMs: 5 });
        const fj = await measure(from, js.targets[1]!, js.pids, vx2);
        console.log(`${row("JS ref proxy", fj, vxlan)}   (bench/ref/tun_proxy.ts: the same design in JavaScript, under ${RUNTIME === "deno" ? "Deno" : "Bun"}${REF_JS_WITH.length ? `, with ${REF_JS_WITH.join(", ")}` : ""})`);
        printBase(fj);
        headline("js_ref", fj, vxlan);
      }
      if (INTERLEAVED) {
        // The agents run the first configuration measured ("all" unless --only or --env chose others).
        if (first && c.opts.agentEnv !== first.env) {
          await Promise.all(c.hosts.map((h) => c.stopAgent(h)));
          c.opts.agentEnv = first.env;
          await Promise.all(c.hosts.map((h) => c.startAgent(h)));
          await ping(from, udpTarget, { count: 30, intervalMs: 5 });
        }
        await interleaved(from, { vxlan: vx2!, udp: udpTarget, ref: ref.targets[1]!, js: js?.targets[1] });
      }
    } else {
      console.log(`C ref proxy: skipped (--no-ref-proxy, or no C compiler \`cc\`)${argv.includes("--ref-js") ? "; so is the JS one, measured beside it" : ""}`);
    }
    const again = await measure(from, vx2!, []);
    console.log(row("kernel vxlan", again), " (again, for drift)");
    const wake = wakeupBaseline(h1.ns);
    console.log("\nadded: the udp path's median minus kernel VXLAN's, measured right before it on the same containers.");
    console.log(`\nthread wake-up baseline (UDP ping-pong between two processes on h1's loopback, 2 wake-ups per round trip): ` +
      `p10 ${wake.p10.toFixed(0)} µs, p50 ${wake.p50.toFixed(0)} µs, p90 ${wake.p90.toFixed(0)} µs`);
    // The added RTT follows this machine-wide cost (it changes with the host's load): keep them together.
    figure("udp_path", "wakeup_round_trip_p50", wake.p50, "µs");
    console.log(`load average: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
  } finally {
    servers.forEach((s) => s.stop());
    await c.destroy();
  }
}

if (argv.includes("--wakeup")) await wakeupProbe();
else await main();
