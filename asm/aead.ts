/**
 * @module AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8): seal and open over the core's memory, no
 * allocation. The Poly1305 key is ChaCha20 block 0; the message is encrypted from block 1; the
 * tag covers AAD || pad16 || ciphertext || pad16 || len(AAD) u64 || len(ciphertext) u64.
 * Open authenticates before it decrypts and compares tags in constant time, so a forged
 * message is never decrypted and costs the same whichever byte is wrong.
 */
import { chacha20KeyStream32, chacha20Xor } from "./chacha20";
import { polyFinish, polyInit, polyLengths, polyPadded } from "./poly1305";
import { WG_SCRATCH } from "./layout";

/** The one-time Poly1305 key (32 bytes) and a computed tag (16 bytes). */
const POLY_KEY: usize = <usize>WG_SCRATCH + 160;
const TAG_TMP: usize = <usize>WG_SCRATCH + 192;

/** Computes the tag of (aad, ct) under `key`/`nonce` into TAG_TMP. */
function tagOf(key: usize, nonce: usize, aad: usize, aadLen: usize, ct: usize, len: usize): void {
  chacha20KeyStream32(key, nonce, 0, POLY_KEY);
  polyInit(POLY_KEY);
  if (aadLen > 0) polyPadded(aad, aadLen);
  polyPadded(ct, len);
  polyLengths(<u64>aadLen, <u64>len);
  polyFinish(TAG_TMP);
  memory.fill(POLY_KEY, 0, 32);
}

/**
 * Encrypts `len` bytes at `src` to `dst` (same place, or dst before src) and writes the 16-byte
 * tag at dst + len.
 */
export function aeadSeal(key: usize, nonce: usize, aad: usize, aadLen: usize, src: usize, len: usize, dst: usize): void {
  chacha20Xor(key, nonce, 1, src, dst, len);
  tagOf(key, nonce, aad, aadLen, dst, len);
  memory.copy(dst + len, TAG_TMP, 16);
}

/**
 * Checks the tag at ct + len against (aad, ct); if it matches, decrypts the `len` bytes at `ct`
 * into `dst` and returns true. On a mismatch nothing is written and it returns false.
 */
export function aeadOpen(key: usize, nonce: usize, aad: usize, aadLen: usize, ct: usize, len: usize, dst: usize): bool {
  tagOf(key, nonce, aad, aadLen, ct, len);
  const t = ct + len;
  const diff = (load<u64>(t) ^ load<u64>(TAG_TMP)) | (load<u64>(t, 8) ^ load<u64>(TAG_TMP, 8));
  if (diff != 0) return false;
  chacha20Xor(key, nonce, 1, ct, dst, len);
  return true;
}
