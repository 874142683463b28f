/**
 * @module Benchmark of the packet core (prints, asserts nothing): packets/s and lookups/s of the
 * Wasm core against the TypeScript reference in the same process, for batch sizes 1, 32 and
 * 256, and the cost of one JS -> Wasm call of a trivial export.
 *
 *   bun bench/core.ts            (build first: bun tools/build.ts --no-exe)
 */
import * as L from "../src/core/layout.ts";
import { loadCore } from "../src/core/loader.ts";
import { createReferenceCore } from "../src/core/reference.ts";
import type { Core } from "../src/core/types.ts";
import { buildPacket, rng, v4, vnetHdr } from "../tests/core/packets.ts";

const BATCHES = [1, 32, 256];
const SLOT = 2048;
const rand = rng(1);

/** 1000 peers in 10.244.0.0/16 as /24 leases (direct index on), plus some other routes. */
function setup(core: Core): void {
  core.setClusterNetwork(0x0af40000, 16, 24);
  for (let i = 2; i < 252; i++) {
    core.peerSet(i, (0xc0a80000 | i) >>> 0, 8285, (0x0af40000 | (i << 8)) >>> 0, 24);
    core.route4Insert((0x0af40000 | (i << 8)) >>> 0, 24, i);
  }
  for (let i = 0; i < 1000; i++) core.route4Insert((Math.floor(rand() * 2 ** 32) & 0xffffff00) >>> 0, 24, 2 + (i % 250));
  core.route4Insert(0xac100000, 12, 3);
}

/** Guards the figures: every packet of the last call must have been forwarded. */
function expectAllOk(core: Core, descs: number, n: number, what: string): void {
  for (let i = 0; i < n; i++) {
    const v = core.view.getUint16(descs + i * 16 + 14, true);
    if (v !== L.V_OK) throw new Error(`bench ${what} (${core.kind}): packet ${i} got verdict ${v}, not forwarded`);
  }
}

/** Runs `fn` repeatedly for ~`ms` and returns calls per second. */
function rate(fn: () => void, ms = 400): number {
  for (let i = 0; i < 50; i++) fn();
  let n = 0;
  const t0 = performance.now();
  let t = t0;
  while (t - t0 < ms) {
    for (let i = 0; i < 20; i++) fn();
    n += 20;
    t = performance.now();
  }
  return (n * 1000) / (t - t0);
}

const fmt = (x: number) => (x >= 1e6 ? `${(x / 1e6).toFixed(2)} M` : `${(x / 1e3).toFixed(1)} k`);

async function main(): Promise<void> {
  const wasm = await loadCore();
  const ref = createReferenceCore();
  for (const c of [wasm, ref]) setup(c);

  // Egress: 1400-byte UDP packets to random peers, forwarded in place (TTL reset between calls
  // by rewriting one byte and the checksum: host work, the same for both).
  const packets = Array.from({ length: 256 }, (_, i) =>
    buildPacket({ src: v4(10, 244, 1, 2), dst: v4(10, 244, 2 + (i % 250), 9), proto: 17, ttl: 64, payload: new Uint8Array(1372) }));
  const ttlFix = packets.map((p) => [p[8]!, p[10]!, p[11]!] as const);
  console.log("packet core benchmark (Bun " + Bun.version + ")");
  console.log("\negress, 1400-byte IPv4 UDP, forward in place (lookup, TTL, RFC 1624):");
  console.log("batch   wasm pkts/s   reference pkts/s   ratio");
  for (const batch of BATCHES) {
    const res: number[] = [];
    for (const core of [wasm, ref]) {
      core.setOptions(0);
      for (let i = 0; i < batch; i++) {
        const off = L.EG_IN + i * SLOT;
        core.bytes.set(packets[i]!, off);
        core.view.setUint32(L.EG_IN_DESC + i * 16, off, true);
        core.view.setUint32(L.EG_IN_DESC + i * 16 + 4, packets[i]!.length, true);
      }
      const u8 = core.bytes;
      res.push(batch * rate(() => {
        for (let i = 0; i < batch; i++) {
          const off = L.EG_IN + i * SLOT;
          const f = ttlFix[i]!;
          u8[off + 8] = f[0]; u8[off + 10] = f[1]; u8[off + 11] = f[2];
        }
        core.egress(0, batch);
      }));
      expectAllOk(core, L.EG_IN_DESC, batch, "egress");
    }
    console.log(`${String(batch).padStart(5)}   ${fmt(res[0]!).padStart(11)}   ${fmt(res[1]!).padStart(16)}   ${(res[0]! / res[1]!).toFixed(1)}x`);
  }

  // Egress GSO: one 64 KiB TSO super-packet split into 1448-byte segments.
  {
    const sup = buildPacket({ src: v4(10, 244, 1, 2), dst: v4(10, 244, 7, 9), proto: 6, ttl: 64, payload: new Uint8Array(65000), flags: 0x18 });
    const input = Uint8Array.from([...vnetHdr(1, 1, 0, 1448, 20, 16), ...sup]);
    const res: number[] = [];
    for (const core of [wasm, ref]) {
      core.setOptions(L.OPT_VNET_HDR);
      core.bytes.set(input, L.EG_IN);
      core.view.setUint32(L.EG_IN_DESC, L.EG_IN, true);
      core.view.setUint32(L.EG_IN_DESC + 4, input.length, true);
      const ip = L.EG_IN + 10;
      const [c0, c1] = [sup[10]!, sup[11]!];
      res.push(rate(() => { core.bytes[ip + 8] = 64; core.bytes[ip + 10] = c0; core.bytes[ip + 11] = c1; core.egress(0, 1); }, 300));
      expectAllOk(core, L.EG_IN_DESC, 1, "TSO");
    }
    const gbit = (r: number) => ((r * 65000 * 8) / 1e9).toFixed(1);
    console.log(`\negress TSO split, 64 KiB -> 45 segments: wasm ${fmt(res[0]!)} super-packets/s (${gbit(res[0]!)} Gbit/s of payload), reference ${fmt(res[1]!)}/s (${gbit(res[1]!)} Gbit/s)`);
  }

  // Ingress with virtio_net_hdr: 1448-byte TCP segments of 8 flows, checked, anti-spoofed, coalesced.
  {
    const segs: Uint8Array[] = [];
    for (let f = 0; f < 8; f++) {
      for (let i = 0; i < 32; i++) {
        segs.push(buildPacket({ src: v4(10, 244, 2 + f, 9), dst: v4(10, 244, 1, 2), proto: 6, ttl: 64, seq: i * 1448, sport: 40000 + f, flags: 0x10, payload: new Uint8Array(1448) }));
      }
    }
    const order = segs.map((_, i) => (i % 8) * 32 + Math.floor(i / 8)); // flows interleaved
    console.log("\ningress, 1488-byte TCP segments of 8 interleaved flows, virtio_net_hdr + coalescing:");
    console.log("batch   wasm pkts/s   reference pkts/s   ratio");
    for (const batch of BATCHES) {
      const res: number[] = [];
      for (const core of [wasm, ref]) {
        core.setOptions(L.OPT_VNET_HDR);
        for (let i = 0; i < batch; i++) {
          const s = segs[order[i]!]!;
          const off = L.IN_IN + i * SLOT + 16;
          core.bytes.set(s, off);
          const d = L.IN_IN_DESC + i * 16;
          core.view.setUint32(d, off, true);
          core.view.setUint32(d + 4, s.length, true);
          core.view.setUint32(d + 8, (0xc0a80000 | (2 + (order[i]! >> 5))) >>> 0);
          core.view.setUint16(d + 12, 0, true);
        }
        const u8 = core.bytes;
        res.push(batch * rate(() => {
          for (let i = 0; i < batch; i++) {
            const off = L.IN_IN + i * SLOT + 16;
            const s = segs[order[i]!]!;
            u8[off + 8] = 64; u8[off + 10] = s[10]!; u8[off + 11] = s[11]!;
          }
          core.ingress(0, batch);
        }));
        expectAllOk(core, L.IN_IN_DESC, batch, "ingress");
      }
      console.log(`${String(batch).padStart(5)}   ${fmt(res[0]!).padStart(11)}   ${fmt(res[1]!).padStart(16)}   ${(res[0]! / res[1]!).toFixed(1)}x`);
    }
  }

  // Lookups: random addresses, 3/4 inside the cluster network.
  const addrs = Uint32Array.from({ length: 4096 }, () =>
    rand() < 0.75 ? (0x0af40000 | Math.floor(rand() * 65536)) >>> 0 : Math.floor(rand() * 2 ** 32));
  console.log("\nIPv4 route lookups (1250 routes, direct index for 10.244.0.0/16):");
  console.log("batch   wasm lookups/s   reference lookups/s   ratio");
  for (const batch of BATCHES) {
    const res: number[] = [];
    for (const core of [wasm, ref]) {
      core.regions.lookupIn4.set(addrs.subarray(0, batch));
      res.push(batch * rate(() => core.route4LookupBatch(batch)));
    }
    console.log(`${String(batch).padStart(5)}   ${fmt(res[0]!).padStart(14)}   ${fmt(res[1]!).padStart(19)}   ${(res[0]! / res[1]!).toFixed(1)}x`);
  }
  {
    let i = 0;
    const single = (c: Core) => rate(() => { for (let k = 0; k < 64; k++) c.route4Lookup(addrs[(i++) & 4095]!); }) * 64;
    console.log(`single route4Lookup() calls: wasm ${fmt(single(wasm))}/s, reference ${fmt(single(ref))}/s`);
  }

  // JS -> Wasm call cost of a trivial export.
  {
    const N = 20_000_000;
    const f = wasm.layoutVersion;
    let s = 0;
    let t0 = performance.now();
    for (let i = 0; i < N; i++) s += f();
    const call = performance.now() - t0;
    const g = () => 1;
    t0 = performance.now();
    for (let i = 0; i < N; i++) s += g();
    const js = performance.now() - t0;
    console.log(`\nJS -> Wasm call of a trivial export: ${((call * 1e6) / N).toFixed(2)} ns/call (a JS function: ${((js * 1e6) / N).toFixed(2)} ns) [${s > 0}]`);
  }
}

await main();
