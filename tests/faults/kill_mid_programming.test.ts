/**
 * @module kill -9 in the middle of programming 1000 peers (issue #13's fault suite): a vxlan
 * agent in a namespace is killed while it programs a burst of 1000 peer leases; while it is down
 * 300 of them go and 200 new ones come; after its restart the kernel must hold exactly one route,
 * neighbour and FDB entry per lease in etcd — nothing missing, nothing stale, nothing twice.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Cluster, type Host, exec, ipJson, waitFor, wallMs } from "../support/netns.ts";

const PREFIX = "/coreos.com/network/subnets/";
let c: Cluster;
let h: Host;

beforeAll(async () => {
  // A /10 of /24s: room for 1200 peers. One host is enough: the peers need no hosts of their own
  // to be programmed (their VTEPs point at addresses nobody answers, which is fine here).
  c = await Cluster.create({ hosts: 1, backend: "vxlan", network: "10.64.0.0/10", containersPerHost: 0 });
  h = c.hosts[0]!;
}, 90_000);
afterAll(async () => { await c?.destroy(); });

/** Peer `i`: its subnet, VTEP MAC and public IP (distinct for every i). */
function peer(i: number) {
  const subnet = `10.${64 + (i >> 8)}.${i & 0xff}.0`;
  const mac = `0a:55:00:00:${((i >> 8) & 0xff).toString(16).padStart(2, "0")}:${(i & 0xff).toString(16).padStart(2, "0")}`;
  const publicIP = `198.18.${i >> 7}.${(i & 0x7f) + 1}`;
  return { key: `${subnet}-24`, subnet, mac, publicIP, value: JSON.stringify({ PublicIP: publicIP, PublicIPv6: null, BackendType: "vxlan", BackendData: { VNI: 1, VtepMAC: mac } }) };
}

async function putPeers(ids: number[]): Promise<void> {
  const etcd = c.etcd.client();
  for (let i = 0; i < ids.length; i += 100) { // etcd takes at most 128 operations per transaction
    const success = ids.slice(i, i + 100).map((n) => ({ request_put: { key: Buffer.from(PREFIX + peer(n).key), value: Buffer.from(peer(n).value) } }));
    await etcd.kv.txn({ compare: [], success, failure: [] } as never);
  }
}

async function deletePeers(ids: number[]): Promise<void> {
  const etcd = c.etcd.client();
  for (let i = 0; i < ids.length; i += 100) {
    const success = ids.slice(i, i + 100).map((n) => ({ request_delete_range: { key: Buffer.from(PREFIX + peer(n).key) } }));
    await etcd.kv.txn({ compare: [], success, failure: [] } as never);
  }
}

/** flannel.1's routes, neighbours and FDB entries of peers, as sorted text lines. */
function kernel(): string[] {
  const routes = ipJson<{ dst: string; gateway?: string; flags?: string[] }[]>(h.ns, "route", "show", "dev", "flannel.1")
    .filter((r) => r.gateway).map((r) => `route ${r.dst} via ${r.gateway}`);
  const neighs = ipJson<{ dst: string; lladdr?: string }[]>(h.ns, "neigh", "show", "dev", "flannel.1").map((n) => `neigh ${n.dst} ${n.lladdr}`);
  const fdbs = (JSON.parse(exec(h.ns, ["bridge", "-j", "fdb", "show", "dev", "flannel.1"]).stdout || "[]") as { mac: string; dst?: string }[])
    .filter((f) => f.dst).map((f) => `fdb ${f.mac} ${f.dst}`);
  return [...routes, ...neighs, ...fdbs].sort();
}

/** What the kernel must hold for the peers `ids`. */
function expected(ids: number[]): string[] {
  return ids.flatMap((i) => {
    const p = peer(i);
    return [`route ${p.subnet}/24 via ${p.subnet}`, `neigh ${p.subnet} ${p.mac}`, `fdb ${p.mac} ${p.publicIP}`];
  }).sort();
}

const routeCount = () => Number(exec(h.ns, ["sh", "-c", "ip route show dev flannel.1 | grep -c via || true"]).stdout.trim());

test("killed while programming 1000 peers, restarted after 300 left and 200 came: exactly the leases in etcd are programmed", async () => {
  const first = Array.from({ length: 1000 }, (_, i) => i + 1);
  const put = putPeers(first);
  // Kill as soon as programming has begun and before it ends (if the burst is faster than this
  // poll, the kill lands after it: the restart's convergence is checked either way).
  let atKill = 0;
  await waitFor(() => (atKill = routeCount()) > 0, 20_000, "the first peer routes", 2);
  await c.killAgent(h);
  await put;
  const killedMidway = atKill < 1000;
  console.log(`[kill mid-programming] killed with ${atKill} of 1000 peer routes in the kernel${killedMidway ? "" : " (the burst had finished)"}`);

  // While the agent is down: 300 leases go, 200 come.
  const gone = first.slice(0, 300);
  const added = Array.from({ length: 200 }, (_, i) => 1001 + i);
  await deletePeers(gone);
  await putPeers(added);
  const want = expected([...first.slice(300), ...added]);

  const started = wallMs();
  await c.startAgent(h);
  const got = await waitFor(() => { const k = kernel(); return k.length === want.length && k.join("\n") === want.join("\n") ? k : undefined; }, 30_000, "exact convergence")
    .catch(() => kernel());
  const ms = wallMs() - started;
  const k = new Set(got);
  const missing = want.filter((l) => !k.has(l));
  const extra = got.filter((l) => !want.includes(l));
  console.log(`[kill mid-programming] restart to exact convergence: ${ms.toFixed(0)} ms (${want.length / 3} peers, ${missing.length} missing, ${extra.length} stale)`);
  expect({ missing: missing.slice(0, 5), extra: extra.slice(0, 5), count: got.length }).toEqual({ missing: [], extra: [], count: want.length });
}, 120_000);
