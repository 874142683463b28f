import { expect, test } from "bun:test";
import { type HostNetwork, parseProcNetIPv6Route, parseProcNetRoute, selectInterface } from "../../src/net/iface.ts";
import { formatIPv4, formatIPv6, parseIPv4 } from "../../src/net/ip.ts";

const host: HostNetwork = {
  interfaces: [
    { name: "lo", index: 1, mtu: 65536, up: true, addrs: [{ family: 4, address: "127.0.0.1", prefixLen: 8, linkLocal: false }] },
    { name: "eth0", index: 2, mtu: 1500, up: true, addrs: [{ family: 4, address: "192.168.1.10", prefixLen: 24, linkLocal: false }] },
    { name: "eth1", index: 3, mtu: 9001, up: true, addrs: [{ family: 4, address: "169.254.0.9", prefixLen: 16, linkLocal: true }, { family: 4, address: "10.0.0.5", prefixLen: 8, linkLocal: false }] },
  ],
  routes4: [
    { dst: 0, len: 0, gateway: parseIPv4("192.168.1.1"), dev: "eth0", metric: 100 },
    { dst: parseIPv4("10.0.0.0"), len: 8, gateway: 0, dev: "eth1", metric: 0 },
  ],
};
const opts = { iface: [], ifaceRegex: [], ifaceCanReach: "", publicIP: "", publicIPv6: "", enableIPv4: true, enableIPv6: false };

test("selectInterface(): the default route's interface when nothing is given", () => {
  const e = selectInterface(host, opts);
  expect([e.name, formatIPv4(e.ifaceAddr), e.mtu]).toEqual(["eth0", "192.168.1.10", 1500]);
});
test("selectInterface(): --iface by IP or name, first match wins", () => {
  expect(selectInterface(host, { ...opts, iface: ["nope", "10.0.0.5"] }).name).toBe("eth1");
  expect(selectInterface(host, { ...opts, iface: ["eth1", "eth0"] }).name).toBe("eth1");
});
test("selectInterface(): --iface-regex matches IPs before names; global address preferred", () => {
  const e = selectInterface(host, { ...opts, ifaceRegex: ["^eth1$"] });
  expect([e.name, formatIPv4(e.ifaceAddr)]).toEqual(["eth1", "10.0.0.5"]);
  expect(selectInterface(host, { ...opts, ifaceRegex: ["^192\\.168\\."] }).name).toBe("eth0");
});
test("selectInterface(): --iface-can-reach follows the route", () => {
  expect(selectInterface(host, { ...opts, ifaceCanReach: "10.9.9.9" }).name).toBe("eth1");
});
test("selectInterface(): --public-ip alone selects the interface and must be local", () => {
  expect(selectInterface(host, { ...opts, publicIP: "10.0.0.5" }).name).toBe("eth1");
  expect(() => selectInterface(host, { ...opts, publicIP: "8.8.8.8" })).toThrow(/not an address of this host/);
});
test("selectInterface(): --public-ip with --iface advertises it (NAT)", () => {
  const e = selectInterface(host, { ...opts, iface: ["eth0"], publicIP: "203.0.113.9" });
  expect([formatIPv4(e.ifaceAddr), formatIPv4(e.extAddr)]).toEqual(["192.168.1.10", "203.0.113.9"]);
});
test("selectInterface(): flannel's error when nothing matches", () => {
  expect(() => selectInterface(host, { ...opts, iface: ["eth9"] })).toThrow(/^Failed to find interface to use that matches the interfaces and\/or regexes provided/);
  expect(() => selectInterface({ ...host, routes4: [] }, opts)).toThrow("Failed to get default interface: Unable to find default route");
});
test("parseProcNetRoute() decodes little-endian hex", () => {
  const r = parseProcNetRoute("Iface\tDestination\tGateway\tFlags\tRefCnt\tUse\tMetric\tMask\n" +
    "eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\n" + "eth0\t000200C0\t00000000\t0001\t0\t0\t5\t00FFFFFF\n");
  expect(r).toEqual([
    { dev: "eth0", dst: 0, gateway: parseIPv4("192.0.2.1"), metric: 0, len: 0 },
    { dev: "eth0", dst: parseIPv4("192.0.2.0"), gateway: 0, metric: 5, len: 24 },
  ]);
});

// ---------------------------------------------------------------- IPv6

const host6: HostNetwork = {
  interfaces: [
    { name: "eth0", index: 2, mtu: 1500, up: true, addrs: [
      { family: 4, address: "192.168.1.10", prefixLen: 24, linkLocal: false },
      { family: 6, address: "fe80::1", prefixLen: 64, linkLocal: true },
      { family: 6, address: "2001:db8:1::10", prefixLen: 64, linkLocal: false },
    ] },
    { name: "eth1", index: 3, mtu: 9000, up: true, addrs: [
      { family: 4, address: "10.0.0.5", prefixLen: 8, linkLocal: false },
      { family: 6, address: "2001:db8:2::5", prefixLen: 64, linkLocal: false },
    ] },
  ],
  routes4: [{ dst: 0, len: 0, gateway: parseIPv4("192.168.1.1"), dev: "eth0", metric: 100 }],
  routes6: parseProcNetIPv6Route([
    "20010db8000100000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth0",
    "20010db8000200000000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000100 00000001 00000000 00000001     eth1",
    "20010db8009900000000000000000000 30 00000000000000000000000000000000 00 20010db8000200000000000000000001 00000400 00000001 00000000 00000003     eth1",
    "20010db8009900990000000000000000 40 00000000000000000000000000000000 00 00000000000000000000000000000000 00000400 00000001 00000000 00200200       lo",
    "00000000000000000000000000000000 00 00000000000000000000000000000000 00 20010db8000100000000000000000001 00000400 00000003 00000000 00000003     eth0",
  ].join("\n")),
  defaultDev6: "eth0",
};
const dual = { ...opts, enableIPv6: true };

test("parseProcNetIPv6Route() decodes /proc/net/ipv6_route and leaves unreachable routes out", () => {
  expect(host6.routes6!.map((r) => `${formatIPv6(r.dst)}/${r.len} via ${formatIPv6(r.gateway)} dev ${r.dev} metric ${r.metric}`)).toEqual([
    "2001:db8:1::/64 via :: dev eth0 metric 256",
    "2001:db8:2::/64 via :: dev eth1 metric 256",
    "2001:db8:99::/48 via 2001:db8:2::1 dev eth1 metric 1024",
    "::/0 via 2001:db8:1::1 dev eth0 metric 1024",
  ]);
});
test("selectInterface(): --iface-can-reach with an IPv6 address follows the IPv6 routes (flannel #2081)", () => {
  const e = selectInterface(host6, { ...dual, ifaceCanReach: "2001:db8:99::7" });
  expect([e.name, formatIPv4(e.ifaceAddr), formatIPv6(e.ifaceAddr6!)]).toEqual(["eth1", "10.0.0.5", "2001:db8:2::5"]);
  expect(selectInterface(host6, { ...dual, ifaceCanReach: "2001:db8:77::1" }).name).toBe("eth0"); // the default route
  expect(selectInterface(host6, { ...dual, enableIPv4: false, ifaceCanReach: "2001:db8:2::9" }).name).toBe("eth1");
  expect(() => selectInterface(host6, { ...dual, ifaceCanReach: "eth1" })).toThrow('invalid --iface-can-reach "eth1": not an IPv4 or IPv6 address');
});
test("selectInterface(): IPv6 address selection prefers global; --iface-regex matches IPv6 addresses in an IPv6-only network", () => {
  expect(formatIPv6(selectInterface(host6, dual).ifaceAddr6!)).toBe("2001:db8:1::10");
  expect(selectInterface(host6, { ...dual, enableIPv4: false, ifaceRegex: ["^2001:db8:2:"] }).name).toBe("eth1");
  expect(selectInterface(host6, { ...dual, enableIPv4: false }).name).toBe("eth0"); // the IPv6 default route's
});
test("selectInterface(): --public-ipv6 is advertised; alone in an IPv6-only network it selects the interface", () => {
  const e = selectInterface(host6, { ...dual, iface: ["eth0"], publicIPv6: "2001:db8:ff::1" });
  expect([formatIPv6(e.ifaceAddr6!), formatIPv6(e.extAddr6!)]).toEqual(["2001:db8:1::10", "2001:db8:ff::1"]);
  expect(selectInterface(host6, { ...dual, enableIPv4: false, publicIPv6: "2001:db8:2::5" }).name).toBe("eth1");
  expect(() => selectInterface(host6, { ...dual, iface: ["eth0"], publicIPv6: "nope" })).toThrow('invalid --public-ipv6 "nope": not an IPv6 address');
});
