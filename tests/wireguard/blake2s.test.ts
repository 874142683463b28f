/**
 * @module BLAKE2s and WireGuard's functions over it, against published vectors (RFC 7693
 * Appendices B and E, the BLAKE2 reference keyed KAT) and differentially against Node's
 * `blake2s256` (OpenSSL) on thousands of random inputs, whole and fed in random pieces.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { Blake2s, blake2s } from "../../src/backend/wireguard/blake2s.ts";
import { hmac, kdf1, kdf2, kdf3 } from "../../src/backend/wireguard/kdf.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
const unhex = (s: string) => new Uint8Array(Buffer.from(s, "hex"));

describe("BLAKE2s", () => {
  test("RFC 7693 Appendix B: BLAKE2s-256(\"abc\")", () => {
    expect(hex(blake2s(new TextEncoder().encode("abc"))))
      .toBe("508c5e8c327c14e2e1a72ba34eeb452f37458b209ed63a294d999b4c86675982");
  });

  test("RFC 7693 Appendix E: the self-test's hash over digest lengths 16–32, keyed and unkeyed", () => {
    const seq = (n: number, seed: number) => {
      const out = new Uint8Array(n);
      let a = Math.imul(0xdead4bad, seed) >>> 0, b = 1;
      for (let i = 0; i < n; i++) {
        const t = (a + b) >>> 0;
        a = b; b = t;
        out[i] = t >>> 24;
      }
      return out;
    };
    const all = new Blake2s(32);
    for (const outLen of [16, 20, 28, 32]) {
      for (const inLen of [0, 3, 64, 65, 255, 1024]) {
        const data = seq(inLen, inLen);
        all.update(blake2s(data, outLen));
        all.update(blake2s(data, outLen, seq(outLen, outLen)));
      }
    }
    expect(hex(all.digest())).toBe("6a411f08ce25adcdfb02aba641451cec53c598b24f4fc787fbdc88797f4c1dfe");
  });

  test("the BLAKE2 reference keyed KAT (fixture subset)", () => {
    const fixture = JSON.parse(readFileSync(join(import.meta.dir, "../fixtures/wireguard/blake2s_keyed_kat.json"), "utf8"));
    expect(fixture.vectors.length).toBeGreaterThan(10);
    for (const v of fixture.vectors as { in: string; key: string; hash: string }[]) {
      expect(`${v.in.length / 2}: ${hex(blake2s(unhex(v.in), 32, unhex(v.key)))}`).toBe(`${v.in.length / 2}: ${v.hash}`);
    }
  });

  test("matches Node's blake2s256 on 4000 random inputs, whole and in random pieces", () => {
    const inputs: Uint8Array[] = [];
    for (let i = 0; i < 4000; i++) {
      // Lengths cluster around the 64-byte block edges, where streaming code goes wrong.
      const len = i < 400 ? i : i % 3 === 0 ? 64 * (i % 9) + ((i % 5) - 2) : (i * 7919) % 1500;
      inputs.push(new Uint8Array(randomBytes(Math.max(0, len))));
    }
    const script = `
      const { createHash } = require("node:crypto");
      const lines = require("node:fs").readFileSync(0, "utf8").split("\\n");
      process.stdout.write(lines.map((l) => createHash("blake2s256").update(Buffer.from(l.slice(1), "hex")).digest("hex")).join("\\n"));`;
    const r = spawnSync("node", ["-e", script], { input: inputs.map((b) => "=" + hex(b)).join("\n"), encoding: "utf8", maxBuffer: 64 << 20 });
    expect(r.status).toBe(0);
    const want = r.stdout.split("\n");
    expect(want.length).toBe(inputs.length);
    let mismatches = 0;
    inputs.forEach((input, i) => {
      if (hex(blake2s(input)) !== want[i]) mismatches++;
      const h = new Blake2s(32);
      for (let pos = 0; pos < input.length;) {
        const step = 1 + ((i * 31 + pos) % 97);
        h.update(input.subarray(pos, pos + step));
        pos += step;
      }
      if (hex(h.digest()) !== want[i]) mismatches++;
    });
    expect(mismatches).toBe(0);
  });

  test("refuses a digest length outside 1–32 and a key over 32 bytes, by name", () => {
    expect(() => new Blake2s(33)).toThrow("BLAKE2s digest length 33 must be 1 to 32 bytes");
    expect(() => new Blake2s(32, new Uint8Array(33))).toThrow("BLAKE2s key length 33 must be at most 32 bytes");
  });
});

describe("HMAC-BLAKE2s and KDF", () => {
  test("HMAC is RFC 2104 over BLAKE2s (block 64): the same as Python's hmac with hashlib.blake2s", () => {
    const py = spawnSync("python3", ["-c",
      "import hmac,hashlib,sys\nfor k,m in [(bytes(range(32)),b'wireguard'),(b'',b''),(bytes(range(100)),bytes(range(200)))]:print(hmac.new(k,m,hashlib.blake2s).hexdigest())"],
    { encoding: "utf8" });
    expect(py.status).toBe(0);
    const want = py.stdout.trim().split("\n");
    const range = (n: number) => new Uint8Array(n).map((_, i) => i);
    expect(hex(hmac(range(32), new TextEncoder().encode("wireguard")))).toBe(want[0]!);
    expect(hex(hmac(new Uint8Array(0), new Uint8Array(0)))).toBe(want[1]!);
    expect(hex(hmac(range(100), range(200)))).toBe(want[2]!);
  });

  test("KDF1/2/3 chain HMACs as the whitepaper defines them", () => {
    const key = new Uint8Array(32).fill(7), input = new Uint8Array(32).fill(9);
    const t0 = hmac(key, input);
    const t1 = hmac(t0, Uint8Array.of(1));
    const t2 = hmac(t0, t1, Uint8Array.of(2));
    const t3 = hmac(t0, t2, Uint8Array.of(3));
    expect(kdf1(key, input)).toEqual(t1);
    expect(kdf2(key, input)).toEqual([t1, t2]);
    expect(kdf3(key, input)).toEqual([t1, t2, t3]);
  });
});
