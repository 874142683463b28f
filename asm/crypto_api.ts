/**
 * @module The raw primitives as exports, for test vectors and the benchmark: ChaCha20, Poly1305
 * and the AEAD over buffers in the packet arenas, with the key at ARG[0..32] and the nonce at
 * ARG[32..44]. The data path does not use these (wgSeal/wgOpen call the primitives directly).
 * Each returns WV_OK, WV_AUTH_FAILED (open) or WV_BAD_DESCRIPTOR for a range outside the arenas.
 */
import { aeadOpen, aeadSeal } from "./aead";
import { chacha20Xor } from "./chacha20";
import { polyFinish, polyInit, polyMessage } from "./poly1305";
import { ARG, WG_ARENA_END, WG_ARENA_START, WV_AUTH_FAILED, WV_BAD_DESCRIPTOR, WV_OK } from "./layout";

export { setChaChaSimd } from "./chacha20";

const KEY: usize = <usize>ARG;
const NONCE: usize = <usize>ARG + 32;

function ok(off: u32, len: u32): bool {
  return off >= <u32>WG_ARENA_START && <u64>off + <u64>len <= <u64>WG_ARENA_END;
}

/** dst[0..len] = src[0..len] XOR ChaCha20 key stream from block `counter`. */
export function chacha20XorAt(counter: u32, src: u32, len: u32, dst: u32): i32 {
  if (!ok(src, len) || !ok(dst, len)) return WV_BAD_DESCRIPTOR;
  chacha20Xor(KEY, NONCE, counter, src, dst, len);
  return WV_OK;
}

/** The Poly1305 tag of src[0..len] under the 32-byte one-time key at ARG, to dst[0..16]. */
export function poly1305At(src: u32, len: u32, dst: u32): i32 {
  if (!ok(src, len) || !ok(dst, 16)) return WV_BAD_DESCRIPTOR;
  polyInit(KEY);
  polyMessage(src, len);
  polyFinish(dst);
  return WV_OK;
}

/** Seals src[0..len] with AAD aad[0..aadLen] to dst[0..len + 16] (ciphertext, then tag). */
export function aeadSealAt(aad: u32, aadLen: u32, src: u32, len: u32, dst: u32): i32 {
  if (!ok(aad, aadLen) || !ok(src, len) || !ok(dst, len + 16)) return WV_BAD_DESCRIPTOR;
  aeadSeal(KEY, NONCE, aad, aadLen, src, len, dst);
  return WV_OK;
}

/** Opens ct[0..len + 16] (ciphertext, then tag) to dst[0..len] when the tag authenticates. */
export function aeadOpenAt(aad: u32, aadLen: u32, ct: u32, len: u32, dst: u32): i32 {
  if (!ok(aad, aadLen) || !ok(ct, len + 16) || !ok(dst, len)) return WV_BAD_DESCRIPTOR;
  return aeadOpen(KEY, NONCE, aad, aadLen, ct, len, dst) ? WV_OK : WV_AUTH_FAILED;
}
