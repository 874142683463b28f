/**
 * @module WireGuard's symmetric functions over BLAKE2s (whitepaper §5.4): HASH, MAC (keyed
 * BLAKE2s with a 16-byte digest, not a truncated 32-byte one), HMAC (RFC 2104 over BLAKE2s,
 * 64-byte block) and KDF1/2/3, the HKDF that chains the Noise handshake keys.
 *
 * @example
 *   const [chainKey, key] = kdf2(chainKey0, dhResult);
 */
import { Blake2s, blake2s } from "./blake2s.ts";

const BLOCK = 64;

/** HASH(a ‖ b ‖ …): BLAKE2s-256 of the parts, in order. */
export function hash(...parts: Uint8Array[]): Uint8Array {
  const h = new Blake2s(32);
  for (const p of parts) h.update(p);
  return h.digest();
}

/** MAC(key, data): keyed BLAKE2s with a 16-byte digest. */
export function mac(key: Uint8Array, data: Uint8Array): Uint8Array {
  return blake2s(data, 16, key);
}

/** HMAC-BLAKE2s-256(key, a ‖ b ‖ …). Keys longer than a block are hashed first (RFC 2104). */
export function hmac(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  const k = new Uint8Array(BLOCK);
  k.set(key.length > BLOCK ? blake2s(key) : key);
  const pad = new Uint8Array(BLOCK);
  for (let i = 0; i < BLOCK; i++) pad[i] = k[i]! ^ 0x36;
  const inner = new Blake2s(32).update(pad);
  for (const p of parts) inner.update(p);
  const innerHash = inner.digest();
  for (let i = 0; i < BLOCK; i++) pad[i] = k[i]! ^ 0x5c;
  return new Blake2s(32).update(pad).update(innerHash).digest();
}

const ONE = new Uint8Array([1]);
const TWO = new Uint8Array([2]);
const THREE = new Uint8Array([3]);

/** KDF1(key, input) → τ1. */
export function kdf1(key: Uint8Array, input: Uint8Array): Uint8Array {
  const t0 = hmac(key, input);
  return hmac(t0, ONE);
}

/** KDF2(key, input) → [τ1, τ2]. */
export function kdf2(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, ONE);
  return [t1, hmac(t0, t1, TWO)];
}

/** KDF3(key, input) → [τ1, τ2, τ3]. */
export function kdf3(key: Uint8Array, input: Uint8Array): [Uint8Array, Uint8Array, Uint8Array] {
  const t0 = hmac(key, input);
  const t1 = hmac(t0, ONE);
  const t2 = hmac(t0, t1, TWO);
  return [t1, t2, hmac(t0, t2, THREE)];
}
