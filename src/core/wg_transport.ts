/**
 * @module The host's side of the core's WireGuard transport (asm/wg_transport.ts): sessions in,
 * batches of seal/open descriptors through, verdicts and counters out. Thin on purpose: it
 * writes and reads the descriptor rings of asm/layout.ts and allocates nothing per packet, so
 * the wireguard backend's packet loop can call it per datagram. The handshake (which yields the
 * keys and indices), timers and the choice of session per peer stay with the backend.
 *
 * Receiver indices: the core finds the session of a received message by the low bits of its
 * receiver index, so the index we announce for slot s must be `wgLocalIndex(s, random)`.
 *
 * @example
 *   const wg = new WgTransport(await loadCore());
 *   wg.setSession(0, { localIndex: wgLocalIndex(0, rnd), remoteIndex, sendKey, recvKey });
 *   const at = WG_ARENA_START;                   // plaintext at at + 16, sealed in place
 *   wg.setSeal(0, at + 16, at, packet.length, 0);
 *   wg.seal(0, 1, 1420);                          // wg.sealVerdict(0) === WV_OK
 *   send(core.bytes.subarray(at, at + wg.sealedLength(0)));
 */
import * as L from "./layout.ts";
import type { Core, WgCoreExports } from "./types.ts";

/** Verdict names, by WV_* code, for counters and messages. */
export const WG_VERDICT_NAMES = [
  "ok", "bad_length", "bad_type", "unknown_receiver", "replayed", "auth_failed", "no_session", "exhausted", "bad_descriptor",
] as const;
export type WgVerdictName = (typeof WG_VERDICT_NAMES)[number];

/** A session's keys and indices, as the Noise handshake leaves them. */
export interface WgSessionKeys {
  /** Our receiver index for this session: wgLocalIndex(slot, random). */
  localIndex: number;
  /** The peer's receiver index (goes into every message we send). */
  remoteIndex: number;
  sendKey: Uint8Array;
  recvKey: Uint8Array;
}

/** The receiver index for session `slot` with the other bits taken from `random` (a u32). */
export function wgLocalIndex(slot: number, random: number): number {
  return ((random & ~(L.WG_SESSION_CAP - 1)) | slot) >>> 0;
}

/**
 * Which ChaCha20 form is faster on this engine (bench/wg_crypto.ts): the SIMD one on V8 (Node,
 * Deno, Chrome: 1.3x at 1400 B and 64 KiB), the scalar one on JavaScriptCore (Bun: SIMD is
 * 0.7x at 64 KiB there). Both give identical bytes; this only picks the speed.
 */
export function fasterChaChaSimd(): boolean {
  return !("Bun" in globalThis);
}

export class WgTransport {
  readonly #wg: WgCoreExports;
  readonly #view: DataView;
  readonly #bytes: Uint8Array;
  /** The verdict counters: seal verdict v at [WG_C_SEAL + v], open at [WG_C_OPEN + v]. */
  readonly counters: Uint32Array;

  /** `simd` selects ChaCha20's form for this core (default: the faster one here). */
  constructor(core: Core, simd: boolean = fasterChaChaSimd()) {
    if (!core.wg) throw new TypeError(`weft core of kind "${core.kind}" has no WireGuard transport; load the Wasm core`);
    this.#wg = core.wg;
    this.#wg.setChaChaSimd(simd ? 1 : 0);
    this.#view = core.view;
    this.#bytes = core.bytes;
    this.counters = core.regions.wgCounters;
  }

  /** Installs (or replaces) session `slot` with fresh counters and an empty replay window. */
  setSession(slot: number, s: WgSessionKeys): void {
    if (!Number.isInteger(slot) || slot < 0 || slot >= L.WG_SESSION_CAP) {
      throw new RangeError(`WireGuard session slot ${slot} is out of range: it must be an integer 0..${L.WG_SESSION_CAP - 1}`);
    }
    if (s.sendKey.length !== 32 || s.recvKey.length !== 32) {
      throw new RangeError(`WireGuard session keys must be 32 bytes each; got send ${s.sendKey.length}, receive ${s.recvKey.length}`);
    }
    if (((s.localIndex & (L.WG_SESSION_CAP - 1)) >>> 0) !== slot) {
      throw new RangeError(`WireGuard receiver index ${s.localIndex >>> 0} does not name slot ${slot}: use wgLocalIndex(${slot}, random)`);
    }
    this.#bytes.set(s.sendKey, L.ARG);
    this.#bytes.set(s.recvKey, L.ARG + 32);
    const r = this.#wg.wgSessionSet(slot, s.localIndex >>> 0, s.remoteIndex >>> 0);
    if (r !== 0) throw new Error(`weft core refused WireGuard session slot ${slot}: error ${r}`);
  }

  /** Wipes session `slot` (no-op when empty). */
  deleteSession(slot: number): void {
    this.#wg.wgSessionDelete(slot);
  }

  /** The next counter `slot` will send with (the backend rekeys after REKEY_AFTER_MESSAGES). */
  sendCounter(slot: number): bigint {
    return this.#view.getBigUint64(L.WG_SESSIONS + slot * L.WG_SESSION_SIZE + L.WG_S_SEND_COUNTER, true);
  }

  /** Fills seal descriptor `i`: plaintext src[0..len] for `session`, the message written at dst. */
  setSeal(i: number, src: number, dst: number, len: number, session: number): void {
    const d = L.WG_SEAL_DESC + i * L.WG_DESC_SIZE;
    const v = this.#view;
    v.setUint32(d, src, true);
    v.setUint32(d + 4, dst, true);
    v.setUint16(d + 8, len, true);
    v.setUint16(d + 10, session, true);
  }

  /** Seals descriptors [start, start + count); `mtu` caps the padding (0: pad to 16). */
  seal(start: number, count: number, mtu: number): number {
    return this.#wg.wgSeal(start, count, mtu);
  }

  sealVerdict(i: number): number {
    return this.#view.getUint16(L.WG_SEAL_DESC + i * L.WG_DESC_SIZE + 14, true);
  }

  /** Length of the sealed message of descriptor `i` (0 unless its verdict is WV_OK). */
  sealedLength(i: number): number {
    return this.#view.getUint16(L.WG_SEAL_DESC + i * L.WG_DESC_SIZE + 12, true);
  }

  /** Fills open descriptor `i`: a received datagram at off[0..len]. */
  setOpen(i: number, off: number, len: number): void {
    const d = L.WG_OPEN_DESC + i * L.WG_DESC_SIZE;
    this.#view.setUint32(d, off, true);
    this.#view.setUint32(d + 4, len, true);
  }

  /** Opens descriptors [start, start + count) in place. */
  open(start: number, count: number): number {
    return this.#wg.wgOpen(start, count);
  }

  openVerdict(i: number): number {
    return this.#view.getUint16(L.WG_OPEN_DESC + i * L.WG_DESC_SIZE + 14, true);
  }

  /** The plaintext of an opened message starts at its off + WG_HEADER_LEN; this is its length. */
  plainLength(i: number): number {
    return this.#view.getUint32(L.WG_OPEN_DESC + i * L.WG_DESC_SIZE + 8, true);
  }

  /** The session slot that the message named (0xffff when none). */
  openSession(i: number): number {
    return this.#view.getUint16(L.WG_OPEN_DESC + i * L.WG_DESC_SIZE + 12, true);
  }

  /** The counters by verdict name, for status and metrics. */
  counterSnapshot(): { seal: Record<WgVerdictName, number>; open: Record<WgVerdictName, number> } {
    const pick = (base: number) =>
      Object.fromEntries(WG_VERDICT_NAMES.map((name, v) => [name, this.counters[base + v]!])) as Record<WgVerdictName, number>;
    return { seal: pick(L.WG_C_SEAL), open: pick(L.WG_C_OPEN) };
  }
}

/**
 * The handshake's AEAD (src/backend/wireguard/aead.ts's contract) on the core's ChaCha20-Poly1305,
 * so the handshake and the transport share one implementation, the one proven against the
 * vectors and the OpenSSL oracle. Its messages are small (at most 48 bytes of plaintext and a
 * 32-byte hash as AAD); they pass through `scratch`, 640 bytes in the packet arenas that nothing
 * else uses while a handshake message is handled (the packet loop gives the end of IN_OUT).
 */
export function coreAead(core: Core, scratch: number = L.IN_OUT + L.IN_OUT_SIZE - 640): {
  seal(key: Uint8Array, counter: bigint, plaintext: Uint8Array, aad: Uint8Array): Uint8Array;
  open(key: Uint8Array, counter: bigint, sealed: Uint8Array, aad: Uint8Array): Uint8Array | null;
} {
  const wg = core.wg;
  if (!wg) throw new TypeError(`weft core of kind "${core.kind}" has no WireGuard transport; load the Wasm core`);
  const bytes = core.bytes, view = core.view;
  const aadAt = scratch, dataAt = scratch + 128, outAt = scratch + 384;
  const prepare = (key: Uint8Array, counter: bigint, aad: Uint8Array, data: Uint8Array) => {
    if (key.length !== 32 || aad.length > 128 || data.length > 240) {
      throw new RangeError(`handshake AEAD: key ${key.length} B (32), AAD ${aad.length} B (at most 128), data ${data.length} B (at most 240)`);
    }
    bytes.set(key, L.ARG);
    view.setUint32(L.ARG + 32, 0, true);
    view.setBigUint64(L.ARG + 36, counter, true);
    bytes.set(aad, aadAt);
    bytes.set(data, dataAt);
  };
  return {
    seal(key, counter, plaintext, aad) {
      prepare(key, counter, aad, plaintext);
      wg.aeadSealAt(aadAt, aad.length, dataAt, plaintext.length, outAt);
      bytes.fill(0, L.ARG, L.ARG + 32);
      return bytes.slice(outAt, outAt + plaintext.length + 16);
    },
    open(key, counter, sealed, aad) {
      if (sealed.length < 16) return null;
      prepare(key, counter, aad, sealed);
      const v = wg.aeadOpenAt(aadAt, aad.length, dataAt, sealed.length - 16, outAt);
      bytes.fill(0, L.ARG, L.ARG + 32);
      return v === L.WV_OK ? bytes.slice(outAt, outAt + sealed.length - 16) : null;
    },
  };
}
