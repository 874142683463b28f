/**
 * @module ICMP "destination unreachable, net unreachable" replies for packets without a route,
 * written back into the TUN as flanneld's proxy does (backend/udp/proxy_amd64.c
 * send_net_unreachable): IPv4 from the TUN address, TTL 8, quoting the offending header plus
 * 8 bytes; never about ICMP packets or non-first fragments. IPv6 (ICMPv6 type 1 code 0, RFC
 * 4443): hop limit 64, quoting as much of the packet as fits in 1280 bytes; never about ICMPv6
 * errors or multicast.
 */
import { sumBytes, fold16, pseudoSum, setIPv4Checksum } from "./checksum";
import { be16, put16, put32 } from "./ip";
import { tunAddr4, TUN6 } from "./config";

/** Writes the reply to packet `p` (`len` bytes, checked) at `out`; returns its length or 0. */
export function unreachable(p: usize, len: u32, out: usize): u32 {
  return load<u8>(p) >> 4 == 4 ? unreachable4(p, len, out) : unreachable6(p, len, out);
}

function unreachable4(p: usize, len: u32, out: usize): u32 {
  if (load<u8>(p, 9) == 1) return 0; // ICMP: never an error about ICMP (RFC 792)
  if (be16(p + 6) & 0x1fff) return 0; // only about first fragments
  const ihl = (<u32>load<u8>(p) & 15) * 4;
  const quote = min(ihl + 8, len);
  const total = 28 + quote;
  memory.fill(out, 0, 28);
  store<u8>(out, 0x45);
  put16(out + 2, total);
  store<u8>(out, 8, 8); // TTL
  store<u8>(out, 1, 9); // ICMP
  put32(out + 12, tunAddr4);
  memory.copy(out + 16, p + 12, 4);
  setIPv4Checksum(out, 20);
  store<u8>(out, 3, 20); // destination unreachable
  store<u8>(out, 0, 21); // net unreachable
  memory.copy(out + 28, p, quote);
  store<u16>(out + 22, ~fold16(sumBytes(out + 20, 8 + quote, 0)) & 0xffff);
  return total;
}

function unreachable6(p: usize, len: u32, out: usize): u32 {
  if (load<u8>(p, 24) == 0xff || load<u8>(p, 8) == 0xff) return 0; // multicast
  if (load<u8>(p, 6) == 58 && len > 40 && load<u8>(p, 40) < 128) return 0; // ICMPv6 error
  const quote = min(len, 1280 - 48);
  memory.fill(out, 0, 48);
  store<u8>(out, 0x60);
  put16(out + 4, 8 + quote);
  store<u8>(out, 58, 6);
  store<u8>(out, 64, 7);
  memory.copy(out + 8, TUN6, 16);
  memory.copy(out + 24, p + 8, 16);
  store<u8>(out, 1, 40); // destination unreachable
  store<u8>(out, 0, 41); // no route to destination
  memory.copy(out + 48, p, quote);
  const sum = pseudoSum(out + 8, out + 24, 16, 58, 8 + quote);
  store<u16>(out + 42, ~fold16(sumBytes(out + 40, 8 + quote, sum)) & 0xffff);
  return 48 + quote;
}
