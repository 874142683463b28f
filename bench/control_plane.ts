/**
 * @module Control-plane figures with the `alloc` backend (no kernel programming): how long after
 * a peer lease commits in etcd it shows in the agent's `/status`, and the agent's memory with
 * 1000 peers. Prints figures, asserts nothing.
 *
 *   bun bench/control_plane.ts [--runtime binary|bun|deno] [--joins 50] [--peers 1000]
 *
 * Setup: one host namespace running the agent (network 10.0.0.0/8, /24 leases) and a real etcd
 * in the underlay namespace (tests/support/netns.ts). A helper next to etcd puts the leases with
 * the etcd3 client (bench/lib/lease_putter.ts); "commit" is the moment its put returned; "seen"
 * is the first `/status` poll from the bench process (back to back, through a forwarder, each
 * about 1 ms) that lists the peer. RSS is VmRSS from /proc/PID/status, 2 s after the agent was ready and 2 s after the
 * last of the 1000 peers appeared.
 */
import { Cluster, type Runtime, rssKiB, waitFor, wallMs } from "../tests/support/netns.ts";
import { figure, fmt, median, percentile, printTable } from "./lib/figures.ts";
import { peerLease, startLeasePutter } from "./lib/peer_leases.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1]! : dflt; };
const runtime = opt("--runtime", "binary") as Runtime;
const JOINS = Number(opt("--joins", "50"));
const PEERS = Number(opt("--peers", "1000"));

const c = await Cluster.create({ hosts: 1, backend: "alloc", network: "10.0.0.0/8", subnetLen: 24, runtime, containersPerHost: 0 });
try {
  const h = c.hosts[0]!;
  const own = h.subnet;
  const putter = await startLeasePutter(c);
  const pid = h.agent!.pid!;
  await Bun.sleep(2000);
  const rssIdle = rssKiB(pid);
  await c.status(h); // opens the forwarded connection, kept alive for the polls
  const polls: number[] = [];
  for (let i = 0; i < 50; i++) {
    const t = wallMs();
    await c.status(h);
    polls.push(wallMs() - t);
  }

  // Subnets 10.200.x.0/24 for joins, 10.100+.x.0/24 for the burst; never our own.
  const subnets = (base: number, n: number) =>
    Array.from({ length: n }, (_, i) => `10.${base + (i >> 8)}.${i & 255}.0/24`).filter((s) => s !== own);
  const hasPeer = async (key: string) => (await c.status(h)).peers.some((p: { key: string }) => p.key === key);

  const joins: number[] = [];
  for (const subnet of subnets(200, JOINS)) {
    const l = peerLease(subnet, `192.168.77.${100 + (joins.length % 100)}`, "alloc");
    const committed = await putter.put([l]);
    const key = l.key.split("/").at(-1)!;
    await waitFor(() => hasPeer(key), 10_000, `${key} in /status`, 0);
    joins.push(wallMs() - committed);
  }

  const burst = subnets(100, PEERS).map((s, i) => peerLease(s, `192.168.77.${100 + (i % 100)}`, "alloc"));
  const committed = await putter.put(burst);
  await waitFor(async () => (await c.status(h)).peers.length >= JOINS + burst.length, 60_000, "all peers in /status", 5);
  const burstMs = wallMs() - committed;
  await Bun.sleep(2000);
  const rssPeers = rssKiB(pid);
  await putter.del(burst);
  await putter.stop();

  console.log(`control plane, alloc backend, agent ${runtime}, etcd ${c.etcd.endpoint} in a namespace`);
  printTable([
    ["figure", "value"],
    [`lease commit -> /status, median of ${joins.length}`, `${fmt(median(joins))} ms`],
    [`lease commit -> /status, p99 of ${joins.length}`, `${fmt(percentile(joins, 99))} ms`],
    ["one /status poll (the resolution), median", `${fmt(median(polls))} ms`],
    [`${burst.length} leases in one txn -> all in /status`, `${fmt(burstMs)} ms`],
    ["agent RSS, idle (no peers)", `${fmt(rssIdle / 1024)} MiB`],
    [`agent RSS, ${JOINS + burst.length} peers`, `${fmt(rssPeers / 1024)} MiB`],
  ]);
  figure("control_plane", "commit_to_status_median", median(joins), "ms");
  figure("control_plane", "commit_to_status_p99", percentile(joins, 99), "ms");
  figure("control_plane", "burst_to_status", burstMs, "ms");
  figure("control_plane", "rss_idle", rssIdle / 1024, "MiB");
  figure("control_plane", "rss_1000_peers", rssPeers / 1024, "MiB");
} finally {
  await c.destroy();
}
