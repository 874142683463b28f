import { describe, expect, test } from "bun:test";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { allocateSubnet, isCompatible, NetworkFullError } from "../../src/lease/allocate.ts";
import type { Lease } from "../../src/lease/lease.ts";
import { formatIPv4Net, formatIPv6Net, parseIPv4, parseIPv4Net, parseIPv6, parseIPv6Net } from "../../src/net/ip.ts";

const cfg = parseNetworkConfig(`{"Network":"10.5.0.0/16"}`);
const lease = (subnet: string, publicIP: string, etcdLease = "7"): Lease => ({
  subnet: parseIPv4Net(subnet), attrs: { publicIP: parseIPv4(publicIP) }, expiration: 0, etcdLease,
});
const first = () => 0;

describe("allocateSubnet()", () => {
  test("reuses the lease of the same public IP", () => {
    const own = lease("10.5.7.0/24", "192.168.0.2");
    const plan = allocateSubnet({ cfg, leases: [lease("10.5.1.0/24", "192.168.0.1"), own], publicIP: parseIPv4("192.168.0.2") });
    expect(plan).toEqual({ kind: "reuse", lease: own, stale: [] });
  });

  test("drops our lease when it no longer fits the config, then allocates", () => {
    const own = lease("10.5.7.0/25", "192.168.0.2");
    const plan = allocateSubnet({ cfg, leases: [own], publicIP: parseIPv4("192.168.0.2"), random: first });
    expect(plan.kind).toBe("create");
    expect(plan.stale).toEqual([own]);
    if (plan.kind === "create") expect(formatIPv4Net(plan.subnet!)).toBe("10.5.1.0/24");
  });

  test("takes the previous subnet from subnet.env when it is free", () => {
    const plan = allocateSubnet({ cfg, leases: [], publicIP: 1, previous: { subnet: parseIPv4Net("10.5.9.0/24") } });
    expect(plan.kind === "create" && formatIPv4Net(plan.subnet!)).toBe("10.5.9.0/24");
  });

  test("does not take the previous subnet when another host holds it", () => {
    const plan = allocateSubnet({ cfg, leases: [lease("10.5.9.0/24", "10.9.9.9")], publicIP: 1, previous: { subnet: parseIPv4Net("10.5.9.0/24") }, random: first });
    expect(plan.kind === "create" && formatIPv4Net(plan.subnet!)).toBe("10.5.1.0/24");
  });

  test("picks at random among the first 100 free subnets, skipping held ones", () => {
    const held = [lease("10.5.1.0/24", "1.1.1.1"), lease("10.5.3.0/24", "1.1.1.2")];
    const seen: number[] = [];
    const plan = allocateSubnet({ cfg, leases: held, publicIP: 9, random: (n) => { seen.push(n); return 1; } });
    expect(seen).toEqual([100]);
    expect(plan.kind === "create" && formatIPv4Net(plan.subnet!)).toBe("10.5.4.0/24");
  });

  test("excludes subnets that just lost a create race", () => {
    const plan = allocateSubnet({ cfg, leases: [], publicIP: 9, random: first, exclude: new Set(["10.5.1.0/24"]) });
    expect(plan.kind === "create" && formatIPv4Net(plan.subnet!)).toBe("10.5.2.0/24");
  });

  test("a full network is a clear error naming the network and its size", () => {
    const small = parseNetworkConfig(`{"Network":"10.5.0.0/28"}`); // /30s: 3 usable (first skipped)
    const leases = ["10.5.0.4/30", "10.5.0.8/30", "10.5.0.12/30"].map((s, i) => lease(s, `1.1.1.${i}`));
    expect(() => allocateSubnet({ cfg: small, leases, publicIP: 9 })).toThrow(NetworkFullError);
    expect(() => allocateSubnet({ cfg: small, leases, publicIP: 9 })).toThrow("out of subnets: network 10.5.0.0/28 has room for 3 /30 subnets and all are leased");
  });

  test("isCompatible() checks the range and the length", () => {
    expect(isCompatible(cfg, { subnet: parseIPv4Net("10.5.255.0/24") })).toBe(true);
    expect(isCompatible(cfg, { subnet: parseIPv4Net("10.5.0.0/24") })).toBe(false); // first subnet skipped
    expect(isCompatible(cfg, { subnet: parseIPv4Net("10.6.0.0/24") })).toBe(false);
  });
});

describe("allocateSubnet(), IPv6-only network (EnableIPv4 false: compat §12.7)", () => {
  const cfg6 = parseNetworkConfig(`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd10::/48"}`);
  // Every IPv6-only lease has PublicIP 0.0.0.0: only PublicIPv6 tells them apart.
  const lease6 = (subnet: string, publicIPv6: string): Lease => ({
    ipv6Subnet: parseIPv6Net(subnet), attrs: { publicIP: 0, publicIPv6: parseIPv6(publicIPv6) }, expiration: 0, etcdLease: "7",
  });

  test("reuses the lease of our public IPv6, not the first lease with PublicIP 0.0.0.0 (flanneld's etcd mode does)", () => {
    const own = lease6("fd10:0:0:7::/64", "2001:db8::2");
    const plan = allocateSubnet({ cfg: cfg6, leases: [lease6("fd10:0:0:1::/64", "2001:db8::1"), own], publicIP: 0, publicIPv6: parseIPv6("2001:db8::2") });
    expect(plan).toEqual({ kind: "reuse", lease: own, stale: [] });
  });

  test("allocates only an IPv6 subnet, skipping held ones, or takes the previous one", () => {
    const held = [lease6("fd10:0:0:1::/64", "2001:db8::1")];
    const plan = allocateSubnet({ cfg: cfg6, leases: held, publicIP: 0, publicIPv6: parseIPv6("2001:db8::3"), random: first });
    expect(plan.kind === "create" && [plan.subnet, formatIPv6Net(plan.ipv6Subnet!)]).toEqual([undefined, "fd10:0:0:2::/64"]);
    const prev = allocateSubnet({ cfg: cfg6, leases: held, publicIP: 0, publicIPv6: parseIPv6("2001:db8::3"), previous: { ipv6Subnet: parseIPv6Net("fd10:0:0:9::/64") } });
    expect(prev.kind === "create" && formatIPv6Net(prev.ipv6Subnet!)).toBe("fd10:0:0:9::/64");
  });

  test("a lease with an IPv4 subnet does not fit an IPv6-only network", () => {
    expect(isCompatible(cfg6, { ipv6Subnet: parseIPv6Net("fd10:0:0:9::/64") })).toBe(true);
    expect(isCompatible(cfg6, { subnet: parseIPv4Net("10.5.9.0/24"), ipv6Subnet: parseIPv6Net("fd10:0:0:9::/64") })).toBe(false);
  });
});
