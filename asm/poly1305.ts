/**
 * @module Poly1305 (RFC 8439 §2.5): the one-time authenticator of WireGuard's AEAD, in five
 * 26-bit limbs with 64-bit products (Wasm has 64-bit multiplies but no 128-bit ones, so the
 * 26-bit form is the one that carries no emulation). Streaming over one module-level state:
 * `polyInit(key)`, any number of `polyBlocks` / `polyPadded` calls, then `polyFinish(out)`.
 * Not re-entrant, which a single-threaded core never needs.
 *
 * Constant time: no branch or memory index depends on the key, the message or the tag.
 */
import { WG_SCRATCH } from "./layout";

/** 16 bytes of scratch for a zero-padded last block. */
const PAD_TMP: usize = <usize>WG_SCRATCH + 192;
const M26: u64 = 0x3ffffff;

let r0: u64 = 0, r1: u64 = 0, r2: u64 = 0, r3: u64 = 0, r4: u64 = 0;
let h0: u64 = 0, h1: u64 = 0, h2: u64 = 0, h3: u64 = 0, h4: u64 = 0;
let pad0: u64 = 0, pad1: u64 = 0, pad2: u64 = 0, pad3: u64 = 0;

/** Starts a MAC with the 32-byte one-time key at `key` (r clamped as §2.5.1, then s). */
export function polyInit(key: usize): void {
  r0 = <u64>(load<u32>(key) & 0x3ffffff);
  r1 = <u64>((load<u32>(key, 3) >> 2) & 0x3ffff03);
  r2 = <u64>((load<u32>(key, 6) >> 4) & 0x3ffc0ff);
  r3 = <u64>((load<u32>(key, 9) >> 6) & 0x3f03fff);
  r4 = <u64>((load<u32>(key, 12) >> 8) & 0x00fffff);
  h0 = 0; h1 = 0; h2 = 0; h3 = 0; h4 = 0;
  pad0 = <u64>load<u32>(key, 16); pad1 = <u64>load<u32>(key, 20);
  pad2 = <u64>load<u32>(key, 24); pad3 = <u64>load<u32>(key, 28);
}

/**
 * Absorbs `n` full 16-byte blocks at `m`; `hibit` is 1 << 24 for full blocks (the 2^128 bit
 * in limb 4), 0 for the final partial block that the caller has already padded with 0x01 0...
 */
export function polyBlocks(m: usize, n: usize, hibit: u64): void {
  const s1 = r1 * 5, s2 = r2 * 5, s3 = r3 * 5, s4 = r4 * 5;
  let a0 = h0, a1 = h1, a2 = h2, a3 = h3, a4 = h4;
  const end = m + n * 16;
  while (m < end) {
    a0 += <u64>(load<u32>(m) & 0x3ffffff);
    a1 += <u64>((load<u32>(m, 3) >> 2) & 0x3ffffff);
    a2 += <u64>((load<u32>(m, 6) >> 4) & 0x3ffffff);
    a3 += <u64>((load<u32>(m, 9) >> 6) & 0x3ffffff);
    a4 += <u64>(load<u32>(m, 12) >> 8) | hibit;

    const d0 = a0 * r0 + a1 * s4 + a2 * s3 + a3 * s2 + a4 * s1;
    let d1 = a0 * r1 + a1 * r0 + a2 * s4 + a3 * s3 + a4 * s2;
    let d2 = a0 * r2 + a1 * r1 + a2 * r0 + a3 * s4 + a4 * s3;
    let d3 = a0 * r3 + a1 * r2 + a2 * r1 + a3 * r0 + a4 * s4;
    let d4 = a0 * r4 + a1 * r3 + a2 * r2 + a3 * r1 + a4 * r0;

    let c = d0 >> 26; a0 = d0 & M26;
    d1 += c; c = d1 >> 26; a1 = d1 & M26;
    d2 += c; c = d2 >> 26; a2 = d2 & M26;
    d3 += c; c = d3 >> 26; a3 = d3 & M26;
    d4 += c; c = d4 >> 26; a4 = d4 & M26;
    a0 += c * 5; c = a0 >> 26; a0 &= M26;
    a1 += c;
    m += 16;
  }
  h0 = a0; h1 = a1; h2 = a2; h3 = a3; h4 = a4;
}

/** Absorbs `len` bytes as full blocks, the last one zero-padded to 16 (AEAD's pad16, §2.8). */
export function polyPadded(m: usize, len: usize): void { absorb(m, len, true); }

/** Absorbs a whole message of `len` bytes the plain Poly1305 way (a partial last block gets 0x01). */
export function polyMessage(m: usize, len: usize): void { absorb(m, len, false); }

function absorb(m: usize, len: usize, padded: bool): void {
  const full = len >> 4;
  if (full > 0) polyBlocks(m, full, 1 << 24);
  const rest = len & 15;
  if (rest == 0) return;
  store<u64>(PAD_TMP, 0);
  store<u64>(PAD_TMP, 0, 8);
  const tail = m + (full << 4);
  for (let i: usize = 0; i < rest; i++) store<u8>(PAD_TMP + i, load<u8>(tail + i));
  if (!padded) store<u8>(PAD_TMP + rest, 1);
  polyBlocks(PAD_TMP, 1, padded ? 1 << 24 : 0);
}

/** Absorbs one block of two little-endian u64 (AEAD's length block). */
export function polyLengths(a: u64, b: u64): void {
  store<u64>(PAD_TMP, a);
  store<u64>(PAD_TMP, b, 8);
  polyBlocks(PAD_TMP, 1, 1 << 24);
}

/** Writes the 16-byte tag to `out`: h fully reduced mod 2^130 - 5, plus s, mod 2^128. */
export function polyFinish(out: usize): void {
  let a0 = h0, a1 = h1, a2 = h2, a3 = h3, a4 = h4;
  let c = a1 >> 26; a1 &= M26;
  a2 += c; c = a2 >> 26; a2 &= M26;
  a3 += c; c = a3 >> 26; a3 &= M26;
  a4 += c; c = a4 >> 26; a4 &= M26;
  a0 += c * 5; c = a0 >> 26; a0 &= M26;
  a1 += c;

  // g = h + 5 - 2^130; keep g when it did not go negative (h >= p), else h. No branches.
  let g0 = a0 + 5; c = g0 >> 26; g0 &= M26;
  let g1 = a1 + c; c = g1 >> 26; g1 &= M26;
  let g2 = a2 + c; c = g2 >> 26; g2 &= M26;
  let g3 = a3 + c; c = g3 >> 26; g3 &= M26;
  const g4 = a4 + c - (<u64>1 << 26);
  const keepG = (g4 >> 63) - 1; // all ones when g4 >= 0
  const keepH = ~keepG;
  a0 = (a0 & keepH) | (g0 & keepG);
  a1 = (a1 & keepH) | (g1 & keepG);
  a2 = (a2 & keepH) | (g2 & keepG);
  a3 = (a3 & keepH) | (g3 & keepG);
  a4 = (a4 & keepH) | (g4 & keepG);

  // To 4 x 32 bits, then + s with carries.
  const w0 = (a0 | (a1 << 26)) & 0xffffffff;
  const w1 = ((a1 >> 6) | (a2 << 20)) & 0xffffffff;
  const w2 = ((a2 >> 12) | (a3 << 14)) & 0xffffffff;
  const w3 = ((a3 >> 18) | (a4 << 8)) & 0xffffffff;
  let f = w0 + pad0; store<u32>(out, <u32>f);
  f = w1 + pad1 + (f >> 32); store<u32>(out, <u32>f, 4);
  f = w2 + pad2 + (f >> 32); store<u32>(out, <u32>f, 8);
  f = w3 + pad3 + (f >> 32); store<u32>(out, <u32>f, 12);
}
