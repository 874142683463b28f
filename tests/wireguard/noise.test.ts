/**
 * @module The Noise_IKpsk2 state machine between two weft instances: round trips with and
 * without a PSK, byte-exact sizes and layouts (the initiation's sealed fields opened here by the
 * whitepaper's formulas, independently of noise.ts), every tamper refused and counted, replays
 * and floods, cookies under load, and TAI64N.
 */
import { describe, expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chacha20Poly1305 } from "../../src/backend/wireguard/aead.ts";
import { CookieGenerator, COOKIE_REFRESH_MS } from "../../src/backend/wireguard/cookie.ts";
import { hash, kdf1, kdf2 } from "../../src/backend/wireguard/kdf.ts";
import {
  CONSTRUCTION, IDENTIFIER, INITIATION_LEN, Noise, RESPONSE_LEN, type HandshakeResult, type Session,
} from "../../src/backend/wireguard/noise.ts";
import { tai64n, tai64nAfter } from "../../src/backend/wireguard/tai64n.ts";
import { generatePrivateKey, x25519 } from "../../src/backend/wireguard/x25519.ts";

const T0 = Date.UTC(2026, 11, 6, 10, 0, 0);
const SRC = Uint8Array.of(10, 99, 0, 1, 0xcc, 0xca); // 10.99.0.1:51916
const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const u32 = (b: Uint8Array, at: number) => new DataView(b.buffer, b.byteOffset).getUint32(at, true);

function pair(opts: { pskA?: Uint8Array; pskB?: Uint8Array } = {}) {
  const ka = generatePrivateKey(), kb = generatePrivateKey();
  const a = new Noise({ privateKey: ka }), b = new Noise({ privateKey: kb });
  a.addPeer({ publicKey: b.publicKey, presharedKey: opts.pskA });
  b.addPeer({ publicKey: a.publicKey, presharedKey: opts.pskB });
  return { a, b, ka, kb };
}

function expectKind<K extends HandshakeResult["kind"]>(r: HandshakeResult, kind: K): Extract<HandshakeResult, { kind: K }> {
  expect(r.kind === "rejected" ? `rejected: ${r.reason}` : r.kind).toBe(kind);
  return r as Extract<HandshakeResult, { kind: K }>;
}

/** Re-adds MAC1 (and zero MAC2) as a sender that knows `to` would, after the test altered the body. */
function remac(msg: Uint8Array, to: Uint8Array): Uint8Array {
  new CookieGenerator(to).addMacs(msg, T0);
  return msg;
}

function sessionsAgree(i: Session, r: Session): void {
  expect(hex(i.sendKey)).toBe(hex(r.receiveKey));
  expect(hex(i.receiveKey)).toBe(hex(r.sendKey));
  expect(hex(i.sendKey)).not.toBe(hex(i.receiveKey));
  expect(i.localIndex).toBe(r.remoteIndex);
  expect(i.remoteIndex).toBe(r.localIndex);
  expect([i.isInitiator, r.isInitiator]).toEqual([true, false]);
  // The keys carry data: what one seals the other opens.
  const data = new Uint8Array(randomBytes(100));
  expect(chacha20Poly1305.open(r.receiveKey, 0n, chacha20Poly1305.seal(i.sendKey, 0n, data, new Uint8Array(0)), new Uint8Array(0))).toEqual(data);
}

describe("Noise_IKpsk2 between two weft instances", () => {
  for (const psk of [undefined, new Uint8Array(randomBytes(32))]) {
    test(`a round trip ${psk ? "with" : "without"} a PSK derives matching session keys`, () => {
      const { a, b } = pair({ pskA: psk, pskB: psk });
      const init = a.createInitiation(b.publicKey, T0);
      expect(init.length).toBe(INITIATION_LEN);
      const resp = expectKind(b.receive(init, SRC, T0), "response");
      expect(resp.message.length).toBe(RESPONSE_LEN);
      const done = expectKind(a.receive(resp.message, SRC, T0), "session");
      sessionsAgree(done.session, resp.session);
      expect(hex(done.session.peer)).toBe(hex(b.publicKey));
      expect(hex(resp.session.peer)).toBe(hex(a.publicKey));
    });
  }

  test("the initiation's layout: type 1, sender, ephemeral, static and TAI64N sealed as the whitepaper says, MAC1, zero MAC2", () => {
    const { a, b, kb } = pair();
    const init = a.createInitiation(b.publicKey, T0);
    expect(hex(init.subarray(0, 4))).toBe("01000000");
    // Open the sealed fields with the whitepaper's formulas (§5.4.2), from b's side.
    const enc = new TextEncoder();
    const c0 = hash(enc.encode(CONSTRUCTION));
    let h = hash(hash(c0, enc.encode(IDENTIFIER)), b.publicKey);
    const ephemeral = init.subarray(8, 40);
    let c = kdf1(c0, ephemeral);
    h = hash(h, ephemeral);
    let k: Uint8Array;
    [c, k] = kdf2(c, x25519(kb, ephemeral)!);
    expect(hex(chacha20Poly1305.open(k, 0n, init.subarray(40, 88), h)!)).toBe(hex(a.publicKey));
    h = hash(h, init.subarray(40, 88));
    [c, k] = kdf2(c, x25519(kb, a.publicKey)!);
    expect(hex(chacha20Poly1305.open(k, 0n, init.subarray(88, 116), h)!)).toBe(hex(tai64n(T0)));
    // MAC1 over bytes 0..115 keyed by HASH("mac1----" ‖ b's key); MAC2 zero without a cookie.
    expect(hex(remac(Uint8Array.from(init), b.publicKey))).toBe(hex(init));
    expect(hex(init.subarray(132))).toBe("00".repeat(16));
    // The response: type 2, its sender, the initiation's sender as receiver.
    const resp = expectKind(b.receive(init, SRC, T0), "response");
    expect(hex(resp.message.subarray(0, 4))).toBe("02000000");
    expect(u32(resp.message, 4)).toBe(resp.session.localIndex);
    expect(u32(resp.message, 8)).toBe(u32(init, 4));
    expect(hex(resp.message.subarray(76))).toBe("00".repeat(16));
  });

  test("with injected randomness the messages are reproducible byte for byte", () => {
    const ka = generatePrivateKey(), kb = generatePrivateKey();
    const make = () => {
      let n = 0;
      const random = (len: number) => new Uint8Array(len).map(() => (n++ * 37 + 11) & 0xff);
      const a = new Noise({ privateKey: ka, random }), b = new Noise({ privateKey: kb, random });
      a.addPeer({ publicKey: b.publicKey });
      b.addPeer({ publicKey: a.publicKey });
      const init = a.createInitiation(b.publicKey, T0);
      return [init, expectKind(b.receive(init, SRC, T0), "response").message].map(hex);
    };
    expect(make()).toEqual(make());
  });

  test("any altered byte of an initiation fails MAC1; with MAC1 redone, altered fields fail to open", () => {
    const { a, b } = pair();
    const init = a.createInitiation(b.publicKey, T0);
    // Bytes 0..3 are the type (an altered one is another message); 4..131 are under MAC1.
    for (let i = 4; i < INITIATION_LEN - 16; i++) {
      const bad = Uint8Array.from(init);
      bad[i]! ^= 0x40;
      expect(b.receive(bad, SRC, T0)).toEqual({ kind: "rejected", reason: "mac1" });
    }
    expect(b.rejected.mac1).toBe(INITIATION_LEN - 16 - 4);
    for (const [at, reason] of [[45, "decrypt"], [70, "decrypt"], [100, "decrypt"], [12, "decrypt"]] as const) {
      const bad = Uint8Array.from(init);
      bad[at]! ^= 1; // static (40..87), timestamp (88..115), ephemeral (8..39)
      expect(b.receive(remac(bad, b.publicKey), SRC, T0)).toEqual({ kind: "rejected", reason });
    }
    expect(b.rejected.decrypt).toBe(4);
    expect(expectKind(b.receive(init, SRC, T0), "response")).toBeTruthy(); // the original still works
  });

  test("a replayed initiation, an older timestamp and a second one within 20 ms are refused", () => {
    const { a, b } = pair();
    const first = a.createInitiation(b.publicKey, T0);
    expectKind(b.receive(first, SRC, T0), "response");
    expect(b.receive(first, SRC, T0 + 5000)).toEqual({ kind: "rejected", reason: "replay" });
    // Same 2^24 ns whitened window: not newer.
    expect(b.receive(a.createInitiation(b.publicKey, T0 + 10), SRC, T0 + 5000)).toEqual({ kind: "rejected", reason: "replay" });
    expect(b.receive(a.createInitiation(b.publicKey, T0 - 1000), SRC, T0 + 5000)).toEqual({ kind: "rejected", reason: "replay" });
    // Newer (17 ms crosses a whitening step) but 17 ms after the last accepted: a flood.
    expect(b.receive(a.createInitiation(b.publicKey, T0 + 17), SRC, T0 + 17)).toEqual({ kind: "rejected", reason: "flood" });
    expect(b.rejected).toMatchObject({ replay: 3, flood: 1 });
    expectKind(b.receive(a.createInitiation(b.publicKey, T0 + 1000), SRC, T0 + 1000), "response");
  });

  test("a wrong PSK: the responder cannot tell, the initiator refuses the response", () => {
    const { a, b } = pair({ pskA: new Uint8Array(32).fill(1), pskB: new Uint8Array(32).fill(2) });
    const resp = expectKind(b.receive(a.createInitiation(b.publicKey, T0), SRC, T0), "response");
    expect(a.receive(resp.message, SRC, T0)).toEqual({ kind: "rejected", reason: "response-auth" });
    expect(a.rejected["response-auth"]).toBe(1);
    // PSK on one side only is a wrong PSK too.
    const half = pair({ pskA: new Uint8Array(32).fill(1) });
    const r2 = expectKind(half.b.receive(half.a.createInitiation(half.b.publicKey, T0), SRC, T0), "response");
    expect(half.a.receive(r2.message, SRC, T0)).toEqual({ kind: "rejected", reason: "response-auth" });
  });

  test("an initiation from a key that is not a peer, or for another key, is refused", () => {
    const { a, b } = pair();
    const stranger = new Noise({ privateKey: generatePrivateKey() });
    stranger.addPeer({ publicKey: b.publicKey });
    expect(b.receive(stranger.createInitiation(b.publicKey, T0), SRC, T0)).toEqual({ kind: "rejected", reason: "unknown-peer" });
    const c = new Noise({ privateKey: generatePrivateKey() });
    a.addPeer({ publicKey: c.publicKey });
    expect(b.receive(a.createInitiation(c.publicKey, T0), SRC, T0)).toEqual({ kind: "rejected", reason: "mac1" });
    b.removePeer(a.publicKey);
    expect(b.receive(a.createInitiation(b.publicKey, T0 + 1000), SRC, T0 + 1000)).toEqual({ kind: "rejected", reason: "unknown-peer" });
  });

  test("a response is taken once, only for a pending initiation, and only unaltered", () => {
    const { a, b } = pair();
    const resp = expectKind(b.receive(a.createInitiation(b.publicKey, T0), SRC, T0), "response").message;
    // Ephemeral (12..43) and the sealed empty payload (44..59) are in the transcript: altered,
    // they fail even with MAC1 redone. (The index fields are guarded by MAC1 only, as in WireGuard.)
    for (const at of [4, 8, 12, 30, 44, 50, 60]) {
      const bad = Uint8Array.from(resp);
      bad[at]! ^= 1;
      expect(a.receive(bad, SRC, T0)).toEqual({ kind: "rejected", reason: "mac1" });
      if (at >= 12 && at < 60) expect(a.receive(remac(bad, a.publicKey), SRC, T0)).toEqual({ kind: "rejected", reason: "response-auth" });
    }
    const wrongReceiver = Uint8Array.from(resp);
    wrongReceiver[8]! ^= 1;
    expect(a.receive(remac(wrongReceiver, a.publicKey), SRC, T0)).toEqual({ kind: "rejected", reason: "unknown-index" });
    expectKind(a.receive(resp, SRC, T0), "session");
    expect(a.receive(resp, SRC, T0)).toEqual({ kind: "rejected", reason: "unknown-index" });
  });

  test("a new initiation supersedes the pending one: the old response is refused", () => {
    const { a, b } = pair();
    const old = expectKind(b.receive(a.createInitiation(b.publicKey, T0), SRC, T0), "response").message;
    a.createInitiation(b.publicKey, T0 + 1000);
    expect(a.receive(old, SRC, T0 + 1000)).toEqual({ kind: "rejected", reason: "unknown-index" });
  });

  test("messages of the wrong size or type are refused as such", () => {
    const { a, b } = pair();
    const init = a.createInitiation(b.publicKey, T0);
    expect(b.receive(init.subarray(0, 147), SRC, T0)).toEqual({ kind: "rejected", reason: "size" });
    const typed = Uint8Array.from(init);
    typed[0] = 2;
    expect(b.receive(typed, SRC, T0)).toEqual({ kind: "rejected", reason: "size" });
    expect(b.receive(new Uint8Array(0), SRC, T0)).toEqual({ kind: "rejected", reason: "size" });
    expect(b.rejected.size).toBe(3);
  });

  test("keys of the wrong length are refused by name", () => {
    const n = new Noise({ privateKey: generatePrivateKey() });
    expect(() => n.addPeer({ publicKey: new Uint8Array(31) })).toThrow("peer public key is 31 bytes; it must be 32");
    expect(() => n.addPeer({ publicKey: new Uint8Array(32).fill(9), presharedKey: new Uint8Array(16) }))
      .toThrow("preshared key is 16 bytes; it must be 32");
    expect(() => n.createInitiation(new Uint8Array(32).fill(5), T0)).toThrow("no peer with public key");
  });
});

describe("cookies under load (MAC2)", () => {
  test("under load an initiation without MAC2 gets a 64-byte cookie reply; with the cookie it is answered", () => {
    const { a, b } = pair();
    const init = a.createInitiation(b.publicKey, T0);
    const reply = expectKind(b.receive(init, SRC, T0, true), "cookie-reply").message;
    expect(reply.length).toBe(64);
    expect(hex(reply.subarray(0, 4))).toBe("03000000");
    expect(u32(reply, 4)).toBe(u32(init, 4));
    expect(expectKind(a.receive(reply, SRC, T0), "cookie-stored").peer).toEqual(b.publicKey);
    const again = a.createInitiation(b.publicKey, T0 + 1000);
    expect(hex(again.subarray(132))).not.toBe("00".repeat(16));
    expectKind(b.receive(again, SRC, T0 + 1000, true), "response");
  });

  test("MAC2 is bound to the sender's address, to the message, and expires after 120 s", () => {
    const { a, b } = pair();
    a.receive(expectKind(b.receive(a.createInitiation(b.publicKey, T0), SRC, T0, true), "cookie-reply").message, SRC, T0);
    const otherSrc = Uint8Array.of(10, 99, 0, 3, 0xcc, 0xca);
    expect(b.receive(a.createInitiation(b.publicKey, T0 + 100), otherSrc, T0 + 100, true).kind).toBe("cookie-reply");
    const altered = a.createInitiation(b.publicKey, T0 + 200);
    altered[140]! ^= 1;
    expect(b.receive(altered, SRC, T0 + 200, true).kind).toBe("cookie-reply");
    const late = T0 + COOKIE_REFRESH_MS + 1000;
    const stale = a.createInitiation(b.publicKey, late);
    expect(hex(stale.subarray(132))).toBe("00".repeat(16)); // a's cookie is too old to use
    expect(b.receive(stale, SRC, late, true).kind).toBe("cookie-reply");
    // Not under load, MAC2 is not asked for.
    expectKind(b.receive(a.createInitiation(b.publicKey, late + 100), SRC, late + 100), "response");
  });

  test("a cookie reply that was altered, or is for no handshake of ours, is refused", () => {
    const { a, b } = pair();
    const reply = expectKind(b.receive(a.createInitiation(b.publicKey, T0), SRC, T0, true), "cookie-reply").message;
    for (const at of [10, 40, 63]) {
      const bad = Uint8Array.from(reply);
      bad[at]! ^= 1;
      expect(a.receive(bad, SRC, T0)).toEqual({ kind: "rejected", reason: "cookie" });
    }
    const unknown = Uint8Array.from(reply);
    unknown[4]! ^= 1;
    expect(a.receive(unknown, SRC, T0)).toEqual({ kind: "rejected", reason: "unknown-index" });
    expect(a.rejected).toMatchObject({ cookie: 3, "unknown-index": 1 });
  });
});

describe("TAI64N", () => {
  test("2^62 + 10 + seconds, then nanoseconds rounded down to 2^24 ns", () => {
    expect(hex(tai64n(0))).toBe("400000000000000a00000000");
    expect(hex(tai64n(T0 + 500))).toBe(`${(0x400000000000000an + BigInt(T0 / 1000)).toString(16)}1d000000`);
    expect(tai64nAfter(tai64n(T0 + 17), tai64n(T0))).toBe(true);
    expect(tai64nAfter(tai64n(T0 + 16), tai64n(T0))).toBe(false);
    expect(tai64nAfter(tai64n(T0), tai64n(T0))).toBe(false);
    expect(tai64nAfter(tai64n(T0), tai64n(T0 + 1000))).toBe(false);
  });
});
