/**
 * @module The Poly1305 one-time authenticator (RFC 8439 §2.5) in BigInt arithmetic: short and
 * plainly correct, for the handshake's few dozen bytes per message. The per-packet transport
 * authenticates in the WebAssembly core instead, so speed here does not matter.
 *
 * @example
 *   poly1305(oneTimeKey32, message)  // 16-byte tag
 */

const P = (1n << 130n) - 5n;
const CLAMP = 0x0ffffffc0ffffffc0ffffffc0fffffffn;

function le(bytes: Uint8Array, start: number, end: number): bigint {
  let n = 0n;
  for (let i = end - 1; i >= start; i--) n = (n << 8n) | BigInt(bytes[i]!);
  return n;
}

/** Poly1305 of the concatenated `parts` under a 32-byte one-time key: the 16-byte tag. */
export function poly1305(key: Uint8Array, ...parts: Uint8Array[]): Uint8Array {
  if (key.length !== 32) throw new RangeError(`Poly1305 key is ${key.length} bytes; it must be 32`);
  const r = le(key, 0, 16) & CLAMP;
  const s = le(key, 16, 32);
  let acc = 0n;
  const block = new Uint8Array(17);
  let fill = 0;
  const absorb = (len: number) => {
    block[len] = 1; // the 2^(8·len) bit of RFC 8439 §2.5.1
    acc = ((acc + le(block, 0, len + 1)) * r) % P;
    block.fill(0);
  };
  for (const part of parts) {
    for (let i = 0; i < part.length; i++) {
      block[fill++] = part[i]!;
      if (fill === 16) { absorb(16); fill = 0; }
    }
  }
  if (fill > 0) absorb(fill);
  let tag = (acc + s) & ((1n << 128n) - 1n);
  const out = new Uint8Array(16);
  for (let i = 0; i < 16; i++) { out[i] = Number(tag & 0xffn); tag >>= 8n; }
  return out;
}
