/**
 * Tables for the pure planner: desired and actual kernel state in, `{ add, del }` out.
 */
import { describe, expect, test } from "bun:test";
import { parseIPv4Net, parseIPv6Net } from "../../src/net/ip.ts";
import {
  type DataPathState, type FdbItem, type NeighItem, type PlanScope, type RouteItem, additionsOnly, isEmptyPlan,
  isOwnedPrefix, mergeStates, planDataPath, planFdbs, planNeighs, planRoutes,
} from "../../src/backend/route_plan.ts";

const FL = 4; // flannel.1
const ETH = 2; // the external interface
const scope: PlanScope = { network: parseIPv4Net("10.244.0.0/16"), own: parseIPv4Net("10.244.0.0/24") };

const vx = (n: number): RouteItem => ({ dst: `10.244.${n}.0/24`, gw: `10.244.${n}.0`, dev: FL, onlink: true });
const direct = (n: number): RouteItem => ({ dst: `10.244.${n}.0/24`, gw: `192.168.0.${n}`, dev: ETH });
const neigh = (n: number, mac = `0a:00:00:00:00:${n.toString(16).padStart(2, "0")}`): NeighItem => ({ dev: FL, ip: `10.244.${n}.0`, mac });
const fdb = (n: number, dst = `192.168.0.${n}`): FdbItem => ({ dev: FL, mac: `0a:00:00:00:00:${n.toString(16).padStart(2, "0")}`, dst });

describe("planRoutes()", () => {
  const cases: [string, RouteItem[], RouteItem[], { add: RouteItem[]; del: RouteItem[] }][] = [
    ["already right → nothing", [vx(1), vx(2)], [vx(2), vx(1)], { add: [], del: [] }],
    ["missing → added", [vx(1), vx(2)], [vx(1)], { add: [vx(2)], del: [] }],
    ["stale (peer gone) → deleted", [vx(1)], [vx(1), vx(2)], { add: [], del: [vx(2)] }],
    ["wrong gateway → replaced, not deleted", [vx(1)], [{ ...vx(1), gw: "10.244.1.9" }], { add: [vx(1)], del: [] }],
    ["vxlan ↔ direct routing → replaced in place", [direct(1)], [vx(1)], { add: [direct(1)], del: [] }],
    ["onlink flag missing → replaced", [vx(1)], [{ ...vx(1), onlink: false }], { add: [vx(1)], del: [] }],
    ["own subnet never removed", [], [{ dst: "10.244.0.0/24", gw: "10.244.0.5", dev: FL, onlink: true }], { add: [], del: [] }],
    ["inside own subnet never removed", [], [{ dst: "10.244.0.128/25", dev: FL }], { add: [], del: [] }],
    ["outside Network never removed", [], [{ dst: "10.50.0.0/24", gw: "10.50.0.0", dev: FL, onlink: true }, { dst: "0.0.0.0/0", gw: "192.168.0.254", dev: ETH }], { add: [], del: [] }],
    ["the Network route itself never removed", [], [{ dst: "10.244.0.0/16", dev: FL }], { add: [], del: [] }],
    ["a host-gw leftover on the interface → deleted", [vx(1)], [vx(1), direct(9)], { add: [], del: [direct(9)] }],
    ["another metric is another route", [vx(1)], [vx(1), { ...vx(1), metric: 100 }], { add: [], del: [{ ...vx(1), metric: 100 }] }],
    ["nothing at all", [], [], { add: [], del: [] }],
  ];
  for (const [name, desired, actual, want] of cases) {
    test(name, () => expect(planRoutes(desired, actual, scope)).toEqual(want));
  }
});

describe("planNeighs()", () => {
  const cases: [string, NeighItem[], NeighItem[], { add: NeighItem[]; del: NeighItem[] }][] = [
    ["already right → nothing (MAC case ignored)", [neigh(1)], [{ ...neigh(1), mac: neigh(1).mac.toUpperCase() }], { add: [], del: [] }],
    ["new VtepMAC → replaced", [neigh(1, "0a:00:00:00:00:99")], [neigh(1)], { add: [neigh(1, "0a:00:00:00:00:99")], del: [] }],
    ["kernel-resolved entry for a peer → made permanent", [neigh(1)], [{ ...neigh(1), permanent: false }], { add: [neigh(1)], del: [] }],
    ["kernel-resolved stray → left to the kernel", [], [{ ...neigh(7), permanent: false }], { add: [], del: [] }],
    ["stale permanent → deleted", [neigh(1)], [neigh(1), neigh(2)], { add: [], del: [neigh(2)] }],
    ["outside Network never removed", [], [{ dev: FL, ip: "10.50.0.0", mac: "0a:00:00:00:50:50" }], { add: [], del: [] }],
    ["own subnet never removed", [], [{ dev: FL, ip: "10.244.0.7", mac: "0a:00:00:00:50:50" }], { add: [], del: [] }],
  ];
  for (const [name, desired, actual, want] of cases) {
    test(name, () => expect(planNeighs(desired, actual, scope)).toEqual(want));
  }
});

describe("planFdbs()", () => {
  const cases: [string, FdbItem[], FdbItem[], { add: FdbItem[]; del: FdbItem[] }][] = [
    ["already right → nothing", [fdb(1), fdb(2)], [fdb(2), fdb(1)], { add: [], del: [] }],
    ["peer moved to a new PublicIP → new remote added, old one deleted", [fdb(1, "192.168.0.77")], [fdb(1)], { add: [fdb(1, "192.168.0.77")], del: [fdb(1)] }],
    ["extra remote of a wanted MAC → deleted", [fdb(1)], [fdb(1), fdb(1, "192.168.0.99")], { add: [], del: [fdb(1, "192.168.0.99")] }],
    ["stale → deleted", [], [fdb(3)], { add: [], del: [fdb(3)] }],
    ["all-zero (flood) entries never removed", [], [{ dev: FL, mac: "00:00:00:00:00:00", dst: "192.168.0.1" }], { add: [], del: [] }],
  ];
  for (const [name, desired, actual, want] of cases) {
    test(name, () => expect(planFdbs(desired, actual)).toEqual(want));
  }
});

describe("planDataPath()", () => {
  const peer = (n: number): DataPathState => ({ routes: [vx(n)], neighs: [neigh(n)], fdbs: [fdb(n)] });
  const both: DataPathState = { routes: [vx(1), vx(2)], neighs: [neigh(1), neigh(2)], fdbs: [fdb(1), fdb(2)] };

  test("a restart over the same kernel state plans nothing", () => {
    expect(isEmptyPlan(planDataPath(both, both, scope))).toBe(true);
  });

  test("a peer that vanished while down: its three entries are deleted, nothing added", () => {
    expect(planDataPath(peer(1), both, scope)).toEqual({ add: { routes: [], neighs: [], fdbs: [] }, del: peer(2) });
  });

  test("additionsOnly() keeps the adds and drops the deletes (the periodic check)", () => {
    const p = additionsOnly(planDataPath(peer(2), peer(1), scope));
    expect(p).toEqual({ add: peer(2), del: { routes: [], neighs: [], fdbs: [] } });
  });

  test("dual stack: a vanished peer's IPv6 entries go like its IPv4 ones; link-local, kernel-resolved and own entries stay", () => {
    const s: PlanScope = { ...scope, network6: parseIPv6Net("fd10::/48"), own6: parseIPv6Net("fd10::/64") };
    const V6 = 6;
    const peer6 = (n: number): DataPathState => ({
      routes: [{ dst: `fd10:0:0:${n}::/64`, gw: `fd10:0:0:${n}::`, dev: V6, onlink: true }],
      neighs: [{ dev: V6, ip: `fd10:0:0:${n}::`, mac: `0a:00:00:00:06:0${n}` }],
      fdbs: [{ dev: V6, mac: `0a:00:00:00:06:0${n}`, dst: `2001:db8::${n}` }],
    });
    const kernelOwn: DataPathState = {
      routes: [{ dst: "fd10::/128", dev: V6, metric: 256 }, { dst: "fe80::/64", dev: V6, metric: 256 }],
      neighs: [{ dev: V6, ip: "fe80::1", mac: "0a:00:00:00:00:01", permanent: false }, { dev: V6, ip: "fd10:0:0:3::", mac: "0a:00:00:00:00:03", permanent: false }],
      fdbs: [],
    };
    const desired = mergeStates([peer(1), peer6(1)]);
    const actual = mergeStates([both, peer6(1), peer6(2), kernelOwn]);
    expect(planDataPath(desired, actual, s)).toEqual({ add: { routes: [], neighs: [], fdbs: [] }, del: mergeStates([peer(2), peer6(2)]) });
  });

  test("1000 peers plan in a few milliseconds", () => {
    const many: DataPathState = {
      routes: Array.from({ length: 1000 }, (_, i) => ({ dst: `10.${128 + (i >> 8)}.${i & 255}.0/24`, gw: `10.${128 + (i >> 8)}.${i & 255}.0`, dev: FL, onlink: true })),
      neighs: [], fdbs: [],
    };
    const t0 = performance.now();
    const p = planDataPath(many, many, { network: parseIPv4Net("10.128.0.0/9") });
    expect(isEmptyPlan(p)).toBe(true);
    expect(performance.now() - t0).toBeLessThan(100);
  });
});

describe("isOwnedPrefix()", () => {
  const cases: [string, boolean][] = [
    ["10.244.1.0/24", true], ["10.244.1.0", true], ["10.244.0.0/24", false], ["10.244.0.9", false],
    ["10.244.0.0/16", false], ["10.0.0.0/8", false], ["10.245.0.0/24", false], ["fd00::/64", false], ["junk", false],
  ];
  for (const [prefix, owned] of cases) test(`${prefix} → ${owned}`, () => expect(isOwnedPrefix(prefix, scope)).toBe(owned));

  test("IPv6 prefixes are owned inside network6 and outside own6", () => {
    const s6: PlanScope = { network6: { ip: 0xfd10n << 112n, len: 48 }, own6: { ip: 0xfd10n << 112n, len: 64 } };
    expect(isOwnedPrefix("fd10:0:0:1::/64", s6)).toBe(true);
    expect(isOwnedPrefix("fd10::/64", s6)).toBe(false);
    expect(isOwnedPrefix("fd11::/64", s6)).toBe(false);
  });
});
