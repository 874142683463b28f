/**
 * @module 1000 peers at once: the time from one transaction of 1000 vxlan peer leases committing
 * in etcd until every route, neighbour and FDB entry is in the kernel of a host running weft, the
 * same for their removal, and the agent's memory before and after. Prints figures, asserts
 * nothing.
 *
 *   bun bench/scale.ts [--peers 1000] [--runtime binary|bun|deno]
 *
 * Setup: one host namespace running the agent, network 10.0.0.0/8 with /24 leases, etcd in the
 * underlay namespace. The leases (random VtepMACs, PublicIPs inside the underlay subnet) are put
 * by a helper next to etcd (bench/lib/lease_putter.ts), which notes when the transaction
 * returned; a netlink monitor in the host namespace (tests/support/netlink_watch.ts) notes each
 * entry's arrival; the counts are checked against `ip`/`bridge` dumps at the end. RSS is VmRSS
 * of the agent 2 s after it was ready and 2 s after the last entry appeared.
 */
import { Cluster, type Host, type Runtime, exec, ipJson, rssKiB, startNetlinkWatch } from "../tests/support/netns.ts";
import { figure, fmt, printTable } from "./lib/figures.ts";
import { peerLease, startLeasePutter } from "./lib/peer_leases.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1]! : dflt; };
const PEERS = Number(opt("--peers", "1000"));
const runtime = opt("--runtime", "binary") as Runtime;

/** Entries on flannel.1 now: routes, neighbours, FDB entries with a remote. */
function counts(h: Host): { routes: number; neighs: number; fdbs: number } {
  const fdb = JSON.parse(exec(h.ns, ["bridge", "-j", "fdb", "show", "dev", "flannel.1"]).stdout || "[]") as { dst?: string }[];
  return {
    routes: ipJson(h.ns, "route", "show", "dev", "flannel.1").length,
    neighs: ipJson(h.ns, "neigh", "show", "dev", "flannel.1").length,
    fdbs: fdb.filter((f) => f.dst).length,
  };
}

const c = await Cluster.create({ hosts: 1, backend: "vxlan", network: "10.0.0.0/8", subnetLen: 24, runtime, containersPerHost: 0 });
try {
  const h = c.hosts[0]!;
  const own = h.subnet;
  const pid = h.agent!.pid!;
  const putter = await startLeasePutter(c);
  await Bun.sleep(2000);
  const rssBefore = rssKiB(pid);

  const leases = Array.from({ length: PEERS + 1 }, (_, i) => `10.${100 + (i >> 8)}.${i & 255}.0/24`).filter((s) => s !== own).slice(0, PEERS)
    .map((s, i) => peerLease(s, `192.168.77.${100 + (i % 100)}`, "vxlan"));
  const subnets = new Set(leases.map((l) => l.subnet));
  const addrs = new Set(leases.map((l) => l.subnet.split("/")[0]));
  const macs = new Set(leases.map((l) => (JSON.parse(l.value) as { BackendData: { VtepMAC: string } }).BackendData.VtepMAC));

  /** Waits until every route, neighbour and FDB entry of the leases was announced with `action`. */
  async function allSeen(action: "new" | "del"): Promise<{ routes: number; neighs: number; fdbs: number; overrun: boolean }> {
    const watch = await startNetlinkWatch(h.ns);
    const run = action === "new" ? putter.put(leases) : putter.del(leases);
    const last = { routes: 0, neighs: 0, fdbs: 0 };
    const seen = { routes: new Set<string>(), neighs: new Set<string>(), fdbs: new Set<string>() };
    await watch.until((e) => {
      if (e.a === action && e.k === "route" && subnets.has(e.dst!)) { seen.routes.add(e.dst!); last.routes = e.t; }
      if (e.a === action && e.k === "neigh" && addrs.has(e.ip!)) { seen.neighs.add(e.ip!); last.neighs = e.t; }
      if (e.a === action && e.k === "fdb" && macs.has(e.mac!)) { seen.fdbs.add(e.mac!); last.fdbs = e.t; }
      return e.k === "overrun" || (seen.routes.size === PEERS && seen.neighs.size === PEERS && seen.fdbs.size === PEERS);
    }, 60_000);
    const committed = await run;
    const overrun = (await watch.stop()).some((e) => e.k === "overrun");
    return { routes: last.routes - committed, neighs: last.neighs - committed, fdbs: last.fdbs - committed, overrun };
  }

  const add = await allSeen("new");
  const after = counts(h);
  await Bun.sleep(2000);
  const rssAfter = rssKiB(pid);
  const del = await allSeen("del");
  const left = counts(h);
  await putter.stop();

  console.log(`scale: ${PEERS} vxlan peer leases in one etcd transaction, agent ${runtime}`);
  const row = (what: string, r: typeof add) => [what, fmt(r.routes), fmt(r.neighs), fmt(r.fdbs), r.overrun ? "monitor overrun: times are lower bounds" : ""];
  printTable([
    ["commit -> last entry (ms)", "routes", "neighbours", "FDB", ""],
    row(`all ${PEERS} added`, add),
    row(`all ${PEERS} removed`, del),
  ]);
  console.log(`entries on flannel.1 after adding: ${after.routes} routes, ${after.neighs} neighbours, ${after.fdbs} FDB; after removing: ${left.routes}, ${left.neighs}, ${left.fdbs}`);
  console.log(`agent RSS: ${fmt(rssBefore / 1024)} MiB with no peers, ${fmt(rssAfter / 1024)} MiB with ${PEERS}`);
  figure("scale", "add_1000_all_entries", Math.max(add.routes, add.neighs, add.fdbs), "ms");
  figure("scale", "del_1000_all_entries", Math.max(del.routes, del.neighs, del.fdbs), "ms");
  figure("scale", "rss_no_peers", rssBefore / 1024, "MiB");
  figure("scale", "rss_1000_peers", rssAfter / 1024, "MiB");
} finally {
  await c.destroy();
}
