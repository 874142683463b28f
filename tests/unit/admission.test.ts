/**
 * @module Peer lease admission (src/lease/admission.ts): tables of leases, written as flannel
 * stores them (key and JSON value), in; admitted keys or the refusal reason out. Then the
 * ordering rules (older wins, incumbents keep their place, refused leases admitted once the
 * reason is gone), the edge (log once, metric) and `/status`.
 */
import { describe, expect, test } from "bun:test";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { type AdmissionSelf, PeerAdmission, type RefusalReason, admissionSelf } from "../../src/lease/admission.ts";
import { type Lease, type LeaseEvent, decodeLeaseAttrs, parseSubnetKey } from "../../src/lease/lease.ts";
import { PeerGate } from "../../src/lease/peer_gate.ts";
import { createLogger } from "../../src/log.ts";
import type { HostNetwork } from "../../src/net/iface.ts";
import { formatIPv4, parseIPv4, parseIPv6 } from "../../src/net/ip.ts";
import { createStatusApp } from "../../src/status/app.ts";
import { Metrics } from "../../src/status/metrics.ts";

const V4 = parseNetworkConfig(`{"Network":"10.0.0.0/16","SubnetLen":24,"Backend":{"Type":"vxlan"}}`);
const DUAL = parseNetworkConfig(`{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/48","IPv6SubnetLen":64,"Backend":{"Type":"vxlan"}}`);

/** A lease as read from etcd: key, value (flannel's JSON) and create revision. */
function lease(key: string, value: string, created?: number): Lease {
  const sub = parseSubnetKey(key);
  if (!sub) throw new Error(`bad test key ${key}`);
  const l: Lease = { ...sub, attrs: decodeLeaseAttrs(key, value), expiration: 0, etcdLease: "7" };
  if (created !== undefined) l.created = BigInt(created);
  return l;
}

/** A vxlan lease value. */
const vx = (pub: string, mac: string, extra = "") => `{"PublicIP":"${pub}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${mac}"}${extra}}`;

const host: HostNetwork = {
  interfaces: [
    { name: "lo", index: 1, mtu: 65536, up: true, addrs: [{ family: 4, address: "127.0.0.1", prefixLen: 8, linkLocal: false }, { family: 6, address: "::1", prefixLen: 128, linkLocal: false }] },
    { name: "eth0", index: 2, mtu: 1500, up: true, addrs: [{ family: 4, address: "192.168.1.1", prefixLen: 24, linkLocal: false }, { family: 6, address: "fd00::1", prefixLen: 64, linkLocal: false }] },
    { name: "eth1", index: 3, mtu: 1500, up: true, addrs: [{ family: 4, address: "172.16.0.5", prefixLen: 16, linkLocal: false }, { family: 6, address: "fe80::5%eth1", prefixLen: 64, linkLocal: true }] },
  ],
  routes4: [],
};
const OWN = lease("10.0.1.0-24", vx("192.168.1.1", "0a:00:00:00:00:01"));
const own: AdmissionSelf = admissionSelf(OWN, host);
/** A working peer, admitted first. */
const A = lease("10.0.68.0-24", vx("192.168.1.68", "0a:00:00:00:00:68"), 10);

describe("admissionSelf()", () => {
  test("takes our subnet, VtepMAC, every host address and our subnets' broadcasts", () => {
    expect(own.subnet).toEqual(OWN.subnet);
    expect(own.vtepMAC).toBe("0a:00:00:00:00:01");
    expect(own.addresses.map(formatIPv4).sort()).toEqual(["127.0.0.1", "172.16.0.5", "192.168.1.1"]);
    expect(own.addresses6).toEqual([parseIPv6("::1"), parseIPv6("fd00::1"), parseIPv6("fe80::5")]);
    expect(own.broadcasts.map(formatIPv4).sort()).toEqual(["127.255.255.255", "172.16.255.255", "192.168.1.255"]);
  });
});

// [name, key, value, reason (undefined: admitted), conflictsWith]
const V4_CASES: [string, string, string, string | undefined, string?][] = [
  ["a good peer", "10.0.70.0-24", vx("192.168.1.70", "0a:00:00:00:00:70"), undefined],
  ["a /25 inside a peer's /24", "10.0.68.0-25", vx("192.168.1.99", "0a:00:00:00:00:99"), "prefix_length"],
  ["a /32 on a peer's network address", "10.0.68.0-32", vx("192.168.1.99", "0a:00:00:00:00:99"), "prefix_length"],
  ["a /23 holding a peer's /24", "10.0.68.0-23", vx("192.168.1.99", "0a:00:00:00:00:99"), "prefix_length"],
  ["the whole Network", "10.0.0.0-16", vx("192.168.1.99", "0a:00:00:00:00:99"), "prefix_length"],
  ["a /24 outside Network", "10.1.5.0-24", vx("192.168.1.99", "0a:00:00:00:00:99"), "outside_network"],
  ["our own subnet under a dual-stack key", "10.0.1.0-24&fc00::-64", vx("192.168.1.99", "0a:00:00:00:00:99"), "overlaps_own"],
  ["a peer's subnet under a dual-stack key", "10.0.68.0-24&fc00::-64", vx("192.168.1.99", "0a:00:00:00:00:99"), "overlaps_peer", "10.0.68.0-24"],
  ["PublicIP 255.255.255.255", "10.0.71.0-24", vx("255.255.255.255", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP 224.0.0.1", "10.0.71.0-24", vx("224.0.0.1", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP 127.0.0.1", "10.0.71.0-24", vx("127.0.0.1", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP 127.8.8.8 (loopback, not ours)", "10.0.71.0-24", vx("127.8.8.8", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP 0.0.0.0 with IPv4 on", "10.0.71.0-24", vx("0.0.0.0", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP 0.1.2.3", "10.0.71.0-24", vx("0.1.2.3", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP 169.254.1.1 (link-local)", "10.0.71.0-24", vx("169.254.1.1", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP 240.0.0.1 (reserved)", "10.0.71.0-24", vx("240.0.0.1", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP the broadcast of our eth0 subnet", "10.0.71.0-24", vx("192.168.1.255", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP inside the cluster Network", "10.0.71.0-24", vx("10.0.68.1", "0a:00:00:00:00:99"), "bad_public_ip"],
  ["PublicIP our public address", "10.0.71.0-24", vx("192.168.1.1", "0a:00:00:00:00:99"), "own_public_ip"],
  ["PublicIP another address of this host", "10.0.71.0-24", vx("172.16.0.5", "0a:00:00:00:00:99"), "own_public_ip"],
  ["our own VtepMAC (any case)", "10.0.71.0-24", vx("192.168.1.71", "0A:00:00:00:00:01"), "duplicate_vtep_mac"],
  ["a peer's VtepMAC", "10.0.71.0-24", vx("192.168.1.71", "0a:00:00:00:00:68"), "duplicate_vtep_mac", "10.0.68.0-24"],
  ["a peer's PublicIP (two hosts behind one NAT address): flagged only", "10.0.71.0-24", vx("192.168.1.68", "0a:00:00:00:00:71"), undefined],
  ["a host-gw lease (no VtepMAC) is fine", "10.0.71.0-24", `{"PublicIP":"192.168.1.71","PublicIPv6":null,"BackendType":"host-gw"}`, undefined],
];

describe("PeerAdmission, one lease beside a working peer (IPv4 network)", () => {
  for (const [name, key, value, reason, conflictsWith] of V4_CASES) {
    test(`${name}: ${reason ?? "admitted"}`, () => {
      const l = lease(key, value, 20);
      // In the first listing, beside the working peer.
      const adm = new PeerAdmission({ config: V4, own, now: () => 1000 });
      const { peers, refused } = adm.snapshot([A, l]);
      if (reason === undefined) {
        expect([...peers.keys()].sort()).toEqual(["10.0.68.0-24", key].sort());
        expect(refused).toEqual([]);
        return;
      }
      expect([...peers.keys()]).toEqual(["10.0.68.0-24"]);
      expect(refused.map((r) => [r.key, r.reason, r.conflictsWith])).toEqual([[key, reason, conflictsWith]]);
      expect(refused[0]!.message.length).toBeGreaterThan(20);
      // As a watch event after the peer: no event for the backend, the peer untouched.
      const live = new PeerAdmission({ config: V4, own });
      live.snapshot([A]);
      const r = live.apply([{ type: "added", lease: l }]);
      expect(r.events).toEqual([]);
      expect(r.refused.map((x) => x.reason as string)).toEqual([reason]);
      expect([...live.admitted.values()]).toEqual([A]);
      expect(live.counts().get(reason as RefusalReason)).toBe(1);
    });
  }
});

test("messages name the value and what is allowed", () => {
  const adm = new PeerAdmission({ config: V4, own });
  const msg = (key: string, value: string) => adm.snapshot([A, lease(key, value, 20)]).refused[0]!.message;
  expect(msg("10.0.68.0-25", vx("192.168.1.99", "0a:00:00:00:00:99"))).toBe("subnet 10.0.68.0/25 is a /25, but leases in Network 10.0.0.0/16 are /24 (SubnetLen)");
  expect(msg("10.0.71.0-24", vx("224.0.0.1", "0a:00:00:00:00:99"))).toBe("PublicIP 224.0.0.1 is a multicast address (224.0.0.0/4): it cannot be a host's address");
  expect(msg("10.0.71.0-24", vx("192.168.1.1", "0a:00:00:00:00:99"))).toBe("PublicIP 192.168.1.1 is this host's own address (traffic to it would loop back here)");
  expect(msg("10.0.71.0-24", vx("192.168.1.71", "0a:00:00:00:00:68"))).toBe("VtepMAC 0a:00:00:00:00:68 is already used by the admitted lease 10.0.68.0-24, which was there first");
});

test("loopback and link-local PublicIPs are accepted when ours is one too (every host on one machine)", () => {
  const lo = admissionSelf(lease("10.0.1.0-24", `{"PublicIP":"127.0.1.8","PublicIPv6":null}`), host);
  const r = new PeerAdmission({ config: V4, own: lo }).snapshot([
    lease("10.0.2.0-24", `{"PublicIP":"127.0.1.9","PublicIPv6":null}`, 1),
    lease("10.0.3.0-24", `{"PublicIP":"127.0.0.1","PublicIPv6":null}`, 2), // an address of this host
    lease("10.0.4.0-24", `{"PublicIP":"169.254.1.1","PublicIPv6":null}`, 3),
  ]);
  expect([...r.peers.keys()]).toEqual(["10.0.2.0-24"]);
  expect(r.refused.map((x) => [x.key, x.reason])).toEqual([["10.0.3.0-24", "own_public_ip"], ["10.0.4.0-24", "bad_public_ip"]]);
});

describe("PeerAdmission, IPv6 (dual-stack network)", () => {
  const own6 = admissionSelf(lease("10.0.1.0-24&fc00:0:0:1::-64", `{"PublicIP":"192.168.1.1","PublicIPv6":"fd00::1","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"},"BackendV6Data":{"VNI":1,"VtepMAC":"0a:00:00:00:06:01"}}`), host);
  const v6 = (pub6: string, mac6 = "0a:00:00:00:06:99") =>
    `{"PublicIP":"192.168.1.99","PublicIPv6":"${pub6}","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:99"},"BackendV6Data":{"VNI":1,"VtepMAC":"${mac6}"}}`;
  const B = lease("10.0.68.0-24&fc00:0:0:68::-64", `{"PublicIP":"192.168.1.68","PublicIPv6":"fd00::68","BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:68"},"BackendV6Data":{"VNI":1,"VtepMAC":"0a:00:00:00:06:68"}}`, 10);
  const cases: [string, string, string, string | undefined][] = [
    ["a good dual-stack peer", "10.0.99.0-24&fc00:0:0:99::-64", v6("fd00::99"), undefined],
    ["a /80 IPv6 subnet", "10.0.99.0-24&fc00:0:0:99::-80", v6("fd00::99"), "prefix_length"],
    ["an IPv6 subnet outside IPv6Network", "10.0.99.0-24&fc01:0:0:99::-64", v6("fd00::99"), "outside_network"],
    ["our IPv6 subnet", "10.0.99.0-24&fc00:0:0:1::-64", v6("fd00::99"), "overlaps_own"],
    ["a peer's IPv6 subnet", "10.0.99.0-24&fc00:0:0:68::-64", v6("fd00::99"), "overlaps_peer"],
    ["PublicIPv6 ::1", "10.0.99.0-24&fc00:0:0:99::-64", v6("::1"), "bad_public_ip"],
    ["PublicIPv6 ::", "10.0.99.0-24&fc00:0:0:99::-64", v6("::"), "bad_public_ip"],
    ["PublicIPv6 ff02::1", "10.0.99.0-24&fc00:0:0:99::-64", v6("ff02::1"), "bad_public_ip"],
    ["PublicIPv6 fe80::9", "10.0.99.0-24&fc00:0:0:99::-64", v6("fe80::9"), "bad_public_ip"],
    ["PublicIPv6 inside IPv6Network", "10.0.99.0-24&fc00:0:0:99::-64", v6("fc00:0:0:68::1"), "bad_public_ip"],
    ["PublicIPv6 ours", "10.0.99.0-24&fc00:0:0:99::-64", v6("fd00::1"), "own_public_ip"],
    ["PublicIPv6 a peer's: flagged only", "10.0.99.0-24&fc00:0:0:99::-64", v6("fd00::68"), undefined],
    ["our IPv6 VtepMAC", "10.0.99.0-24&fc00:0:0:99::-64", v6("fd00::99", "0a:00:00:00:06:01"), "duplicate_vtep_mac"],
    ["a peer's IPv6 VtepMAC", "10.0.99.0-24&fc00:0:0:99::-64", v6("fd00::99", "0a:00:00:00:06:68"), "duplicate_vtep_mac"],
    ["our IPv4 VtepMAC on flannel-v6 (another device) is fine", "10.0.99.0-24&fc00:0:0:99::-64", v6("fd00::99", "0a:00:00:00:00:01"), undefined],
  ];
  for (const [name, key, value, reason] of cases) {
    test(`${name}: ${reason ?? "admitted"}`, () => {
      const r = new PeerAdmission({ config: DUAL, own: own6 }).snapshot([B, lease(key, value, 20)]);
      expect(r.refused.map((x) => x.reason as string)).toEqual(reason ? [reason] : []);
      expect(r.peers.size).toBe(reason ? 1 : 2);
    });
  }

  test("an IPv4-only network does not look at the IPv6 half of a lease", () => {
    const r = new PeerAdmission({ config: V4, own }).snapshot([A, lease("10.0.99.0-24&fc00:0:0:99::-80", v6("::1"), 20)]);
    expect(r.refused).toEqual([]);
  });

  test("an IPv6-only network takes 0.0.0.0 as the PublicIP of every lease", () => {
    const only6 = parseNetworkConfig(`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fc00::/48","Backend":{"Type":"vxlan"}}`);
    const l = (n: number) => lease(`0.0.0.0-0&fc00:0:0:${n}::-64`, `{"PublicIP":"0.0.0.0","PublicIPv6":"fd00::${n}","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"0a:00:00:00:06:${n}"}}`, n);
    const r = new PeerAdmission({ config: only6, own: own6 }).snapshot([l(10), l(11), l(12)]);
    expect(r.refused).toEqual([]);
    expect(r.peers.size).toBe(3);
  });
});

describe("PeerAdmission, who wins", () => {
  const dupOfA = (created?: number) => lease("10.0.71.0-24", vx("192.168.1.71", "0a:00:00:00:00:68"), created);

  test("in a listing, the older lease by create revision wins", () => {
    const r = new PeerAdmission({ config: V4, own }).snapshot([A, dupOfA(5)]);
    expect([...r.peers.keys()]).toEqual(["10.0.71.0-24"]);
    expect(r.refused.map((x) => [x.key, x.conflictsWith])).toEqual([["10.0.68.0-24", "10.0.71.0-24"]]);
  });

  test("a lease without a create revision counts as the newest; equal ages go by key", () => {
    expect([...new PeerAdmission({ config: V4, own }).snapshot([dupOfA(undefined), A]).peers.keys()]).toEqual(["10.0.68.0-24"]);
    const a = lease("10.0.68.0-24", vx("192.168.1.68", "0a:00:00:00:00:68"));
    expect([...new PeerAdmission({ config: V4, own }).snapshot([dupOfA(undefined), a]).peers.keys()]).toEqual(["10.0.68.0-24"]);
  });

  test("an admitted peer keeps its place when an older key is re-put with its VtepMAC", () => {
    const adm = new PeerAdmission({ config: V4, own });
    const old = lease("10.0.50.0-24", vx("192.168.1.50", "0a:00:00:00:00:50"), 3);
    adm.snapshot([old, A]);
    const rePut = lease("10.0.50.0-24", vx("192.168.1.50", "0a:00:00:00:00:68"), 3);
    const r = adm.apply([{ type: "added", lease: rePut }]);
    // The re-put key loses its old entries; the working peer is not touched.
    expect(r.events).toEqual([{ type: "removed", lease: old }]);
    expect(r.refused.map((x) => [x.key, x.reason, x.conflictsWith])).toEqual([["10.0.50.0-24", "duplicate_vtep_mac", "10.0.68.0-24"]]);
    expect([...adm.admitted.values()]).toEqual([A]);
  });

  test("a working peer that changes (a new VtepMAC) keeps its place before an older refused lease", () => {
    const adm = new PeerAdmission({ config: V4, own });
    const older = lease("10.0.68.0-24&fc00::-64", vx("192.168.1.40", "0a:00:00:00:00:40"), 1); // A's subnet, older
    const live = new PeerAdmission({ config: V4, own });
    live.snapshot([A]);
    live.apply([{ type: "added", lease: older }]); // refused: A was admitted first
    expect(live.refused.get("10.0.68.0-24&fc00::-64")?.reason).toBe("overlaps_peer");
    const a2 = lease("10.0.68.0-24", vx("192.168.1.68", "0a:00:00:00:00:6a"), 10);
    const r = live.apply([{ type: "added", lease: a2 }]);
    expect(r.events).toEqual([{ type: "added", lease: a2 }]);
    expect([...live.refused.keys()]).toEqual(["10.0.68.0-24&fc00::-64"]);
    // A re-list keeps the incumbent too; a first listing goes by age.
    expect([...live.snapshot([older, a2]).peers.keys()]).toEqual(["10.0.68.0-24"]);
    expect([...adm.snapshot([older, a2]).peers.keys()]).toEqual(["10.0.68.0-24&fc00::-64"]);
  });

  test("a duplicate PublicIP is admitted and flagged once; the flag goes with the first holder", () => {
    let t = 1000;
    const adm = new PeerAdmission({ config: V4, own, now: () => t });
    const dup = lease("10.0.71.0-24", vx("192.168.1.68", "0a:00:00:00:00:71"), 20);
    const r = adm.snapshot([dup, A]);
    expect([...r.peers.keys()].sort()).toEqual(["10.0.68.0-24", "10.0.71.0-24"]);
    expect(r.flagged.map((f) => [f.key, f.reason, f.conflictsWith, f.message, f.since])).toEqual([[
      "10.0.71.0-24", "duplicate_public_ip", "10.0.68.0-24",
      "PublicIP 192.168.1.68 is also advertised by the admitted lease 10.0.68.0-24, which was there first (two hosts behind one address?)", 1000,
    ]]);
    t = 2000;
    expect(adm.apply([{ type: "added", lease: { ...dup, etcdLease: "9" } }]).flagged).toEqual([]);
    const third = lease("10.0.72.0-24", `{"PublicIP":"192.168.1.68","PublicIPv6":null}`, 30);
    expect(adm.apply([{ type: "added", lease: third }]).flagged.map((f) => f.key)).toEqual(["10.0.72.0-24"]);
    expect(adm.flagCounts().get("duplicate_public_ip")).toBe(2);
    // The first holder leaves: the next one holds the address, unflagged; the third now shares it with the second.
    const gone = adm.apply([{ type: "removed", lease: A }]);
    expect(gone.events).toEqual([{ type: "removed", lease: A }]);
    expect([...adm.flagged.values()].map((f) => [f.key, f.conflictsWith])).toEqual([["10.0.72.0-24", "10.0.71.0-24"]]);
    expect(gone.flagged.map((f) => f.key)).toEqual(["10.0.72.0-24"]);
    adm.apply([{ type: "removed", lease: third }]);
    expect(adm.flagged.size).toBe(0);
    expect(adm.refused.size).toBe(0);
  });

  test("a renewal (same attributes, new etcd lease) is no event and keeps the new lease object", () => {
    const adm = new PeerAdmission({ config: V4, own });
    adm.snapshot([A]);
    const renewed = { ...A, etcdLease: "8" };
    expect(adm.apply([{ type: "added", lease: renewed }]).events).toEqual([]);
    expect(adm.admitted.get("10.0.68.0-24")).toBe(renewed);
  });

  test("a refused lease is admitted when the peer it conflicts with leaves", () => {
    const adm = new PeerAdmission({ config: V4, own });
    const dup = dupOfA(20);
    adm.snapshot([A, dup]);
    const r = adm.apply([{ type: "removed", lease: A }]);
    expect(r.events).toEqual([{ type: "removed", lease: A }, { type: "added", lease: dup }]);
    expect(r.admitted.map((x) => [x.lease.subnet, x.was.reason])).toEqual([[dup.subnet, "duplicate_vtep_mac"]]);
    expect(adm.refused.size).toBe(0);
  });

  test("a refused lease is admitted when it is re-put valid, and forgotten when deleted", () => {
    const adm = new PeerAdmission({ config: V4, own });
    const bad = lease("10.0.72.0-24", vx("127.0.0.1", "0a:00:00:00:00:72"), 20);
    adm.snapshot([A, bad]);
    const good = lease("10.0.72.0-24", vx("192.168.1.72", "0a:00:00:00:00:72"), 20);
    expect(adm.apply([{ type: "added", lease: good }]).events).toEqual([{ type: "added", lease: good }]);
    const bad2 = lease("10.0.73.0-24", vx("224.0.0.1", "0a:00:00:00:00:73"), 21);
    adm.apply([{ type: "added", lease: bad2 }]);
    expect([...adm.refused.keys()]).toEqual(["10.0.73.0-24"]);
    const r = adm.apply([{ type: "removed", lease: bad2 }]);
    expect(r.events).toEqual([]);
    expect(adm.refused.size).toBe(0);
  });

  test("a refusal is reported once; a new reason is reported again", () => {
    let t = 1000;
    const adm = new PeerAdmission({ config: V4, own, now: () => t });
    adm.snapshot([A]);
    const bad = lease("10.0.72.0-24", vx("127.0.0.1", "0a:00:00:00:00:72"), 20);
    expect(adm.apply([{ type: "added", lease: bad }]).refused.length).toBe(1);
    t = 2000;
    expect(adm.apply([{ type: "added", lease: bad }]).refused).toEqual([]);
    expect(adm.apply([{ type: "added", lease: A }]).refused).toEqual([]);
    expect(adm.refused.get("10.0.72.0-24")!.since).toBe(1000);
    const worse = lease("10.0.72.0-24", vx("224.0.0.1", "0a:00:00:00:00:72"), 20);
    const r = adm.apply([{ type: "added", lease: worse }]);
    expect(r.refused.map((x) => [x.message.slice(0, 18), x.since])).toEqual([["PublicIP 224.0.0.1", 2000]]);
  });

  test("a changed peer is an added event, an unchanged one none; events list removals first", () => {
    const adm = new PeerAdmission({ config: V4, own });
    const b = lease("10.0.69.0-24", vx("192.168.1.69", "0a:00:00:00:00:69"), 11);
    adm.snapshot([A, b]);
    const b2 = lease("10.0.69.0-24", vx("192.168.1.69", "0a:00:00:00:00:6a"), 11);
    const events: LeaseEvent[] = [{ type: "added", lease: b2 }, { type: "removed", lease: A }, { type: "added", lease: b2 }];
    expect(adm.apply(events).events).toEqual([{ type: "removed", lease: A }, { type: "added", lease: b2 }]);
  });

  test("a thousand peers and a thousand hostile copies: each decided once, the peers kept", () => {
    const adm = new PeerAdmission({ config: parseNetworkConfig(`{"Network":"10.0.0.0/8","Backend":{"Type":"vxlan"}}`), own });
    const peers: Lease[] = [];
    for (let i = 0; i < 1000; i++) {
      const mac = `0e:00:00:00:${(i >> 8).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`;
      peers.push(lease(`10.${1 + (i >> 8)}.${i & 255}.0-24`, vx(`192.168.${100 + (i >> 8)}.${i & 255}`, mac), i + 1));
    }
    expect(adm.snapshot(peers).peers.size).toBe(1000);
    const hostile = peers.map((p, i) => lease(`10.${20 + (i >> 8)}.${i & 255}.0-24`, vx(`192.168.200.${i & 255}`, (p.attrs.backendData as { VtepMAC: string }).VtepMAC), 5000 + i));
    const r = adm.apply(hostile.map((lease) => ({ type: "added", lease })));
    expect(r.events).toEqual([]);
    expect(r.refused.length).toBe(1000);
    expect(adm.admitted.size).toBe(1000);
  });
});

test("PeerGate logs each refusal and flag once and keeps the gauges current; /status lists refused and flagged leases", async () => {
  let log = "";
  const metrics = new Metrics();
  const gate = new PeerGate({ config: V4, own, log: createLogger((t) => (log += t)), metrics });
  expect(metrics.render()).toContain(`weft_peer_leases_refused{reason="duplicate_vtep_mac"} 0`);
  const bad = lease("10.0.68.0-25", vx("192.168.1.99", "0a:00:00:00:00:99"), 20);
  const peers = new Map([["10.0.68.0-24", A], ["10.0.68.0-25", bad]]);
  expect([...gate.snapshot(peers).keys()]).toEqual(["10.0.68.0-24"]);
  expect(gate.apply([{ type: "added", lease: bad }])).toEqual([]);
  expect(log.match(/refusing peer lease/g)?.length).toBe(1);
  expect(log).toContain("refusing peer lease 10.0.68.0-25 (prefix_length): subnet 10.0.68.0/25 is a /25");
  expect(metrics.render()).toContain(`weft_peer_leases_refused{reason="prefix_length"} 1`);

  const body = await (await createStatusApp({
    ready: true, config: V4, backendType: "vxlan", peers, metrics, refusedLeases: gate.refused,
  }).request("/status")).json();
  expect(body.peers.map((p: { key: string }) => p.key)).toEqual(["10.0.68.0-24"]);
  expect(body.refusedLeases).toMatchObject([{ key: "10.0.68.0-25", subnet: "10.0.68.0/25", publicIP: "192.168.1.99", reason: "prefix_length", conflictsWith: null }]);

  expect(gate.apply([{ type: "removed", lease: bad }])).toEqual([]);
  expect(metrics.render()).toContain(`weft_peer_leases_refused{reason="prefix_length"} 0`);
  const dup = lease("10.0.70.0-24", vx("192.168.1.70", "0a:00:00:00:00:68"), 20);
  gate.apply([{ type: "added", lease: dup }]);
  expect(gate.apply([{ type: "removed", lease: A }]).map((e) => e.type)).toEqual(["removed", "added"]);
  expect(log).toContain("admitting peer lease 10.0.70.0-24, refused before (duplicate_vtep_mac)");

  const shared = lease("10.0.75.0-24", vx("192.168.1.70", "0a:00:00:00:00:75"), 30);
  expect(gate.apply([{ type: "added", lease: shared }])).toEqual([{ type: "added", lease: shared }]);
  gate.apply([{ type: "added", lease: { ...shared, etcdLease: "9" } }]);
  expect(log.match(/peer lease 10\.0\.75\.0-24 \(duplicate_public_ip\): PublicIP 192\.168\.1\.70 is also advertised by the admitted lease 10\.0\.70\.0-24/g)?.length).toBe(1);
  expect(metrics.render()).toContain(`weft_peer_leases_flagged{reason="duplicate_public_ip"} 1`);
  const flaggedBody = await (await createStatusApp({
    ready: true, config: V4, backendType: "vxlan", peers: gate.admitted, metrics, refusedLeases: gate.refused, flaggedLeases: gate.flagged,
  }).request("/status")).json();
  expect(flaggedBody.flaggedLeases).toMatchObject([{ key: "10.0.75.0-24", reason: "duplicate_public_ip", conflictsWith: "10.0.70.0-24" }]);
  expect(flaggedBody.peers.map((p: { key: string }) => p.key)).toContain("10.0.75.0-24");
  expect(parseIPv4("192.168.1.70")).toBe(dup.attrs.publicIP);
});
