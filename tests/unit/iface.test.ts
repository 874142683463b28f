import { expect, test } from "bun:test";
import { type HostNetwork, parseProcNetRoute, selectInterface } from "../../src/net/iface.ts";
import { formatIPv4, parseIPv4 } from "../../src/net/ip.ts";

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
