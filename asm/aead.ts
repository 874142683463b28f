/**
 * @module AEAD_CHACHA20_POLY1305 (RFC 8439 §2.8): seal and open over the core's memory, no
 * allocation. The Poly1305 key is ChaCha20 block 0; the message is encrypted from block 1; the
 * tag covers AAD || pad16 || ciphertext || pad16 || len(AAD) u64 || len(ciphertext) u64.
 * Open authenticates before it decrypts and compares tags in constant time, so a forged
 * message is never decrypted and costs the same whichever byte is wrong.
 */
import { chacha20Block, chacha20Xor } from "./chacha20";
import { polyFinish, polyInit, polyLengths, polyPadded } from "./poly1305";
import { WG_SCRATCH } from "./layout";

/** A computed tag (16 bytes) and the block 0 key stream whose first 32 bytes are the Poly1305 key. */
const TAG_TMP: usize = <usize>WG_SCRATCH + 224;
const POLY_KEY: usize = <usize>WG_SCRATCH + 256;

/** Computes the tag of (aad, ct) under `key`/`nonce` into TAG_TMP. */
function tagOf(key: usize, nonce: usize, aad: usize, aadLen: usize, ct: usize, len: usize): void {
  chacha20Block(key, nonce, 0, POLY_KEY);
  polyInit(POLY_KEY);
  if (aadLen > 0) polyPadded(aad, aadLen);
  polyPadded(ct, len);
  polyLengths(<u64>aadLen, <u64>len);
  polyFinish(TAG_TMP);
  for (let i: usize = 0; i < 64; i += 8) store<u64>(POLY_KEY + i, 0); // no key stream left behind
}

/**
 * Encrypts `len` bytes at `src` to `dst` (same place, or dst before src) and writes the 16-byte
 * tag at dst + len.
 */
export function aeadSeal(key: usize, nonce: usize, aad: usize, aadLen: usize, src: usize, len: usize, dst: usize): void {
  chacha20Xor(key, nonce, 1, src, dst, len);
  tagOf(key, nonce, aad, aadLen, dst, len);
  store<u64>(dst + len, load<u64>(TAG_TMP));
  store<u64>(dst + len, load<u64>(TAG_TMP, 8), 8);
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
