/**
 * @module Calls the core's raw ChaCha20, Poly1305 and AEAD exports (asm/crypto_api.ts) with
 * plain byte arrays, for test vectors, the differential test and the benchmark: inputs are
 * copied into the packet arenas, outputs copied out. Runs under Bun, Deno and Node.
 */
import * as L from "../../src/core/layout.ts";
import type { Core, WgCoreExports } from "../../src/core/types.ts";

/** Arena offsets the harness uses: AAD, input and output, each up to 1 MiB apart. */
const AAD = L.EG_IN;
const SRC = L.EG_IN + 0x100000;
const DST = L.EG_OUT;

export function hex(s: string): Uint8Array {
  const clean = s.replace(/[^0-9a-fA-F]/g, "");
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");
}

export class CoreAead {
  readonly wg: WgCoreExports;
  readonly bytes: Uint8Array;

  constructor(core: Core) {
    if (!core.wg) throw new TypeError("the core has no crypto exports (load the Wasm core)");
    this.wg = core.wg;
    this.bytes = core.bytes;
  }

  /** Key (32 bytes) and nonce (12 bytes) into ARG. */
  setKey(key: Uint8Array, nonce: Uint8Array = new Uint8Array(12)): void {
    if (key.length !== 32 || nonce.length !== 12) throw new RangeError(`key ${key.length} / nonce ${nonce.length} bytes: need 32 / 12`);
    this.bytes.set(key, L.ARG);
    this.bytes.set(nonce, L.ARG + 32);
  }

  chacha20(key: Uint8Array, nonce: Uint8Array, counter: number, input: Uint8Array): Uint8Array {
    this.setKey(key, nonce);
    this.bytes.set(input, SRC);
    expectOk(this.wg.chacha20XorAt(counter, SRC, input.length, DST), "chacha20XorAt");
    return this.bytes.slice(DST, DST + input.length);
  }

  poly1305(key: Uint8Array, msg: Uint8Array): Uint8Array {
    this.setKey(key);
    this.bytes.set(msg, SRC);
    expectOk(this.wg.poly1305At(SRC, msg.length, DST), "poly1305At");
    return this.bytes.slice(DST, DST + 16);
  }

  /** Ciphertext || tag. */
  seal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
    this.setKey(key, nonce);
    this.bytes.set(aad, AAD);
    this.bytes.set(pt, SRC);
    expectOk(this.wg.aeadSealAt(AAD, aad.length, SRC, pt.length, DST), "aeadSealAt");
    return this.bytes.slice(DST, DST + pt.length + 16);
  }

  /** The plaintext, or null when the tag does not authenticate. `sealed` is ciphertext || tag. */
  open(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, sealed: Uint8Array): Uint8Array | null {
    if (sealed.length < 16) return null;
    this.setKey(key, nonce);
    this.bytes.set(aad, AAD);
    this.bytes.set(sealed, SRC);
    const len = sealed.length - 16;
    // Poison the output so a failed open that wrote anything would show.
    this.bytes.fill(0xa5, DST, DST + len);
    const r = this.wg.aeadOpenAt(AAD, aad.length, SRC, len, DST);
    if (r === L.WV_AUTH_FAILED) {
      for (let i = DST; i < DST + len; i++) if (this.bytes[i] !== 0xa5) throw new Error("aeadOpenAt wrote plaintext for a message that failed authentication");
      return null;
    }
    expectOk(r, "aeadOpenAt");
    return this.bytes.slice(DST, DST + len);
  }
}

function expectOk(r: number, what: string): void {
  if (r !== L.WV_OK) throw new Error(`${what} returned verdict ${r}`);
}
