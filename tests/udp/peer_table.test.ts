/**
 * @module The udp backend's pure pieces: the peer policy (leases in, core operations out), the
 * options, the ICMP source choice, the worker module's location, and the control log replayed
 * into a core (the TS reference) as a worker does.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { readFileSync } from "node:fs";
import * as L from "../../src/core/layout.ts";
import { createReferenceCore } from "../../src/core/reference.ts";
import type { Lease, LeaseEvent } from "../../src/lease/lease.ts";
import { ipv6ToBytes, parseIPv4, parseIPv4Net, parseIPv6, parseIPv6Net } from "../../src/net/ip.ts";
import { ControlLog, ControlReader } from "../../src/backend/udp/control_log.ts";
import { PeerTable, udpV6Data } from "../../src/backend/udp/peer_table.ts";
import { icmpSource, icmpSource6, workerUrl } from "../../src/backend/udp/udp_backend.ts";
import { hasCapSysNice, udpOptions } from "../../src/backend/udp/udp_options.ts";

function lease(subnet: string, publicIP: string, backendType?: string): Lease {
  return { subnet: parseIPv4Net(subnet), attrs: { publicIP: parseIPv4(publicIP), backendType }, expiration: 0 };
}
const added = (l: Lease): LeaseEvent => ({ type: "added", lease: l });
const removed = (l: Lease): LeaseEvent => ({ type: "removed", lease: l });
const ip = (s: string) => parseIPv4(s);

describe("PeerTable", () => {
  test("apply() programs a udp lease (no BackendType) as peer + route to our port", () => {
    const t = new PeerTable(8285, "10.50.1.0-24");
    const plan = t.apply([added(lease("10.50.2.0/24", "192.168.77.11"))]);
    expect(plan.ops).toEqual([
      { op: "peerSet", id: 0, ip: ip("192.168.77.11"), port: 8285, subnet: ip("10.50.2.0"), len: 24 },
      { op: "routeInsert", prefix: ip("10.50.2.0"), len: 24, id: 0 },
    ]);
    expect(plan.refused).toEqual([]);
  });

  test("apply() ignores our own lease and accepts an explicit BackendType udp", () => {
    const t = new PeerTable(8285, "10.50.1.0-24");
    expect(t.apply([added(lease("10.50.1.0/24", "192.168.77.10"))]).ops).toEqual([]);
    expect(t.apply([added(lease("10.50.3.0/24", "192.168.77.12", "udp"))]).ops.length).toBe(2);
  });

  test("apply() refuses a lease of another backend once, as an error, and programs nothing", () => {
    const t = new PeerTable(8285);
    const vx = lease("10.50.4.0/24", "192.168.77.13", "vxlan");
    const first = t.apply([added(vx)]);
    expect(first.ops).toEqual([]);
    expect(first.refused.length).toBe(1);
    expect(first.refused[0]!.error).toBe(true);
    expect(first.refused[0]!.reason).toContain('advertises BackendType "vxlan" but this host runs the udp backend');
    expect(t.apply([added(vx)]).refused).toEqual([]); // the same again: no second report
    expect(t.refused.get("10.50.4.0-24")).toBe(first.refused[0]!.reason);
  });

  test("a udp peer that turns into host-gw is taken out; removing a refused lease forgets it", () => {
    const t = new PeerTable(8285);
    t.apply([added(lease("10.50.5.0/24", "192.168.77.14"))]);
    const plan = t.apply([added(lease("10.50.5.0/24", "192.168.77.14", "host-gw"))]);
    expect(plan.ops).toEqual([{ op: "routeDelete", prefix: ip("10.50.5.0"), len: 24 }, { op: "peerDelete", id: 0 }]);
    expect(plan.refused.map((r) => r.key)).toEqual(["10.50.5.0-24"]);
    expect(t.apply([removed(lease("10.50.5.0/24", "192.168.77.14"))]).ops).toEqual([]);
    expect(t.refused.size).toBe(0);
  });

  test("a lease without IPv4 subnet or PublicIP is skipped without an error", () => {
    const t = new PeerTable(8285);
    const v6only: Lease = { ipv6Subnet: { ip: 0xfc00n << 112n, len: 64 }, attrs: { publicIP: 0 }, expiration: 0 };
    const plan = t.apply([added(v6only), added(lease("10.50.6.0/24", "0.0.0.0"))]);
    expect(plan.ops).toEqual([]);
    expect(plan.refused.map((r) => r.error)).toEqual([false, false]);
  });

  test("removal deletes route then peer, and the id is reused", () => {
    const t = new PeerTable(7890);
    const a = lease("10.50.7.0/24", "192.168.77.15"), b = lease("10.50.8.0/24", "192.168.77.16");
    t.apply([added(a)]);
    expect(t.apply([removed(a)]).ops).toEqual([{ op: "routeDelete", prefix: ip("10.50.7.0"), len: 24 }, { op: "peerDelete", id: 0 }]);
    expect(t.apply([added(b)]).ops[0]).toEqual({ op: "peerSet", id: 0, ip: ip("192.168.77.16"), port: 7890, subnet: ip("10.50.8.0"), len: 24 });
  });

  test("a new PublicIP for a programmed lease rewrites the peer, not the route; the same lease again does nothing", () => {
    const t = new PeerTable(8285);
    t.apply([added(lease("10.50.9.0/24", "192.168.77.17"))]);
    expect(t.apply([added(lease("10.50.9.0/24", "192.168.77.17"))]).ops).toEqual([]);
    expect(t.apply([added(lease("10.50.9.0/24", "192.168.77.18"))]).ops).toEqual([
      { op: "peerSet", id: 0, ip: ip("192.168.77.18"), port: 8285, subnet: ip("10.50.9.0"), len: 24 },
    ]);
  });

  test("a second lease with a taken PublicIP waits, refused, and is programmed when the first goes", () => {
    const t = new PeerTable(8285);
    const first = lease("10.50.10.0/24", "192.168.77.19"), second = lease("10.50.11.0/24", "192.168.77.19");
    t.apply([added(first)]);
    const wait = t.apply([added(second)]);
    expect(wait.ops).toEqual([]);
    expect(wait.refused[0]!.reason).toContain("which peer lease 10.50.10.0-24 already uses");
    expect(t.apply([removed(first)]).ops).toEqual([
      { op: "routeDelete", prefix: ip("10.50.10.0"), len: 24 }, { op: "peerDelete", id: 0 },
      { op: "peerSet", id: 0, ip: ip("192.168.77.19"), port: 8285, subnet: ip("10.50.11.0"), len: 24 },
      { op: "routeInsert", prefix: ip("10.50.11.0"), len: 24, id: 0 },
    ]);
    expect(t.refused.size).toBe(0);
  });

  test("reconcile() removes what the snapshot lacks and adds what it has", () => {
    const t = new PeerTable(8285);
    const a = lease("10.50.12.0/24", "192.168.77.20"), b = lease("10.50.13.0/24", "192.168.77.21");
    t.apply([added(a)]);
    const plan = t.reconcile(new Map([["10.50.13.0-24", b]]));
    expect(plan.ops.map((o) => o.op)).toEqual(["routeDelete", "peerDelete", "peerSet", "routeInsert"]);
    expect([...t.programmed.keys()]).toEqual(["10.50.13.0-24"]);
  });
});

/**
 * A dual-stack lease: `10.50.N.0/24&fd50:0:0:N::/64`, PublicIP and maybe PublicIPv6, with a weft
 * udp host's BackendV6Data (listening on its PublicIPv6 when it has one) unless `flanneld`.
 */
function lease6(n: number, publicIP: string, publicIPv6?: string, flanneld = false): Lease {
  return {
    subnet: parseIPv4Net(`10.50.${n}.0/24`), ipv6Subnet: parseIPv6Net(`fd50:0:0:${n}::/64`),
    attrs: {
      publicIP: parseIPv4(publicIP), ...(publicIPv6 ? { publicIPv6: parseIPv6(publicIPv6) } : {}),
      ...(flanneld ? {} : { backendV6Data: udpV6Data(publicIPv6 !== undefined) }),
    },
    expiration: 0,
  };
}
const ip6 = (s: string) => parseIPv6(s);
const ipv6Bytes = (s: string) => ipv6ToBytes(parseIPv6(s));

describe("PeerTable, dual stack", () => {
  const dual = { ipv4Underlay: true, ipv6Underlay: true, ipv6Network: true };

  test("a dual-stack peer: IPv6 subnet and route after peerSet, reached over IPv4, its PublicIPv6 accepted", () => {
    const t = new PeerTable(8285, "", dual);
    expect(t.apply([added(lease6(2, "192.168.77.11", "2001:db8:77::11"))]).ops).toEqual([
      { op: "peerSet", id: 0, ip: ip("192.168.77.11"), port: 8285, subnet: ip("10.50.2.0"), len: 24 },
      { op: "peerSubnet6", id: 0, prefix: ip6("fd50:0:0:2::"), len: 64 },
      { op: "peerPublic6", id: 0, ip: ip6("2001:db8:77::11"), via6: false },
      { op: "routeInsert", prefix: ip("10.50.2.0"), len: 24, id: 0 },
      { op: "route6Insert", prefix: ip6("fd50:0:0:2::"), len: 64, id: 0 },
    ]);
    expect(t.programmed.get("10.50.2.0-24&fd50:0:0:2::-64")!.via6).toBe(false);
  });

  test("a weft peer without PublicIPv6 keeps IPv4; a v6-only one (PublicIP 0.0.0.0) goes over IPv6", () => {
    const t = new PeerTable(8285, "", dual);
    const ops = t.apply([added(lease6(3, "192.168.77.12")), added(lease6(4, "0.0.0.0", "2001:db8:77::13"))]).ops;
    expect(ops.filter((o) => o.op === "peerSet" || o.op === "peerPublic6")).toEqual([
      { op: "peerSet", id: 0, ip: ip("192.168.77.12"), port: 8285, subnet: ip("10.50.3.0"), len: 24 },
      { op: "peerSet", id: 1, ip: 0, port: 8285, subnet: ip("10.50.4.0"), len: 24 },
      { op: "peerPublic6", id: 1, ip: ip6("2001:db8:77::13"), via6: true },
    ]);
  });

  test("a dual-stack flanneld peer (no BackendV6Data): IPv4 packets over IPv4 only, even with preferIPv6", () => {
    const t = new PeerTable(8285, "", { ...dual, preferIPv6: true });
    const plan = t.apply([added(lease6(13, "192.168.77.22", "2001:db8:77::22", true))]);
    expect(plan.ops).toEqual([
      { op: "peerSet", id: 0, ip: ip("192.168.77.22"), port: 8285, subnet: ip("10.50.13.0"), len: 24 },
      { op: "routeInsert", prefix: ip("10.50.13.0"), len: 24, id: 0 },
    ]);
    expect(plan.refused).toEqual([]);
    expect(t.programmed.get("10.50.13.0-24&fd50:0:0:13::-64")).toMatchObject({ via6: false, ipv6: false });
    // A v6-only flanneld lease cannot be reached at all.
    expect(t.apply([added(lease6(14, "0.0.0.0", "2001:db8:77::23", true))]).refused[0]!.reason).toContain("has no PublicIP (0.0.0.0)");
    // The same host turning into a weft host: its IPv6 subnet is routed from then on, and back.
    expect(t.apply([added(lease6(13, "192.168.77.22", "2001:db8:77::22"))]).ops.map((o) => o.op))
      .toEqual(["peerSet", "peerSubnet6", "peerPublic6", "route6Insert"]);
    expect(t.apply([added(lease6(13, "192.168.77.22", "2001:db8:77::22", true))]).ops.map((o) => o.op))
      .toEqual(["peerSet", "route6Delete"]);
  });

  test("preferIPv6 sends over IPv6 to every peer with a PublicIPv6, not to flanneld peers", () => {
    const t = new PeerTable(8285, "", { ...dual, preferIPv6: true });
    const ops = t.apply([added(lease6(5, "192.168.77.14", "2001:db8:77::14")), added(lease6(6, "192.168.77.15"))]).ops;
    expect(ops.filter((o) => o.op === "peerPublic6")).toEqual([{ op: "peerPublic6", id: 0, ip: ip6("2001:db8:77::14"), via6: true }]);
    expect([...t.programmed.values()].map((p) => p.via6)).toEqual([true, false]);
  });

  test("without an IPv6 underlay or network: no IPv6 ops, and a v6-only peer is skipped with the reason", () => {
    const t = new PeerTable(8285, "", { ipv6Network: true });
    const plan = t.apply([added(lease6(7, "192.168.77.16", "2001:db8:77::16")), added(lease6(8, "0.0.0.0", "2001:db8:77::17"))]);
    expect(plan.ops.map((o) => o.op)).toEqual(["peerSet", "peerSubnet6", "routeInsert", "route6Insert"]);
    expect(plan.refused[0]!.reason).toContain("this host has no IPv6 underlay for its PublicIPv6");
    expect(new PeerTable(8285).apply([added(lease6(9, "192.168.77.18", "2001:db8:77::18"))]).ops.map((o) => o.op)).toEqual(["peerSet", "routeInsert"]);
  });

  test("removal deletes both routes, then the peer; a taken PublicIPv6 waits like a taken PublicIP", () => {
    const t = new PeerTable(8285, "", dual);
    const a = lease6(10, "192.168.77.19", "2001:db8:77::19"), b = lease6(11, "192.168.77.20", "2001:db8:77::19");
    t.apply([added(a)]);
    const wait = t.apply([added(b)]);
    expect(wait.ops).toEqual([]);
    expect(wait.refused[0]!.reason).toContain("has PublicIPv6 2001:db8:77::19, which peer lease 10.50.10.0-24&fd50:0:0:10::-64 already uses");
    expect(t.apply([removed(a)]).ops.map((o) => o.op)).toEqual([
      "routeDelete", "route6Delete", "peerDelete", "peerSet", "peerSubnet6", "peerPublic6", "routeInsert", "route6Insert",
    ]);
  });

  test("a new PublicIPv6 re-sends peerSet with the IPv6 settings it clears, not the routes", () => {
    const t = new PeerTable(8285, "", dual);
    t.apply([added(lease6(12, "192.168.77.21", "2001:db8:77::21"))]);
    expect(t.apply([added(lease6(12, "192.168.77.21", "2001:db8:77::22"))]).ops.map((o) => o.op)).toEqual(["peerSet", "peerSubnet6", "peerPublic6"]);
  });
});

describe("udpOptions()", () => {
  test("Port defaults to 8285, 0 means the default, any key case", () => {
    expect(udpOptions({ Type: "udp" }, {}).port).toBe(8285);
    expect(udpOptions({ Type: "udp", port: 0 }, {}).port).toBe(8285);
    expect(udpOptions({ Type: "udp", PORT: 7890 }, {}).port).toBe(7890);
  });

  test("a bad Port or WEFT_UDP_WORKERS names the key and the range", () => {
    expect(() => udpOptions({ Port: 70000 }, {})).toThrow("Backend.Port 70000 must be an integer port 1..65535");
    expect(() => udpOptions({ Port: "8285" }, {})).toThrow('Backend.Port "8285"');
    expect(() => udpOptions({}, { WEFT_UDP_WORKERS: "0" })).toThrow("WEFT_UDP_WORKERS=\"0\" must be an integer 1..8");
    expect(() => udpOptions({}, { WEFT_UDP_SPIN_US: "1000001" })).toThrow("WEFT_UDP_SPIN_US=\"1000001\" must be an integer 0..1000000 (µs)");
    expect(udpOptions({}, { WEFT_UDP_SPIN_US: "1000000" }).spinUs).toBe(1_000_000);
  });

  test("hasCapSysNice() reads bit 23 of CapEff, and only CapEff", () => {
    const status = (eff: string) => `Name:\tweft\nCapInh:\t0000000000000000\nCapPrm:\t000001ffffffffff\nCapEff:\t${eff}\nCapBnd:\t000001ffffffffff\n`;
    expect(hasCapSysNice(status("000001ffffffffff"))).toBe(true); // root
    expect(hasCapSysNice(status("0000000000800000"))).toBe(true); // CAP_SYS_NICE alone
    expect(hasCapSysNice(status("00000000a80425fb"))).toBe(false); // Docker's default set: no CAP_SYS_NICE
    expect(hasCapSysNice(status("0000000000000000"))).toBe(false);
    expect(hasCapSysNice("Name:\tweft\n")).toBe(false); // no CapEff line
  });

  test.skipIf(process.getuid?.() !== 0)("hasCapSysNice() on this kernel's /proc/<pid>/status: root holds it, setpriv takes it away", () => {
    expect(hasCapSysNice(readFileSync("/proc/self/status", "utf8"))).toBe(true);
    const r = spawnSync("setpriv", ["--bounding-set=-sys_nice", "--inh-caps=-sys_nice", "cat", "/proc/self/status"], { encoding: "utf8" });
    expect(r.status).toBe(0);
    expect(hasCapSysNice(r.stdout)).toBe(false);
  });

  test("the WEFT_UDP_* switches turn offloads off", () => {
    expect(udpOptions({}, {})).toEqual({ port: 8285, spinUs: 0, vnetHdr: true, gso: true, gro: true, workers: 1, warmUp: true, trace: false, preferIPv6: false });
    expect(udpOptions({}, { WEFT_UDP_NO_VNET: "1", WEFT_UDP_NO_GSO: "true", WEFT_UDP_NO_GRO: "yes", WEFT_UDP_WORKERS: "2", WEFT_UDP_SPIN_US: "50", WEFT_UDP_TRACE: "1", WEFT_UDP_NO_WARMUP: "1", WEFT_UDP_PREFER_IPV6: "1" }))
      .toEqual({ port: 8285, spinUs: 50, vnetHdr: false, gso: false, gro: false, workers: 2, warmUp: false, trace: true, preferIPv6: true });
    expect(udpOptions({}, { WEFT_UDP_NO_GSO: "0" }).gso).toBe(true);
  });
});

describe("udp backend helpers", () => {
  test("icmpSource() is the cluster network's address, unless our lease holds it", () => {
    expect(icmpSource(parseIPv4Net("10.50.0.0/16"), parseIPv4Net("10.50.7.0/24"))).toBe(ip("10.50.0.0"));
    expect(icmpSource(parseIPv4Net("10.50.0.0/16"), parseIPv4Net("10.50.0.0/24"))).toBe(ip("10.50.255.255"));
  });

  test("icmpSource6() is the IPv6Network's address, unless our lease holds it", () => {
    expect(icmpSource6(parseIPv6Net("fd50::/56"), parseIPv6Net("fd50:0:0:7::/64"))).toBe(ip6("fd50::"));
    expect(icmpSource6(parseIPv6Net("fd50::/56"), parseIPv6Net("fd50::/64"))).toBe(ip6("fd50:0:0:ff:ffff:ffff:ffff:ffff"));
  });

  test("workerUrl() is beside the backend from sources, under backend/udp/ inside an executable", () => {
    expect(workerUrl("file:///work/main/src/backend/udp/udp_backend.ts")).toBe("file:///work/main/src/backend/udp/worker.ts");
    expect(workerUrl("file:///$bunfs/root/weft")).toBe("file:///$bunfs/root/backend/udp/worker.ts");
  });
});

describe("ControlLog", () => {
  test("readers replay appended operations in order into their own core", async () => {
    const log = new ControlLog(2);
    const cores = [createReferenceCore(), createReferenceCore()];
    const readers = [new ControlReader(log.buffer, 0), new ControlReader(log.buffer, 1)];
    await log.append([
      { op: "cluster", network: ip("10.50.0.0"), networkLen: 16, subnetLen: 24 },
      { op: "peerSet", id: 3, ip: ip("192.168.77.11"), port: 8285, subnet: ip("10.50.2.0"), len: 24 },
      { op: "routeInsert", prefix: ip("10.50.2.0"), len: 24, id: 3 },
    ]);
    expect(log.drained).toBe(false);
    expect(readers.map((r, i) => r.applyTo(cores[i]!))).toEqual([3, 3]);
    expect(log.drained).toBe(true);
    expect(cores.map((c) => c.route4Lookup(ip("10.50.2.9")))).toEqual([3, 3]);
    await log.append([{ op: "routeDelete", prefix: ip("10.50.2.0"), len: 24 }, { op: "peerDelete", id: 3 }]);
    expect(readers[0]!.applyTo(cores[0]!)).toBe(2);
    expect(cores[0]!.route4Lookup(ip("10.50.2.9"))).toBe(-1);
    expect(readers[0]!.failures).toBe(0);
    expect(readers[1]!.stopping).toBe(false);
    log.stop();
    expect(readers[1]!.stopping).toBe(true);
  });

  test("IPv6 operations reach the core through ARG, and attach() replays a peer's IPv6 settings after its peerSet", async () => {
    const log = new ControlLog(2);
    const core = createReferenceCore();
    const reader = new ControlReader(log.buffer, 0);
    log.detach(1);
    await log.append([
      { op: "cluster", network: ip("10.50.0.0"), networkLen: 16, subnetLen: 24 },
      { op: "tunAddr6", addr: ip6("fd50::") },
      { op: "ownSubnet4", subnet: ip("10.50.1.0"), len: 24 },
      { op: "ownSubnet6", prefix: ip6("fd50:0:0:1::"), len: 64 },
      { op: "peerSet", id: 3, ip: 0, port: 8285, subnet: ip("10.50.2.0"), len: 24 },
      { op: "peerSubnet6", id: 3, prefix: ip6("fd50:0:0:2::"), len: 64 },
      { op: "peerPublic6", id: 3, ip: ip6("2001:db8:77::11"), via6: true },
      { op: "route6Insert", prefix: ip6("fd50:0:0:2::"), len: 64, id: 3 },
      { op: "route6Insert", prefix: ip6("fd50:0:0:9::"), len: 64, id: 3 },
      { op: "route6Delete", prefix: ip6("fd50:0:0:9::"), len: 64 },
    ]);
    expect(reader.applyTo(core)).toBe(10);
    expect(reader.failures).toBe(0);
    const lookup = (c: typeof core, a: string) => { c.regions.arg.set(ipv6Bytes(a)); return c.route6Lookup(); };
    expect(lookup(core, "fd50:0:0:2::5")).toBe(3);
    expect(lookup(core, "fd50:0:0:9::5")).toBe(-1);
    const pub = (c: typeof core) => Array.from(c.bytes.subarray(L.PUBLIC6 + 3 * 16, L.PUBLIC6 + 4 * 16));
    expect(pub(core)).toEqual(Array.from(ipv6Bytes("2001:db8:77::11")));
    // A restarted worker gets the same state from attach(): IPv6 settings after the peerSet
    // that would clear them.
    const fresh = createReferenceCore();
    const r2 = new ControlReader(log.buffer, 1);
    r2.applySnapshot(fresh, log.attach(1));
    expect(r2.failures).toBe(0);
    expect(lookup(fresh, "fd50:0:0:2::5")).toBe(3);
    expect(pub(fresh)).toEqual(pub(core));
    expect(Array.from(fresh.bytes.subarray(L.PEERS + 3 * L.PEER_SIZE, L.PEERS + 4 * L.PEER_SIZE)))
      .toEqual(Array.from(core.bytes.subarray(L.PEERS + 3 * L.PEER_SIZE, L.PEERS + 4 * L.PEER_SIZE)));
  });

  test("append() waits for a reader a whole log behind, and gives up when it is dead", async () => {
    const log = new ControlLog(1);
    const reader = new ControlReader(log.buffer, 0);
    const core = createReferenceCore();
    const ops = Array.from({ length: 20_000 }, (_, i) => ({ op: "tunAddr" as const, addr: i }));
    let applied = 0;
    const timer = setInterval(() => { applied += reader.applyTo(core); }, 1);
    expect(await log.append(ops)).toBe(20_000);
    clearInterval(timer);
    applied += reader.applyTo(core);
    expect(applied).toBe(20_000);
    expect(await new ControlLog(1).append(ops, () => false)).toBeLessThan(20_000);
  });

  test("attach() gives a restarted reader the state so far, even after the log wrapped, then every later record once", async () => {
    const log = new ControlLog(2);
    const live = new ControlReader(log.buffer, 0);
    const liveCore = createReferenceCore();
    log.detach(1); // reader 1's worker died: append() no longer waits for it
    const peer = (id: number, n: number) => [
      { op: "peerSet" as const, id, ip: ip(`192.168.77.${n}`), port: 8285, subnet: ip(`10.50.${n}.0`), len: 24 },
      { op: "routeInsert" as const, prefix: ip(`10.50.${n}.0`), len: 24, id },
    ];
    const churn = Array.from({ length: 20_000 }, (_, i) => ({ op: "tunAddr" as const, addr: i })); // more than the log holds
    const timer = setInterval(() => live.applyTo(liveCore), 1);
    expect(await log.append([
      { op: "cluster", network: ip("10.50.0.0"), networkLen: 16, subnetLen: 24 },
      ...peer(0, 1), ...peer(1, 2), ...churn, ...peer(2, 3),
      { op: "routeDelete", prefix: ip("10.50.1.0"), len: 24 }, { op: "peerDelete", id: 0 },
    ])).toBe(20_009);
    clearInterval(timer);
    live.applyTo(liveCore);

    const snapshot = log.attach(1);
    const restarted = new ControlReader(log.buffer, 1);
    const core = createReferenceCore();
    expect(restarted.applySnapshot(core, snapshot)).toBe(6); // cluster, TUN address, 2 peers, 2 routes
    expect(restarted.applyTo(core)).toBe(0);
    await log.append([...peer(0, 4)]); // reader 1 is waited for again, and gets only what is new
    expect(restarted.applyTo(core)).toBe(2);
    live.applyTo(liveCore);
    for (const a of ["10.50.1.9", "10.50.2.9", "10.50.3.9", "10.50.4.9", "10.50.9.9"]) {
      expect(core.route4Lookup(ip(a))).toBe(liveCore.route4Lookup(ip(a)));
    }
    expect(core.route4Lookup(ip("10.50.4.9"))).toBe(0);
    expect(restarted.failures).toBe(0);
  });
});
