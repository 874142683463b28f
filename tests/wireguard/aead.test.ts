/**
 * @module ChaCha20, Poly1305, ChaCha20-Poly1305 and XChaCha20-Poly1305 against RFC 8439 and
 * draft-irtf-cfrg-xchacha vectors, differentially against Node's (OpenSSL's)
 * `chacha20-poly1305` on random messages, and every altered byte refused.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import {
  chacha20Poly1305, chacha20Poly1305Open, chacha20Poly1305Seal, counterNonce, xchacha20Poly1305Open,
  xchacha20Poly1305Seal,
} from "../../src/backend/wireguard/aead.ts";
import { chacha20Xor, hchacha20 } from "../../src/backend/wireguard/chacha20.ts";
import { poly1305 } from "../../src/backend/wireguard/poly1305.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));
const seq = (first: number, n: number) => new Uint8Array(n).map((_, i) => first + i);
const SUNSCREEN = new TextEncoder().encode(
  "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.");

describe("RFC 8439 vectors", () => {
  test("§2.4.2 ChaCha20 encryption (key 00..1f, counter 1)", () => {
    const ct = chacha20Xor(seq(0, 32), unhex("000000000000004a00000000"), 1, SUNSCREEN);
    expect(hex(ct)).toBe(
      "6e2e359a2568f98041ba0728dd0d6981e97e7aec1d4360c20a27afccfd9fae0bf91b65c5524733ab8f593dabcd62b357" +
      "1639d624e65152ab8f530c359f0861d807ca0dbf500d6a6156a38e088a22b65e52bc514d16ccf806818ce91ab7793736" +
      "5af90bbf74a35be6b40b8eedf2785e42874d");
  });

  test("§2.5.2 Poly1305", () => {
    const key = unhex("85d6be7857556d337f4452fe42d506a80103808afb0db2fd4abff6af4149f51b");
    expect(hex(poly1305(key, new TextEncoder().encode("Cryptographic Forum Research Group"))))
      .toBe("a8061dc1305136c6c22b8baf0c0127a9");
  });

  test("§2.8.2 ChaCha20-Poly1305 seal and open", () => {
    const key = seq(0x80, 32), nonce = unhex("070000004041424344454647"), aad = unhex("50515253c0c1c2c3c4c5c6c7");
    const sealed = chacha20Poly1305Seal(key, nonce, SUNSCREEN, aad);
    expect(hex(sealed)).toBe(
      "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b" +
      "1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc" +
      "3ff4def08e4b7a9de576d26586cec64b6116" + "1ae10b594f09e26a7e902ecbd0600691");
    expect(chacha20Poly1305Open(key, nonce, sealed, aad)).toEqual(SUNSCREEN);
  });
});

describe("draft-irtf-cfrg-xchacha vectors", () => {
  test("§2.2.1 HChaCha20", () => {
    expect(hex(hchacha20(seq(0, 32), unhex("000000090000004a0000000031415927"))))
      .toBe("82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc");
  });

  test("§A.3.1 XChaCha20-Poly1305 seal and open", () => {
    const key = seq(0x80, 32), nonce = seq(0x40, 24), aad = unhex("50515253c0c1c2c3c4c5c6c7");
    const sealed = xchacha20Poly1305Seal(key, nonce, SUNSCREEN, aad);
    expect(hex(sealed)).toBe(
      "bd6d179d3e83d43b9576579493c0e939572a1700252bfaccbed2902c21396cbb731c7f1b0b4aa6440bf3a82f4eda7e39" +
      "ae64c6708c54c216cb96b72e1213b4522f8c9ba40db5d945b11b69b982c1bb9e3f3fac2bc369488f76b2383565d3fff9" +
      "21f9664c97637da9768812f615c68b13b52e" + "c0875924c1c7987947deafd8780acf49");
    expect(xchacha20Poly1305Open(key, nonce, sealed, aad)).toEqual(SUNSCREEN);
    const other = Uint8Array.from(nonce);
    other[23]! ^= 1;
    expect(xchacha20Poly1305Open(key, other, sealed, aad)).toBeNull();
  });
});

describe("the Aead contract (WireGuard's counter nonce)", () => {
  test("the nonce is 4 zero bytes then the counter little-endian", () => {
    expect(hex(counterNonce(0x0102030405060708n))).toBe("000000000807060504030201");
  });

  test("matches Node's chacha20-poly1305 on 3000 random messages, and opens what Node sealed", () => {
    const cases = Array.from({ length: 3000 }, (_, i) => ({
      key: new Uint8Array(randomBytes(32)),
      counter: i < 10 ? BigInt(i) : randomBytes(8).readBigUInt64LE(),
      plain: new Uint8Array(randomBytes(i % 300)),
      aad: new Uint8Array(randomBytes(i % 41)),
    }));
    const script = `
      const c = require("node:crypto");
      const out = require("node:fs").readFileSync(0, "utf8").split("\\n").map((line) => {
        const [key, nonce, plain, aad] = line.split(" ").map((h) => Buffer.from(h.slice(1), "hex"));
        const ci = c.createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
        ci.setAAD(aad, { plaintextLength: plain.length });
        return Buffer.concat([ci.update(plain), ci.final(), ci.getAuthTag()]).toString("hex");
      });
      process.stdout.write(out.join("\\n"));`;
    const input = cases.map((k) => [k.key, counterNonce(k.counter), k.plain, k.aad].map((b) => "=" + hex(b)).join(" ")).join("\n");
    const r = spawnSync("node", ["-e", script], { input, encoding: "utf8", maxBuffer: 64 << 20 });
    expect(r.stderr).toBe("");
    const want = r.stdout.split("\n");
    expect(want.length).toBe(cases.length);
    let mismatches = 0;
    cases.forEach((k, i) => {
      if (hex(chacha20Poly1305.seal(k.key, k.counter, k.plain, k.aad)) !== want[i]) mismatches++;
      const opened = chacha20Poly1305.open(k.key, k.counter, unhex(want[i]!), k.aad);
      if (!opened || hex(opened) !== hex(k.plain)) mismatches++;
    });
    expect(mismatches).toBe(0);
  });

  test("refuses every flipped bit of ciphertext and tag, another counter, other aad, a short input", () => {
    const key = new Uint8Array(randomBytes(32)), plain = new Uint8Array(randomBytes(48)), aad = new Uint8Array(randomBytes(32));
    const sealed = chacha20Poly1305.seal(key, 5n, plain, aad);
    for (let i = 0; i < sealed.length; i++) {
      for (let bit = 0; bit < 8; bit++) {
        const bad = Uint8Array.from(sealed);
        bad[i]! ^= 1 << bit;
        expect(chacha20Poly1305.open(key, 5n, bad, aad)).toBeNull();
      }
    }
    expect(chacha20Poly1305.open(key, 6n, sealed, aad)).toBeNull();
    expect(chacha20Poly1305.open(key, 5n, sealed, aad.subarray(1))).toBeNull();
    expect(chacha20Poly1305.open(key, 5n, sealed.subarray(0, 15), aad)).toBeNull();
    expect(chacha20Poly1305.open(key, 5n, sealed, aad)).toEqual(plain);
  });
});
