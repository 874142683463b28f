/**
 * @module ChaCha20 (RFC 8439 §2.3–2.4): the stream cipher of WireGuard's transport, XORing a
 * key stream into memory. Two forms of the block function: scalar (one 64-byte block in 16
 * locals) and Wasm SIMD (four blocks at once, one block per i32x4 lane, the form that pays on
 * every engine with 128-bit vectors). Both are always compiled; `setChaChaSimd()` picks one so
 * the benchmark can compare them in one binary (SIMD is the default).
 *
 * Key: 8 little-endian u32 at `key`; nonce: 3 little-endian u32 at `nonce` (RFC 8439's 96-bit
 * nonce); the 32-bit block counter starts at `counter`. Input and output may be the same bytes
 * (in place) or `dst` may lie before `src` (a whole block is read before it is written).
 */
import { WG_SCRATCH } from "./layout";

/** Scratch for one key-stream block when a message ends inside a block (64 bytes). */
const BLOCK_TMP: usize = <usize>WG_SCRATCH + 128;

let useSimd = true;

/** Selects the SIMD (true, default) or scalar block function; for benchmarks and tests. */
export function setChaChaSimd(on: bool): void { useSimd = on; }

// "expand 32-byte k"
const C0: u32 = 0x61707865;
const C1: u32 = 0x3320646e;
const C2: u32 = 0x79622d32;
const C3: u32 = 0x6b206574;

/**
 * XORs `len` bytes at `src` with the key stream from block `counter` into `dst`. The last block
 * may be partial; nothing is written past dst + len.
 */
export function chacha20Xor(key: usize, nonce: usize, counter: u32, src: usize, dst: usize, len: usize): void {
  let done: usize = 0;
  if (useSimd) {
    while (len - done >= 256) {
      blocks4(key, nonce, counter, src + done, dst + done);
      counter += 4;
      done += 256;
    }
  }
  while (len - done >= 64) {
    block1(key, nonce, counter, src + done, dst + done, ~0);
    counter++;
    done += 64;
  }
  const rest = len - done;
  if (rest > 0) {
    // The block's key stream, then XOR the tail byte by byte.
    block1(key, nonce, counter, BLOCK_TMP, BLOCK_TMP, 0);
    for (let i: usize = 0; i < rest; i++) {
      store<u8>(dst + done + i, load<u8>(src + done + i) ^ load<u8>(BLOCK_TMP + i));
    }
  }
}

/** Writes block `counter`'s 64-byte key stream to `out` (its first 32: the Poly1305 key, §2.6). */
export function chacha20Block(key: usize, nonce: usize, counter: u32, out: usize): void {
  block1(key, nonce, counter, out, out, 0);
}

/**
 * One block: dst[0..64] = (src[0..64] AND mask) XOR ChaCha20(key, counter, nonce); mask 0 gives
 * the bare key stream without a zeroed buffer (small memory.fill calls are costly in engines).
 */
function block1(key: usize, nonce: usize, counter: u32, src: usize, dst: usize, mask: u64): void {
  // The key and nonce are read again after the rounds rather than kept: 16 state words are all
  // the registers there are, and 12 more live values would be spilled inside the rounds.
  let x0 = C0, x1 = C1, x2 = C2, x3 = C3;
  let x4 = load<u32>(key), x5 = load<u32>(key, 4), x6 = load<u32>(key, 8), x7 = load<u32>(key, 12);
  let x8 = load<u32>(key, 16), x9 = load<u32>(key, 20), x10 = load<u32>(key, 24), x11 = load<u32>(key, 28);
  let x12 = counter, x13 = load<u32>(nonce), x14 = load<u32>(nonce, 4), x15 = load<u32>(nonce, 8);
  for (let i = 0; i < 10; i++) {
    // Columns.
    x0 += x4; x12 = rotl<u32>(x12 ^ x0, 16); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 12);
    x0 += x4; x12 = rotl<u32>(x12 ^ x0, 8); x8 += x12; x4 = rotl<u32>(x4 ^ x8, 7);
    x1 += x5; x13 = rotl<u32>(x13 ^ x1, 16); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 12);
    x1 += x5; x13 = rotl<u32>(x13 ^ x1, 8); x9 += x13; x5 = rotl<u32>(x5 ^ x9, 7);
    x2 += x6; x14 = rotl<u32>(x14 ^ x2, 16); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 12);
    x2 += x6; x14 = rotl<u32>(x14 ^ x2, 8); x10 += x14; x6 = rotl<u32>(x6 ^ x10, 7);
    x3 += x7; x15 = rotl<u32>(x15 ^ x3, 16); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 12);
    x3 += x7; x15 = rotl<u32>(x15 ^ x3, 8); x11 += x15; x7 = rotl<u32>(x7 ^ x11, 7);
    // Diagonals.
    x0 += x5; x15 = rotl<u32>(x15 ^ x0, 16); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 12);
    x0 += x5; x15 = rotl<u32>(x15 ^ x0, 8); x10 += x15; x5 = rotl<u32>(x5 ^ x10, 7);
    x1 += x6; x12 = rotl<u32>(x12 ^ x1, 16); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 12);
    x1 += x6; x12 = rotl<u32>(x12 ^ x1, 8); x11 += x12; x6 = rotl<u32>(x6 ^ x11, 7);
    x2 += x7; x13 = rotl<u32>(x13 ^ x2, 16); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 12);
    x2 += x7; x13 = rotl<u32>(x13 ^ x2, 8); x8 += x13; x7 = rotl<u32>(x7 ^ x8, 7);
    x3 += x4; x14 = rotl<u32>(x14 ^ x3, 16); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 12);
    x3 += x4; x14 = rotl<u32>(x14 ^ x3, 8); x9 += x14; x4 = rotl<u32>(x4 ^ x9, 7);
  }
  // Read the whole input block before writing (dst may overlap src from below).
  const m0 = load<u64>(src) & mask, m1 = load<u64>(src, 8) & mask, m2 = load<u64>(src, 16) & mask;
  const m3 = load<u64>(src, 24) & mask, m4 = load<u64>(src, 32) & mask, m5 = load<u64>(src, 40) & mask;
  const m6 = load<u64>(src, 48) & mask, m7 = load<u64>(src, 56) & mask;
  store<u64>(dst, m0 ^ pack(x0 + C0, x1 + C1));
  store<u64>(dst, m1 ^ pack(x2 + C2, x3 + C3), 8);
  store<u64>(dst, m2 ^ pack(x4 + load<u32>(key), x5 + load<u32>(key, 4)), 16);
  store<u64>(dst, m3 ^ pack(x6 + load<u32>(key, 8), x7 + load<u32>(key, 12)), 24);
  store<u64>(dst, m4 ^ pack(x8 + load<u32>(key, 16), x9 + load<u32>(key, 20)), 32);
  store<u64>(dst, m5 ^ pack(x10 + load<u32>(key, 24), x11 + load<u32>(key, 28)), 40);
  store<u64>(dst, m6 ^ pack(x12 + counter, x13 + load<u32>(nonce)), 48);
  store<u64>(dst, m7 ^ pack(x14 + load<u32>(nonce, 4), x15 + load<u32>(nonce, 8)), 56);
}

// @ts-ignore: decorator
@inline function pack(lo: u32, hi: u32): u64 { return (<u64>hi << 32) | <u64>lo; }

// @ts-ignore: decorator
@inline function rot16(v: v128): v128 {
  return i8x16.shuffle(v, v, 2, 3, 0, 1, 6, 7, 4, 5, 10, 11, 8, 9, 14, 15, 12, 13);
}
// @ts-ignore: decorator
@inline function rot8(v: v128): v128 {
  return i8x16.shuffle(v, v, 3, 0, 1, 2, 7, 4, 5, 6, 11, 8, 9, 10, 15, 12, 13, 14);
}
// @ts-ignore: decorator
@inline function rot12(v: v128): v128 { return v128.or(i32x4.shl(v, 12), i32x4.shr_u(v, 20)); }
// @ts-ignore: decorator
@inline function rot7(v: v128): v128 { return v128.or(i32x4.shl(v, 7), i32x4.shr_u(v, 25)); }

/**
 * Four consecutive blocks (counter .. counter+3), 256 bytes: lane j of every state vector is
 * block j. After the rounds, 4x4 transposes turn lanes back into contiguous blocks.
 */
function blocks4(key: usize, nonce: usize, counter: u32, src: usize, dst: usize): void {
  // The input state is not kept in registers across the rounds (32 live vectors would spill on
  // x86's 16): it is splatted again from memory for the final addition.
  let x0 = i32x4.splat(C0), x1 = i32x4.splat(C1), x2 = i32x4.splat(C2), x3 = i32x4.splat(C3);
  let x4 = i32x4.splat(load<u32>(key)), x5 = i32x4.splat(load<u32>(key, 4));
  let x6 = i32x4.splat(load<u32>(key, 8)), x7 = i32x4.splat(load<u32>(key, 12));
  let x8 = i32x4.splat(load<u32>(key, 16)), x9 = i32x4.splat(load<u32>(key, 20));
  let x10 = i32x4.splat(load<u32>(key, 24)), x11 = i32x4.splat(load<u32>(key, 28));
  let x12 = i32x4.add(i32x4.splat(counter), i32x4(0, 1, 2, 3));
  let x13 = i32x4.splat(load<u32>(nonce)), x14 = i32x4.splat(load<u32>(nonce, 4));
  let x15 = i32x4.splat(load<u32>(nonce, 8));
  for (let i = 0; i < 10; i++) {
    x0 = i32x4.add(x0, x4); x12 = rot16(v128.xor(x12, x0)); x8 = i32x4.add(x8, x12); x4 = rot12(v128.xor(x4, x8));
    x0 = i32x4.add(x0, x4); x12 = rot8(v128.xor(x12, x0)); x8 = i32x4.add(x8, x12); x4 = rot7(v128.xor(x4, x8));
    x1 = i32x4.add(x1, x5); x13 = rot16(v128.xor(x13, x1)); x9 = i32x4.add(x9, x13); x5 = rot12(v128.xor(x5, x9));
    x1 = i32x4.add(x1, x5); x13 = rot8(v128.xor(x13, x1)); x9 = i32x4.add(x9, x13); x5 = rot7(v128.xor(x5, x9));
    x2 = i32x4.add(x2, x6); x14 = rot16(v128.xor(x14, x2)); x10 = i32x4.add(x10, x14); x6 = rot12(v128.xor(x6, x10));
    x2 = i32x4.add(x2, x6); x14 = rot8(v128.xor(x14, x2)); x10 = i32x4.add(x10, x14); x6 = rot7(v128.xor(x6, x10));
    x3 = i32x4.add(x3, x7); x15 = rot16(v128.xor(x15, x3)); x11 = i32x4.add(x11, x15); x7 = rot12(v128.xor(x7, x11));
    x3 = i32x4.add(x3, x7); x15 = rot8(v128.xor(x15, x3)); x11 = i32x4.add(x11, x15); x7 = rot7(v128.xor(x7, x11));

    x0 = i32x4.add(x0, x5); x15 = rot16(v128.xor(x15, x0)); x10 = i32x4.add(x10, x15); x5 = rot12(v128.xor(x5, x10));
    x0 = i32x4.add(x0, x5); x15 = rot8(v128.xor(x15, x0)); x10 = i32x4.add(x10, x15); x5 = rot7(v128.xor(x5, x10));
    x1 = i32x4.add(x1, x6); x12 = rot16(v128.xor(x12, x1)); x11 = i32x4.add(x11, x12); x6 = rot12(v128.xor(x6, x11));
    x1 = i32x4.add(x1, x6); x12 = rot8(v128.xor(x12, x1)); x11 = i32x4.add(x11, x12); x6 = rot7(v128.xor(x6, x11));
    x2 = i32x4.add(x2, x7); x13 = rot16(v128.xor(x13, x2)); x8 = i32x4.add(x8, x13); x7 = rot12(v128.xor(x7, x8));
    x2 = i32x4.add(x2, x7); x13 = rot8(v128.xor(x13, x2)); x8 = i32x4.add(x8, x13); x7 = rot7(v128.xor(x7, x8));
    x3 = i32x4.add(x3, x4); x14 = rot16(v128.xor(x14, x3)); x9 = i32x4.add(x9, x14); x4 = rot12(v128.xor(x4, x9));
    x3 = i32x4.add(x3, x4); x14 = rot8(v128.xor(x14, x3)); x9 = i32x4.add(x9, x14); x4 = rot7(v128.xor(x4, x9));
  }
  x0 = i32x4.add(x0, i32x4.splat(C0)); x1 = i32x4.add(x1, i32x4.splat(C1));
  x2 = i32x4.add(x2, i32x4.splat(C2)); x3 = i32x4.add(x3, i32x4.splat(C3));
  x4 = i32x4.add(x4, i32x4.splat(load<u32>(key))); x5 = i32x4.add(x5, i32x4.splat(load<u32>(key, 4)));
  x6 = i32x4.add(x6, i32x4.splat(load<u32>(key, 8))); x7 = i32x4.add(x7, i32x4.splat(load<u32>(key, 12)));
  x8 = i32x4.add(x8, i32x4.splat(load<u32>(key, 16))); x9 = i32x4.add(x9, i32x4.splat(load<u32>(key, 20)));
  x10 = i32x4.add(x10, i32x4.splat(load<u32>(key, 24))); x11 = i32x4.add(x11, i32x4.splat(load<u32>(key, 28)));
  x12 = i32x4.add(x12, i32x4.add(i32x4.splat(counter), i32x4(0, 1, 2, 3)));
  x13 = i32x4.add(x13, i32x4.splat(load<u32>(nonce))); x14 = i32x4.add(x14, i32x4.splat(load<u32>(nonce, 4)));
  x15 = i32x4.add(x15, i32x4.splat(load<u32>(nonce, 8)));
  // Words 4q..4q+3 of every block sit in x[4q..4q+3]; each group lands at byte 16q of its block.
  // All 256 input bytes are read before the first store (dst may overlap src from below).
  const i0 = v128.load(src), i1 = v128.load(src, 16), i2 = v128.load(src, 32), i3 = v128.load(src, 48);
  const i4 = v128.load(src, 64), i5 = v128.load(src, 80), i6 = v128.load(src, 96), i7 = v128.load(src, 112);
  const i8 = v128.load(src, 128), i9 = v128.load(src, 144), i10 = v128.load(src, 160), i11 = v128.load(src, 176);
  const i12 = v128.load(src, 192), i13 = v128.load(src, 208), i14 = v128.load(src, 224), i15 = v128.load(src, 240);
  transposeXor(x0, x1, x2, x3, dst, i0, i4, i8, i12);
  transposeXor(x4, x5, x6, x7, dst + 16, i1, i5, i9, i13);
  transposeXor(x8, x9, x10, x11, dst + 32, i2, i6, i10, i14);
  transposeXor(x12, x13, x14, x15, dst + 48, i3, i7, i11, i15);
}

/** Transposes lanes (a, b, c, d) into four 16-byte rows, XORs them with m0..m3, stores 64 apart. */
// @ts-ignore: decorator
@inline function transposeXor(a: v128, b: v128, c: v128, d: v128, out: usize, m0: v128, m1: v128, m2: v128, m3: v128): void {
  const t0 = i32x4.shuffle(a, b, 0, 4, 1, 5); // a0 b0 a1 b1
  const t1 = i32x4.shuffle(c, d, 0, 4, 1, 5); // c0 d0 c1 d1
  const t2 = i32x4.shuffle(a, b, 2, 6, 3, 7); // a2 b2 a3 b3
  const t3 = i32x4.shuffle(c, d, 2, 6, 3, 7); // c2 d2 c3 d3
  v128.store(out, v128.xor(m0, i64x2.shuffle(t0, t1, 0, 2)));
  v128.store(out, v128.xor(m1, i64x2.shuffle(t0, t1, 1, 3)), 64);
  v128.store(out, v128.xor(m2, i64x2.shuffle(t2, t3, 0, 2)), 128);
  v128.store(out, v128.xor(m3, i64x2.shuffle(t2, t3, 1, 3)), 192);
}
