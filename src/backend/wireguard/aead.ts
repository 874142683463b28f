/**
 * @module The AEAD contract of WireGuard (whitepaper §5.4: AEAD(key, counter, plain, aad) is
 * ChaCha20-Poly1305 with the nonce 32 zero bits ‖ 64-bit little-endian counter) and a TypeScript
 * implementation for the handshake's encrypted fields. The per-packet transport seals and opens
 * in the WebAssembly core; a backend may hand this contract the core's implementation instead so
 * that one AEAD serves both. XChaCha20-Poly1305 (24-byte random nonce) seals the cookie reply.
 *
 * @example
 *   const box = chacha20Poly1305.seal(key, 0n, plain, hash);  // plain.length + 16 bytes
 *   chacha20Poly1305.open(key, 0n, box, hash)                 // plain, or null if tampered
 */
import { chacha20Xor, hchacha20 } from "./chacha20.ts";
import { poly1305 } from "./poly1305.ts";

/** Length of the Poly1305 tag appended to every sealed message. */
export const TAG_LEN = 16;

/** WireGuard's AEAD: a key, a 64-bit counter as nonce, additional data. */
export interface Aead {
  /** Encrypts and authenticates: ciphertext ‖ 16-byte tag. */
  seal(key: Uint8Array, counter: bigint, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  /** Checks and decrypts; null when the tag does not match (tampered, wrong key or counter). */
  open(key: Uint8Array, counter: bigint, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null;
}

const PAD = new Uint8Array(16);

function tagOf(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, ct: Uint8Array): Uint8Array {
  const polyKey = chacha20Xor(key, nonce, 0, new Uint8Array(32));
  const lengths = new Uint8Array(16);
  const dv = new DataView(lengths.buffer);
  dv.setBigUint64(0, BigInt(aad.length), true);
  dv.setBigUint64(8, BigInt(ct.length), true);
  return poly1305(polyKey, aad, PAD.subarray(0, (16 - (aad.length % 16)) % 16),
    ct, PAD.subarray(0, (16 - (ct.length % 16)) % 16), lengths);
}

/** Compares in time independent of where the bytes differ. */
function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** ChaCha20-Poly1305 with an explicit 12-byte nonce (RFC 8439 §2.8). */
export function chacha20Poly1305Seal(key: Uint8Array, nonce: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const out = new Uint8Array(plaintext.length + TAG_LEN);
  const ct = out.subarray(0, plaintext.length);
  chacha20Xor(key, nonce, 1, plaintext, ct);
  out.set(tagOf(key, nonce, aad, ct), plaintext.length);
  return out;
}

/** Opens what chacha20Poly1305Seal made; null when it does not authenticate. */
export function chacha20Poly1305Open(key: Uint8Array, nonce: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  if (sealed.length < TAG_LEN) return null;
  const ct = sealed.subarray(0, sealed.length - TAG_LEN);
  if (!equal(tagOf(key, nonce, aad, ct), sealed.subarray(sealed.length - TAG_LEN))) return null;
  return chacha20Xor(key, nonce, 1, ct);
}

/** The 12-byte nonce of WireGuard's AEAD: 4 zero bytes, then the counter little-endian. */
export function counterNonce(counter: bigint): Uint8Array {
  const nonce = new Uint8Array(12);
  new DataView(nonce.buffer).setBigUint64(4, counter, true);
  return nonce;
}

/** The TypeScript implementation of the {@link Aead} contract. */
export const chacha20Poly1305: Aead = {
  seal: (key, counter, plaintext, aad) => chacha20Poly1305Seal(key, counterNonce(counter), plaintext, aad),
  open: (key, counter, sealed, aad) => chacha20Poly1305Open(key, counterNonce(counter), sealed, aad),
};

function xNonce(nonce24: Uint8Array): Uint8Array {
  if (nonce24.length !== 24) throw new RangeError(`XChaCha20 nonce is ${nonce24.length} bytes; it must be 24`);
  const nonce = new Uint8Array(12);
  nonce.set(nonce24.subarray(16, 24), 4);
  return nonce;
}

/** XChaCha20-Poly1305 seal (draft-irtf-cfrg-xchacha §2.3): subkey from HChaCha20 of the first 16 nonce bytes. */
export function xchacha20Poly1305Seal(key: Uint8Array, nonce24: Uint8Array, plaintext: Uint8Array, aad: Uint8Array): Uint8Array {
  const nonce = xNonce(nonce24);
  return chacha20Poly1305Seal(hchacha20(key, nonce24.subarray(0, 16)), nonce, plaintext, aad);
}

/** XChaCha20-Poly1305 open; null when it does not authenticate. */
export function xchacha20Poly1305Open(key: Uint8Array, nonce24: Uint8Array, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null {
  const nonce = xNonce(nonce24);
  return chacha20Poly1305Open(hchacha20(key, nonce24.subarray(0, 16)), nonce, sealed, aad);
}
