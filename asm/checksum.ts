/**
 * @module Internet checksum (RFC 1071) over linear memory, computed in the little-endian domain:
 * 16-bit words are loaded as stored and the folded sum is stored back the same way, which the
 * byte-order independence of the ones'-complement sum makes equal to the network-order result.
 * Plus the RFC 1624 incremental update used for TTL decrements.
 */

/** Adds `len` bytes at `ptr` to the running 64-bit sum `acc` (fold with `fold16`). */
export function sumBytes(ptr: usize, len: u32, acc: u64): u64 {
  let p = ptr;
  const end = ptr + <usize>len;
  while (p + 8 <= end) {
    const w = load<u64>(p);
    acc += (w & 0xffffffff) + (w >> 32);
    p += 8;
  }
  if (p + 4 <= end) { acc += <u64>load<u32>(p); p += 4; }
  if (p + 2 <= end) { acc += <u64>load<u16>(p); p += 2; }
  if (p < end) acc += <u64>load<u8>(p);
  return acc;
}

/** Folds a running sum to 16 bits (not complemented). */
// @ts-ignore: decorator
@inline export function fold16(acc: u64): u32 {
  acc = (acc & 0xffffffff) + (acc >> 32);
  acc = (acc & 0xffffffff) + (acc >> 32);
  let s = <u32>acc;
  s = (s & 0xffff) + (s >> 16);
  s = (s & 0xffff) + (s >> 16);
  return s;
}

/** A 16-bit network-order value as it reads in the little-endian domain. */
// @ts-ignore: decorator
@inline export function le16(v: u32): u64 {
  return <u64>(((v & 0xff) << 8) | ((v >> 8) & 0xff));
}

/** Sum of the TCP/UDP pseudo-header: addresses at `src`/`dst` of `alen` bytes, proto, length. */
export function pseudoSum(src: usize, dst: usize, alen: u32, proto: u32, length: u32): u64 {
  return sumBytes(dst, alen, sumBytes(src, alen, 0)) + le16(proto) + le16(length);
}

/** Writes the IPv4 header checksum of the header at `ip` (`hlen` bytes). */
export function setIPv4Checksum(ip: usize, hlen: u32): void {
  store<u16>(ip + 10, 0);
  store<u16>(ip + 10, ~fold16(sumBytes(ip, hlen, 0)) & 0xffff);
}

/** Decrements the IPv4 TTL and patches the header checksum per RFC 1624 eqn. 3. */
export function decrementTTL4(ip: usize): void {
  const old = <u32>load<u16>(ip + 8); // ttl | proto << 8 (LE domain)
  const neu = old - 1; // the TTL is the low byte here and is at least 2
  store<u16>(ip + 8, <u16>neu);
  const hc = <u32>load<u16>(ip + 10);
  const s = <u64>(~hc & 0xffff) + <u64>(~old & 0xffff) + <u64>neu;
  store<u16>(ip + 10, <u16>(~fold16(s) & 0xffff));
}
