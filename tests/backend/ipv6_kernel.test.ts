/**
 * Kernel tests of the vxlan and host-gw backends' IPv6 half, each in a namespace it creates and
 * always deletes (veth0: 192.168.0.1/16 and 2001:db8::1/64). What weft programs is read back
 * with `ip -j`/`bridge -j` and compared with the same state made by flanneld's commands (compat
 * §6.1 "v6: the same on flannel-v6.N", §6.2) in a reference namespace; dual-stack and IPv6-only
 * networks (EnableIPv4 false, §12.7), restarts, stale entries, the device watch, DirectRouting,
 * and the same under Deno.
 */
import { afterAll, describe, expect, test } from "bun:test";
import type { PeerSpec, ScriptInput, Step } from "./backend_ns_script.ts";
import { TestNetns, isRoot } from "./test_netns.ts";

const spaces: TestNetns[] = [];
afterAll(() => {
  for (const ns of spaces) ns.delete();
});
function netns(): TestNetns {
  const ns = new TestNetns("ipv6", { ipv6: true });
  spaces.push(ns);
  return ns;
}

const DUAL = { Network: "10.244.0.0/16", EnableIPv6: true, IPv6Network: "fd10::/48", Backend: { Type: "vxlan" } };
const V6ONLY = { EnableIPv4: false, EnableIPv6: true, IPv6Network: "fd10::/48", Backend: { Type: "vxlan" } };
const P1: PeerSpec = {
  subnet: "10.244.1.0/24", publicIP: "192.168.0.2", mac: "0a:00:00:00:01:01",
  subnet6: "fd10:0:0:1::/64", publicIPv6: "2001:db8::2", mac6: "0a:00:00:00:01:06",
};
const P2: PeerSpec = {
  subnet: "10.244.2.0/24", publicIP: "192.168.0.3", mac: "0a:00:00:00:02:02",
  subnet6: "fd10:0:0:2::/64", publicIPv6: "2001:db8::3", mac6: "0a:00:00:00:02:06",
};
const v6only = (p: PeerSpec): PeerSpec => ({ subnet6: p.subnet6, publicIPv6: p.publicIPv6, mac6: p.mac6 });

function input(config: Record<string, unknown>, steps: Step[], extra: Partial<ScriptInput> = {}): ScriptInput {
  const dual = config.EnableIPv4 !== false;
  return { config, iface: "veth0", ...(dual ? { own: "10.244.0.0/24" } : {}), own6: "fd10::/64", steps, ...extra };
}

/** flannel-v6.1 as iproute2 reports it, minus the random MAC and the kernel's own link-local entries. */
function view6(ns: TestNetns): { link: unknown; addr: string[][]; neigh: string[]; fdb: string[]; routes: string[] } {
  const link = ns.json("ip -j -d link show flannel-v6.1")[0];
  delete link.address;
  delete link.ifindex;
  return {
    link,
    addr: ns.json("ip -j -6 addr show dev flannel-v6.1 scope global").map((a: any) => a.addr_info.map((i: any) => `${i.local}/${i.prefixlen}`)),
    neigh: ns.json("ip -j -6 neigh show dev flannel-v6.1").filter((n: any) => !n.dst.startsWith("fe80"))
      .map((n: any) => `${n.dst} ${n.lladdr} ${n.state}`).sort(),
    fdb: ns.json("bridge -j fdb show dev flannel-v6.1").map((f: any) => `${f.mac} ${f.dst ?? ""} ${f.state ?? ""}`).sort(),
    routes: ns.json("ip -j -6 route show").filter((r: any) => !r.dst.startsWith("fe80")).map((r: any) => `${r.dst} ${r.gateway ?? ""} ${r.dev} ${(r.flags ?? []).join(",")} ${r.metric}`).sort(),
  };
}

function mac(ns: TestNetns, dev: string): string {
  return ns.json(`ip -j link show ${dev}`)[0].address;
}

/** flanneld's commands for the IPv6 half of a vxlan host with peers `peers` (compat §6.1), in `ref`. */
function flanneldVxlan6(ref: TestNetns, peers: PeerSpec[], mtu: number): void {
  for (const cmd of [
    `ip link add flannel-v6.1 mtu ${mtu} type vxlan id 1 local 2001:db8::1 dev veth0 dstport 8472 nolearning`,
    "ip -6 addr add fd10::/128 dev flannel-v6.1 nodad", "ip link set flannel-v6.1 up",
    ...peers.flatMap((p) => {
      const addr = p.subnet6!.split("/")[0]!;
      return [
        `ip -6 neigh replace ${addr} lladdr ${p.mac6} dev flannel-v6.1 nud permanent`,
        `bridge fdb replace ${p.mac6} dev flannel-v6.1 dst ${p.publicIPv6} self permanent`,
        `ip -6 route replace ${p.subnet6} via ${addr} dev flannel-v6.1 onlink`,
      ];
    }),
  ]) ref.exec(cmd);
}

describe.skipIf(!isRoot)("vxlan over IPv6 in a namespace", () => {
  test("dual stack: flannel.1 and flannel-v6.1 programmed as flanneld's commands make them; lease and MTU", () => {
    const ns = netns();
    const ref = netns();
    const r = ns.run(input(DUAL, [{ op: "apply", added: [P1, P2] }, { op: "describe" }]));
    expect(r.error).toBeUndefined();
    const vtep = mac(ns, "flannel.1");
    const vtep6 = mac(ns, "flannel-v6.1");
    expect(vtep6).not.toBe(vtep);
    // BackendData and BackendV6Data as flanneld writes them (VNI first); MTU the smaller device's.
    expect(r.leaseAttrs).toEqual({ backendType: "vxlan", backendData: { VNI: 1, VtepMAC: vtep }, backendV6Data: { VNI: 1, VtepMAC: vtep6 } });
    expect(Object.keys(r.leaseAttrs.backendV6Data)).toEqual(["VNI", "VtepMAC"]);
    expect(r.mtu).toBe(1430);
    expect(ns.json("ip -j link show flannel.1")[0].mtu).toBe(1450);
    expect(ns.exec("cat /proc/sys/net/ipv6/conf/flannel-v6.1/accept_ra").trim()).toBe("0");
    expect(r.steps[1].result).toMatchObject({
      devices: [
        { family: "IPv4", device: "flannel.1", vtepMAC: vtep, mtu: 1450 },
        { family: "IPv6", device: "flannel-v6.1", vtepMAC: vtep6, mtu: 1430 },
      ],
      peers: 2,
    });
    expect(r.steps[1].result.routes).toEqual(expect.arrayContaining([
      { dst: "10.244.1.0/24", via: "10.244.1.0", dev: "flannel.1" },
      { dst: "fd10:0:0:1::/64", via: "fd10:0:0:1::", dev: "flannel-v6.1" },
      { dst: "fd10:0:0:2::/64", via: "fd10:0:0:2::", dev: "flannel-v6.1" },
    ]));
    flanneldVxlan6(ref, [P1, P2], 1430);
    expect(view6(ns)).toEqual(view6(ref));

    // A peer removed: its three IPv6 entries go, as flanneld's deletes take them.
    const r2 = ns.run(input(DUAL, [{ op: "reconcile", peers: [P1, P2] }, { op: "apply", removed: [P2] }]));
    expect(r2.error).toBeUndefined();
    ref.exec("ip -6 route del fd10:0:0:2::/64 via fd10:0:0:2:: dev flannel-v6.1");
    ref.exec(`bridge fdb del ${P2.mac6} dev flannel-v6.1 dst 2001:db8::3 self`);
    ref.exec("ip -6 neigh del fd10:0:0:2:: dev flannel-v6.1");
    expect(view6(ns)).toEqual(view6(ref));
    expect(ns.json("ip -j -4 route show").map((x: any) => x.dst)).toContain("10.244.1.0/24");
    expect(mac(ns, "flannel-v6.1")).toBe(vtep6);
  }, 60_000);

  test("a restart changes nothing; reconcile removes stale IPv6 entries, never ours or outside IPv6Network", async () => {
    const ns = netns();
    expect(ns.run(input(DUAL, [{ op: "apply", added: [P1, P2] }])).error).toBeUndefined();
    const before = { mac: mac(ns, "flannel-v6.1"), ...view6(ns) };
    const mon = await ns.monitor(["route", "neigh", "link"]);
    const r = ns.run(input(DUAL, [{ op: "apply", added: [P1, P2] }, { op: "reconcile", peers: [P1, P2] }]));
    expect(await mon.stop()).toEqual([]);
    expect(r.error).toBeUndefined();
    expect(r.logs).toContain("I vxlan: reconciled 2 peers with the kernel (0 entries added, 0 stale removed)");
    expect({ mac: mac(ns, "flannel-v6.1"), ...view6(ns) }).toEqual(before);

    // Stale: P2 vanished while down, and a stray route inside IPv6Network; kept: outside it.
    ns.exec("ip -6 route replace fd10:0:0:9::/64 via fd10:0:0:9:: dev flannel-v6.1 onlink");
    ns.exec("ip -6 route replace fd99::/64 via fd10:0:0:9:: dev flannel-v6.1 onlink");
    const r2 = ns.run(input(DUAL, [{ op: "reconcile", peers: [P1] }]));
    expect(r2.error).toBeUndefined();
    const after = view6(ns);
    expect(after.routes.filter((x) => x.startsWith("fd10:0:0:2::") || x.startsWith("fd10:0:0:9::"))).toEqual([]);
    expect(after.routes.some((x) => x.startsWith("fd99::/64"))).toBe(true);
    expect(after.routes.some((x) => x.startsWith("fd10::/128") || x.startsWith("fd10:0:0:1::/64"))).toBe(true);
    expect(after.neigh.filter((x) => x.startsWith("fd10:0:0:2::"))).toEqual([]);
    expect(after.fdb.filter((x) => x.includes("2001:db8::3"))).toEqual([]);
    expect(after.fdb.filter((x) => x.includes("2001:db8::2"))).toHaveLength(1);
  }, 60_000);

  test("the IPv6 MAC comes from the previous lease's BackendV6Data; a deleted flannel-v6.1 is recreated and re-programmed", () => {
    const ns = netns();
    const r = ns.run(input(DUAL, [
      { op: "apply", added: [P1] }, { op: "deleteDevice", name: "flannel-v6.1" }, { op: "wait", ms: 1500 },
    ], { previousMac: "0a:aa:00:00:00:04", previousMac6: "0a:aa:00:00:00:06", checkIntervalMs: 200 }));
    expect(r.error).toBeUndefined();
    expect(mac(ns, "flannel.1")).toBe("0a:aa:00:00:00:04");
    expect(mac(ns, "flannel-v6.1")).toBe("0a:aa:00:00:00:06");
    expect(r.logs.some((l: string) => l.includes("flannel-v6.1 was deleted: recreated with MAC 0a:aa:00:00:00:06"))).toBe(true);
    const v = view6(ns);
    expect(v.routes.some((x) => x.startsWith("fd10:0:0:1::/64 fd10:0:0:1:: flannel-v6.1 onlink"))).toBe(true);
    expect(v.neigh).toContain(`fd10:0:0:1:: ${P1.mac6} PERMANENT`);
  }, 60_000);

  test("under Deno: the same IPv6 entries, and a restart under Bun changes nothing", async () => {
    const ns = netns();
    const ref = netns();
    const r = ns.run(input(DUAL, [{ op: "apply", added: [P1, P2] }]), "deno");
    expect(r.error).toBeUndefined();
    flanneldVxlan6(ref, [P1, P2], 1430);
    expect(view6(ns)).toEqual(view6(ref));
    const mon = await ns.monitor(["route", "neigh", "link"]);
    expect(ns.run(input(DUAL, [{ op: "reconcile", peers: [P1, P2] }])).error).toBeUndefined();
    expect(await mon.stop()).toEqual([]);
  }, 60_000);

  test("IPv6-only (EnableIPv4 false): only flannel-v6.1, only BackendV6Data; v4-only peers are skipped", () => {
    const ns = netns();
    const ref = netns();
    const r = ns.run(input(V6ONLY, [
      { op: "apply", added: [v6only(P1), v6only(P2), { subnet: "10.244.5.0/24", publicIP: "192.168.0.5", mac: "0a:00:00:00:05:05" }] },
    ]));
    expect(r.error).toBeUndefined();
    expect(ns.json("ip -j link show").map((l: any) => l.ifname)).not.toContain("flannel.1");
    expect(r.leaseAttrs).toEqual({ backendType: "vxlan", backendV6Data: { VNI: 1, VtepMAC: mac(ns, "flannel-v6.1") } });
    expect(r.mtu).toBe(1430);
    expect(r.logs.some((l: string) => l.includes("10.244.5.0-24") && l.includes("no IPv6 subnet"))).toBe(true);
    flanneldVxlan6(ref, [P1, P2], 1430);
    expect(view6(ns)).toEqual(view6(ref));
  }, 60_000);

  test("DirectRouting: an IPv6 peer on our link gets a route via its PublicIPv6; one behind a gateway gets vxlan", () => {
    const ns = netns();
    const far: PeerSpec = { subnet6: "fd10:0:0:3::/64", publicIPv6: "2001:db8:99::3", mac6: "0a:00:00:00:03:06" };
    const cfg = { ...V6ONLY, Backend: { Type: "vxlan", DirectRouting: true } };
    const r = ns.run(input(cfg, [{ op: "apply", added: [v6only(P1), far] }]));
    expect(r.error).toBeUndefined();
    const routes = view6(ns).routes;
    expect(routes).toContain("fd10:0:0:1::/64 2001:db8::2 veth0  1024");
    expect(routes).toContain("fd10:0:0:3::/64 fd10:0:0:3:: flannel-v6.1 onlink 1024");
    expect(view6(ns).neigh).toEqual([`fd10:0:0:3:: ${far.mac6} PERMANENT`]);
  }, 60_000);
});

describe.skipIf(!isRoot)("host-gw over IPv6 in a namespace", () => {
  const HG = { ...DUAL, Backend: { Type: "host-gw" } };
  const HG6 = { ...V6ONLY, Backend: { Type: "host-gw" } };

  test("dual stack: a route per family via the peer's PublicIP / PublicIPv6, as `ip -6 route replace`; restart quiet; stale removed", async () => {
    const ns = netns();
    const ref = netns();
    const r = ns.run(input(HG, [{ op: "apply", added: [P1, P2] }]));
    expect(r.error).toBeUndefined();
    expect(r.mtu).toBe(1500);
    for (const p of [P1, P2]) ref.exec(`ip -6 route replace ${p.subnet6} via ${p.publicIPv6} dev veth0`);
    const routes = (x: TestNetns) => view6Routes(x);
    expect(routes(ns)).toEqual(routes(ref));
    expect(ns.json("ip -j -4 route show").map((x: any) => x.dst)).toEqual(expect.arrayContaining(["10.244.1.0/24", "10.244.2.0/24"]));

    const mon = await ns.monitor(["route"]);
    expect(ns.run(input(HG, [{ op: "apply", added: [P1, P2] }, { op: "reconcile", peers: [P1, P2] }])).error).toBeUndefined();
    expect(await mon.stop()).toEqual([]);

    // P2 vanished while down; the check re-adds P1's deleted route.
    const r2 = ns.run(input(HG, [
      { op: "reconcile", peers: [P1] }, { op: "deleteRoute", dst: "fd10:0:0:1::/64" }, { op: "wait", ms: 600 },
    ], { checkIntervalMs: 200 }));
    expect(r2.error).toBeUndefined();
    ref.exec(`ip -6 route del ${P2.subnet6}`);
    expect(routes(ns)).toEqual(routes(ref));
    expect(ns.json("ip -j -4 route show").map((x: any) => x.dst)).not.toContain("10.244.2.0/24");
  }, 60_000);

  test("IPv6-only host-gw programs IPv6 routes; a --public-ipv6 not on the interface is refused", () => {
    const ns = netns();
    const r = ns.run(input(HG6, [{ op: "apply", added: [v6only(P1)] }]));
    expect(r.error).toBeUndefined();
    expect(view6Routes(ns)).toContain("fd10:0:0:1::/64 2001:db8::2 veth0 1024");
    const bad = ns.run(input(HG6, [], { publicIPv6: "2001:db8::77" }));
    expect(bad.error).toBe("host-gw backend requires the public IPv6 to be on the interface: --public-ipv6 2001:db8::77 is not an address of veth0");
  }, 60_000);
});

/** The IPv6 routes inside fd10::/48 (weft's and flanneld's), as text. */
function view6Routes(ns: TestNetns): string[] {
  return ns.json("ip -j -6 route show").filter((r: any) => r.dst.startsWith("fd10:"))
    .map((r: any) => `${r.dst} ${r.gateway ?? ""} ${r.dev} ${r.metric}`).sort();
}
