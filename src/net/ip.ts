/**
 * @module IPv4/IPv6 addresses and CIDR prefixes as plain values: parsing with errors that name the
 * input, RFC 5952 formatting, masking, containment and arithmetic. IPv4 addresses are unsigned
 * 32-bit numbers; IPv6 addresses are bigints. Pure; used by every layer (ffi/ included).
 */

/** An IPv4 prefix: `ip` is the network address (masked), `len` 0..32. */
export interface IPv4Net { readonly ip: number; readonly len: number }
/** An IPv6 prefix: `ip` is the network address (masked), `len` 0..128. */
export interface IPv6Net { readonly ip: bigint; readonly len: number }

const V4_RE = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/;

/** Parses dotted-quad IPv4, or returns undefined. `parseIPv4("10.1.2.3") === 0x0a010203`. */
export function tryParseIPv4(s: string): number | undefined {
  const m = V4_RE.exec(s);
  if (!m) return undefined;
  let n = 0;
  for (let i = 1; i <= 4; i++) {
    const part = m[i]!;
    if (part.length > 1 && part[0] === "0") return undefined; // no octal-looking octets
    const b = Number(part);
    if (b > 255) return undefined;
    n = n * 256 + b;
  }
  return n >>> 0;
}

/** Parses dotted-quad IPv4 or throws a TypeError naming `what` and the value. */
export function parseIPv4(s: string, what = "IPv4 address"): number {
  const n = tryParseIPv4(s);
  if (n === undefined) throw new TypeError(`${what} ${JSON.stringify(s)} is not a valid IPv4 address (a.b.c.d)`);
  return n;
}

export function formatIPv4(n: number): string {
  return `${n >>> 24}.${(n >>> 16) & 255}.${(n >>> 8) & 255}.${n & 255}`;
}

/** The mask of a prefix length as an unsigned 32-bit number. */
export function maskV4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

/** Parses `a.b.c.d/len`. With `strict`, host bits must be zero; else they are masked off. */
export function parseIPv4Net(s: string, what = "IPv4 network", strict = false): IPv4Net {
  const slash = s.indexOf("/");
  const bad = () => new TypeError(`${what} ${JSON.stringify(s)} is not a valid IPv4 CIDR (a.b.c.d/0-32)`);
  if (slash < 0) throw bad();
  const ip = tryParseIPv4(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (ip === undefined || !/^\d{1,2}$/.test(lenText)) throw bad();
  const len = Number(lenText);
  if (len > 32) throw bad();
  const masked = (ip & maskV4(len)) >>> 0;
  if (strict && masked !== ip) {
    throw new TypeError(`${what} ${JSON.stringify(s)} has host bits set (did you mean ${formatIPv4(masked)}/${len}?)`);
  }
  return { ip: masked, len };
}

export function formatIPv4Net(n: IPv4Net): string {
  return `${formatIPv4(n.ip)}/${n.len}`;
}

/** True when `inner` lies wholly inside `outer`. */
export function containsV4Net(outer: IPv4Net, inner: IPv4Net): boolean {
  return inner.len >= outer.len && ((inner.ip & maskV4(outer.len)) >>> 0) === outer.ip;
}

export function containsV4(net: IPv4Net, ip: number): boolean {
  return ((ip & maskV4(net.len)) >>> 0) === net.ip;
}

export function overlapsV4(a: IPv4Net, b: IPv4Net): boolean {
  return containsV4Net(a, b) || containsV4Net(b, a);
}

export function ipv4ToBytes(n: number, out = new Uint8Array(4), off = 0): Uint8Array {
  out[off] = n >>> 24; out[off + 1] = n >>> 16; out[off + 2] = n >>> 8; out[off + 3] = n;
  return out;
}

export function ipv4FromBytes(b: Uint8Array, off = 0): number {
  return ((b[off]! << 24) | (b[off + 1]! << 16) | (b[off + 2]! << 8) | b[off + 3]!) >>> 0;
}

// ---------------------------------------------------------------- IPv6

const MAX128 = (1n << 128n) - 1n;

/** Parses an IPv6 address (with `::` and an optional trailing dotted quad), or undefined. */
export function tryParseIPv6(s: string): bigint | undefined {
  if (!/^[0-9a-fA-F:.]+$/.test(s) || s.length < 2) return undefined;
  let head = s, tail = "";
  const dbl = s.indexOf("::");
  if (dbl >= 0) {
    if (s.indexOf("::", dbl + 1) >= 0) return undefined;
    head = s.slice(0, dbl); tail = s.slice(dbl + 2);
  }
  const groups = (part: string): number[] | undefined => {
    if (part === "") return [];
    const out: number[] = [];
    const items = part.split(":");
    for (let i = 0; i < items.length; i++) {
      const it = items[i]!;
      if (it.includes(".")) {
        if (i !== items.length - 1) return undefined;
        const v4 = tryParseIPv4(it);
        if (v4 === undefined) return undefined;
        out.push(v4 >>> 16, v4 & 0xffff);
      } else {
        if (!/^[0-9a-fA-F]{1,4}$/.test(it)) return undefined;
        out.push(parseInt(it, 16));
      }
    }
    return out;
  };
  const h = groups(head), t = groups(tail);
  if (!h || !t) return undefined;
  if (dbl < 0 && h.length !== 8) return undefined;
  if (dbl >= 0 && h.length + t.length > 7) return undefined;
  const all = [...h, ...new Array(8 - h.length - t.length).fill(0), ...t];
  let n = 0n;
  for (const g of all) n = (n << 16n) | BigInt(g);
  return n;
}

export function parseIPv6(s: string, what = "IPv6 address"): bigint {
  const n = tryParseIPv6(s);
  if (n === undefined) throw new TypeError(`${what} ${JSON.stringify(s)} is not a valid IPv6 address`);
  return n;
}

/** RFC 5952 text: lowercase, leading zeros dropped, the longest run (≥ 2) of zero groups as `::`. */
export function formatIPv6(n: bigint): string {
  const g: number[] = [];
  for (let i = 7; i >= 0; i--) g.push(Number((n >> BigInt(i * 16)) & 0xffffn));
  let bestStart = -1, bestLen = 0;
  for (let i = 0; i < 8;) {
    if (g[i] !== 0) { i++; continue; }
    let j = i;
    while (j < 8 && g[j] === 0) j++;
    if (j - i > bestLen && j - i >= 2) { bestStart = i; bestLen = j - i; }
    i = j;
  }
  const hex = (a: number[]) => a.map((x) => x.toString(16)).join(":");
  if (bestStart < 0) return hex(g);
  return `${hex(g.slice(0, bestStart))}::${hex(g.slice(bestStart + bestLen))}`;
}

export function maskV6(len: number): bigint {
  return len === 0 ? 0n : (MAX128 << BigInt(128 - len)) & MAX128;
}

export function parseIPv6Net(s: string, what = "IPv6 network", strict = false): IPv6Net {
  const slash = s.indexOf("/");
  const bad = () => new TypeError(`${what} ${JSON.stringify(s)} is not a valid IPv6 CIDR (addr/0-128)`);
  if (slash < 0) throw bad();
  const ip = tryParseIPv6(s.slice(0, slash));
  const lenText = s.slice(slash + 1);
  if (ip === undefined || !/^\d{1,3}$/.test(lenText)) throw bad();
  const len = Number(lenText);
  if (len > 128) throw bad();
  const masked = ip & maskV6(len);
  if (strict && masked !== ip) {
    throw new TypeError(`${what} ${JSON.stringify(s)} has host bits set (did you mean ${formatIPv6(masked)}/${len}?)`);
  }
  return { ip: masked, len };
}

export function formatIPv6Net(n: IPv6Net): string {
  return `${formatIPv6(n.ip)}/${n.len}`;
}

export function containsV6Net(outer: IPv6Net, inner: IPv6Net): boolean {
  return inner.len >= outer.len && (inner.ip & maskV6(outer.len)) === outer.ip;
}

export function overlapsV6(a: IPv6Net, b: IPv6Net): boolean {
  return containsV6Net(a, b) || containsV6Net(b, a);
}

export function ipv6ToBytes(n: bigint, out = new Uint8Array(16), off = 0): Uint8Array {
  for (let i = 15; i >= 0; i--) { out[off + i] = Number(n & 0xffn); n >>= 8n; }
  return out;
}

export function ipv6FromBytes(b: Uint8Array, off = 0): bigint {
  let n = 0n;
  for (let i = 0; i < 16; i++) n = (n << 8n) | BigInt(b[off + i]!);
  return n;
}

/** Parses either family's address; returns the family with the value. */
export function parseIP(s: string, what = "IP address"): { family: 4; ip: number } | { family: 6; ip: bigint } {
  const v4 = tryParseIPv4(s);
  if (v4 !== undefined) return { family: 4, ip: v4 };
  const v6 = tryParseIPv6(s);
  if (v6 !== undefined) return { family: 6, ip: v6 };
  throw new TypeError(`${what} ${JSON.stringify(s)} is not a valid IPv4 or IPv6 address`);
}
