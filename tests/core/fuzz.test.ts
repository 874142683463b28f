/**
 * Differential fuzz: the Wasm core against the TypeScript reference on over a million random and
 * mutated packets per run, through the rings in random batch sizes, both directions, with and
 * without virtio_net_hdr (GSO super-packets, partial checksums, TCP flows for coalescing, UDP
 * GRO buffers), with peers reached over IPv4 or IPv6 (a v6-only one among them), datagrams from
 * peers' public IPv4 and IPv6 addresses, and egress anti-spoofing switched on and off between
 * batches. Each call must give the same return value, the same output descriptors and
 * bytes; each batch the same verdicts, in-place rewrites and counters. Nothing may trap.
 */
import { expect, test } from "bun:test";
import * as L from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import { createReferenceCore } from "../../src/core/reference.ts";
import type { Core } from "../../src/core/types.ts";
import { buildPacket, hex, rng, setupCluster, v4, vnetHdr } from "./packets.ts";

const TARGET_PACKETS = 1_000_000;
const SEED = Number(process.env.WEFT_FUZZ_SEED ?? 20240601);

function setup(core: Core): void {
  setupCluster(core, 8);
  core.route4Insert(0xac100000, 12, 3); // 172.16/12 -> peer 3
  core.route4Insert(0x0af46300, 24, 99); // a route to a peer that does not exist
  core.route4Insert(0x0af40280, 25, 4); // longer than a subnet, inside the cluster network
  core.regions.arg.set(hex("20010db8000000000000000000000000"));
  core.route6Insert(32, 5);
  // Public IPv6 underlay addresses: peer 7 has one (sent to over IPv4), peer 8 is sent to over
  // IPv6, peer 9 has no public IPv4 at all (a v6-only host).
  core.peerSet(9, 0, 8285, 0x0af40900, 24);
  core.regions.arg.set(hex("fd000009000000000000000000000000"));
  core.peerSetSubnet6(9, 64);
  for (const [id, via6] of [[7, 0], [8, 1], [9, 1]] as const) {
    core.regions.arg.set(public6(id));
    expect(core.peerSetPublic6(id, via6)).toBe(0);
  }
}

/** Peer `id`'s public IPv6 in this test: 2001:db8:ffff::<id>. */
const public6 = (id: number) => hex(`20010db8ffff00000000000000000${id.toString(16).padStart(3, "0")}`);

test("Wasm core and reference agree on 1,000,000 random and mutated packets", async () => {
  const wasm = await loadCore();
  const ref = createReferenceCore();
  setup(wasm);
  setup(ref);
  const rand = rng(SEED);
  const pick = <T>(a: T[]): T => a[Math.floor(rand() * a.length)]!;
  const int = (n: number) => Math.floor(rand() * n);

  // ---- pools of base packets (built once; copied into memory and mutated per use)
  const addr4 = () => pick([
    v4(10, 244, 2 + int(8), int(256)), v4(10, 244, 1, int(256)), v4(10, 244, 99, 1), v4(10, 244, 2, 128 + int(128)),
    v4(172, 16 + int(16), int(256), int(256)), v4(int(256), int(256), int(256), int(256)), v4(10, 244, 200, 5),
  ]);
  const addr6 = () => {
    const a = hex(pick(["fd000002000000000000000000000009", "fd000001000000000000000000000002", "20010db8000000000000000000000001",
      "fd0000aa000000000000000000000001", "ff020000000000000000000000000001", "fd000005000000000000000000000007"]));
    a[15] = int(256);
    return a;
  };
  const payload = (n: number) => Uint8Array.from({ length: n }, () => int(256));
  const lenChoice = () => pick([0, 1, 7, 8, 20, 64, 100, 300, 576, 1000, 1400, int(1400)]);
  function randomPacket(): Uint8Array {
    const v6 = rand() < 0.35;
    const proto = pick([6, 6, 17, 17, v6 ? 58 : 1]);
    return buildPacket({
      v6, src: v6 ? addr6() : addr4(), dst: v6 ? addr6() : addr4(), proto, ttl: pick([0, 1, 2, 64, 255]),
      payload: payload(lenChoice()), id: int(65536), tos: pick([0, 0, 0x10, 0xb8]), df: rand() < 0.8,
      seq: int(2 ** 32), ack: int(2 ** 32), flags: pick([0x10, 0x18, 0x02, 0x11, 0x99, 0x04, int(256)]),
      options: rand() < 0.3 ? Uint8Array.of(1, 1, 8, 10, 0, 0, 0, int(256), 0, 0, 0, 9) : undefined,
    });
  }
  const plain = Array.from({ length: 3000 }, randomPacket);

  function superPacket(): Uint8Array {
    const v6 = rand() < 0.4;
    const udp = rand() < 0.2;
    const p = buildPacket({
      v6, src: v6 ? addr6() : addr4(), dst: v6 ? addr6() : v4(10, 244, 2 + int(8), int(256)), proto: udp ? 17 : 6,
      ttl: pick([1, 64]), payload: payload(pick([0, 100, 1500, 3000, 6000, int(9000)])), flags: pick([0x10, 0x18, 0x99, 0x11]),
      options: rand() < 0.5 ? Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2) : undefined, seq: int(2 ** 32),
    });
    const t = v6 ? 40 : 20;
    const gsoType = udp ? 5 : v6 ? 4 : 1;
    const size = rand() < 0.06 ? pick([1, 2, 8, 40]) : pick([1448, 1388, 500, 1200, 64 + int(1400), 1000]);
    return Uint8Array.from([...vnetHdr(1, gsoType | (rand() < 0.1 ? 0x80 : 0), int(200), size, t, udp ? 6 : 16), ...p]);
  }
  const supers = Array.from({ length: 300 }, superPacket);
  // Super-packets of 150 small segments: a batch of them overflows the UDP ring, so egress
  // must stop early and resume.
  const dense = Array.from({ length: 20 }, () => {
    const p = buildPacket({ src: v4(10, 244, 1, 2), dst: v4(10, 244, 2 + int(8), 7), proto: 6, payload: payload(6000), seq: int(2 ** 32) });
    return Uint8Array.from([...vnetHdr(1, 1, 0, 40, 20, 16), ...p]);
  });
  dense[0]![4] = 1; // gso_size 1: 6000 segments never fit the ring: dropped with V_NO_SPACE

  // TCP flows from peers towards us, cut into equal segments: coalescing candidates.
  function flow(): { from: number; segs: Uint8Array[]; mss: number } {
    const v6 = rand() < 0.35;
    const peer = 2 + int(8);
    const mss = pick([100, 536, 1200, 1448]);
    const n = 2 + int(9);
    const seq0 = int(2 ** 32);
    const options = rand() < 0.5 ? Uint8Array.of(1, 1, 8, 10, 0, 0, 1, 0, 0, 0, 0, 3) : undefined;
    const src = v6 ? hex(`fd00000${peer}000000000000000000000009`) : v4(10, 244, peer, 9);
    const dst = v6 ? hex("fd000001000000000000000000000002") : v4(10, 244, 1, 2);
    const sport = 40000 + int(8);
    const segs: Uint8Array[] = [];
    for (let i = 0; i < n; i++) {
      const last = i === n - 1;
      segs.push(buildPacket({
        v6, src, dst, proto: 6, sport, dport: 5201, seq: (seq0 + i * mss) >>> 0, ack: 77, ttl: 64,
        flags: last && rand() < 0.5 ? 0x18 : 0x10, options, payload: payload(last ? 1 + int(mss) : mss), id: i,
      }));
    }
    return { from: (192 << 24 | 168 << 16 | peer) >>> 0, segs, mss };
  }
  const flows = Array.from({ length: 200 }, flow);

  // ---- mutation in place (in the Wasm memory; the reference gets a copy of the region)
  function mutate(mem: Uint8Array, off: number, len: number, headerOnly: number): number {
    const r = rand();
    if (r < 0.55) return len;
    if (r < 0.75) { // flip a few bytes near the front
      for (let i = 0, n = 1 + int(3); i < n && len > 0; i++) mem[off + int(Math.min(len, headerOnly))] ^= 1 << int(8);
      return len;
    }
    if (r < 0.85) return int(len + 1); // truncate
    if (r < 0.9) { // extend with junk
      const extra = int(64);
      for (let i = 0; i < extra; i++) mem[off + len + i] = int(256);
      return len + extra;
    }
    mem[off + int(Math.min(len, 60))] = int(256); // random byte in a header
    return len;
  }

  // ---- comparison helpers
  const same = (a: Uint8Array, b: Uint8Array, off: number, len: number, what: string) => {
    const x = a.subarray(off, off + len), y = b.subarray(off, off + len);
    if (!Buffer.from(x.buffer, x.byteOffset, x.length).equals(Buffer.from(y.buffer, y.byteOffset, y.length))) {
      for (let i = 0; i < len; i++) if (x[i] !== y[i]) throw new Error(`${what}: differs at +${i} (0x${(off + i).toString(16)}): wasm ${x[i]} ref ${y[i]}`);
    }
  };
  function compareOutputs(descBase: number, descSize: number, count: number, what: string) {
    same(wasm.bytes, ref.bytes, descBase, count * descSize, `${what} descriptors`);
    for (let j = 0; j < count; j++) {
      const d = descBase + j * descSize;
      same(wasm.bytes, ref.bytes, wasm.view.getUint32(d, true), wasm.view.getUint32(d + 4, true), `${what} bytes ${j}`);
    }
  }

  let packets = 0, batches = 0, outputs = 0, resumed = 0;

  /**
   * Gives the reference the same input (arena bytes up to `end`, `count` descriptors), runs the
   * direction on both cores call by call until all is consumed, comparing every call's outputs,
   * then the verdicts and the in-place rewrites.
   */
  function lockstep(dir: "egress" | "ingress", arena: number, descs: number, end: number, count: number,
    rings: { base: number; size: number; count: (c: Core) => number }[]) {
    ref.bytes.set(wasm.bytes.subarray(arena, end), arena);
    ref.bytes.set(wasm.bytes.subarray(descs, descs + count * L.IN_DESC_SIZE), descs);
    if (dir === "ingress") ref.bytes.set(wasm.bytes.subarray(L.IN_SRC6, L.IN_SRC6 + count * 16), L.IN_SRC6);
    let done = 0;
    while (done < count) {
      const a = wasm[dir](done, count - done), b = ref[dir](done, count - done);
      expect(a).toBe(b);
      expect(a).toBeGreaterThan(0);
      for (const ring of rings) {
        expect(ring.count(wasm)).toBe(ring.count(ref));
        compareOutputs(ring.base, ring.size, ring.count(wasm), `${dir} ring 0x${ring.base.toString(16)}`);
        outputs += ring.count(wasm);
      }
      done += a;
      if (done < count) resumed++;
    }
    same(wasm.bytes, ref.bytes, descs, count * L.IN_DESC_SIZE, `${dir} verdicts`);
    same(wasm.bytes, ref.bytes, arena, end - arena, `${dir} in-place rewrites`);
  }
  const t0 = performance.now();
  while (packets < TARGET_PACKETS) {
    batches++;
    const vnet = rand() < 0.6;
    wasm.setOptions(vnet ? L.OPT_VNET_HDR : 0);
    ref.setOptions(vnet ? L.OPT_VNET_HDR : 0);
    const n = pick([1, 2, 32, 64, 128, 256, 1 + int(256)]);
    const mem = wasm.bytes, dv = wasm.view;
    if (rand() < 0.1) {
      // Egress anti-spoofing on (our lease 10.244.1.0/24, fd00:1::/64) or off.
      const on = rand() < 0.5;
      for (const core of [wasm, ref]) {
        core.setOwnSubnet4(0x0af40100, on ? 24 : 0);
        core.regions.arg.set(hex("fd000001000000000000000000000000"));
        core.setOwnSubnet6(on ? 64 : 0);
      }
    }

    if (rand() < 0.5) {
      // Egress batch.
      let off = L.EG_IN;
      let count = 0;
      const denseBatch = vnet && rand() < 0.02;
      for (; count < n; count++) {
        let base: Uint8Array;
        let len: number;
        if (denseBatch) {
          base = pick(dense);
        } else if (vnet && rand() < 0.1) {
          base = pick(supers);
        } else if (vnet) {
          const p = pick(plain);
          const r = rand();
          const t = (p[0]! >> 4) === 6 ? 40 : 20;
          const hdr = r < 0.7 ? vnetHdr(0, 0, 0, 0, 0, 0)
            : r < 0.9 ? vnetHdr(1, 0, 0, 0, t, p[t - 11] === 6 || p[6] === 6 ? 16 : 6)
            : vnetHdr(int(4), pick([0, 1, 3, 4, 5, 7, 0x81]), int(100), int(2000), int(80), int(40));
          base = Uint8Array.from([...hdr, ...p]);
        } else {
          base = pick(plain);
        }
        if (off + base.length + 128 > L.EG_IN + L.EG_IN_SIZE) break;
        mem.set(base, off);
        len = mutate(mem, off, base.length, vnet ? 70 : 60);
        const d = L.EG_IN_DESC + count * L.IN_DESC_SIZE;
        const bad = rand() < 0.005;
        dv.setUint32(d, bad ? L.EG_IN - 4 : off, true);
        dv.setUint32(d + 4, len, true);
        off += len + 64 + int(4);
      }
      lockstep("egress", L.EG_IN, L.EG_IN_DESC, off, count, [
        { base: L.EG_UDP_DESC, size: L.UDP_DESC_SIZE, count: (c) => c.egressUdpCount() },
        { base: L.EG_TUN_DESC, size: L.TUN_DESC_SIZE, count: (c) => c.egressTunCount() },
      ]);
      packets += count;
    } else {
      // Ingress batch: single datagrams, flows (in order, sometimes shuffled), GRO buffers.
      let off = L.IN_IN + 16;
      let count = 0;
      let datagrams = 0;
      const put = (bytes: Uint8Array, from: number, seg: number) => {
        mem.set(bytes, off);
        const len = seg ? bytes.length : mutate(mem, off, bytes.length, 60);
        const d = L.IN_IN_DESC + count * L.IN_DESC_SIZE;
        const bad = rand() < 0.003;
        dv.setUint32(d, bad ? L.IN_IN + 4 : off, true);
        dv.setUint32(d + 4, len, true);
        const over6 = rand() < 0.25;
        dv.setUint32(d + 8, over6 ? 0 : rand() < 0.03 ? (from ^ 0x100) >>> 0 : from);
        if (over6) {
          // Over the IPv6 underlay: from the public IPv6 of the peer with that IPv4 (only 7-9
          // have one), or from a stranger.
          const a = public6(from & 0xff);
          if (rand() < 0.05) a[15] = 0xee;
          mem.set(a, L.IN_SRC6 + count * 16);
        }
        dv.setUint16(d + 12, seg, true);
        off += len + 16 + int(4);
        count++;
        datagrams += seg ? Math.ceil(len / seg) : 1;
      };
      while (count < n && off + 70000 < L.IN_IN + L.IN_IN_SIZE) {
        const r = rand();
        if (r < 0.4) {
          const f = pick(flows);
          const segs = rand() < 0.15 ? [...f.segs].sort(() => rand() - 0.5) : f.segs;
          for (const s of segs) if (count < n) put(s, f.from, 0);
        } else if (r < 0.5) {
          const f = pick(flows); // a UDP GRO buffer: the flow's segments back to back
          const size = f.segs[0]!.length;
          put(Uint8Array.from(f.segs.flatMap((s) => Array.from(s))), f.from, size < 20 || rand() < 0.05 ? int(30) : size);
        } else {
          const p = pick(plain);
          const peer = 2 + int(8);
          put(p, rand() < 0.9 ? (192 << 24 | 168 << 16 | peer) >>> 0 : int(2 ** 32), 0);
        }
      }
      lockstep("ingress", L.IN_IN, L.IN_IN_DESC, off, count, [
        { base: L.IN_TUN_DESC, size: L.TUN_DESC_SIZE, count: (c) => c.ingressTunCount() },
      ]);
      packets += datagrams;
    }
    expect(Array.from(wasm.regions.counters)).toEqual(Array.from(ref.regions.counters));
  }
  const c = wasm.regions.counters;
  const s = (base: number) => Array.from({ length: L.VERDICT_COUNT }, (_, v) => c[base + v]);
  console.log(`fuzz: ${packets} packets in ${batches} batches, ${outputs} outputs, ${resumed} resumed calls, ${((performance.now() - t0) / 1000).toFixed(1)} s, seed ${SEED}`);
  console.log(`  egress verdicts ${s(L.C_EG).join(" ")}; datagrams ${c[L.C_EG_DATAGRAMS]}, split ${c[L.C_EG_SPLIT]}, csum ${c[L.C_EG_CSUM]}, icmp ${c[L.C_EG_ICMP]}`);
  console.log(`  ingress verdicts ${s(L.C_IN).join(" ")}; writes ${c[L.C_IN_WRITES]}, merged ${c[L.C_IN_MERGED]}`);
  // Every path was exercised.
  for (const v of [L.V_OK, L.V_NO_ROUTE, L.V_TTL_EXPIRED, L.V_TOO_SHORT, L.V_BAD_VERSION, L.V_BAD_CHECKSUM, L.V_BAD_VNET_HDR, L.V_NO_PEER, L.V_SPOOFED, L.V_BAD_DESCRIPTOR]) {
    expect(c[L.C_EG + v]).toBeGreaterThan(0);
  }
  for (const v of [L.V_OK, L.V_UNKNOWN_SOURCE, L.V_SPOOFED, L.V_TTL_EXPIRED, L.V_BAD_CHECKSUM, L.V_BAD_DESCRIPTOR]) {
    expect(c[L.C_IN + v]).toBeGreaterThan(0);
  }
  expect(c[L.C_EG_SPLIT]).toBeGreaterThan(0);
  expect(c[L.C_EG + L.V_NO_SPACE]).toBeGreaterThan(0);
  expect(resumed).toBeGreaterThan(0);
  expect(c[L.C_IN_MERGED]).toBeGreaterThan(0);
}, 120_000);
