/**
 * @module X25519 (RFC 7748) on raw 32-byte keys, through the runtime's own crypto (node:crypto,
 * which Bun, Deno and Node all provide): keys go in and out as DER with a fixed 12/16-byte
 * prefix, the one import/export form all three accept for X25519.
 *
 * @example
 *   const alice = generatePrivateKey(), bob = generatePrivateKey();
 *   x25519(alice, publicKeyOf(bob))  // equals x25519(bob, publicKeyOf(alice))
 */
import { createPrivateKey, createPublicKey, diffieHellman, generateKeyPairSync, type KeyObject } from "node:crypto";

// PKCS#8 PrivateKeyInfo and SubjectPublicKeyInfo for OID 1.3.101.110 (X25519), RFC 8410.
const PKCS8_PREFIX = Uint8Array.from([
  0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x04, 0x22, 0x04, 0x20,
]);
const SPKI_PREFIX = Uint8Array.from([0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x6e, 0x03, 0x21, 0x00]);

/** Length of every X25519 key and shared secret. */
export const KEY_LEN = 32;

function checkLen(what: string, key: Uint8Array): void {
  if (key.length !== KEY_LEN) throw new RangeError(`X25519 ${what} is ${key.length} bytes; it must be ${KEY_LEN}`);
}

function der(prefix: Uint8Array, key: Uint8Array): Buffer {
  const out = Buffer.alloc(prefix.length + KEY_LEN);
  out.set(prefix);
  out.set(key, prefix.length);
  return out;
}

function privateKeyObject(privateKey: Uint8Array): KeyObject {
  checkLen("private key", privateKey);
  return createPrivateKey({ key: der(PKCS8_PREFIX, privateKey), format: "der", type: "pkcs8" });
}

function publicKeyObject(publicKey: Uint8Array): KeyObject {
  checkLen("public key", publicKey);
  return createPublicKey({ key: der(SPKI_PREFIX, publicKey), format: "der", type: "spki" });
}

function rawPublic(key: KeyObject): Uint8Array {
  const spki = key.export({ format: "der", type: "spki" });
  return new Uint8Array(spki.subarray(spki.length - KEY_LEN));
}

/** A fresh random private key (32 raw bytes; X25519 clamps it when used). */
export function generatePrivateKey(): Uint8Array {
  const { privateKey } = generateKeyPairSync("x25519");
  const pkcs8 = privateKey.export({ format: "der", type: "pkcs8" });
  return new Uint8Array(pkcs8.subarray(pkcs8.length - KEY_LEN));
}

/** The public key of a raw private key: X25519(k, 9). */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return rawPublic(createPublicKey(privateKeyObject(privateKey)));
}

/**
 * X25519(privateKey, publicKey): the 32-byte shared secret. Returns null when the result would
 * be all zeros (a low-order public key): WireGuard rejects such a peer rather than use it.
 */
export function x25519(privateKey: Uint8Array, publicKey: Uint8Array): Uint8Array | null {
  const priv = privateKeyObject(privateKey);
  const pub = publicKeyObject(publicKey);
  let shared: Uint8Array;
  try {
    shared = new Uint8Array(diffieHellman({ privateKey: priv, publicKey: pub }));
  } catch {
    return null; // OpenSSL refuses an all-zero result itself
  }
  let acc = 0;
  for (let i = 0; i < KEY_LEN; i++) acc |= shared[i]!;
  return acc === 0 ? null : shared;
}
