/**
 * @module Data-path figures for the kernel backends: one TCP stream (iperf3, 3 s) and ping RTT
 * between two containers on two hosts, for each path, all in one run (absolute numbers drift
 * between machines and runs; the ratios are the figures):
 *
 *   underlay        host namespace to host namespace over the underlay (the ceiling)
 *   host-gw by hand routes added with `ip route add <peer subnet> via <peer ip> dev eth0`
 *   host-gw weft    the same, programmed by weft's host-gw backend
 *   vxlan by hand   flannel.1 built with `ip link add … type vxlan id 1 … dstport 8472 nolearning`,
 *                   `ip neigh`/`bridge fdb`/`ip route … onlink` per peer, MTU 1450
 *   vxlan weft      the same, programmed by weft's vxlan backend
 *
 * Each path is its own 2-host cluster (tests/support/netns.ts: veth into an underlay bridge,
 * cni0 and one container per host); the clusters exist side by side and the paths are measured
 * interleaved, `--rounds` times (default 3); the throughput figure is the best round (other load
 * on a shared machine only ever slows a run down), the median is shown beside it, and "paired" is
 * the median over rounds of weft's figure over the by-hand one measured just before it. weft's hosts
 * also carry flanneld's FLANNEL-FWD iptables rules, which the by-hand paths do not. Prints
 * figures, asserts nothing. Ping RTT is ns_probe's ICMP echo (a Bun process on a raw socket), 20 echoes 50 ms
 * apart, median.
 *
 * With `--ipv6` the same paths carry IPv6 (figures `kernel_paths_v6.*`): IPv6-only clusters
 * (IPv6Network fd10::/48, EnableIPv4 false) over the dual-stack underlay, containers from the CNI
 * plugin; by hand `ip -6 route add <peer v6 subnet> via <peer underlay v6> dev eth0`, and
 * flannel-v6.1 (`local <underlay v6>`, MTU 1430) with `ip -6 neigh`/`bridge fdb … dst <v6>`/
 * `ip -6 route … onlink`.
 *
 *   bun bench/kernel_paths.ts [--rounds N] [--seconds S] [--ipv6] [--no-forward-rules]
 */
import { type ChildProcess, spawn } from "node:child_process";
import { writeSubnetEnv } from "../src/subnet_env.ts";
import { Cluster, type Host, exec, ip, ping, waitFor } from "../tests/support/netns.ts";
import { figure, fmt, median, printTable } from "./lib/figures.ts";
import { randomMac } from "./lib/peer_leases.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: number) => { const i = args.indexOf(name); return i >= 0 ? Number(args[i + 1]) : dflt; };
const ROUNDS = opt("--rounds", 3);
const SECONDS = opt("--seconds", 3);
const NETWORK = "10.244.0.0/16";
const V6 = args.includes("--ipv6");
const NETWORK6 = "fd10::/48";
const BENCH = V6 ? "kernel_paths_v6" : "kernel_paths";
/** The clusters of one run: IPv4 as before, or IPv6-only over the dual-stack underlay. */
const CLUSTER = V6 ? { network: NETWORK, ipv6Network: NETWORK6, ipv6Only: true } : { network: NETWORK };
/** `--no-forward-rules`: weft's agents add no FLANNEL-FWD rules, so their hosts carry no firewall either (as the by-hand paths). */
const AGENT_ARGS = args.includes("--no-forward-rules") ? ["--iptables-forward-rules=false"] : [];

interface PathEnds { from: string; to: string; toIP: string }
interface Path { name: string; ends?: PathEnds; why?: string; gbit: number[]; rtt: number[] }

/** Host i's subnet (10.244.i.0/24, or fd10:0:0:i::/64) and its network address. */
function handNet(i: number): { subnet: string; addr: string } {
  return V6 ? { subnet: `fd10:0:0:${i}::/64`, addr: `fd10:0:0:${i}::` } : { subnet: `10.244.${i}.0/24`, addr: `10.244.${i}.0` };
}

/** Writes subnet.env for host i as an agent would, then builds its container. */
function handSubnet(c: Cluster, h: Host, i: number, mtu: number): void {
  writeSubnetEnv(h.subnetFile, V6
    ? { ipv6Network: NETWORK6, ipv6Subnet: `fd10:0:0:${i}::1/64`, mtu, ipMasq: false }
    : { network: NETWORK, subnet: `10.244.${i}.1/24`, mtu, ipMasq: false });
  c.addContainers(h, 1);
}

/** A host's underlay address of the run's family. */
const under = (h: Host): string => (V6 ? h.ip6! : h.ip);
const ipf = (ns: string, ...a: string[]) => ip(ns, ...(V6 ? ["-6"] : []), ...a);

/** Two hosts with routes to each other's subnet via the peer's underlay address. */
async function byHandHostGw(): Promise<Cluster> {
  const c = await Cluster.create({ hosts: 2, backend: "alloc", ...CLUSTER, start: false });
  const [a, b] = c.hosts as [Host, Host];
  handSubnet(c, a, 1, 1500);
  handSubnet(c, b, 2, 1500);
  ipf(a.ns, "route", "add", handNet(2).subnet, "via", under(b), "dev", "eth0");
  ipf(b.ns, "route", "add", handNet(1).subnet, "via", under(a), "dev", "eth0");
  return c;
}

/** Two hosts with flannel.1 (flannel-v6.1) as flanneld builds it, and each other as the one peer. */
async function byHandVxlan(): Promise<Cluster> {
  const c = await Cluster.create({ hosts: 2, backend: "alloc", ...CLUSTER, start: false });
  const hosts = c.hosts as [Host, Host];
  const macs = [randomMac(), randomMac()];
  const dev = V6 ? "flannel-v6.1" : "flannel.1";
  const mtu = V6 ? "1430" : "1450"; // weft's MTUs (flanneld gives flannel-v6.1 1450: compat §12.9)
  hosts.forEach((h, k) => {
    handSubnet(c, h, k + 1, Number(mtu));
    ip(h.ns, "link", "add", dev, "type", "vxlan", "id", "1", "local", under(h), "dev", "eth0", "dstport", "8472", "nolearning");
    ip(h.ns, "link", "set", dev, "mtu", mtu, "address", macs[k]!);
    ip(h.ns, "addr", "add", `${handNet(k + 1).addr}/${V6 ? 128 : 32}`, "dev", dev, ...(V6 ? ["nodad"] : []));
    ip(h.ns, "link", "set", dev, "up");
  });
  hosts.forEach((h, k) => {
    const p = handNet(2 - k);
    ipf(h.ns, "neigh", "replace", p.addr, "lladdr", macs[1 - k]!, "dev", dev, "nud", "permanent");
    const r = exec(h.ns, ["bridge", "fdb", "replace", macs[1 - k]!, "dev", dev, "dst", under(hosts[1 - k]!), "self", "permanent"]);
    if (r.code !== 0) throw new Error(`bridge fdb replace in ${h.ns}: ${r.stderr}`);
    ipf(h.ns, "route", "replace", p.subnet, "via", p.addr, "dev", dev, "onlink");
  });
  return c;
}

/** Two hosts running weft with `backend`; resolves when each has the other's route. */
async function viaWeft(backend: "vxlan" | "host-gw"): Promise<Cluster> {
  const c = await Cluster.create({ hosts: 2, backend, ...CLUSTER, agentArgs: AGENT_ARGS });
  await waitFor(() => c.hosts.every((h) => (V6 ? c.peerRoutes6(h) : c.peerRoutes(h)).length === 1), 10_000, `${backend} peer routes`);
  return c;
}

function containerEnds(c: Cluster): PathEnds {
  const [a, b] = c.hosts as [Host, Host];
  return { from: a.containers[0]!.ns, to: b.containers[0]!.ns, toIP: b.containers[0]!.ip };
}

/** One iperf3 run (TCP, 1 stream) from `from` to an iperf3 server in `to`; Gbit/s received. */
async function iperf(e: PathEnds): Promise<number> {
  const server: ChildProcess = spawn("ip", ["netns", "exec", e.to, "iperf3", "-s", "-1", "-p", "5201", "--forceflush"], { stdio: ["ignore", "pipe", "pipe"] });
  try {
    await new Promise<void>((resolve, reject) => {
      server.stdout!.on("data", (d) => { if (String(d).includes("listening")) resolve(); });
      server.once("exit", (code) => reject(new Error(`iperf3 server in ${e.to} exited ${code}`)));
    });
    const r = exec(e.from, ["iperf3", "-c", e.toIP, "-p", "5201", "-t", String(SECONDS), "-J"]);
    const out = JSON.parse(r.stdout) as { end?: { sum_received?: { bits_per_second: number } }; error?: string };
    if (!out.end?.sum_received) throw new Error(`iperf3 ${e.from} -> ${e.toIP}: ${out.error ?? r.stderr}`);
    return out.end.sum_received.bits_per_second / 1e9;
  } finally {
    if (server.exitCode === null) server.kill("SIGKILL");
  }
}

async function rtt(e: PathEnds): Promise<number> {
  const r = (await ping(e.from, e.toIP, { count: 20, intervalMs: 50 })).get(e.toIP)!;
  if (r.received === 0) throw new Error(`no ping replies ${e.from} -> ${e.toIP}`);
  return median(r.rtts);
}

const clusters: Cluster[] = [];
const paths: Path[] = [];
async function addPath(name: string, build: () => Promise<Cluster>, ends: (c: Cluster) => PathEnds = containerEnds): Promise<Cluster | undefined> {
  try {
    const c = await build();
    clusters.push(c);
    paths.push({ name, ends: ends(c), gbit: [], rtt: [] });
    return c;
  } catch (err) {
    const lines = String((err as Error).message).split("\n").filter((l) => l.trim() && !l.startsWith("---"));
    paths.push({ name, why: `${lines[0]}: ${lines.at(-1)?.slice(0, 120)}`, gbit: [], rtt: [] });
    return undefined;
  }
}

try {
  const hand = await addPath("host-gw by hand", byHandHostGw);
  if (hand) {
    const [a, b] = hand.hosts as [Host, Host];
    paths.unshift({ name: "underlay (host to host)", ends: { from: a.ns, to: b.ns, toIP: under(b) }, gbit: [], rtt: [] });
  }
  await addPath("host-gw weft", () => viaWeft("host-gw"));
  await addPath("vxlan by hand", byHandVxlan);
  await addPath("vxlan weft", () => viaWeft("vxlan"));

  for (let round = 0; round < ROUNDS; round++) {
    for (const p of paths) {
      if (!p.ends) continue;
      try {
        p.gbit.push(await iperf(p.ends));
        p.rtt.push(await rtt(p.ends));
      } catch (err) {
        p.why = (err as Error).message.split("\n")[0];
        p.ends = undefined;
      }
    }
  }

  // Other load on the machine only ever slows a run down: the best of the rounds is the figure.
  const best = (xs: number[]) => (xs.length ? Math.max(...xs) : NaN);
  const g = (name: string) => best(paths.find((p) => p.name === name)?.gbit ?? []);
  const base = g("underlay (host to host)");
  /** Median over rounds of weft / by hand, each pair measured back to back (robust to load that comes and goes). */
  const paired = (b: string): number => {
    const w = paths.find((p) => p.name === `${b} weft`)?.gbit ?? [];
    const h = paths.find((p) => p.name === `${b} by hand`)?.gbit ?? [];
    return median(w.slice(0, h.length).map((x, i) => x / h[i]!));
  };
  console.log(`kernel data paths${V6 ? " over IPv6" : ""}, 2 hosts, iperf3 TCP 1 stream ${SECONDS} s, ${ROUNDS} rounds interleaved (best and median), ping RTT median`);
  printTable([
    ["path", "TCP Gbit/s best", "median", "best vs underlay", "ping RTT ms", "weft / by hand", "paired"],
    ...paths.map((p) => {
      if (p.gbit.length === 0) return [p.name, "n/a", "", "", "", p.why ?? ""];
      const hand = p.name.endsWith(" weft") ? g(p.name.replace(" weft", " by hand")) : NaN;
      const pr = p.name.endsWith(" weft") ? paired(p.name.replace(" weft", "")) : NaN;
      return [
        p.name, fmt(best(p.gbit)), fmt(median(p.gbit)), fmt(best(p.gbit) / base), fmt(median(p.rtt)),
        Number.isNaN(hand) ? "" : fmt(best(p.gbit) / hand), Number.isNaN(pr) ? "" : fmt(pr),
      ];
    }),
  ]);
  console.log("paired: the median over rounds of weft's throughput over the by-hand path's measured just before it in the same round");
  for (const p of paths) {
    if (p.gbit.length === 0) continue;
    const id = p.name.replace(/[^a-z]+/g, "_").replace(/_$/, "");
    figure(BENCH, `${id}_gbit`, best(p.gbit), "Gbit/s");
    figure(BENCH, `${id}_rtt`, median(p.rtt), "ms");
  }
  for (const b of ["host-gw", "vxlan"]) {
    const ratio = g(`${b} weft`) / g(`${b} by hand`);
    if (Number.isFinite(ratio)) figure(BENCH, `${b.replace("-", "_")}_weft_vs_by_hand`, ratio, "x");
    const pr = paired(b);
    if (Number.isFinite(pr)) figure(BENCH, `${b.replace("-", "_")}_weft_vs_by_hand_paired`, pr, "x");
  }
} finally {
  for (const c of clusters) await c.destroy();
}
