/**
 * @module The wireguard backend on the real kernel: three weft hosts as namespaces (underlay
 * bridge, real etcd, agents as processes: sources under Bun, the compiled executable, Deno),
 * config `{"Network":"10.52.0.0/16","Backend":{"Type":"wireguard"}}`, one container per host.
 * flannel-wg, its address, route and MTU, the lease's BackendData, then traffic in a full mesh.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type Cluster, Cluster as ClusterClass, ipJson, ip, ping, waitFor } from "../support/netns.ts";

const isRoot = process.getuid?.() === 0;
const NETWORK = "10.52.0.0/16";
let c: Cluster;

async function wg(h: Cluster["hosts"][number]): Promise<any> {
  return (await c.status(h)).dataPath;
}

describe.skipIf(!isRoot)("wireguard backend on three weft hosts", () => {
  beforeAll(async () => {
    c = await ClusterClass.create({ hosts: 1, backend: "wireguard", network: NETWORK, runtime: "bun" });
    await c.addHost({ runtime: "binary" });
    await c.addHost({ runtime: "deno" });
    for (const h of c.hosts) await waitFor(async () => (await wg(h)).devices?.[0]?.peers?.length === 2, 20_000, `${h.name} to program its peers`);
  }, 90_000);

  afterAll(async () => {
    await c?.destroy();
  }, 30_000);

  test("flannel-wg, its address, route and MTU, and the lease are flanneld's", async () => {
    const h = c.hosts[0]!;
    const link = ipJson(h.ns, "-d", "link", "show", "flannel-wg")[0] as any;
    expect(link.mtu).toBe(1500 - 80);
    expect(link.flags).toContain("UP");
    const addrs = (ipJson(h.ns, "-4", "addr", "show", "dev", "flannel-wg")[0] as any).addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual([h.subnet.replace(/\/24$/, "/32")]);
    expect(ip(h.ns, "route", "show", NETWORK)).toContain(`${NETWORK} dev flannel-wg`);
    expect(h.env?.mtu).toBe(1420);
    const leases = JSON.parse(c.weft(["leases", "list", "--json"]));
    expect(JSON.stringify(leases)).toContain('"BackendType":"wireguard"');
  });

  test("every container reaches every other (ICMP), through WireGuard sessions", async () => {
    const all = c.hosts.flatMap((h) => h.containers);
    for (const from of all) {
      const targets = all.filter((t) => t !== from).map((t) => t.ip);
      const r = await ping(from.ns, targets, { count: 3, intervalMs: 100, timeoutMs: 3000 });
      for (const [t, res] of r) expect(res.received, `${from.ip} -> ${t}`).toBeGreaterThanOrEqual(2);
    }
    for (const h of c.hosts) {
      const d = (await waitFor(async () => { const s = await wg(h); return s.devices[0].handshakes?.sessions > 0 ? s : null; }, 5000, "status")).devices[0];
      expect(d.handshakes.sessions).toBeGreaterThan(0);
      expect(d.transport.open.ok).toBeGreaterThan(0);
    }
  }, 60_000);
});
