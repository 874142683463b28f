/**
 * @module TAI64N timestamps as WireGuard sends them in a handshake initiation (whitepaper §5.1):
 * 8 bytes big-endian seconds since 1970 plus 2^62 + 10, then 4 bytes big-endian nanoseconds,
 * rounded down to a multiple of 2^24 ns (~16.8 ms) as wireguard-go does so that the timestamp
 * does not reveal the clock's fine grain. A responder accepts an initiation only when its
 * timestamp is greater than the last one it accepted from that peer: that stops replays.
 *
 * @example
 *   tai64n(Date.now())                  // 12 bytes
 *   tai64nAfter(newer, older)           // true
 */

/** Length of a TAI64N timestamp. */
export const TAI64N_LEN = 12;

const BASE = 0x400000000000000an;
const WHITENER = 0xffffff;

/** The TAI64N label of wall-clock time `unixMs` (milliseconds since 1970, as Date.now()). */
export function tai64n(unixMs: number): Uint8Array {
  const seconds = Math.floor(unixMs / 1000);
  const nanos = Math.round((unixMs - seconds * 1000) * 1e6);
  const out = new Uint8Array(TAI64N_LEN);
  const dv = new DataView(out.buffer);
  dv.setBigUint64(0, BASE + BigInt(seconds));
  dv.setUint32(8, (nanos & ~WHITENER) >>> 0);
  return out;
}

/** True when timestamp `a` is strictly later than `b` (byte order is time order). */
export function tai64nAfter(a: Uint8Array, b: Uint8Array): boolean {
  for (let i = 0; i < TAI64N_LEN; i++) {
    if (a[i] !== b[i]) return a[i]! > b[i]!;
  }
  return false;
}
