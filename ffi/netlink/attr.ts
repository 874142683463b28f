/**
 * @module Netlink attributes (struct rtattr / nlattr: u16 len, u16 type, value, padded to 4) as a
 * tree of plain values. Builders make leaves (`u32Attr`, `zeroTerminatedAttr` …) and nests
 * (`nestedAttr`); `encodeAttrs` writes a tree into a buffer; `parseAttrs` reads one level back
 * into a type -> value map whose values are views, not copies. Pure; host byte order is
 * little-endian (x86_64, aarch64), network order where the kernel wants it (`be16Attr`, `be32Attr`).
 */

/** One attribute: a leaf holds bytes, a nest holds attributes. */
export interface Attr {
  readonly type: number;
  readonly value: Uint8Array | readonly Attr[];
}

/** Header size of one attribute. */
export const ATTR_HDRLEN = 4;

/** `n` rounded up to netlink's 4-byte alignment. */
export function align4(n: number): number {
  return (n + 3) & ~3;
}

function checkRange(what: string, v: number, max: number): void {
  if (!Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`netlink attribute ${what} value ${v} must be an integer in 0..${max}`);
  }
}

export function bytesAttr(type: number, value: Uint8Array): Attr {
  return { type, value };
}

export function u8Attr(type: number, v: number): Attr {
  checkRange(`u8 (type ${type})`, v, 0xff);
  return { type, value: Uint8Array.of(v) };
}

export function u16Attr(type: number, v: number): Attr {
  checkRange(`u16 (type ${type})`, v, 0xffff);
  return { type, value: Uint8Array.of(v & 0xff, v >>> 8) };
}

export function u32Attr(type: number, v: number): Attr {
  checkRange(`u32 (type ${type})`, v, 0xffffffff);
  return { type, value: Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24) };
}

/** A 16-bit value in network byte order (e.g. IFLA_VXLAN_PORT). */
export function be16Attr(type: number, v: number): Attr {
  checkRange(`be16 (type ${type})`, v, 0xffff);
  return { type, value: Uint8Array.of(v >>> 8, v & 0xff) };
}

/** A 32-bit value in network byte order (e.g. an IPv4 address as a number). */
export function be32Attr(type: number, v: number): Attr {
  checkRange(`be32 (type ${type})`, v, 0xffffffff);
  return { type, value: Uint8Array.of(v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, v & 0xff) };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** A C string with its NUL (IFLA_IFNAME). */
export function zeroTerminatedAttr(type: number, s: string): Attr {
  const b = encoder.encode(s);
  const value = new Uint8Array(b.length + 1);
  value.set(b);
  return { type, value };
}

/** A string without NUL (IFLA_INFO_KIND, as iproute2 sends it). */
export function stringAttr(type: number, s: string): Attr {
  return { type, value: encoder.encode(s) };
}

/** A flag: present means true, no value (IFLA_VXLAN_GBP). */
export function flagAttr(type: number): Attr {
  return { type, value: new Uint8Array(0) };
}

export function nestedAttr(type: number, children: readonly Attr[]): Attr {
  return { type, value: children };
}

/** Encoded size of one attribute, padding included. */
export function attrSize(a: Attr): number {
  return align4(ATTR_HDRLEN + valueSize(a));
}

function valueSize(a: Attr): number {
  if (a.value instanceof Uint8Array) return a.value.length;
  let n = 0;
  for (const c of a.value) n += attrSize(c);
  return n;
}

/** Encoded size of a list of attributes. */
export function attrsSize(attrs: readonly Attr[]): number {
  let n = 0;
  for (const a of attrs) n += attrSize(a);
  return n;
}

/**
 * Writes `attrs` into `out` at `off` (the room must be zeroed: padding is not written) and
 * returns the offset after them.
 */
export function encodeAttrs(attrs: readonly Attr[], out: Uint8Array, off: number): number {
  const view = new DataView(out.buffer, out.byteOffset, out.byteLength);
  for (const a of attrs) off = encodeAttr(a, out, view, off);
  return off;
}

function encodeAttr(a: Attr, out: Uint8Array, view: DataView, off: number): number {
  const len = ATTR_HDRLEN + valueSize(a);
  if (len > 0xffff) throw new RangeError(`netlink attribute type ${a.type} is ${len} bytes; at most 65535 fit`);
  view.setUint16(off, len, true);
  view.setUint16(off + 2, a.type, true);
  if (a.value instanceof Uint8Array) {
    out.set(a.value, off + ATTR_HDRLEN);
  } else {
    let inner = off + ATTR_HDRLEN;
    for (const c of a.value) inner = encodeAttr(c, out, view, inner);
  }
  return off + align4(len);
}

/** Attribute type bits that are flags, not part of the type (NLA_F_NESTED, NLA_F_NET_BYTEORDER). */
const NLA_TYPE_MASK = 0x3fff;

/**
 * Reads the attributes in `buf[off, end)` into a map from type (flag bits masked off) to value
 * (a view into `buf`). A repeated type keeps its last value. Stops at a malformed length rather
 * than throwing, as the kernel's own parser does for trailing garbage.
 */
export function parseAttrs(buf: Uint8Array, off = 0, end = buf.length): Map<number, Uint8Array> {
  const out = new Map<number, Uint8Array>();
  while (off + ATTR_HDRLEN <= end) {
    const len = buf[off]! | (buf[off + 1]! << 8);
    const type = (buf[off + 2]! | (buf[off + 3]! << 8)) & NLA_TYPE_MASK;
    if (len < ATTR_HDRLEN || off + len > end) break;
    out.set(type, buf.subarray(off + ATTR_HDRLEN, off + len));
    off += align4(len);
  }
  return out;
}

// ------------------------------------------------------------ value readers

export function readU8(v: Uint8Array): number {
  return v[0]!;
}

export function readU16(v: Uint8Array): number {
  return v[0]! | (v[1]! << 8);
}

export function readU32(v: Uint8Array): number {
  return (v[0]! | (v[1]! << 8) | (v[2]! << 16) | (v[3]! << 24)) >>> 0;
}

export function readBe16(v: Uint8Array): number {
  return (v[0]! << 8) | v[1]!;
}

/** A string value, up to its first NUL if it has one. */
export function readString(v: Uint8Array): string {
  const nul = v.indexOf(0);
  return decoder.decode(nul < 0 ? v : v.subarray(0, nul));
}
