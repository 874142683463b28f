/**
 * @module The udp backend carrying IPv6 against kernel IPv6 VXLAN, in one run on one machine:
 * one TCP stream over IPv6 between two containers. Prints figures, asserts nothing. Needs root;
 * every namespace and process is removed at the end.
 *
 *   bun bench/udp_path_v6.ts [--seconds 3] [--rounds 3] [--runtime bun|binary|deno]
 *
 * Topology (tests/support/netns.ts with `ipv6Network`): two hosts on a dual-stack underlay
 * (192.168.77.0/24, 2001:db8:77::/64), real etcd, weft with `{"Network":"10.50.0.0/16",
 * "EnableIPv6":true,"IPv6Network":"fd50::/56","Backend":{"Type":"udp"}}`, one dual-stack
 * container per host. Kernel IPv6 VXLAN is set up by hand beside it on the same hosts and
 * containers, as flannel's `flannel-v6.<VNI>` would be: `vxb6` (VNI 43, port 4790, over the
 * hosts' IPv6 underlay addresses, MTU 1500 − 70), the containers get a second address
 * fd60:0:0:<i>::2 and a route `fd60::/48 via <cni0> src fd60:0:0:<i>::2 mtu 1430`.
 *
 * Two weft configurations: IPv6 packets over the IPv6 underlay (WEFT_UDP_PREFER_IPV6=1, the
 * like-for-like comparison with IPv6 VXLAN) and over the IPv4 underlay (the default when both
 * hosts have IPv4). Each round measures kernel VXLAN and weft back to back (`--seconds` of iperf3
 * each); the ratio is the median of the rounds' ratios, since the machine is shared and noisy.
 */
import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { Cluster, type Host, exec, ip } from "../tests/support/netns.ts";
import { figure, median } from "./lib/figures.ts";

const argv = process.argv.slice(2);
const opt = (name: string, dflt: string) => {
  const i = argv.indexOf(name);
  return i >= 0 ? argv[i + 1]! : dflt;
};
const SECONDS = Number(opt("--seconds", "3"));
const ROUNDS = Number(opt("--rounds", "3"));
const RUNTIME = opt("--runtime", "bun") as "bun" | "binary" | "deno";
if (!(SECONDS > 0)) throw new RangeError(`--seconds ${JSON.stringify(opt("--seconds", "3"))}: must be a number of seconds above 0`);
if (!Number.isInteger(ROUNDS) || ROUNDS < 1) throw new RangeError(`--rounds ${JSON.stringify(opt("--rounds", "3"))}: must be a whole number, 1 or more`);

/** One TCP stream from `from` to `to` (an IPv6 address), Gbit/s. */
function iperf(from: string, to: string): number {
  const r = exec(from, ["iperf3", "-6", "-c", to, "-t", String(SECONDS), "-J", "-O", "0.5"]);
  if (r.code !== 0) throw new Error(`iperf3 -c ${to} failed: ${r.stdout.slice(0, 500)} ${r.stderr}`);
  return JSON.parse(r.stdout).end.sum_received.bits_per_second / 1e9;
}

/** Kernel IPv6 VXLAN between the two hosts over their IPv6 underlay, beside flannel0; returns the containers' addresses on it. */
function setUpVxlan6(hosts: Host[]): string[] {
  const macs = hosts.map((_, i) => `02:00:00:00:43:${(i + 1).toString(16).padStart(2, "0")}`);
  hosts.forEach((h, i) => {
    const net = `fd60:0:0:${i + 1}::`;
    ip(h.ns, "link", "add", "vxb6", "address", macs[i]!, "mtu", "1430", "type", "vxlan", "id", "43", "dstport", "4790", "local", h.ip6!, "dev", "eth0", "nolearning");
    ip(h.ns, "-6", "addr", "add", `${net}/128`, "dev", "vxb6", "nodad");
    ip(h.ns, "link", "set", "vxb6", "up");
    ip(h.ns, "-6", "route", "add", `${net}/64`, "dev", "cni0");
    const ct = h.containers[0]!;
    ip(ct.ns, "-6", "addr", "add", `${net}2/128`, "dev", "eth0", "nodad");
    const gw = h.env!.ipv6Subnet!.split("/")[0]!;
    ip(ct.ns, "-6", "route", "add", "fd60::/48", "via", gw, "src", `${net}2`, "mtu", "1430");
  });
  hosts.forEach((h, i) => {
    hosts.forEach((peer, j) => {
      if (i === j) return;
      const net = `fd60:0:0:${j + 1}::`;
      ip(h.ns, "-6", "neigh", "add", net, "lladdr", macs[j]!, "dev", "vxb6", "nud", "permanent");
      exec(h.ns, ["bridge", "fdb", "append", macs[j]!, "dev", "vxb6", "dst", peer.ip6!]);
      ip(h.ns, "-6", "route", "add", `${net}/64`, "via", net, "dev", "vxb6", "onlink");
    });
  });
  return hosts.map((_, i) => `fd60:0:0:${i + 1}::2`);
}

/** Restarts both agents with `env`; resolves when each has programmed its peer. */
async function restart(c: Cluster, env: Record<string, string>): Promise<void> {
  await Promise.all(c.hosts.map((h) => c.stopAgent(h)));
  c.opts.agentEnv = env;
  await Promise.all(c.hosts.map((h) => c.startAgent(h)));
  for (const h of c.hosts) {
    for (let t = 0; (await c.status(h)).dataPath.peers.length < 1; t++) {
      if (t > 200) throw new Error(`${h.name} did not program its peer`);
      await Bun.sleep(50);
    }
  }
}

async function main(): Promise<void> {
  const c = await Cluster.create({ hosts: 2, backend: "udp", network: "10.50.0.0/16", ipv6Network: "fd50::/56", runtime: RUNTIME });
  let server: ReturnType<typeof spawn> | undefined;
  try {
    const [h1, h2] = c.hosts as [Host, Host];
    const [, vx2] = setUpVxlan6(c.hosts);
    const from = h1.containers[0]!.ns, to = h2.containers[0]!;
    server = spawn("ip", ["netns", "exec", to.ns, "iperf3", "-s"], { stdio: "ignore" });
    await Bun.sleep(300);
    console.log(`udp_path_v6: ${RUNTIME} agents, iperf3 ${SECONDS} s per run, ${ROUNDS} rounds, ` +
      `${readFileSync("/proc/cpuinfo", "utf8").match(/^processor/gm)!.length} CPUs; one TCP stream over IPv6, Gbit/s\n`);
    const configs: [name: string, underlay: string, env: Record<string, string>][] = [
      ["udp_v6_over_v6", "IPv6 underlay (WEFT_UDP_PREFER_IPV6=1)", { WEFT_UDP_PREFER_IPV6: "1" }],
      ["udp_v6_over_v4", "IPv4 underlay (default)", {}],
    ];
    for (const [name, underlay, env] of configs) {
      await restart(c, env);
      const dp = (await c.status(h1)).dataPath;
      exec(from, ["ping", "-6", "-c", "20", "-i", "0.01", "-W", "2", to.ip6!]); // peers programmed, JIT warm
      exec(from, ["ping", "-6", "-c", "5", "-i", "0.01", "-W", "2", vx2!]);
      const rows: { vxlan: number; udp: number }[] = [];
      for (let r = 0; r < ROUNDS; r++) rows.push({ vxlan: iperf(from, vx2!), udp: iperf(from, to.ip6!) });
      const ratio = median(rows.map((x) => x.udp / x.vxlan));
      console.log(`weft udp, IPv6 packets over the ${underlay}: ${dp.offloads}; peers ${dp.peers.map((p: any) => p.underlay).join(", ")}`);
      rows.forEach((x, r) => console.log(`  round ${r + 1}: kernel IPv6 VXLAN ${x.vxlan.toFixed(2)}, weft udp ${x.udp.toFixed(2)} (${(x.udp / x.vxlan).toFixed(2)}×)`));
      console.log(`  median: kernel IPv6 VXLAN ${median(rows.map((x) => x.vxlan)).toFixed(2)}, weft udp ${median(rows.map((x) => x.udp)).toFixed(2)}, ratio ${ratio.toFixed(2)}×\n`);
      figure("udp_path_v6", `${name}_1_stream_over_vxlan6`, ratio, "x");
      figure("udp_path_v6", `${name}_1_stream`, median(rows.map((x) => x.udp)), "Gbit/s");
    }
    console.log(`load average: ${readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ")}`);
  } finally {
    server?.kill("SIGKILL");
    await c.destroy();
  }
}

await main();
