/**
 * @module BLAKE2s (RFC 7693) with 1–32 byte digests and an optional key of up to 32 bytes: the
 * hash, MAC and (through HMAC) KDF of WireGuard. Bun's node:crypto has no blake2s, so it is here
 * in TypeScript: the state, message words and work vector are fixed Uint32Arrays owned by each
 * hasher, so the compression loop allocates nothing.
 *
 * @example
 *   blake2s(new TextEncoder().encode("abc"))           // 32-byte hash (RFC 7693 Appendix B)
 *   blake2s(data, 16, key)                               // WireGuard's Mac(key, data)
 *   new Blake2s(32).update(a).update(b).digest()         // hash of a ‖ b without a copy
 */

const IV = new Uint32Array([
  0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19,
]);

// The message schedule, ten rounds of sixteen word indices (RFC 7693 §2.7).
const SIGMA = new Uint8Array([
  0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15,
  14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3,
  11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4,
  7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8,
  9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13,
  2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9,
  12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11,
  13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10,
  6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5,
  10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0,
]);

/** A streaming BLAKE2s hasher; `digest()` ends it. */
export class Blake2s {
  private readonly h = new Uint32Array(8);
  private readonly m = new Uint32Array(16);
  private readonly v = new Uint32Array(16);
  private readonly buf = new Uint8Array(64);
  private bufLen = 0;
  /** Bytes compressed so far (t0, t1 of RFC 7693; a double holds 2^53, far beyond any input). */
  private total = 0;
  private done = false;

  /**
   * @param outLen digest length in bytes, 1–32 (WireGuard uses 32 for HASH and 16 for MAC)
   * @param key optional key, 0–32 bytes (keyed BLAKE2s, RFC 7693 §3.3)
   */
  constructor(private readonly outLen = 32, key?: Uint8Array) {
    if (!Number.isInteger(outLen) || outLen < 1 || outLen > 32) {
      throw new RangeError(`BLAKE2s digest length ${outLen} must be 1 to 32 bytes`);
    }
    const keyLen = key?.length ?? 0;
    if (keyLen > 32) throw new RangeError(`BLAKE2s key length ${keyLen} must be at most 32 bytes`);
    this.h.set(IV);
    this.h[0] ^= 0x01010000 ^ (keyLen << 8) ^ outLen; // parameter block: fanout 1, depth 1
    if (key && keyLen > 0) {
      this.buf.set(key);
      this.bufLen = 64; // the key is a full zero-padded first block
    }
  }

  /** Absorbs `data`; returns this, for chaining. */
  update(data: Uint8Array): this {
    if (this.done) throw new Error("BLAKE2s: update() after digest()");
    let pos = 0;
    const n = data.length;
    while (pos < n) {
      // A full buffer is compressed only once more input arrives: the last block is special.
      if (this.bufLen === 64) {
        this.total += 64;
        this.compress(this.buf, 0, false);
        this.bufLen = 0;
      }
      // Whole blocks straight from the input when more follows them.
      if (this.bufLen === 0) {
        while (n - pos > 64) {
          this.total += 64;
          this.compress(data, pos, false);
          pos += 64;
        }
      }
      const take = Math.min(64 - this.bufLen, n - pos);
      this.buf.set(data.subarray(pos, pos + take), this.bufLen);
      this.bufLen += take;
      pos += take;
    }
    return this;
  }

  /** Ends the hash and returns its `outLen` bytes (into `out` when given). */
  digest(out = new Uint8Array(this.outLen)): Uint8Array {
    if (this.done) throw new Error("BLAKE2s: digest() called twice");
    this.done = true;
    this.total += this.bufLen;
    this.buf.fill(0, this.bufLen);
    this.compress(this.buf, 0, true);
    for (let i = 0; i < this.outLen; i++) out[i] = this.h[i >> 2]! >>> (8 * (i & 3));
    return out;
  }

  private compress(block: Uint8Array, off: number, last: boolean): void {
    const { h, m, v } = this;
    for (let i = 0; i < 16; i++) {
      const j = off + 4 * i;
      m[i] = block[j]! | (block[j + 1]! << 8) | (block[j + 2]! << 16) | (block[j + 3]! << 24);
    }
    for (let i = 0; i < 8; i++) {
      v[i] = h[i]!;
      v[i + 8] = IV[i]!;
    }
    v[12] ^= this.total >>> 0;
    v[13] ^= Math.floor(this.total / 0x100000000);
    if (last) v[14] = ~v[14]!;
    for (let r = 0; r < 10; r++) {
      const s = r * 16;
      g(v, 0, 4, 8, 12, m[SIGMA[s]!]!, m[SIGMA[s + 1]!]!);
      g(v, 1, 5, 9, 13, m[SIGMA[s + 2]!]!, m[SIGMA[s + 3]!]!);
      g(v, 2, 6, 10, 14, m[SIGMA[s + 4]!]!, m[SIGMA[s + 5]!]!);
      g(v, 3, 7, 11, 15, m[SIGMA[s + 6]!]!, m[SIGMA[s + 7]!]!);
      g(v, 0, 5, 10, 15, m[SIGMA[s + 8]!]!, m[SIGMA[s + 9]!]!);
      g(v, 1, 6, 11, 12, m[SIGMA[s + 10]!]!, m[SIGMA[s + 11]!]!);
      g(v, 2, 7, 8, 13, m[SIGMA[s + 12]!]!, m[SIGMA[s + 13]!]!);
      g(v, 3, 4, 9, 14, m[SIGMA[s + 14]!]!, m[SIGMA[s + 15]!]!);
    }
    for (let i = 0; i < 8; i++) h[i] = h[i]! ^ v[i]! ^ v[i + 8]!;
  }
}

// The mixing function G (RFC 7693 §3.1) with BLAKE2s's rotations 16, 12, 8, 7.
function g(v: Uint32Array, a: number, b: number, c: number, d: number, x: number, y: number): void {
  let va = v[a]!, vb = v[b]!, vc = v[c]!, vd = v[d]!;
  va = (va + vb + x) | 0;
  vd ^= va; vd = (vd >>> 16) | (vd << 16);
  vc = (vc + vd) | 0;
  vb ^= vc; vb = (vb >>> 12) | (vb << 20);
  va = (va + vb + y) | 0;
  vd ^= va; vd = (vd >>> 8) | (vd << 24);
  vc = (vc + vd) | 0;
  vb ^= vc; vb = (vb >>> 7) | (vb << 25);
  v[a] = va; v[b] = vb; v[c] = vc; v[d] = vd;
}

/** BLAKE2s of `data`: `outLen` bytes (default 32), keyed when `key` is given. */
export function blake2s(data: Uint8Array, outLen = 32, key?: Uint8Array): Uint8Array {
  return new Blake2s(outLen, key).update(data).digest();
}
