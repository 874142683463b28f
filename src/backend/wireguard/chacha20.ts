/**
 * @module The ChaCha20 stream cipher (RFC 8439 §2.3–2.4) and HChaCha20
 * (draft-irtf-cfrg-xchacha §2.2), for the handshake's AEAD fields and the cookie reply. Keys and
 * nonces are bytes; the 20 rounds work in a Uint32Array owned by the module, so a block
 * allocates nothing.
 *
 * @example
 *   chacha20Xor(key, nonce12, 1, plaintext, out)   // encrypt or decrypt, block counter 1
 */

const state = new Uint32Array(16);
const work = new Uint32Array(16);
const keystream = new Uint8Array(64);

function u32le(b: Uint8Array, i: number): number {
  return (b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24)) >>> 0;
}

function setup(key: Uint8Array, words12to15: Uint8Array | null, counter: number, nonce12: Uint8Array | null): void {
  if (key.length !== 32) throw new RangeError(`ChaCha20 key is ${key.length} bytes; it must be 32`);
  state[0] = 0x61707865; state[1] = 0x3320646e; state[2] = 0x79622d32; state[3] = 0x6b206574;
  for (let i = 0; i < 8; i++) state[4 + i] = u32le(key, 4 * i);
  if (words12to15) {
    for (let i = 0; i < 4; i++) state[12 + i] = u32le(words12to15, 4 * i);
  } else {
    state[12] = counter;
    for (let i = 0; i < 3; i++) state[13 + i] = u32le(nonce12!, 4 * i);
  }
}

function quarter(x: Uint32Array, a: number, b: number, c: number, d: number): void {
  let va = x[a]!, vb = x[b]!, vc = x[c]!, vd = x[d]!;
  va = (va + vb) | 0; vd ^= va; vd = (vd << 16) | (vd >>> 16);
  vc = (vc + vd) | 0; vb ^= vc; vb = (vb << 12) | (vb >>> 20);
  va = (va + vb) | 0; vd ^= va; vd = (vd << 8) | (vd >>> 24);
  vc = (vc + vd) | 0; vb ^= vc; vb = (vb << 7) | (vb >>> 25);
  x[a] = va; x[b] = vb; x[c] = vc; x[d] = vd;
}

function rounds(): void {
  work.set(state);
  for (let i = 0; i < 10; i++) {
    quarter(work, 0, 4, 8, 12); quarter(work, 1, 5, 9, 13);
    quarter(work, 2, 6, 10, 14); quarter(work, 3, 7, 11, 15);
    quarter(work, 0, 5, 10, 15); quarter(work, 1, 6, 11, 12);
    quarter(work, 2, 7, 8, 13); quarter(work, 3, 4, 9, 14);
  }
}

/**
 * XORs `input` with the ChaCha20 keystream of (key, 12-byte nonce) starting at block `counter`,
 * into `out` (may be `input`). Returns `out`.
 */
export function chacha20Xor(
  key: Uint8Array, nonce: Uint8Array, counter: number, input: Uint8Array,
  out: Uint8Array = new Uint8Array(input.length),
): Uint8Array {
  if (nonce.length !== 12) throw new RangeError(`ChaCha20 nonce is ${nonce.length} bytes; it must be 12`);
  setup(key, null, counter >>> 0, nonce);
  for (let pos = 0; pos < input.length; pos += 64) {
    rounds();
    for (let i = 0; i < 16; i++) {
      const w = (work[i]! + state[i]!) | 0;
      keystream[4 * i] = w; keystream[4 * i + 1] = w >>> 8;
      keystream[4 * i + 2] = w >>> 16; keystream[4 * i + 3] = w >>> 24;
    }
    const n = Math.min(64, input.length - pos);
    for (let i = 0; i < n; i++) out[pos + i] = input[pos + i]! ^ keystream[i]!;
    state[12] = (state[12]! + 1) | 0;
  }
  return out;
}

/** HChaCha20(key, 16-byte nonce): the 32-byte subkey of XChaCha20. */
export function hchacha20(key: Uint8Array, nonce16: Uint8Array): Uint8Array {
  if (nonce16.length !== 16) throw new RangeError(`HChaCha20 nonce is ${nonce16.length} bytes; it must be 16`);
  setup(key, nonce16, 0, null);
  rounds();
  const out = new Uint8Array(32);
  const words = [0, 1, 2, 3, 12, 13, 14, 15];
  for (let i = 0; i < 8; i++) {
    const w = work[words[i]!]!;
    out[4 * i] = w; out[4 * i + 1] = w >>> 8; out[4 * i + 2] = w >>> 16; out[4 * i + 3] = w >>> 24;
  }
  return out;
}
