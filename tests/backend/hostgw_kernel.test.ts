/**
 * Kernel tests of the host-gw backend, each in a namespace it creates and always deletes: routes
 * via the peers' PublicIPs on veth0 (192.168.0.1/16), compared with flanneld's `ip route` commands;
 * restart without route events; stale routes removed; the 10 s check (shortened) re-adds; the
 * public-IP precondition; 1000 peers timed.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { PeerSpec, ScriptInput, Step } from "./backend_ns_script.ts";
import { TestNetns, isRoot } from "./test_netns.ts";

const spaces: TestNetns[] = [];
afterAll(() => {
  for (const ns of spaces) ns.delete();
});
function netns(): TestNetns {
  const ns = new TestNetns("hostgw");
  spaces.push(ns);
  return ns;
}

const NETWORK = { Network: "10.244.0.0/16", Backend: { Type: "host-gw" } };
const P1: PeerSpec = { subnet: "10.244.1.0/24", publicIP: "192.168.0.2" };
const P2: PeerSpec = { subnet: "10.244.2.0/24", publicIP: "192.168.0.3" };

function input(steps: Step[], extra: Partial<ScriptInput> = {}): ScriptInput {
  return { config: NETWORK, iface: "veth0", own: "10.244.0.0/24", steps, ...extra };
}

const routes = (ns: TestNetns) => ns.json("ip -j -4 route show");

describe.skipIf(!isRoot)("host-gw backend in a namespace", () => {
  test("routes equal flanneld's; a removed peer's route goes; other types are ignored", () => {
    const ns = netns();
    const ref = netns();
    const r = ns.run(input([
      { op: "apply", added: [P1, P2, { subnet: "10.244.3.0/24", publicIP: "192.168.0.4", type: "vxlan", data: { VNI: 1, VtepMAC: "0a:00:00:00:00:04" } }] },
      { op: "describe" },
    ]));
    expect(r.error).toBeUndefined();
    expect(r.leaseAttrs).toEqual({ backendType: "host-gw" });
    expect(r.mtu).toBe(1500);
    expect(r.logs.filter((l: string) => l.includes("10.244.3.0-24"))).toHaveLength(1);
    expect(r.steps[1].result).toMatchObject({
      device: "veth0", mtu: 1500, peers: 2,
      routes: [{ dst: "10.244.1.0/24", via: "192.168.0.2", dev: "veth0" }, { dst: "10.244.2.0/24", via: "192.168.0.3", dev: "veth0" }],
    });
    for (const p of [P1, P2]) ref.exec(`ip route replace ${p.subnet} via ${p.publicIP} dev veth0`);
    expect(routes(ns)).toEqual(routes(ref));

    expect(ns.run(input([{ op: "reconcile", peers: [P1, P2] }, { op: "apply", removed: [P1] }])).error).toBeUndefined();
    ref.exec(`ip route del ${P1.subnet} via ${P1.publicIP} dev veth0`);
    expect(routes(ns)).toEqual(routes(ref));
  }, 60_000);

  test("a restart changes nothing; reconcile removes stale routes but not ours, outside Network or connected", async () => {
    const ns = netns();
    expect(ns.run(input([{ op: "apply", added: [P1, P2] }])).error).toBeUndefined();
    const before = routes(ns);
    const mon = await ns.monitor(["route", "neigh"]);
    const r = ns.run(input([{ op: "apply", added: [P1, P2] }, { op: "reconcile", peers: [P1, P2] }]));
    expect(await mon.stop()).toEqual([]);
    expect(r.logs).toContain("I host-gw: reconciled 2 peers with the kernel (0 entries added, 0 stale removed)");
    expect(routes(ns)).toEqual(before);

    for (const cmd of [
      "ip route add 10.244.77.0/24 via 192.168.0.77 dev veth0", // a peer gone while we were down
      "ip route add 10.244.0.0/24 via 192.168.0.9 dev veth0", // our own subnet
      "ip route add 10.50.0.0/24 via 192.168.0.50 dev veth0", // outside Network
    ]) ns.exec(cmd);
    const r2 = ns.run(input([{ op: "reconcile", peers: [P1] }]));
    expect(r2.logs).toContain("I host-gw: reconciled 1 peers with the kernel (0 entries added, 2 stale removed)");
    expect(routes(ns).map((x: any) => `${x.dst} ${x.gateway ?? "-"}`).sort()).toEqual([
      "10.244.0.0/24 192.168.0.9", "10.244.1.0/24 192.168.0.2", "10.50.0.0/24 192.168.0.50", "10.99.0.0/16 192.168.0.254",
      "192.168.0.0/16 -",
    ]);
  }, 60_000);

  test("the route check re-adds a deleted route", () => {
    const ns = netns();
    const r = ns.run(input([
      { op: "reconcile", peers: [P1, P2] }, { op: "deleteRoute", dst: P2.subnet! }, { op: "wait", ms: 900 },
    ], { checkIntervalMs: 300 }));
    expect(r.error).toBeUndefined();
    expect(r.logs).toContain("W host-gw: 1 missing kernel entries re-added");
    expect(routes(ns).map((x: any) => x.dst)).toContain(P2.subnet);
  }, 60_000);

  test("the public IP must be an address of the interface", () => {
    const ns = netns();
    const r = ns.run(input([], { publicIP: "203.0.113.7" }));
    expect(r.error).toBe("host-gw backend requires the public IP to be on the interface: --public-ip 203.0.113.7 is not an address of veth0");
    ns.ip("addr add 192.168.0.100/16 dev veth0");
    expect(ns.run(input([], { publicIP: "192.168.0.100" })).error).toBeUndefined();
  }, 60_000);

  test("1000 peers: program, restart-reconcile with no change, remove (timed)", async () => {
    const ns = netns();
    const gen = { base: "10.128.1.0", len: 24, count: 1000, pubBase: "192.168.10.1" } as const;
    const big = { config: { Network: "10.128.0.0/9", Backend: { Type: "host-gw" } }, own: "10.128.0.0/24" };
    const r = ns.run(input([{ op: "generate", as: "apply", ...gen }], big));
    expect(r.error).toBeUndefined();
    expect(ns.json("ip -j -4 route show dev veth0").filter((x: any) => x.dst.startsWith("10.1"))).toHaveLength(1000);
    const mon = await ns.monitor(["route"]);
    const r2 = ns.run(input([{ op: "generate", as: "reconcile", ...gen }], big));
    expect(await mon.stop()).toEqual([]);
    const r3 = ns.run(input([{ op: "generate", as: "reconcile", ...gen }, { op: "generate", as: "remove", ...gen }], big));
    expect(ns.json("ip -j -4 route show dev veth0").filter((x: any) => x.dst.startsWith("10.1"))).toHaveLength(0);
    console.log(`host-gw 1000 peers: program ${r.steps[0].ms} ms, reconcile unchanged ${r2.steps[0].ms} ms, remove ${r3.steps[1].ms} ms`);
    expect(r.steps[0].ms).toBeLessThan(1000);
  }, 120_000);
});
