import { expect, test } from "bun:test";
import { diffLeases } from "../../src/lease/diff.ts";
import { type Lease, leaseKey } from "../../src/lease/lease.ts";
import { parseIPv4Net } from "../../src/net/ip.ts";

const l = (subnet: string, publicIP: number, mac = "aa:aa:aa:aa:aa:aa"): Lease => ({
  subnet: parseIPv4Net(subnet), attrs: { publicIP, backendType: "vxlan", backendData: { VNI: 1, VtepMAC: mac } }, expiration: 0,
});
const map = (...ls: Lease[]) => new Map(ls.map((x) => [leaseKey(x), x]));

test("diffLeases() reports gone leases as removed and new ones as added", () => {
  const a = l("10.0.1.0/24", 1), b = l("10.0.2.0/24", 2), c = l("10.0.3.0/24", 3);
  expect(diffLeases(map(a, b), [b, c])).toEqual([{ type: "removed", lease: a }, { type: "added", lease: c }]);
});

test("diffLeases() turns changed attributes into an added event (flanneld ignores them)", () => {
  const old = l("10.0.1.0/24", 1, "aa:aa:aa:aa:aa:aa");
  const now = l("10.0.1.0/24", 1, "bb:bb:bb:bb:bb:bb");
  expect(diffLeases(map(old), [now])).toEqual([{ type: "added", lease: now }]);
});

test("diffLeases() says nothing for an unchanged set", () => {
  const a = l("10.0.1.0/24", 1);
  expect(diffLeases(map(a), [{ ...a, etcdLease: "99" }])).toEqual([]);
});
