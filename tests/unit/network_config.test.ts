import { describe, expect, test } from "bun:test";
import { NetworkConfigError, parseNetworkConfig, subnetCapacity } from "../../src/config/network.ts";
import { formatIPv4, formatIPv4Net, formatIPv6 } from "../../src/net/ip.ts";

describe("parseNetworkConfig()", () => {
  test("fills flannel's defaults: /24 subnets, first subnet skipped, udp backend", () => {
    const c = parseNetworkConfig(`{"Network":"10.5.0.0/16"}`);
    expect(formatIPv4Net(c.network!)).toBe("10.5.0.0/16");
    expect(c.subnetLen).toBe(24);
    expect(formatIPv4(c.subnetMin)).toBe("10.5.1.0");
    expect(formatIPv4(c.subnetMax)).toBe("10.5.255.0");
    expect(c.backendType).toBe("udp");
    expect(c.enableIPv4).toBe(true);
    expect(c.enableIPv6).toBe(false);
    expect(subnetCapacity(c)).toBe(255);
  });

  test("keys are case-insensitive and Backend.Type is lower-cased", () => {
    const c = parseNetworkConfig(`{"network":"10.0.0.0/8","subnetlen":20,"BACKEND":{"type":"VXLAN","vni":4}}`);
    expect(c.subnetLen).toBe(20);
    expect(c.backendType).toBe("vxlan");
    expect(c.backend).toEqual({ type: "VXLAN", vni: 4 });
  });

  test("the compat doc's example parses", () => {
    const c = parseNetworkConfig(`{"Network":"10.0.0.0/8","SubnetLen":20,"SubnetMin":"10.10.0.0","SubnetMax":"10.99.0.0","Backend":{"Type":"udp","Port":7890}}`);
    expect(formatIPv4(c.subnetMin)).toBe("10.10.0.0");
    expect(formatIPv4(c.subnetMax)).toBe("10.99.0.0");
    expect(c.backendType).toBe("udp");
  });

  test.each([
    ["/23 network gets prefix+2", `{"Network":"10.0.0.0/23"}`, 25],
    ["/22 network gets /24", `{"Network":"10.0.0.0/22"}`, 24],
    ["/28 network gets /30", `{"Network":"10.0.0.0/28"}`, 30],
  ])("SubnetLen default: %s", (_name, text, len) => {
    expect(parseNetworkConfig(text).subnetLen).toBe(len);
  });

  test("dual stack defaults", () => {
    const c = parseNetworkConfig(`{"Network":"10.42.0.0/16","EnableIPv6":true,"IPv6Network":"2001:cafe:42::/56"}`);
    expect(c.ipv6SubnetLen).toBe(64);
    expect(formatIPv6(c.ipv6SubnetMin)).toBe("2001:cafe:42:1::");
    expect(formatIPv6(c.ipv6SubnetMax)).toBe("2001:cafe:42:ff::");
  });

  const bad: [string, string, string, RegExp][] = [
    ["missing Network", `{}`, "Network", /please define a correct Network/],
    ["bad Network", `{"Network":"10.0.0/8"}`, "Network", /"10.0.0\/8" is not a valid IPv4 CIDR/],
    ["SubnetLen 31", `{"Network":"10.0.0.0/8","SubnetLen":31}`, "SubnetLen", /SubnetLen 31 must be at most 30/],
    ["too few subnets", `{"Network":"10.0.0.0/24","SubnetLen":25}`, "SubnetLen", /at least four subnets/],
    ["network too small", `{"Network":"10.0.0.0/29"}`, "Network", /minimum useful network prefix is \/28/],
    ["SubnetMin outside", `{"Network":"10.0.0.0/16","SubnetMin":"10.1.0.0"}`, "SubnetMin", /not in the range of the Network/],
    ["SubnetMax unaligned", `{"Network":"10.0.0.0/16","SubnetMax":"10.0.5.7"}`, "SubnetMax", /not on a SubnetLen boundary \(\/24\): use 10.0.5.0/],
    ["SubnetLen not a number", `{"Network":"10.0.0.0/16","SubnetLen":"24"}`, "SubnetLen", /SubnetLen "24" must be a whole number/],
    ["Backend without Type", `{"Network":"10.0.0.0/16","Backend":{}}`, "Backend.Type", /must name a backend/],
    ["not JSON", `{"Network":`, "(json)", /not valid JSON/],
    ["IPv6 too small", `{"Network":"10.0.0.0/16","EnableIPv6":true,"IPv6Network":"fc00::/125"}`, "IPv6Network", /\/124/],
    ["both off", `{"EnableIPv4":false}`, "EnableIPv4", /enable at least one/],
  ];
  test.each(bad)("rejects %s, naming the field", (_name, text, field, msg) => {
    let err: unknown;
    try { parseNetworkConfig(text); } catch (e) { err = e; }
    expect(err).toBeInstanceOf(NetworkConfigError);
    expect((err as NetworkConfigError).field).toBe(field);
    expect((err as Error).message).toMatch(msg);
  });
});
