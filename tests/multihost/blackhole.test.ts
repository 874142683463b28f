/**
 * @module `--ip-blackhole-route` on a real kernel: two host-gw hosts whose namespaces have a
 * default route, so without a blackhole a packet for a departed peer's subnet would leave by it.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Cluster, exec, ip, ipJson, ping, waitFor } from "../support/netns.ts";

const MAX = 4294967295;
let c: Cluster;

beforeAll(async () => {
  c = await Cluster.create({ backend: "host-gw", hosts: 3, agentArgs: ["--ip-blackhole-route", "--iptables-resync=1"] });
}, 90_000);
afterAll(async () => { await c?.destroy(); });

const blackholes = (ns: string) => ipJson(ns, "route", "show", "type", "blackhole").map((r) => `${r.dst} ${r.metric ?? 0}`);
/** The kernel answers a lookup that ends in a blackhole with EINVAL ("Invalid argument"). */
function routeType(ns: string, addr: string): string {
  const r = exec(ns, ["ip", "-j", "route", "get", addr]);
  if (r.code !== 0) return /Invalid argument/.test(r.stderr) ? "blackhole" : `error: ${r.stderr.trim()}`;
  return String(JSON.parse(r.stdout)[0]?.type ?? "unicast");
}

/** Packets for `addr` that reached the default gateway (the underlay's br0), by an iptables counter there. */
function atGateway(addr: string): number {
  const out = exec(c.underlay, ["iptables", "-w", "-t", "raw", "-L", "PREROUTING", "-v", "-x", "-n"]).stdout;
  const line = out.split("\n").find((l) => l.includes(addr));
  return line ? Number(line.trim().split(/\s+/)[0]) : -1;
}

test("blackholes for the lease and the cluster network, at the highest metric, beside cni0's connected route", async () => {
  const [h1, h2] = c.hosts;
  expect(blackholes(h1!.ns).sort()).toEqual([`10.244.0.0/16 ${MAX}`, `${h1!.subnet} ${MAX}`].sort());
  // cni0's connected route for the same prefix is kept and wins; containers reach each other.
  expect(ipJson(h1!.ns, "route", "show", h1!.subnet, "dev", "cni0").length).toBe(1);
  expect(routeType(h1!.ns, h1!.containers[0]!.ip)).toBe("unicast");
  const r = await ping(h1!.containers[0]!.ns, h2!.containers[0]!.ip, { count: 3 });
  expect(r.get(h2!.containers[0]!.ip)?.received).toBe(3);
});

test("a departed peer's subnet is dropped here, not sent out by the default route", async () => {
  const [h1, , h3] = c.hosts;
  const gone = h3!.subnet;
  const addr = h3!.containers[0]!.ip;
  expect(routeType(h1!.ns, addr)).toBe("unicast"); // the peer route
  await c.removeHost(h3!);
  c.weft(["leases", "release", gone]);
  await waitFor(() => ipJson(h1!.ns, "route", "show", gone).filter((r) => r.type !== "blackhole").length === 0, 10_000, "the departed peer's route gone");
  expect(routeType(h1!.ns, addr)).toBe("blackhole");
  // A container's packets for it die on h1; for an address outside the cluster network, which
  // the default route takes, the gateway's counter sees them (so the counter works).
  const outside = "10.99.1.1";
  for (const a of [addr, outside]) exec(c.underlay, ["iptables", "-w", "-t", "raw", "-I", "PREROUTING", "-d", a, "-j", "ACCEPT"]);
  for (const a of [addr, outside]) await ping(h1!.containers[0]!.ns, a, { count: 3, intervalMs: 20, timeoutMs: 300 });
  expect([atGateway(addr), atGateway(outside)]).toEqual([0, 3]);
}, 30_000);

test("a stale blackhole of a previous lease inside the network is removed; another tool's is kept", async () => {
  const [h1] = c.hosts;
  ip(h1!.ns, "route", "add", "blackhole", "10.244.250.0/24", "metric", String(MAX));
  ip(h1!.ns, "route", "add", "blackhole", "10.99.0.0/16", "metric", String(MAX));
  ip(h1!.ns, "route", "add", "blackhole", "10.244.251.0/24"); // metric 0: not weft's
  await c.stopAgent(h1!);
  await c.startAgent(h1!);
  const now = blackholes(h1!.ns);
  expect(now).not.toContain(`10.244.250.0/24 ${MAX}`);
  expect(now).toContain(`10.99.0.0/16 ${MAX}`);
  expect(now).toContain("10.244.251.0/24 0");
  exec(h1!.ns, ["ip", "route", "del", "blackhole", "10.244.251.0/24"]);
  // Deleted by hand, it is back within the resync period.
  ip(h1!.ns, "route", "del", "blackhole", "10.244.0.0/16", "metric", String(MAX));
  await waitFor(() => blackholes(h1!.ns).includes(`10.244.0.0/16 ${MAX}`), 5000, "the network blackhole re-added");
}, 60_000);
