/**
 * @module The handshake's AEAD on the core (coreAead) against the TypeScript one (aead.ts, itself
 * checked against RFC 8439 and Wycheproof): the same bytes for random keys, counters, AADs and
 * messages of every size a handshake uses, refusal of any altered byte, and a full handshake
 * between two Noise instances, one on each implementation.
 */
import { expect, test } from "bun:test";
import { randomBytes } from "node:crypto";
import { chacha20Poly1305 } from "../../src/backend/wireguard/aead.ts";
import { Noise } from "../../src/backend/wireguard/noise.ts";
import { generatePrivateKey } from "../../src/backend/wireguard/x25519.ts";
import { loadCore } from "../../src/core/loader.ts";
import { coreAead } from "../../src/core/wg_transport.ts";

const rnd = (n: number) => new Uint8Array(randomBytes(n));

test("coreAead seals and opens exactly as the TypeScript AEAD, and refuses any altered byte", async () => {
  const aead = coreAead(await loadCore());
  for (let i = 0; i < 2000; i++) {
    const key = rnd(32), counter = BigInt(i % 7 === 0 ? 2 ** 53 + i : i), aad = rnd(i % 2 ? 32 : (i * 7) % 129), msg = rnd(i % 177);
    const sealed = aead.seal(key, counter, msg, aad);
    expect(sealed).toEqual(chacha20Poly1305.seal(key, counter, msg, aad));
    expect(aead.open(key, counter, sealed, aad)).toEqual(msg);
    const bad = Uint8Array.from(sealed);
    bad[i % bad.length]! ^= 1 << (i % 8);
    expect(aead.open(key, counter, bad, aad)).toBeNull();
  }
  expect(() => aead.seal(rnd(32), 0n, rnd(300), rnd(32))).toThrow("handshake AEAD: key 32 B (32), AAD 32 B (at most 128), data 300 B (at most 240)");
});

test("a handshake between a Noise on the core's AEAD and one on the TypeScript AEAD derives the same keys", async () => {
  const a = new Noise({ privateKey: generatePrivateKey(), aead: coreAead(await loadCore()) });
  const b = new Noise({ privateKey: generatePrivateKey() });
  a.addPeer({ publicKey: b.publicKey, presharedKey: rnd(32) });
  b.addPeer({ publicKey: a.publicKey, presharedKey: (a as any).peers.values().next().value.presharedKey });
  const init = a.createInitiation(b.publicKey, Date.now());
  const r = b.receive(init, new Uint8Array(6), Date.now());
  if (r.kind !== "response") throw new Error(`responder said ${r.kind}`);
  const s = a.receive(r.message, new Uint8Array(6), Date.now());
  if (s.kind !== "session") throw new Error(`initiator said ${s.kind}`);
  expect(s.session.sendKey).toEqual(r.session.receiveKey);
  expect(s.session.receiveKey).toEqual(r.session.sendKey);
});
