/**
 * The core's ChaCha20, Poly1305 and ChaCha20-Poly1305 against published vectors: RFC 8439
 * (§2.3.2–2.8.2 and Appendix A) and Project Wycheproof's AEAD cases (valid, modified tags,
 * Poly1305 edge cases, lengths 0..513 around the four-block SIMD boundary). Every vector runs
 * twice: with ChaCha20's SIMD form and with the scalar one.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { loadCore } from "../../src/core/loader.ts";
import type { Core } from "../../src/core/types.ts";
import { CoreAead, hex, toHex } from "./aead_harness.ts";

const fixtures = join(import.meta.dir, "..", "fixtures", "crypto");
const rfc = JSON.parse(readFileSync(join(fixtures, "rfc8439.json"), "utf8"));
const wycheproof = JSON.parse(readFileSync(join(fixtures, "wycheproof_chacha20_poly1305.json"), "utf8"));
const text = (v: { text?: string; plaintext?: string; message?: string }) =>
  v.text ? new TextEncoder().encode(rfc.texts[v.text]) : hex(v.plaintext ?? v.message ?? "");

let core: Core;
let aead: CoreAead;
beforeAll(async () => {
  core = await loadCore();
  aead = new CoreAead(core);
});

for (const simd of [1, 0]) {
  describe(`ChaCha20 ${simd ? "SIMD" : "scalar"}`, () => {
    beforeAll(() => core.wg!.setChaChaSimd(simd));

    test("RFC 8439 block function vectors (2.3.2, A.1)", () => {
      for (const v of rfc.block) {
        expect({ name: v.name, out: toHex(aead.chacha20(hex(v.key), hex(v.nonce), v.counter, new Uint8Array(64))) })
          .toEqual({ name: v.name, out: v.keystream });
      }
    });

    test("RFC 8439 encryption vectors (2.4.2, A.2), and decryption gives the plaintext back", () => {
      for (const v of rfc.encrypt) {
        const pt = text(v);
        const ct = aead.chacha20(hex(v.key), hex(v.nonce), v.counter, pt);
        expect({ name: v.name, ct: toHex(ct) }).toEqual({ name: v.name, ct: v.ciphertext });
        expect(aead.chacha20(hex(v.key), hex(v.nonce), v.counter, ct)).toEqual(pt);
      }
    });

    test("RFC 8439 Poly1305 key generation (2.6.2, A.4): block 0's first 32 bytes", () => {
      for (const v of rfc.keygen) {
        const ks = aead.chacha20(hex(v.key), hex(v.nonce), 0, new Uint8Array(32));
        expect({ name: v.name, key: toHex(ks) }).toEqual({ name: v.name, key: v.polyKey });
      }
    });

    test("RFC 8439 AEAD vectors (2.8.2 seal, A.5 open) and any flipped bit refused", () => {
      for (const v of rfc.aead) {
        const pt = text(v);
        const sealed = aead.seal(hex(v.key), hex(v.nonce), hex(v.aad), pt);
        expect({ name: v.name, sealed: toHex(sealed) }).toEqual({ name: v.name, sealed: v.ciphertext + v.tag });
        expect(aead.open(hex(v.key), hex(v.nonce), hex(v.aad), hex(v.ciphertext + v.tag))).toEqual(pt);
        for (const at of [0, pt.length - 1, pt.length, pt.length + 15]) {
          const bad = sealed.slice();
          bad[at]! ^= 0x01;
          expect(aead.open(hex(v.key), hex(v.nonce), hex(v.aad), bad)).toBeNull();
        }
        const badAad = hex(v.aad);
        badAad[0]! ^= 0x80;
        expect(aead.open(hex(v.key), hex(v.nonce), badAad, sealed)).toBeNull();
        const badNonce = hex(v.nonce);
        badNonce[11]! ^= 0x01;
        expect(aead.open(hex(v.key), badNonce, hex(v.aad), sealed)).toBeNull();
      }
    });

    test(`Wycheproof ChaCha20-Poly1305: ${wycheproof.cases.length} cases (${wycheproof.source.split(",")[0]})`, () => {
      let valid = 0, invalid = 0;
      for (const [tcId, result, flags, key, iv, aad, msg, ct, tag] of wycheproof.cases as string[][]) {
        const label = `tcId ${tcId} (${flags})`;
        const opened = aead.open(hex(key!), hex(iv!), hex(aad!), hex(ct! + tag!));
        if (result === "valid") {
          expect({ label, sealed: toHex(aead.seal(hex(key!), hex(iv!), hex(aad!), hex(msg!))) }).toEqual({ label, sealed: ct! + tag! });
          expect({ label, opened: opened && toHex(opened) }).toEqual({ label, opened: msg! });
          valid++;
        } else {
          expect({ label, opened }).toEqual({ label, opened: null });
          invalid++;
        }
      }
      expect(valid).toBeGreaterThan(150);
      expect(invalid).toBe(60);
    });
  });
}

test("Poly1305 vectors (2.5.2, A.3: zero r, s overflow, not fully reduced, 2^130-5 edges)", () => {
  for (const v of rfc.poly1305) {
    expect({ name: v.name, tag: toHex(aead.poly1305(hex(v.key), text(v))) }).toEqual({ name: v.name, tag: v.tag });
  }
});

test("raw exports refuse ranges outside the packet arenas", () => {
  const wg = core.wg!;
  expect(wg.aeadSealAt(0, 0, 0x100, 16, 0x1000000)).toBe(8); // src in the tables
  expect(wg.aeadSealAt(0, 0, 0x1000000, 16, 0x3600000 - 31)).toBe(8); // tag would pass the end
  expect(wg.chacha20XorAt(0, 0x1000000, 64, 0x3800000)).toBe(8); // dst on the sessions
  expect(wg.poly1305At(0x1000000, 16, 0x10)).toBe(8);
});
