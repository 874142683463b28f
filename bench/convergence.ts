/**
 * @module How fast a new peer is programmed: the time from a peer lease's commit in etcd to its
 * route being in the kernel of another host running weft, over 50 joins (median and p99).
 * Prints figures, asserts nothing.
 *
 *   bun bench/convergence.ts [--backend vxlan,host-gw] [--runtime binary|bun|deno] [--joins 50]
 *
 * Setup: one host namespace running the agent (network 10.0.0.0/8, /24 leases; etcd in the
 * underlay namespace). Each join is a vxlan (or host-gw) lease with a random VtepMAC and a
 * PublicIP inside the underlay subnet, put by a helper next to etcd (bench/lib/lease_putter.ts)
 * that notes when the put returned; a netlink monitor inside the host namespace
 * (tests/support/netlink_watch.ts) notes when the route appeared. Both clocks are the same
 * CLOCK_REALTIME; joins are one at a time, each after the previous route appeared. etcd sends
 * the put's response and the watch event at about the same moment, so an agent can program the
 * route before the putter has read its response: small negative samples are that, not an error.
 */
import { Cluster, type Runtime, startNetlinkWatch } from "../tests/support/netns.ts";
import { figure, fmt, median, percentile, printTable } from "./lib/figures.ts";
import { peerLease, startLeasePutter } from "./lib/peer_leases.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1]! : dflt; };
const backends = opt("--backend", "vxlan,host-gw").split(",") as ("vxlan" | "host-gw")[];
const runtime = opt("--runtime", "binary") as Runtime;
const JOINS = Number(opt("--joins", "50"));

/** Commit -> route times (ms) of `JOINS` joins, one at a time, seen by a host running `backend`. */
async function measure(backend: "vxlan" | "host-gw"): Promise<number[]> {
  const c = await Cluster.create({ hosts: 1, backend, network: "10.0.0.0/8", subnetLen: 24, runtime, containersPerHost: 0 });
  try {
    const h = c.hosts[0]!;
    const own = h.subnet;
    const putter = await startLeasePutter(c);
    const watch = await startNetlinkWatch(h.ns);
    const leases = Array.from({ length: JOINS + 1 }, (_, i) => `10.200.${i}.0/24`).filter((s) => s !== own).slice(0, JOINS)
      .map((s, i) => peerLease(s, `192.168.77.${100 + (i % 100)}`, backend));
    const ms: number[] = [];
    for (const l of leases) {
      const committed = await putter.put([l]);
      const e = await watch.until((x) => x.k === "route" && x.a === "new" && x.dst === l.subnet, 10_000);
      ms.push(e.t - committed);
    }
    await putter.del(leases);
    await putter.stop();
    await watch.stop();
    return ms;
  } finally {
    await c.destroy();
  }
}

const results = [];
for (const b of backends) results.push({ b, ms: await measure(b) });
console.log(`convergence: lease commit (put returned) -> route in the kernel of a peer, agent ${runtime}, ${JOINS} joins each`);
printTable([
  ["backend", "median ms", "p99 ms", "min ms", "max ms"],
  ...results.map(({ b, ms }) => [b, fmt(median(ms)), fmt(percentile(ms, 99)), fmt(Math.min(...ms)), fmt(Math.max(...ms))]),
]);
for (const { b, ms } of results) {
  figure("convergence", `${b.replace("-", "")}_median`, median(ms), "ms");
  figure("convergence", `${b.replace("-", "")}_p99`, percentile(ms, 99), "ms");
}
