/**
 * WireGuard transport data messages in the core (asm/wg_transport.ts through
 * src/core/wg_transport.ts): byte-exact messages (fixture computed with Node's OpenSSL
 * chacha20-poly1305 and the whitepaper's §5.4.6 framing), round trips between two cores for
 * several peers and lengths (keepalives included), padding as wireguard-go pads, and every way
 * a message is refused — tampered header, ciphertext or tag, wrong type or length, unknown
 * receiver, replays, stale and over-limit counters — each counted. The replay window is checked
 * against a plain TypeScript model over random counter sequences.
 */
import { beforeAll, beforeEach, describe, expect, test } from "bun:test";
import * as L from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import type { Core } from "../../src/core/types.ts";
import { WgTransport, wgLocalIndex } from "../../src/core/wg_transport.ts";
import { hex, toHex } from "./aead_harness.ts";
import { rng } from "./packets.ts";

const SLOT = 0x11000; // per-packet slot in the arenas: room for a 64 KiB message
const IN = (i: number) => L.EG_IN + 16 + i * SLOT; // plaintexts, 16 bytes of headroom before
const OUT = (i: number) => L.IN_IN + i * SLOT; // sealed messages
const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;

let a: Core, b: Core; // a seals for b, b opens (and the other way with the mirrored keys)
let wa: WgTransport, wb: WgTransport;
beforeAll(async () => {
  [a, b] = await Promise.all([loadCore(), loadCore()]);
  wa = new WgTransport(a);
  wb = new WgTransport(b);
});

const keyOf = (seed: number) => Uint8Array.from({ length: 32 }, (_, i) => (seed * 37 + i * 11) & 0xff);

/** Session `slot` on both sides: a's send key is b's receive key and a's remote index is b's local. */
function pair(slot: number, seed = slot): void {
  const aIndex = wgLocalIndex(slot, 0xabc00000 + seed * 0x1000), bIndex = wgLocalIndex(slot, 0x5de00000 + seed * 0x1000);
  wa.setSession(slot, { localIndex: aIndex, remoteIndex: bIndex, sendKey: keyOf(seed), recvKey: keyOf(seed + 100) });
  wb.setSession(slot, { localIndex: bIndex, remoteIndex: aIndex, sendKey: keyOf(seed + 100), recvKey: keyOf(seed) });
}

/** Seals `packets` (one per descriptor) for their sessions on a; returns the messages. */
function seal(packets: { bytes: Uint8Array; slot: number }[], mtu = 1420): Uint8Array[] {
  packets.forEach((p, i) => {
    a.bytes.set(p.bytes, IN(i));
    wa.setSeal(i, IN(i), OUT(i), p.bytes.length, p.slot);
  });
  expect(wa.seal(0, packets.length, mtu)).toBe(packets.length);
  return packets.map((_, i) => {
    expect(wa.sealVerdict(i)).toBe(L.WV_OK);
    return a.bytes.slice(OUT(i), OUT(i) + wa.sealedLength(i));
  });
}

interface Opened { verdict: number; plain: Uint8Array | null; session: number }

/** Opens `messages` on b in one batch. */
function open(messages: Uint8Array[]): Opened[] {
  messages.forEach((m, i) => {
    b.bytes.set(m, OUT(i));
    wb.setOpen(i, OUT(i), m.length);
  });
  expect(wb.open(0, messages.length)).toBe(messages.length);
  return messages.map((_, i) => {
    const verdict = wb.openVerdict(i);
    const start = OUT(i) + L.WG_HEADER_LEN;
    return { verdict, session: wb.openSession(i), plain: verdict === L.WV_OK ? b.bytes.slice(start, start + wb.plainLength(i)) : null };
  });
}

function ipv4(len: number, fill: number): Uint8Array {
  const p = new Uint8Array(len).fill(fill);
  p.set([0x45, 0, len >> 8, len & 0xff, 0, 0, 0x40, 0, 0x40, 17, 0, 0, 10, 244, 1, 2, 10, 244, 2, 3]);
  return p;
}

function ipv6(len: number, fill: number): Uint8Array {
  const p = new Uint8Array(len).fill(fill);
  p.set([0x60, 0, 0, 0, (len - 40) >> 8, (len - 40) & 0xff, 17, 64]);
  return p;
}

const openCounts = (w: WgTransport) => w.counterSnapshot().open;

describe("seal", () => {
  test("byte-exact messages: header type 4 / receiver / counter LE, padded ciphertext, tag (Node's OpenSSL fixture)", () => {
    const key = Uint8Array.from({ length: 32 }, (_, i) => i + 1);
    wa.setSession(7, { localIndex: wgLocalIndex(7, 0x77700000), remoteIndex: 0x11223344, sendKey: key, recvKey: key });
    const packet = hex("4500002500004000401100000af401020af402037765667420776720666978747572652121");
    const [m0, m1, keepalive] = seal([{ bytes: packet, slot: 7 }, { bytes: packet, slot: 7 }, { bytes: new Uint8Array(0), slot: 7 }]);
    expect(toHex(m0!)).toBe("04000000443322110000000000000000268ad73367c2e939db5a36509d2aac3af1288dfa2ea10a7809d5e12ca6d1cba5bfa432b10a8f9002fb52888fb98b34356e3785d4fdc58ff35db328c3f8a432a1");
    expect(toHex(m1!)).toBe("0400000044332211010000000000000025d5404013848908746173da553b91531915b00f76a224eae0a0d03e1ca487ad1296926ec2e39ae4240d4f3849728b7e09e3e4cb252e2e58d986825c4a422814");
    expect(toHex(keepalive!)).toBe("040000004433221102000000000000009812f240bb464a0811595a0688460ef1");
    expect(wa.sendCounter(7)).toBe(3n);
  });

  test("padding as wireguard-go: to 16, never past the MTU; mtu 0 pads to 16 always", () => {
    pair(1);
    const lengths = [0, 1, 15, 16, 17, 1400, 1405, 1419, 1420];
    const sealedWith = (mtu: number) => seal(lengths.map((n) => ({ bytes: ipv4(Math.max(n, 20), 1).subarray(0, n), slot: 1 })), mtu).map((m) => m.length - 32);
    expect(sealedWith(1420)).toEqual([0, 16, 16, 16, 32, 1408, 1408, 1420, 1420]);
    expect(sealedWith(0)).toEqual([0, 16, 16, 16, 32, 1408, 1408, 1424, 1424]);
  });

  test("in place (dst = src - 16) gives the same message as out of place", () => {
    const key = keyOf(3);
    for (const slot of [2, 3]) wa.setSession(slot, { localIndex: wgLocalIndex(slot, 0), remoteIndex: 99, sendKey: key, recvKey: key });
    const packet = ipv4(1000, 0x42);
    const [outOfPlace] = seal([{ bytes: packet, slot: 2 }]);
    a.bytes.set(packet, IN(0));
    wa.setSeal(0, IN(0), IN(0) - 16, packet.length, 3);
    wa.seal(0, 1, 1420);
    expect(wa.sealVerdict(0)).toBe(L.WV_OK);
    expect(toHex(a.bytes.slice(IN(0) - 16, IN(0) - 16 + wa.sealedLength(0)))).toBe(toHex(outOfPlace!));
  });

  test("refusals are per descriptor and counted: no session, too long, outside the arenas, exhausted counter", () => {
    const before = wa.counterSnapshot().seal;
    pair(4);
    a.view.setBigUint64(L.WG_SESSIONS + 4 * L.WG_SESSION_SIZE + L.WG_S_SEND_COUNTER, REJECT_AFTER_MESSAGES - 1n, true);
    wa.setSeal(0, IN(0), OUT(0), 100, 4); // the last valid counter
    wa.setSeal(1, IN(1), OUT(1), 100, 4); // exhausted
    wa.setSeal(2, IN(2), OUT(2), 100, 4095); // empty slot
    wa.setSeal(3, IN(3), OUT(3), 65500, 4); // 65500 + 4 padding + 32 > 65535
    wa.setSeal(4, 0x100, OUT(4), 100, 4); // source in the tables
    wa.setSeal(5, IN(5), 0x3800000, 100, 4); // destination on the sessions
    wa.setSeal(6, IN(6), OUT(6), 100, 1); // fine
    wa.seal(0, 7, 0);
    expect([0, 1, 2, 3, 4, 5, 6].map((i) => wa.sealVerdict(i))).toEqual([
      L.WV_OK, L.WV_EXHAUSTED, L.WV_NO_SESSION, L.WV_BAD_LENGTH, L.WV_BAD_DESCRIPTOR, L.WV_BAD_DESCRIPTOR, L.WV_OK,
    ]);
    expect(wa.sealedLength(1)).toBe(0);
    expect(a.view.getBigUint64(OUT(0) + 8, true)).toBe(REJECT_AFTER_MESSAGES - 1n);
    const after = wa.counterSnapshot().seal;
    expect({ ok: after.ok - before.ok, exhausted: after.exhausted - before.exhausted, no_session: after.no_session - before.no_session, bad_length: after.bad_length - before.bad_length, bad_descriptor: after.bad_descriptor - before.bad_descriptor })
      .toEqual({ ok: 2, exhausted: 1, no_session: 1, bad_length: 1, bad_descriptor: 2 });
  });
});

describe("open", () => {
  beforeEach(() => { for (const slot of [1, 2, 3, 4095]) pair(slot); });

  test("round trip for several peers in one batch: lengths 0 (keepalive) to 64 KiB, padding removed for IPv4/IPv6", () => {
    const packets = [
      { bytes: new Uint8Array(0), slot: 1 },
      { bytes: ipv4(20, 0), slot: 2 },
      { bytes: ipv4(33, 7), slot: 3 },
      { bytes: ipv6(40, 0), slot: 4095 },
      { bytes: ipv6(1397, 9), slot: 1 },
      { bytes: ipv4(1420, 5), slot: 2 },
      { bytes: Uint8Array.from({ length: 77 }, (_, i) => i), slot: 3 }, // not IP: padded length stays
      { bytes: ipv4(65000, 3), slot: 4095 },
    ];
    const opened = open(seal(packets, 0));
    opened.forEach((o, i) => {
      expect({ i, verdict: o.verdict, session: o.session }).toEqual({ i, verdict: L.WV_OK, session: packets[i]!.slot });
      const want = packets[i]!.bytes;
      expect(o.plain!.subarray(0, want.length)).toEqual(want);
      expect(o.plain!.length).toBe(i === 6 ? 80 : want.length);
    });
  });

  test("tampered header counter, ciphertext or tag: auth_failed; type, length, receiver: their own verdicts; all counted", () => {
    const before = openCounts(wb);
    const [m] = seal([{ bytes: ipv4(100, 1), slot: 2 }]);
    const variant = (f: (x: Uint8Array) => Uint8Array) => f(m!.slice());
    const flip = (at: number, bit = 1) => variant((x) => { x[at]! ^= bit; return x; });
    const results = open([
      flip(8), // counter
      flip(15, 0x80), // counter, top byte
      flip(16), // first ciphertext byte
      flip(m!.length - 17), // last ciphertext byte
      flip(m!.length - 1), // tag
      flip(0), // type 4 -> 5
      flip(1), // a reserved byte
      flip(7, 0x80), // receiver index: other high bits, same slot
      flip(4), // receiver index: another slot (empty or other keys)
      variant((x) => x.subarray(0, 31)), // shorter than a keepalive
      variant((x) => x.subarray(0, x.length - 1)), // one byte short
      m!, // the genuine one still opens after all that
    ]);
    expect(results.map((r) => r.verdict)).toEqual([
      L.WV_AUTH_FAILED, L.WV_AUTH_FAILED, L.WV_AUTH_FAILED, L.WV_AUTH_FAILED, L.WV_AUTH_FAILED,
      L.WV_BAD_TYPE, L.WV_BAD_TYPE, L.WV_UNKNOWN_RECEIVER, L.WV_UNKNOWN_RECEIVER, L.WV_BAD_LENGTH, L.WV_AUTH_FAILED, L.WV_OK,
    ]);
    expect(results[0]!.session).toBe(2);
    expect(results[7]!.session).toBe(0xffff);
    const after = openCounts(wb);
    expect({ ok: after.ok - before.ok, auth_failed: after.auth_failed - before.auth_failed, bad_type: after.bad_type - before.bad_type, unknown_receiver: after.unknown_receiver - before.unknown_receiver, bad_length: after.bad_length - before.bad_length })
      .toEqual({ ok: 1, auth_failed: 6, bad_type: 2, unknown_receiver: 2, bad_length: 1 });
  });

  test("a failed open changes nothing: the message bytes stay as received, the window does not move", () => {
    const [m0, m1] = seal([{ bytes: ipv4(60, 1), slot: 1 }, { bytes: ipv4(60, 2), slot: 1 }]);
    // A forged copy of message 1 claiming counter 5000 must not push counter 0 and 1 out.
    const forged = m1!.slice();
    new DataView(forged.buffer).setBigUint64(8, 5000n, true);
    const [r] = open([forged]);
    expect(r!.verdict).toBe(L.WV_AUTH_FAILED);
    expect(b.bytes.slice(OUT(0), OUT(0) + forged.length)).toEqual(forged);
    expect(open([m0!, m1!]).map((x) => x.verdict)).toEqual([L.WV_OK, L.WV_OK]);
  });

  test("replays refused, in one batch and across batches; counted as replayed", () => {
    const before = openCounts(wb).replayed;
    const ms = seal([1, 2, 3].map((n) => ({ bytes: ipv4(50, n), slot: 3 })));
    expect(open([ms[0]!, ms[1]!, ms[0]!]).map((x) => x.verdict)).toEqual([L.WV_OK, L.WV_OK, L.WV_REPLAYED]);
    expect(open([ms[1]!, ms[2]!, ms[2]!]).map((x) => x.verdict)).toEqual([L.WV_REPLAYED, L.WV_OK, L.WV_REPLAYED]);
    expect(openCounts(wb).replayed - before).toBe(3);
  });

  test("stale counters (8128 behind the highest is the oldest accepted) and counters at the limit refused", () => {
    const at = (c: bigint) => {
      a.view.setBigUint64(L.WG_SESSIONS + 1 * L.WG_SESSION_SIZE + L.WG_S_SEND_COUNTER, c, true);
      return seal([{ bytes: new Uint8Array(0), slot: 1 }])[0]!;
    };
    expect(open([at(9000n), at(9000n - 8129n), at(9000n - 8128n), at(8999n), at(9001n)]).map((x) => x.verdict))
      .toEqual([L.WV_OK, L.WV_REPLAYED, L.WV_OK, L.WV_OK, L.WV_OK]);
    // A jump of more than the ring clears all of it: old counters are then too old, not "new".
    expect(open([at(1_000_000n), at(9002n), at(1_000_000n - 8128n)]).map((x) => x.verdict)).toEqual([L.WV_OK, L.WV_REPLAYED, L.WV_OK]);
    // The last valid counter opens; the sender refuses to go further (seal test), and a forged
    // header at the limit is refused before any MAC is spent.
    expect(open([at(REJECT_AFTER_MESSAGES - 1n)])[0]!.verdict).toBe(L.WV_OK);
    const over = at(REJECT_AFTER_MESSAGES - 2n).slice();
    new DataView(over.buffer).setBigUint64(8, REJECT_AFTER_MESSAGES, true);
    expect(open([over])[0]!.verdict).toBe(L.WV_REPLAYED);
  });

  test("deleted session: its receiver index is unknown; replacing a session resets its window", () => {
    const [m] = seal([{ bytes: ipv4(40, 1), slot: 2 }]);
    wb.deleteSession(2);
    expect(open([m!])[0]!.verdict).toBe(L.WV_UNKNOWN_RECEIVER);
    pair(2);
    expect(open([m!])[0]!.verdict).toBe(L.WV_OK);
    expect(open([m!])[0]!.verdict).toBe(L.WV_REPLAYED);
  });

  test("datagrams outside the packet arenas are refused, not read", () => {
    wb.setOpen(0, 0x10000, 64);
    wb.setOpen(1, L.WG_ARENA_END - 16, 64);
    wb.open(0, 2);
    expect([wb.openVerdict(0), wb.openVerdict(1)]).toEqual([L.WV_BAD_DESCRIPTOR, L.WV_BAD_DESCRIPTOR]);
  });
});

test("session arguments are checked: slot range, key length, receiver index naming the slot", () => {
  const key = new Uint8Array(32);
  expect(() => wa.setSession(L.WG_SESSION_CAP, { localIndex: 0, remoteIndex: 0, sendKey: key, recvKey: key })).toThrow(/slot 4096 is out of range/);
  expect(() => wa.setSession(1, { localIndex: 1, remoteIndex: 0, sendKey: key, recvKey: new Uint8Array(16) })).toThrow(/32 bytes/);
  expect(() => wa.setSession(1, { localIndex: 2, remoteIndex: 0, sendKey: key, recvKey: key })).toThrow(/does not name slot 1/);
  expect(a.wg!.wgSessionSet(1, 2, 0)).toBe(L.ERR_INVALID);
  expect(wgLocalIndex(5, 0xffffffff)).toBe(0xfffff005);
});

/** RFC 6479 as wireguard-go's replay.Filter behaves, written plainly: a set of counters seen. */
class ReplayModel {
  last = -1n;
  seen = new Set<bigint>();
  fresh(c: bigint): boolean {
    if (c >= REJECT_AFTER_MESSAGES) return false;
    if (this.last >= 0n && c <= this.last && this.last - c > 8128n) return false;
    return !this.seen.has(c);
  }
  accept(c: bigint): boolean {
    if (!this.fresh(c)) return false;
    this.seen.add(c);
    if (c > this.last) this.last = c;
    return true;
  }
}

test("replay window matches the model over random counter sequences (jitter, duplicates, jumps, forgeries)", () => {
  const rand = rng(0x5eed);
  let checked = 0;
  for (let run = 0; run < 12; run++) {
    pair(9, 50 + run);
    const model = new ReplayModel();
    let next = 0n;
    for (let batch = 0; batch < 40; batch++) {
      const counters: bigint[] = [];
      const forged: boolean[] = [];
      for (let i = 0; i < 64; i++) {
        const r = rand();
        let c: bigint;
        if (r < 0.55) c = next++;
        else if (r < 0.75) c = next - BigInt(Math.floor(rand() * 300)); // reordered or duplicate
        else if (r < 0.85) c = next - BigInt(8000 + Math.floor(rand() * 300)); // near the window's edge
        else if (r < 0.9) { next += BigInt(Math.floor(rand() * 20000)); c = next; } // jump
        else c = next + BigInt(Math.floor(rand() * 50)); // ahead
        counters.push(c < 0n ? 0n : c);
        forged.push(rand() < 0.05);
      }
      const messages = counters.map((c, i) => {
        a.view.setBigUint64(L.WG_SESSIONS + 9 * L.WG_SESSION_SIZE + L.WG_S_SEND_COUNTER, c, true);
        const m = seal([{ bytes: new Uint8Array(0), slot: 9 }])[0]!;
        if (forged[i]) m[m.length - 1]! ^= 1;
        return m;
      });
      const got = open(messages).map((x) => x.verdict);
      // The window is checked before the MAC: a forgery with a stale counter is "replayed".
      const want = counters.map((c, i) => (!model.fresh(c) ? L.WV_REPLAYED : forged[i] ? L.WV_AUTH_FAILED : (model.accept(c), L.WV_OK)));
      expect({ run, batch, got }).toEqual({ run, batch, got: want });
      checked += counters.length;
    }
  }
  expect(checked).toBe(12 * 40 * 64);
});

test("memory regions do not overlap and fit the memory (the WireGuard ones included)", () => {
  const views = Object.entries(a.regions).filter(([name]) => name !== "lookupIn4"); // a u32 view of lookupIn
  const spans = views.map(([name, v]) => ({ name, start: v.byteOffset, end: v.byteOffset + v.byteLength }));
  spans.push({ name: "wgScratch", start: L.WG_SCRATCH, end: L.WG_SCRATCH + 320 });
  for (const s of spans) expect({ name: s.name, inside: s.end <= L.MEMORY_BYTES }).toEqual({ name: s.name, inside: true });
  for (const x of spans) {
    for (const y of spans) {
      if (x !== y && x.start < y.end && y.start < x.end) throw new Error(`regions ${x.name} and ${y.name} overlap`);
    }
  }
  // Descriptors can never point at sessions or tables.
  expect(L.WG_ARENA_END).toBeLessThanOrEqual(L.WG_SESSIONS);
  expect(L.WG_ARENA_START).toBe(L.EG_IN);
});
