/**
 * @module IP header checks shared by both directions: version, lengths and the IPv4 header
 * checksum, and the TTL / hop-limit step of forwarding.
 */
import { V_TOO_SHORT, V_BAD_VERSION, V_BAD_HEADER_LENGTH, V_BAD_TOTAL_LENGTH, V_BAD_CHECKSUM, V_TTL_EXPIRED, V_OK } from "./layout";
import { sumBytes, fold16, decrementTTL4 } from "./checksum";

// @ts-ignore: decorator
@inline export function be16(p: usize): u32 { return <u32>bswap<u16>(load<u16>(p)); }
// @ts-ignore: decorator
@inline export function be32(p: usize): u32 { return bswap<u32>(load<u32>(p)); }
// @ts-ignore: decorator
@inline export function put16(p: usize, v: u32): void { store<u16>(p, bswap<u16>(<u16>v)); }
// @ts-ignore: decorator
@inline export function put32(p: usize, v: u32): void { store<u32>(p, bswap<u32>(v)); }

/**
 * Checks the IPv4 or IPv6 packet of `n` bytes at `p`. Returns the packet's own length (bytes
 * past it are ignored, as the kernel does) or the negated verdict.
 */
export function checkIP(p: usize, n: u32): i32 {
  if (n == 0) return -V_TOO_SHORT;
  const version = <u32>load<u8>(p) >> 4;
  if (version == 4) {
    if (n < 20) return -V_TOO_SHORT;
    const ihl = (<u32>load<u8>(p) & 15) * 4;
    if (ihl < 20 || ihl > n) return -V_BAD_HEADER_LENGTH;
    const total = be16(p + 2);
    if (total < ihl || total > n) return -V_BAD_TOTAL_LENGTH;
    if (fold16(sumBytes(p, ihl, 0)) != 0xffff) return -V_BAD_CHECKSUM;
    return <i32>total;
  }
  if (version == 6) {
    if (n < 40) return -V_TOO_SHORT;
    const total: u32 = 40 + be16(p + 4);
    if (total > n) return -V_BAD_TOTAL_LENGTH;
    return <i32>total;
  }
  return -V_BAD_VERSION;
}

/** Decrements the TTL / hop limit of a checked packet, or returns V_TTL_EXPIRED when <= 1. */
export function forwardStep(p: usize): u32 {
  if (load<u8>(p) >> 4 == 4) {
    if (load<u8>(p, 8) <= 1) return V_TTL_EXPIRED;
    decrementTTL4(p);
  } else {
    const hop = load<u8>(p, 7);
    if (hop <= 1) return V_TTL_EXPIRED;
    store<u8>(p, hop - 1, 7);
  }
  return V_OK;
}
