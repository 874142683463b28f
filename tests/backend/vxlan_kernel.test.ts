/**
 * Kernel tests of the vxlan backend, each in a namespace it creates and always deletes: the
 * network is built by backend_ns_script.ts (a fresh Bun process per run, as an agent restart is)
 * over veth0 (192.168.0.1/16). What it programs is read back with `ip -j`/`bridge -j` and compared
 * with the same state made by flanneld's commands (compat §6.1) in a reference namespace.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { PeerSpec, ScriptInput, Step } from "./backend_ns_script.ts";
import { TestNetns, isRoot } from "./test_netns.ts";

const spaces: TestNetns[] = [];
afterAll(() => {
  for (const ns of spaces) ns.delete();
});
function netns(): TestNetns {
  const ns = new TestNetns("vxlan");
  spaces.push(ns);
  return ns;
}

const NETWORK = { Network: "10.244.0.0/16", Backend: { Type: "vxlan" } };
const P1: PeerSpec = { subnet: "10.244.1.0/24", publicIP: "192.168.0.2", mac: "0a:00:00:00:01:01" };
const P2: PeerSpec = { subnet: "10.244.2.0/24", publicIP: "192.168.0.3", mac: "0a:00:00:00:02:02" };

function input(steps: Step[], extra: Partial<ScriptInput> = {}): ScriptInput {
  return { config: NETWORK, iface: "veth0", own: "10.244.0.0/24", steps, ...extra };
}

/** The flannel.1 state as iproute2 reports it, minus what differs between two namespaces by nature. */
function view(ns: TestNetns) {
  const link = ns.json("ip -j -d link show flannel.1")[0];
  delete link.address; // random per host
  return {
    link,
    addr: ns.json("ip -j -4 addr show dev flannel.1").map((a: any) => a.addr_info),
    // Neighbour and FDB dumps come in hash order: compare as sets.
    neigh: ns.json("ip -j -4 neigh show dev flannel.1").sort((a: any, b: any) => a.dst.localeCompare(b.dst)),
    fdb: ns.json("bridge -j fdb show dev flannel.1").sort((a: any, b: any) => a.mac.localeCompare(b.mac)),
    routes: ns.json("ip -j -4 route show"),
  };
}

function mac(ns: TestNetns): string {
  return ns.json("ip -j link show flannel.1")[0].address;
}

describe.skipIf(!isRoot)("vxlan backend in a namespace", () => {
  test("programs what flanneld's commands make; removes a peer; ignores other types and bad leases", () => {
    const ns = netns();
    const ref = netns();
    const r = ns.run(input([
      { op: "apply", added: [P1, P2, { subnet: "10.244.3.0/24", publicIP: "192.168.0.4", type: "host-gw" },
        { subnet: "10.244.4.0/24", publicIP: "192.168.0.5", data: { VNI: 1, VtepMAC: "nope" } }] },
      { op: "describe" },
    ]));
    expect(r.error).toBeUndefined();
    const vtep = mac(ns);
    expect(r.leaseAttrs).toEqual({ backendType: "vxlan", backendData: { VNI: 1, VtepMAC: vtep } });
    expect(Object.keys(r.leaseAttrs.backendData)).toEqual(["VNI", "VtepMAC"]);
    expect(r.mtu).toBe(1450);
    expect(parseInt(vtep.slice(0, 2), 16) & 3).toBe(2); // locally administered unicast
    expect(r.logs.filter((l: string) => l.includes("10.244.3.0-24"))).toHaveLength(1);
    expect(r.logs.filter((l: string) => l.includes("10.244.4.0/24") && l.includes("VtepMAC"))).toHaveLength(1);
    expect(r.steps[1].result).toMatchObject({
      device: "flannel.1", vni: 1, vtepMAC: vtep, mtu: 1450, peers: 2,
      routes: [{ dst: "10.244.1.0/24", via: "10.244.1.0", dev: "flannel.1" }, { dst: "10.244.2.0/24", via: "10.244.2.0", dev: "flannel.1" }],
      counters: { rxBytes: 0, txBytes: 0 },
    });

    for (const cmd of [
      `ip link add flannel.1 mtu 1450 type vxlan id 1 local 192.168.0.1 dev veth0 dstport 8472 nolearning`,
      "ip addr add 10.244.0.0/32 dev flannel.1", "ip link set flannel.1 up",
      ...[P1, P2].flatMap((p) => [
        `ip neigh replace ${p.subnet!.slice(0, -3)} lladdr ${p.mac} dev flannel.1 nud permanent`,
        `bridge fdb replace ${p.mac} dev flannel.1 dst ${p.publicIP} self permanent`,
        `ip route replace ${p.subnet} via ${p.subnet!.slice(0, -3)} dev flannel.1 onlink`,
      ]),
    ]) ref.exec(cmd);
    expect(view(ns)).toEqual(view(ref));

    const r2 = ns.run(input([{ op: "reconcile", peers: [P1, P2] }, { op: "apply", removed: [P2] }]));
    expect(r2.error).toBeUndefined();
    ref.exec(`ip route del ${P2.subnet} via 10.244.2.0 dev flannel.1`);
    ref.exec(`bridge fdb del ${P2.mac} dev flannel.1 dst ${P2.publicIP} self`);
    ref.exec("ip neigh del 10.244.2.0 dev flannel.1");
    expect(view(ns)).toEqual(view(ref));
    expect(mac(ns)).toBe(vtep);
  }, 60_000);

  test("a restart over a programmed kernel changes nothing (no route/neigh events), keeps the MAC", async () => {
    const ns = netns();
    expect(ns.run(input([{ op: "apply", added: [P1, P2] }])).error).toBeUndefined();
    const before = { mac: mac(ns), ...view(ns) };
    const mon = await ns.monitor(["route", "neigh", "link"]);
    // As the agent does: the first snapshot arrives as added events, then the reconcile.
    const r = ns.run(input([{ op: "apply", added: [P1, P2] }, { op: "reconcile", peers: [P1, P2] }]));
    const events = await mon.stop();
    expect(r.error).toBeUndefined();
    expect(events).toEqual([]);
    expect(r.logs).toContain("I vxlan: reconciled 2 peers with the kernel (0 entries added, 0 stale removed)");
    expect({ mac: mac(ns), ...view(ns) }).toEqual(before);
  }, 60_000);

  test("reconcile removes stale routes, neighbours and FDB entries; never our subnet or outside Network", () => {
    const ns = netns();
    expect(ns.run(input([{ op: "apply", added: [P1, P2] }])).error).toBeUndefined();
    for (const cmd of [
      "ip route add 10.244.77.0/24 via 10.244.77.0 dev flannel.1 onlink",
      "ip neigh add 10.244.77.0 lladdr 0a:00:00:00:77:77 dev flannel.1 nud permanent",
      "bridge fdb add 0a:00:00:00:77:77 dev flannel.1 dst 192.168.0.77 self permanent",
      "ip route add 10.244.88.0/24 via 192.168.0.88 dev veth0", // a host-gw leftover
      "ip route add 10.244.0.0/24 via 10.244.0.5 dev flannel.1 onlink", // our own subnet
      "ip route add 10.50.0.0/24 via 10.50.0.0 dev flannel.1 onlink", // outside Network
      "ip neigh add 10.50.0.0 lladdr 0a:00:00:00:50:50 dev flannel.1 nud permanent",
    ]) ns.exec(cmd);
    // P2 vanished while weft was down.
    const r = ns.run(input([{ op: "reconcile", peers: [P1] }]));
    expect(r.error).toBeUndefined();
    expect(ns.json("ip -j -4 route show").map((x: any) => `${x.dst} ${x.gateway ?? ""} ${x.dev}`).sort()).toEqual([
      "10.244.0.0/24 10.244.0.5 flannel.1", "10.244.1.0/24 10.244.1.0 flannel.1", "10.50.0.0/24 10.50.0.0 flannel.1",
      "10.99.0.0/16 192.168.0.254 veth0", "192.168.0.0/16  veth0",
    ]);
    expect(ns.json("ip -j -4 neigh show dev flannel.1").map((n: any) => n.dst).sort()).toEqual(["10.244.1.0", "10.50.0.0"]);
    expect(ns.json("bridge -j fdb show dev flannel.1").map((f: any) => `${f.mac} ${f.dst}`)).toEqual([`${P1.mac} ${P1.publicIP}`]);
    expect(r.logs).toContain("I vxlan: reconciled 1 peers with the kernel (0 entries added, 7 stale removed)");
  }, 60_000);

  test("a deleted device is recreated with its MAC and re-programmed", () => {
    const ns = netns();
    const r = ns.run(input([
      { op: "reconcile", peers: [P1, P2] }, { op: "deleteDevice", name: "flannel.1" }, { op: "wait", ms: 1800 },
    ], { checkIntervalMs: 500 }));
    expect(r.error).toBeUndefined();
    expect(mac(ns)).toBe(r.leaseAttrs.backendData.VtepMAC);
    expect(r.logs.some((l: string) => l.startsWith("W flannel.1 was deleted: recreated"))).toBe(true);
    expect(ns.json("ip -j -4 neigh show dev flannel.1").map((n: any) => n.dst).sort()).toEqual(["10.244.1.0", "10.244.2.0"]);
    expect(ns.json("bridge -j fdb show dev flannel.1")).toHaveLength(2);
    expect(ns.json("ip -j -4 route show dev flannel.1").map((x: any) => x.dst)).toEqual(["10.244.1.0/24", "10.244.2.0/24"]);
    expect(ns.json("ip -j -4 addr show dev flannel.1")[0].addr_info[0].local).toBe("10.244.0.0");
  }, 60_000);

  test("the MAC comes from the previous lease, and survives recreating an incompatible device", () => {
    const ns = netns();
    const r = ns.run(input([], { previousMac: "0e:11:22:33:44:55" }));
    expect(r.error).toBeUndefined();
    expect(mac(ns)).toBe("0e:11:22:33:44:55");
    ns.exec("ip link del flannel.1");
    ns.exec("ip link add flannel.1 address 0e:66:77:88:99:aa type vxlan id 1 local 192.168.0.1 dev veth0 dstport 4789 nolearning");
    const r2 = ns.run(input([]));
    expect(r2.logs.some((l: string) => l.includes("its port is 4789, want 8472"))).toBe(true);
    expect(mac(ns)).toBe("0e:66:77:88:99:aa");
    expect(ns.json("ip -j -d link show flannel.1")[0].linkinfo.info_data.port).toBe(8472);
  }, 60_000);

  test("DirectRouting: a peer on our L2 gets a route via its PublicIP; one behind a gateway gets vxlan", () => {
    const ns = netns();
    const near: PeerSpec = { subnet: "10.244.5.0/24", publicIP: "192.168.0.5", mac: "0a:00:00:00:05:05" };
    const far: PeerSpec = { subnet: "10.244.6.0/24", publicIP: "10.99.0.6", mac: "0a:00:00:00:06:06" };
    const r = ns.run(input([{ op: "apply", added: [near, far] }], { config: { ...NETWORK, Backend: { type: "VXLAN", directrouting: true, VNI: 7 } } }));
    expect(r.error).toBeUndefined();
    expect(ns.json("ip -j -4 route show").map((x: any) => `${x.dst} ${x.gateway ?? ""} ${x.dev}`)).toContain("10.244.5.0/24 192.168.0.5 veth0");
    expect(ns.json("ip -j -4 route show dev flannel.7").map((x: any) => `${x.dst} ${x.gateway}`)).toEqual(["10.244.6.0/24 10.244.6.0"]);
    expect(ns.json("bridge -j fdb show dev flannel.7").map((f: any) => f.dst)).toEqual(["10.99.0.6"]);
  }, 60_000);

  test("under Deno: programs, recreates a deleted device, and a restart under Bun changes nothing", async () => {
    const ns = netns();
    const r = ns.run(input([
      { op: "apply", added: [P1, P2] }, { op: "deleteDevice", name: "flannel.1" }, { op: "wait", ms: 1500 },
    ], { checkIntervalMs: 500 }), "deno");
    expect(r.error).toBeUndefined();
    expect(mac(ns)).toBe(r.leaseAttrs.backendData.VtepMAC);
    expect(ns.json("ip -j -4 route show dev flannel.1").map((x: any) => x.dst)).toEqual(["10.244.1.0/24", "10.244.2.0/24"]);
    const mon = await ns.monitor(["route", "neigh"]);
    expect(ns.run(input([{ op: "reconcile", peers: [P1, P2] }])).error).toBeUndefined();
    expect(await mon.stop()).toEqual([]);
  }, 60_000);

  test("DisableTxChecksumOffload turns tx-checksum-ip-generic off", () => {
    const ns = netns();
    const r = ns.run(input([], { config: { ...NETWORK, Backend: { Type: "vxlan", DisableTxChecksumOffload: true } } }));
    expect(r.error).toBeUndefined();
    expect(ns.exec("ethtool -k flannel.1")).toMatch(/tx-checksum-ip-generic: off/);
    expect(ns.run(input([{ op: "describe" }])).steps[0].result.txChecksumOffload).toBe("off"); // a restart keeps it
    const ns2 = netns();
    expect(ns2.run(input([{ op: "describe" }])).steps[0].result.txChecksumOffload).toBe("on");
    expect(ns2.exec("ethtool -k flannel.1")).toMatch(/tx-checksum-ip-generic: on/);
  }, 60_000);

  test("1000 peers: program, restart-reconcile with no change, remove (timed)", async () => {
    const ns = netns();
    const gen = { base: "10.128.1.0", len: 24, count: 1000, pubBase: "192.168.10.1" } as const;
    const big = { config: { Network: "10.128.0.0/9", Backend: { Type: "vxlan" } }, own: "10.128.0.0/24" };
    const r = ns.run(input([{ op: "generate", as: "apply", ...gen }], big));
    expect(r.error).toBeUndefined();
    expect(ns.json("ip -j -4 route show dev flannel.1")).toHaveLength(1000);
    expect(ns.json("ip -j -4 neigh show dev flannel.1")).toHaveLength(1000);
    expect(ns.json("bridge -j fdb show dev flannel.1")).toHaveLength(1000);
    const mon = await ns.monitor(["route", "neigh"]);
    const r2 = ns.run(input([{ op: "generate", as: "reconcile", ...gen }], big));
    expect(await mon.stop()).toEqual([]);
    const r3 = ns.run(input([{ op: "generate", as: "reconcile", ...gen }, { op: "generate", as: "remove", ...gen }], big));
    expect(ns.json("ip -j -4 route show dev flannel.1")).toHaveLength(0);
    expect(ns.json("bridge -j fdb show dev flannel.1")).toHaveLength(0);
    console.log(`vxlan 1000 peers (3000 entries): program ${r.steps[0].ms} ms, reconcile unchanged ${r2.steps[0].ms} ms, remove ${r3.steps[1].ms} ms`);
    expect(r.steps[0].ms).toBeLessThan(1000);
    expect(r2.steps[0].ms).toBeLessThan(1000);
  }, 120_000);
});
