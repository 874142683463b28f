/**
 * @module Encrypted data paths against the unencrypted kernel ceiling, in one run on one machine
 * (prints figures, asserts nothing; needs root; every namespace and process is removed at the end):
 *
 *   kernel vxlan    VXLAN set up by hand (VNI 42, port 4789, MTU 1450), no encryption: the ceiling
 *   wireguard-go    Debian's wireguard-go on flannel-wg, configured with `wg set` as flanneld
 *                   v0.20.2 configures its device (tests/support/wireguard_go.ts), leases in etcd
 *   weft wireguard  weft agents with `{"Backend":{"Type":"wireguard"}}`; skipped, with the reason,
 *                   while the agents do not come up (before the backend exists)
 *
 * Topology as bench/udp_path.ts: two hosts on an underlay bridge, one container per host. The
 * wireguard-go hosts are a Cluster with no weft agent (network 10.82.0.0/16); kernel VXLAN runs
 * beside wireguard-go on the same hosts and containers (second addresses 10.60.<i>.2, route
 * `10.60.0.0/16 … mtu 1450`); weft runs in its own 2-host cluster (10.83.0.0/16).
 *
 * Per path, `--rounds` times interleaved (default 2; best round shown, other load on a shared
 * machine only slows a round down): iperf3 TCP with 1 and 4 streams, `--seconds` each (default 3).
 * CPU per Gbit/s, in cores busy per Gbit/s (CPU-seconds per second per Gbit/s), twice:
 *   tunnel   the tunnel's own processes (wireguard-go, weft agents; utime+stime from /proc, all
 *            threads); kernel VXLAN has none (its work is done in the senders' and receivers' syscalls)
 *   total    that plus both iperf3 processes (iperf3's own cpu_utilization_percent), where a
 *            kernel path's encapsulation is accounted; softirq work in ksoftirqd is in neither
 * and the ratios weft / wireguard-go and weft / kernel VXLAN.
 *
 * The core's AEAD throughput against node:crypto's chacha20-poly1305 (64 B, 1400 B, 64 KiB, same
 * process) is bench/wg_crypto.ts; `--crypto` runs it at the end.
 *
 *   bun bench/wireguard.ts [--seconds 3] [--rounds 2] [--runtime binary|bun|deno] [--crypto] [--env K=V,…]
 *
 * `--env` passes switches to weft's agents: WEFT_WG_NO_VNET=1, WEFT_WG_NO_GSO=1, WEFT_WG_NO_GRO=1
 * turn one offload off each, to measure what it contributes.
 */
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster, type Host, exec, ip, ping, waitFor } from "../tests/support/netns.ts";
import { type FlannelWgHost, flannelWgHost, wgGenKey } from "../tests/support/wireguard_go.ts";
import { figure, fmt, median, printTable } from "./lib/figures.ts";
import { setUpVxlan } from "./lib/vxlan_beside.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const SECONDS = Number(opt("--seconds", "3"));
const ROUNDS = Number(opt("--rounds", "2"));
const RUNTIME = opt("--runtime", "binary") as "binary" | "bun" | "deno";
if (!(SECONDS > 0)) throw new RangeError(`--seconds ${JSON.stringify(opt("--seconds", "3"))}: must be a number of seconds above 0`);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new RangeError(`--rounds ${JSON.stringify(opt("--rounds", "2"))}: must be a whole number, 1 or more`);
if (!["binary", "bun", "deno"].includes(RUNTIME)) throw new RangeError(`--runtime ${JSON.stringify(RUNTIME)}: must be binary, bun or deno`);
const TICK = 100; // CLK_TCK
/** `--env K=V,K2=V2`: environment for weft's agents (e.g. WEFT_WG_NO_GSO=1 to measure an offload's share). */
const AGENT_ENV: Record<string, string> = Object.fromEntries(opt("--env", "").split(",").filter(Boolean).map((kv) => {
  const i = kv.indexOf("=");
  if (i <= 0) throw new RangeError(`--env ${JSON.stringify(kv)}: must be NAME=VALUE[,NAME=VALUE…]`);
  return [kv.slice(0, i), kv.slice(i + 1)];
}));

/** One measured iperf3 run. */
interface Run {
  gbit: number;
  /** Cores busy per Gbit/s: the tunnel's processes, and those plus both iperf3 processes. */
  tunnel: number;
  total: number;
}

interface Path {
  name: string;
  id: string;
  from?: string;
  to?: string;
  /** The tunnel's processes (CPU accounting). */
  pids: () => number[];
  why?: string;
  one: Run[];
  four: Run[];
}

function cpuTicks(pid: number): number {
  const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
  const f = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return Number(f[11]) + Number(f[12]); // utime, stime
}

/** iperf3 from namespace `from` to `to` with `streams` TCP streams; throughput and CPU. */
function iperf(p: Path, streams: number): Run {
  const pids = p.pids();
  const c0 = pids.reduce((a, x) => a + cpuTicks(x), 0);
  const t0 = performance.now();
  const r = exec(p.from!, ["iperf3", "-c", p.to!, "-t", String(SECONDS), "-P", String(streams), "-J", "-O", "0.5"], { timeoutMs: (SECONDS + 20) * 1000 });
  const wall = (performance.now() - t0) / 1000;
  const tunnelSeconds = (pids.reduce((a, x) => a + cpuTicks(x), 0) - c0) / TICK;
  let out: any;
  try {
    out = JSON.parse(r.stdout);
  } catch {
    throw new Error(`iperf3 -c ${p.to} -P ${streams} from ${p.from}: ${r.stderr.trim() || r.stdout.slice(0, 300)}`);
  }
  if (!out.end?.sum_received) throw new Error(`iperf3 -c ${p.to} -P ${streams}: ${out.error ?? r.stderr}`);
  const gbit = out.end.sum_received.bits_per_second / 1e9;
  const cpu = out.end.cpu_utilization_percent as { host_total: number; remote_total: number };
  const iperfCores = (cpu.host_total + cpu.remote_total) / 100; // over the measured seconds
  const tunnelCores = tunnelSeconds / wall;
  return { gbit, tunnel: tunnelCores / gbit, total: (tunnelCores + iperfCores) / gbit };
}

/** An iperf3 server in `ns` (killed with the namespace). */
function iperfServer(ns: string): void {
  const r = exec(ns, ["iperf3", "-s", "-D"]);
  if (r.code !== 0) throw new Error(`iperf3 -s -D in ${ns}: ${r.stderr}`);
}

async function reachable(from: string, to: string): Promise<void> {
  await waitFor(async () => (await ping(from, to, { count: 1, timeoutMs: 500 })).get(to)!.received === 1, 15_000, `${to} to answer from ${from}`, 100);
}

/** The first line and the last of an error (an agent's log is long). */
function reason(e: unknown): string {
  const lines = String((e as Error).message).split("\n").filter((l) => l.trim() && !l.startsWith("---"));
  return lines.length > 1 ? `${lines[0]} … ${lines.at(-1)!.slice(0, 160)}` : lines[0] ?? String(e);
}

async function main(): Promise<void> {
  if (process.getuid?.() !== 0) throw new Error("bench/wireguard.ts needs root (it creates network namespaces)");
  const clusters: Cluster[] = [];
  const wgHosts: FlannelWgHost[] = [];
  const paths: Path[] = [];
  try {
    // wireguard-go and kernel VXLAN on the same two hosts.
    const psk = wgGenKey();
    const a = await Cluster.create({ label: "wgp", hosts: 0, backend: "alloc", network: "10.82.0.0/16", backendOptions: { PSK: psk } });
    clusters.push(a);
    wgHosts.push(await flannelWgHost(a, { logLevel: "error" }), await flannelWgHost(a, { logLevel: "error" }));
    const [w1, w2] = wgHosts as [FlannelWgHost, FlannelWgHost];
    const [, vx2] = setUpVxlan([w1.host, w2.host]);
    iperfServer(w2.container.ns);
    await reachable(w1.container.ns, vx2!);
    await reachable(w1.container.ns, w2.container.ip);
    paths.push({ name: "kernel vxlan", id: "vxlan", from: w1.container.ns, to: vx2!, pids: () => [], one: [], four: [] });
    paths.push({ name: "wireguard-go", id: "wireguard_go", from: w1.container.ns, to: w2.container.ip, pids: () => wgHosts.map((w) => w.wg.pid), one: [], four: [] });

    // weft's wireguard backend, in a cluster of its own.
    const weft: Path = { name: "weft wireguard", id: "weft", pids: () => [], one: [], four: [] };
    paths.push(weft);
    try {
      const c = await Cluster.create({ label: "wgp", hosts: 2, backend: "wireguard", network: "10.83.0.0/16", runtime: RUNTIME, backendOptions: { PSK: psk }, agentEnv: AGENT_ENV });
      clusters.push(c);
      const [h1, h2] = c.hosts as [Host, Host];
      iperfServer(h2.containers[0]!.ns);
      await reachable(h1.containers[0]!.ns, h2.containers[0]!.ip);
      Object.assign(weft, { from: h1.containers[0]!.ns, to: h2.containers[0]!.ip, pids: () => c.hosts.map((h) => h.agent!.pid!) });
    } catch (e) {
      weft.why = `skipped: weft's wireguard agents did not come up (${reason(e)})`;
      console.log(`weft wireguard: ${weft.why}`);
    }

    const cpus = readFileSync("/proc/cpuinfo", "utf8").match(/^processor/gm)!.length;
    console.log(`wireguard: iperf3 TCP ${SECONDS} s per run, ${ROUNDS} round(s) interleaved, ${cpus} CPUs, weft agents: ${RUNTIME}\n`);
    for (let round = 0; round < ROUNDS; round++) {
      for (const p of paths) {
        if (!p.from || p.why) continue;
        try {
          p.one.push(iperf(p, 1));
          p.four.push(iperf(p, 4));
        } catch (e) {
          p.why = `failed: ${reason(e)}`;
        }
      }
    }

    const best = (rs: Run[]) => (rs.length ? rs.reduce((x, y) => (y.gbit > x.gbit ? y : x)) : undefined);
    const med = (rs: Run[], k: keyof Run) => median(rs.map((r) => r[k]));
    printTable([
      ["path", "1 stream Gbit/s", "4 streams", "tunnel cores/Gbit 1 | 4", "total cores/Gbit 1 | 4", "1 stream / vxlan", "note"],
      ...paths.map((p) => {
        const b1 = best(p.one), b4 = best(p.four);
        if (!b1 || !b4) return [p.name, "n/a", "", "", "", "", p.why ? `${p.why.slice(0, 60)}…` : ""];
        const vx = best(paths[0]!.one);
        return [
          p.name, fmt(b1.gbit), fmt(b4.gbit),
          `${fmt(med(p.one, "tunnel"))} | ${fmt(med(p.four, "tunnel"))}`, `${fmt(med(p.one, "total"))} | ${fmt(med(p.four, "total"))}`,
          vx ? fmt(b1.gbit / vx.gbit) : "", p.why?.slice(0, 60) ?? "",
        ];
      }),
    ]);
    console.log("Gbit/s: best round; cores/Gbit: median over rounds (tunnel = wireguard-go or the weft agents; total = tunnel + both iperf3 processes)");
    for (const p of paths) {
      const b1 = best(p.one), b4 = best(p.four);
      if (!b1 || !b4) continue;
      figure("wireguard", `${p.id}_1_stream`, b1.gbit, "Gbit/s");
      figure("wireguard", `${p.id}_4_streams`, b4.gbit, "Gbit/s");
      if (p.id !== "vxlan") figure("wireguard", `${p.id}_tunnel_cores_per_gbit`, med(p.one, "tunnel"), "cores/(Gbit/s)");
      figure("wireguard", `${p.id}_total_cores_per_gbit`, med(p.one, "total"), "cores/(Gbit/s)");
    }
    const g = (id: string, k: "one" | "four") => best(paths.find((p) => p.id === id)![k])?.gbit ?? NaN;
    const ratios: [string, string, string][] = [["weft", "wireguard_go", "wireguard-go"], ["weft", "vxlan", "kernel VXLAN"], ["wireguard_go", "vxlan", "kernel VXLAN"]];
    for (const [x, y, label] of ratios) {
      for (const k of ["one", "four"] as const) {
        const r = g(x, k) / g(y, k);
        const what = `${x === "weft" ? "weft" : "wireguard-go"} / ${label}, ${k === "one" ? "1 stream" : "4 streams"}`;
        if (Number.isFinite(r)) {
          console.log(`${what}: ${fmt(r)}×`);
          figure("wireguard", `${x}_over_${y}_${k === "one" ? "1_stream" : "4_streams"}`, r, "x");
        } else {
          console.log(`${what}: n/a${x === "weft" && weft.why ? " (weft skipped)" : ""}`);
        }
      }
    }
    console.log(`load average: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
  } finally {
    for (const w of wgHosts) await w.stop();
    for (const c of clusters) await c.destroy();
  }
  if (argv.includes("--crypto")) {
    console.log("\ncore AEAD against node:crypto's chacha20-poly1305 (bench/wg_crypto.ts):");
    spawnSync(process.execPath, [join(import.meta.dir, "wg_crypto.ts")], { stdio: "inherit" });
  } else {
    console.log("core AEAD against node:crypto's chacha20-poly1305, 64 B / 1400 B / 64 KiB in one process: bun bench/wg_crypto.ts (or --crypto here)");
  }
}

await main();
