/**
 * The pure parts of the vxlan and host-gw backends: the Backend object, BackendData (flanneld's
 * values, the old form without VNI, bad values), per-peer entries, device compatibility, MACs.
 */
import { describe, expect, test } from "bun:test";
import type { Link } from "../../ffi/netlink/index.ts";
import { hostgwPeerEntries } from "../../src/backend/hostgw/network.ts";
import type { DataPathState } from "../../src/backend/route_plan.ts";
import { parseVxlanConfig, vxlanDeviceMtu } from "../../src/backend/vxlan/config.ts";
import { randomMac, vxlanDeviceName, vxlanIncompatibility } from "../../src/backend/vxlan/device.ts";
import {
  encodeVxlanLeaseData, isUnicastMac, parseVxlanLeaseData, vxlanPeerEntries, vxlanPeerEntries6,
} from "../../src/backend/vxlan/lease_data.ts";
import { type Lease, decodeLeaseAttrs, encodeLeaseAttrs } from "../../src/lease/lease.ts";
import { parseIPv4, parseIPv4Net, parseIPv6, parseIPv6Net } from "../../src/net/ip.ts";

describe("parseVxlanConfig()", () => {
  test("defaults: VNI 1, port 8472, nothing else on", () => {
    expect(parseVxlanConfig({ Type: "vxlan" })).toEqual({
      vni: 1, port: 8472, mtu: 0, gbp: false, learning: false, directRouting: false, disableTxChecksumOffload: false,
    });
  });

  test("keys are case-insensitive; Port 0 means 8472; VNI 0 is kept (as flanneld)", () => {
    expect(parseVxlanConfig({ type: "vxlan", vni: 4096, PORT: 4789, mtu: 9001, Gbp: true, learning: true, directrouting: true }))
      .toMatchObject({ vni: 4096, port: 4789, mtu: 9001, gbp: true, learning: true, directRouting: true });
    expect(parseVxlanConfig({ Port: 0 }).port).toBe(8472);
    expect(parseVxlanConfig({ VNI: 0 }).vni).toBe(0);
  });

  test("errors name the key, the value and the range", () => {
    expect(() => parseVxlanConfig({ VNI: 16777216 })).toThrow("Backend.VNI 16777216 must be a whole number from 0 to 16777215");
    expect(() => parseVxlanConfig({ Port: "8472" })).toThrow('Backend.Port "8472" must be a whole number from 0 to 65535');
    expect(() => parseVxlanConfig({ DirectRouting: "yes" })).toThrow('Backend.DirectRouting "yes" must be true or false');
  });

  test("device MTU is the underlay's minus 50; Backend.MTU overrides the interface's", () => {
    expect(vxlanDeviceMtu(parseVxlanConfig({}), 1500, "eth0")).toBe(1450);
    expect(vxlanDeviceMtu(parseVxlanConfig({ MTU: 9001 }), 1500, "eth0")).toBe(8951);
    expect(() => vxlanDeviceMtu(parseVxlanConfig({}), 0, "eth0")).toThrow("interface eth0 reports MTU 0");
  });

  test("flannel-v6.N's MTU is the underlay's minus 70 (flanneld's 50 is wrong: §12.9), and must carry IPv6's 1280", () => {
    expect(vxlanDeviceMtu(parseVxlanConfig({}), 1500, "eth0", 6)).toBe(1430);
    expect(vxlanDeviceMtu(parseVxlanConfig({ MTU: 9001 }), 1500, "eth0", 6)).toBe(8931);
    expect(() => vxlanDeviceMtu(parseVxlanConfig({}), 1340, "eth0", 6)).toThrow("vxlan device MTU would be 1270 (underlay 1340 - 70); IPv6 needs at least 1280");
  });
});

describe("vxlan BackendData", () => {
  test("encoded as flanneld writes it: VNI first, lowercase MAC", () => {
    const attrs = { publicIP: parseIPv4("192.168.64.3"), backendType: "vxlan", backendData: encodeVxlanLeaseData(1, "C6:D2:32:6F:8F:44") };
    expect(encodeLeaseAttrs(attrs)).toBe('{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}');
  });

  test("reads flanneld's value, the ≤ v0.13 form without VNI, and any key case", () => {
    const flanneld = decodeLeaseAttrs("k", '{"PublicIP":"192.168.64.3","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}');
    expect(parseVxlanLeaseData(flanneld.backendData)).toEqual({ vni: 1, vtepMAC: "c6:d2:32:6f:8f:44" });
    expect(parseVxlanLeaseData({ VtepMAC: "c6:d2:32:6f:8f:44" })).toEqual({ vtepMAC: "c6:d2:32:6f:8f:44" });
    expect(parseVxlanLeaseData({ vni: 7, vtepmac: "C6:D2:32:6F:8F:44" })).toEqual({ vni: 7, vtepMAC: "c6:d2:32:6f:8f:44" });
  });

  const bad: [string, unknown, string][] = [
    ["no data", undefined, "is not an object"],
    ["a string", "c6:d2:32:6f:8f:44", "is not an object"],
    ["missing VtepMAC", { VNI: 1 }, "BackendData.VtepMAC (missing) must be a MAC address string"],
    ["VtepMAC not a MAC", { VtepMAC: "c6:d2:32" }, 'BackendData.VtepMAC "c6:d2:32" is not a unicast MAC'],
    ["multicast VtepMAC", { VtepMAC: "01:00:5e:00:00:01" }, "is not a unicast MAC"],
    ["zero VtepMAC", { VtepMAC: "00:00:00:00:00:00" }, "is not a unicast MAC"],
    ["VNI not a number", { VNI: "1", VtepMAC: "c6:d2:32:6f:8f:44" }, 'BackendData.VNI "1" must be a whole number'],
  ];
  for (const [name, data, msg] of bad) {
    test(`rejected, never thrown: ${name}`, () => {
      const r = parseVxlanLeaseData(data);
      expect(typeof r).toBe("string");
      expect(r as string).toContain(msg);
    });
  }
});

describe("vxlanPeerEntries()", () => {
  const lease = (data: unknown): Lease => ({
    subnet: parseIPv4Net("10.244.3.0/24"), expiration: 0,
    attrs: { publicIP: parseIPv4("192.168.0.3"), backendType: "vxlan", backendData: data },
  });
  const MAC = "0a:00:00:00:03:03";

  test("neighbour, FDB entry and onlink route, as flanneld programs them", () => {
    expect(vxlanPeerEntries(lease({ VNI: 1, VtepMAC: MAC }), { dev: 4, iface: 2, direct: false })).toEqual({
      neighs: [{ dev: 4, ip: "10.244.3.0", mac: MAC }],
      fdbs: [{ dev: 4, mac: MAC, dst: "192.168.0.3" }],
      routes: [{ dst: "10.244.3.0/24", gw: "10.244.3.0", dev: 4, onlink: true }],
    });
  });

  test("a direct peer gets only a route via its PublicIP on the interface", () => {
    expect(vxlanPeerEntries(lease({ VtepMAC: MAC }), { dev: 4, iface: 2, direct: true })).toEqual({
      routes: [{ dst: "10.244.3.0/24", gw: "192.168.0.3", dev: 2 }], neighs: [], fdbs: [],
    });
  });

  test("bad BackendData is a reason to skip, naming the lease", () => {
    expect(vxlanPeerEntries(lease({ VNI: 1 }), { dev: 4, iface: 2, direct: false }))
      .toBe("skipping vxlan lease 10.244.3.0/24 (PublicIP 192.168.0.3): BackendData.VtepMAC (missing) must be a MAC address string");
  });
});

describe("vxlan over IPv6", () => {
  const MAC4 = "c6:d2:32:6f:8f:44";
  const MAC6 = "0a:58:0a:f4:01:06";

  test("a dual-stack lease value is byte-exact with flanneld's: BackendV6Data after BackendData, same shape", () => {
    const attrs = {
      publicIP: parseIPv4("192.0.2.11"), publicIPv6: parseIPv6("2001:db8::11"), backendType: "vxlan",
      backendData: encodeVxlanLeaseData(1, MAC4), backendV6Data: encodeVxlanLeaseData(1, MAC6.toUpperCase()),
    };
    const text = '{"PublicIP":"192.0.2.11","PublicIPv6":"2001:db8::11","BackendType":"vxlan",' +
      `"BackendData":{"VNI":1,"VtepMAC":"${MAC4}"},"BackendV6Data":{"VNI":1,"VtepMAC":"${MAC6}"}}`;
    expect(encodeLeaseAttrs(attrs)).toBe(text);
    expect(encodeLeaseAttrs(decodeLeaseAttrs("k", text))).toBe(text);
  });

  test("an IPv6-only lease value: PublicIP 0.0.0.0 and no BackendData, as flanneld writes it", () => {
    const attrs = { publicIP: 0, publicIPv6: parseIPv6("2001:db8::11"), backendType: "vxlan", backendV6Data: encodeVxlanLeaseData(1, MAC6) };
    expect(encodeLeaseAttrs(attrs)).toBe(`{"PublicIP":"0.0.0.0","PublicIPv6":"2001:db8::11","BackendType":"vxlan","BackendV6Data":{"VNI":1,"VtepMAC":"${MAC6}"}}`);
  });

  const lease6 = (data6: unknown): Lease => ({
    ipv6Subnet: parseIPv6Net("fd10:0:0:3::/64"), expiration: 0,
    attrs: { publicIP: 0, publicIPv6: parseIPv6("2001:db8::3"), backendType: "vxlan", backendV6Data: data6 },
  });

  test("IPv6 neighbour, FDB entry to the PublicIPv6 and onlink route on flannel-v6.N", () => {
    expect(vxlanPeerEntries6(lease6({ VNI: 1, VtepMAC: MAC6 }), { dev: 6, iface: 2, direct: false })).toEqual({
      neighs: [{ dev: 6, ip: "fd10:0:0:3::", mac: MAC6 }],
      fdbs: [{ dev: 6, mac: MAC6, dst: "2001:db8::3" }],
      routes: [{ dst: "fd10:0:0:3::/64", gw: "fd10:0:0:3::", dev: 6, onlink: true }],
    });
  });

  test("a direct IPv6 peer gets only a route via its PublicIPv6; bad BackendV6Data is named", () => {
    expect(vxlanPeerEntries6(lease6({ VtepMAC: MAC6 }), { dev: 6, iface: 2, direct: true })).toEqual({
      routes: [{ dst: "fd10:0:0:3::/64", gw: "2001:db8::3", dev: 2 }], neighs: [], fdbs: [],
    });
    expect(vxlanPeerEntries6(lease6({ VNI: 1, VtepMAC: "ff:ff:ff:ff:ff:ff" }), { dev: 6, iface: 2, direct: false }))
      .toBe('skipping vxlan lease fd10:0:0:3::/64 (PublicIPv6 2001:db8::3): BackendV6Data.VtepMAC "ff:ff:ff:ff:ff:ff" is not a unicast MAC address (xx:xx:xx:xx:xx:xx)');
  });
});

describe("host-gw", () => {
  test("IPv6: a route per family via the peer's PublicIP and PublicIPv6", () => {
    const l: Lease = {
      subnet: parseIPv4Net("10.244.3.0/24"), ipv6Subnet: parseIPv6Net("fd10:0:0:3::/64"), expiration: 0,
      attrs: { publicIP: parseIPv4("192.0.2.12"), publicIPv6: parseIPv6("2001:db8::12"), backendType: "host-gw" },
    };
    expect((hostgwPeerEntries(l, 2, { v4: true, v6: true }) as DataPathState).routes).toEqual([
      { dst: "10.244.3.0/24", gw: "192.0.2.12", dev: 2 }, { dst: "fd10:0:0:3::/64", gw: "2001:db8::12", dev: 2 },
    ]);
    expect((hostgwPeerEntries(l, 2, { v4: false, v6: true }) as DataPathState).routes).toEqual([{ dst: "fd10:0:0:3::/64", gw: "2001:db8::12", dev: 2 }]);
  });

  test("one route via the peer's PublicIP on the interface", () => {
    const l: Lease = { subnet: parseIPv4Net("10.244.3.0/24"), expiration: 0, attrs: { publicIP: parseIPv4("192.168.1.12"), backendType: "host-gw" } };
    expect(hostgwPeerEntries(l, 2)).toEqual({ routes: [{ dst: "10.244.3.0/24", gw: "192.168.1.12", dev: 2 }], neighs: [], fdbs: [] });
    expect(encodeLeaseAttrs({ publicIP: parseIPv4("192.168.1.12"), backendType: "host-gw" })).toBe('{"PublicIP":"192.168.1.12","PublicIPv6":null,"BackendType":"host-gw"}');
  });
});

describe("the vxlan device", () => {
  const want = { vni: 1, local: "192.168.0.1", underlayIndex: 2, port: 8472, learning: false, gbp: false };
  type LinkChange = Omit<Partial<Link>, "vxlan"> & { vxlan?: Partial<typeof want> };
  const link = (over: LinkChange = {}): Link => ({
    index: 4, name: "flannel.1", hwType: 1, flags: 0, up: true, lowerUp: true, kind: "vxlan", ...over,
    vxlan: { ...want, ...over.vxlan },
  });

  test("flannel.<VNI>", () => expect(vxlanDeviceName(4096)).toBe("flannel.4096"));

  test("a device made with the same parameters is compatible (MAC and MTU do not matter)", () => {
    expect(vxlanIncompatibility(link({ mac: "0e:00:00:00:00:01", mtu: 1400 }), want)).toBeUndefined();
  });

  const cases: [string, LinkChange, string][] = [
    ["not vxlan", { kind: "veth" }, "it is a veth link, not vxlan"],
    ["VNI", { vxlan: { vni: 2 } }, "its VNI is 2, want 1"],
    ["underlay", { vxlan: { underlayIndex: 3 } }, "its underlay is interface 3, want 2"],
    ["local", { vxlan: { local: "192.168.0.9" } }, "its local address is 192.168.0.9, want 192.168.0.1"],
    ["port", { vxlan: { port: 4789 } }, "its port is 4789, want 8472"],
    ["gbp", { vxlan: { gbp: true } }, "gbp is on, want off"],
  ];
  for (const [name, over, why] of cases) {
    test(`incompatible: ${name}`, () => {
      const l: Link = over.kind === "veth" ? { ...link(), kind: "veth", vxlan: undefined } : link(over);
      expect(vxlanIncompatibility(l, want)).toBe(why);
    });
  }

  test("random MACs are locally administered unicast", () => {
    for (let i = 0; i < 100; i++) {
      const mac = randomMac();
      expect(isUnicastMac(mac)).toBe(true);
      expect(parseInt(mac.slice(0, 2), 16) & 2).toBe(2);
    }
    expect(randomMac(() => new Uint8Array([0xff, 1, 2, 3, 4, 5]))).toBe("fe:01:02:03:04:05");
  });
});
