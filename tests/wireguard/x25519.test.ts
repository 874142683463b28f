/**
 * @module X25519 through the runtime's node:crypto, against RFC 7748 (§5.2 scalar
 * multiplication and its iteration test, §6.1 Diffie-Hellman). runtimes.test.ts checks that
 * Deno and a compiled binary compute the same.
 */
import { describe, expect, test } from "bun:test";
import { generatePrivateKey, publicKeyOf, x25519 } from "../../src/backend/wireguard/x25519.ts";

const hex = (b: Uint8Array | null) => (b ? Buffer.from(b).toString("hex") : "null");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

describe("X25519", () => {
  test("RFC 7748 §5.2: two scalar multiplications (the u-coordinate's top bit is ignored)", () => {
    expect(hex(x25519(unhex("a546e36bf0527c9d3b16154b82465edd62144c0ac1fc5a18506a2244ba449ac4"),
      unhex("e6db6867583030db3594c1a424b15f7c726624ec26b3353b10a903a6d0ab1c4c"))))
      .toBe("c3da55379de9c6908e94ea4df28d084f32eccf03491c71f754b4075577a28552");
    expect(hex(x25519(unhex("4b66e9d4d1b4673c5ad22691957d6af5c11b6421e0ea01d42ca4169e7918ba0d"),
      unhex("e5210f12786811d3f4b7959d0538ae2c31dbe7106fc03c3efc4cd549c715a493"))))
      .toBe("95cbde9476e8907d7aade45cb4b873f88b595a68799fa152e6f8f7647aac7957");
  });

  test("RFC 7748 §5.2: the iteration test, 1 and 1000 times", () => {
    let k: Uint8Array = unhex("0900000000000000000000000000000000000000000000000000000000000000");
    let u = k;
    for (let i = 1; i <= 1000; i++) {
      const next = x25519(k, u)!;
      u = k;
      k = next;
      if (i === 1) expect(hex(k)).toBe("422c8e7a6227d7bca1350b3e2bb7279f7897b87bb6854b783c60e80311ae3079");
    }
    expect(hex(k)).toBe("684cf59ba83309552800ef566f2f4d3c1c3887c49360e3875f2eb94d99532c51");
  });

  test("RFC 7748 §6.1: Alice's and Bob's public keys and their shared secret", () => {
    const alice = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
    const bob = unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
    expect(hex(publicKeyOf(alice))).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a");
    expect(hex(publicKeyOf(bob))).toBe("de9edb7d7b7dc1b4d35b61c2ece435373f8343c85b78674dadfc7e146f882b4f");
    const shared = "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742";
    expect(hex(x25519(alice, publicKeyOf(bob)))).toBe(shared);
    expect(hex(x25519(bob, publicKeyOf(alice)))).toBe(shared);
  });

  test("a fresh key pair agrees both ways; a low-order public key gives null; wrong lengths are named", () => {
    const a = generatePrivateKey(), b = generatePrivateKey();
    expect(a.length).toBe(32);
    expect(hex(x25519(a, publicKeyOf(b)))).toBe(hex(x25519(b, publicKeyOf(a))));
    expect(x25519(a, new Uint8Array(32))).toBeNull(); // u = 0: the all-zero result WireGuard refuses
    expect(x25519(a, unhex("0100000000000000000000000000000000000000000000000000000000000000"))).toBeNull();
    expect(() => x25519(a, new Uint8Array(31))).toThrow("X25519 public key is 31 bytes; it must be 32");
  });
});
