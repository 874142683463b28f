/**
 * Longest-prefix match of both cores against a brute-force oracle on random tables (IPv4 with
 * and without the direct-index fast path, IPv6), through inserts, replacements and deletes,
 * single and batch lookups.
 */
import { expect, test } from "bun:test";
import * as L from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import { createReferenceCore } from "../../src/core/reference.ts";
import type { Core } from "../../src/core/types.ts";
import { rng } from "./packets.ts";

const mask4 = (len: number) => (len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0);

function oracle4(routes: Map<string, number>, addr: number): number {
  let best = -1, bestLen = -1;
  for (const [k, v] of routes) {
    const [p, l] = k.split("/").map(Number) as [number, number];
    if (l > bestLen && ((addr & mask4(l)) >>> 0) === p) { best = v; bestLen = l; }
  }
  return best;
}

async function bothCores(): Promise<Core[]> {
  return [await loadCore(), createReferenceCore()];
}

const v4Cases: [boolean, number[]][] = [
  [false, [0, 8, 12, 16, 20, 23, 24, 24, 24, 25, 28, 32]],
  [true, [0, 8, 12, 16, 20, 23, 24, 24, 24, 25, 28, 32]],
  [true, [0, 8, 12, 16, 20, 23, 24, 24, 24, 24, 24, 24]], // nothing longer than a subnet: direct hits
];
for (const [direct, lengths] of v4Cases) {
  test(`IPv4 LPM matches brute force over random inserts and deletes (direct index ${direct ? "on" : "off"}, lengths ${lengths.at(-1)} max)`, async () => {
    const cores = await bothCores();
    const rand = rng(direct ? 7 + lengths.at(-1)! : 3);
    if (direct) for (const c of cores) expect(c.setClusterNetwork(0x0af40000, 16, 24)).toBe(0);
    const routes = new Map<string, number>();
    const near = () => {
      // Addresses clustered in 10.244/16 and a few /8s so prefixes overlap a lot.
      const base = [0x0af40000, 0x0a000000, 0xc0a80000, (rand() * 2 ** 32) >>> 0][Math.floor(rand() * 4)]!;
      return (base + Math.floor(rand() * (rand() < 0.5 ? 65536 : 2 ** 24))) >>> 0;
    };
    const randLen = () => lengths[Math.floor(rand() * lengths.length)]!;
    for (let round = 0; round < 30; round++) {
      for (let i = 0; i < 60; i++) {
        const len = randLen();
        const p = (near() & mask4(len)) >>> 0;
        const v = Math.floor(rand() * 1000);
        routes.set(`${p}/${len}`, v);
        for (const c of cores) expect(c.route4Insert(p, len, v)).toBe(0);
      }
      const keys = [...routes.keys()];
      for (let i = 0; i < 25 && keys.length; i++) {
        const k = keys.splice(Math.floor(rand() * keys.length), 1)[0]!;
        routes.delete(k);
        const [p, l] = k.split("/").map(Number) as [number, number];
        for (const c of cores) expect(c.route4Delete(p, l)).toBe(0);
      }
      for (const c of cores) expect(c.route4Delete(0x01020300, 24)).toBe(routes.has(`${0x01020300}/24`) ? 0 : L.ERR_NOT_FOUND);
      routes.delete(`${0x01020300}/24`);
      const addrs = Array.from({ length: 400 }, near);
      const want = addrs.map((a) => oracle4(routes, a));
      for (const c of cores) {
        expect(addrs.map((a) => c.route4Lookup(a))).toEqual(want);
        c.regions.lookupIn4.set(addrs);
        expect(c.route4LookupBatch(addrs.length)).toBe(want.filter((v) => v >= 0).length);
        expect(Array.from(c.regions.lookupOut.subarray(0, addrs.length))).toEqual(want);
      }
    }
    for (const c of cores) {
      c.routeClear();
      expect(c.route4Lookup(0x0af40101)).toBe(L.NO_ROUTE);
      expect(c.route4Insert(0, 33, 1)).toBe(L.ERR_INVALID);
      expect(c.route4Insert(0, 8, L.ROUTE_VALUE_MAX + 1)).toBe(L.ERR_INVALID);
    }
  }, 60_000);
}

test("IPv6 LPM matches brute force over random inserts and deletes", async () => {
  const cores = await bothCores();
  const rand = rng(11);
  const routes = new Map<string, [bigint, number, number]>();
  const mask6 = (len: number) => (len === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len)) - 1n));
  const bases = [0xfd000000000000000000000000000000n, 0x20010db8000000000000000000000000n, 0n];
  const near = () => {
    let a = bases[Math.floor(rand() * 3)]!;
    for (let i = 0; i < 8; i++) if (rand() < 0.4) a ^= BigInt(Math.floor(rand() * 65536)) << BigInt(i * 16);
    return a;
  };
  const put = (c: Core, a: bigint, at: Uint8Array) => {
    for (let i = 15; i >= 0; i--, a >>= 8n) at[i] = Number(a & 0xffn);
    void c;
  };
  const oracle = (a: bigint) => {
    let best = -1, bestLen = -1;
    for (const [p, l, v] of routes.values()) if (l > bestLen && (a & mask6(l)) === p) { best = v; bestLen = l; }
    return best;
  };
  const lens = [0, 16, 32, 48, 56, 60, 64, 64, 64, 72, 96, 112, 127, 128];
  for (let round = 0; round < 20; round++) {
    for (let i = 0; i < 50; i++) {
      const len = lens[Math.floor(rand() * lens.length)]!;
      const p = near() & mask6(len);
      const v = Math.floor(rand() * 1000);
      routes.set(`${p}/${len}`, [p, len, v]);
      for (const c of cores) { put(c, p, c.regions.arg); expect(c.route6Insert(len, v)).toBe(0); }
    }
    const keys = [...routes.keys()];
    for (let i = 0; i < 20; i++) {
      const k = keys.splice(Math.floor(rand() * keys.length), 1)[0]!;
      const [p, l] = routes.get(k)!;
      routes.delete(k);
      for (const c of cores) { put(c, p, c.regions.arg); expect(c.route6Delete(l)).toBe(0); }
    }
    const addrs = Array.from({ length: 300 }, near);
    const want = addrs.map(oracle);
    for (const c of cores) {
      expect(addrs.map((a) => { put(c, a, c.regions.arg); return c.route6Lookup(); })).toEqual(want);
      addrs.forEach((a, i) => put(c, a, c.regions.lookupIn.subarray(i * 16, i * 16 + 16)));
      c.route6LookupBatch(addrs.length);
      expect(Array.from(c.regions.lookupOut.subarray(0, addrs.length))).toEqual(want);
    }
  }
}, 60_000);
