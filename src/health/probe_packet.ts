/**
 * @module The overlay health probe on the wire: a UDP datagram every weft agent answers with the
 * same bytes, type flipped. 16 bytes of header, zero padding up to the probe's size (small probes
 * 32 bytes, MTU probes the overlay MTU less 28 bytes of IPv4 and UDP headers). The reply is never
 * larger than the request, so the echo cannot amplify anything.
 *
 *   0      4    5    6      8        12       16
 *   | WFTP | v1 | ty | flag |  seq   | token  | zero padding …
 *
 * `ty` 1 = request, 2 = reply; `flag` bit 0 = MTU probe; `seq` numbers the sender's probes;
 * `token` is the sender's random per-run value, so replies to a previous run are not counted.
 */

export const PROBE_MAGIC = 0x57465450; // "WFTP"
export const PROBE_VERSION = 1;
export const PROBE_HEADER = 16;
/** The small probe's UDP payload (60 bytes on the overlay with IPv4 and UDP headers). */
export const SMALL_PROBE_BYTES = 32;
/** IPv4 (20) + UDP (8): what an MTU probe's payload leaves of the overlay MTU. */
export const IPV4_UDP_HEADERS = 28;
/** IPv6 (40) + UDP (8). */
export const IPV6_UDP_HEADERS = 48;

export const REQUEST = 1;
export const REPLY = 2;
export const FLAG_MTU = 1;

export interface Probe {
  type: typeof REQUEST | typeof REPLY;
  mtu: boolean;
  seq: number;
  token: number;
  /** Total payload length (header and padding). */
  size: number;
}

/** Builds a probe of `size` bytes (at least the header). */
export function encodeProbe(p: Probe): Uint8Array {
  if (!Number.isInteger(p.size) || p.size < PROBE_HEADER || p.size > 65507) {
    throw new RangeError(`probe size ${p.size}: must be an integer from ${PROBE_HEADER} to 65507 bytes`);
  }
  const b = new Uint8Array(p.size);
  const v = new DataView(b.buffer);
  v.setUint32(0, PROBE_MAGIC);
  b[4] = PROBE_VERSION;
  b[5] = p.type;
  v.setUint16(6, p.mtu ? FLAG_MTU : 0);
  v.setUint32(8, p.seq >>> 0);
  v.setUint32(12, p.token >>> 0);
  return b;
}

/** Parses a datagram; undefined for anything that is not a weft probe of this version. */
export function decodeProbe(b: Uint8Array): Probe | undefined {
  if (b.byteLength < PROBE_HEADER) return undefined;
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  if (v.getUint32(0) !== PROBE_MAGIC || b[4] !== PROBE_VERSION) return undefined;
  const type = b[5];
  if (type !== REQUEST && type !== REPLY) return undefined;
  return { type, mtu: (v.getUint16(6) & FLAG_MTU) !== 0, seq: v.getUint32(8), token: v.getUint32(12), size: b.byteLength };
}

/** The reply to a request: the same bytes with the type flipped (same size: no amplification). */
export function replyTo(request: Uint8Array): Uint8Array {
  const out = new Uint8Array(request);
  out[5] = REPLY;
  return out;
}
