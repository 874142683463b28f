/**
 * @module Segmentation of TUN super-packets (virtio_net_hdr GSO TCPV4, TCPV6, UDP_L4) into
 * wire-sized packets, as the kernel's GSO would: each segment gets the headers of the
 * super-packet with its own IPv4 total length, id (+1 per segment) and header checksum or IPv6
 * payload length; TCP sequence number, FIN/PSH only on the last segment and CWR only on the
 * first; a full TCP/UDP checksum over the pseudo-header. Also completes partial checksums
 * (NEEDS_CSUM) of packets that are not split.
 */
import { sumBytes, fold16, pseudoSum, setIPv4Checksum } from "./checksum";
import { be16, be32, put16, put32 } from "./ip";

/** Virtio GSO types (the ECN bit 0x80 masked off). */
export const GSO_NONE: u32 = 0;
export const GSO_TCPV4: u32 = 1;
export const GSO_TCPV6: u32 = 4;
export const GSO_UDP_L4: u32 = 5;

/** Completes the partial checksum of `len` bytes at `p`: sum from `start`, stored at start+offset. */
export function completeChecksum(p: usize, len: u32, start: u32, offset: u32): void {
  const c = ~fold16(sumBytes(p + <usize>start, len - start, 0)) & 0xffff;
  store<u16>(p + <usize>start + <usize>offset, c == 0 ? 0xffff : c);
}

/** The transport checksum of the segment at `seg` (`total` bytes, transport header at `t`). */
export function transportChecksum(seg: usize, total: u32, t: u32, proto: u32): u32 {
  const v4 = load<u8>(seg) >> 4 == 4;
  const sum = v4
    ? pseudoSum(seg + 12, seg + 16, 4, proto, total - t)
    : pseudoSum(seg + 8, seg + 24, 16, proto, total - t);
  return ~fold16(sumBytes(seg + <usize>t, total - t, sum)) & 0xffff;
}

/**
 * Splits the checked super-packet `p` (`len` bytes; transport header at `t`, all headers `h`
 * bytes) into segments of `size` payload bytes written back to back at `out`, with the TTL /
 * hop limit already decremented in `p`. Calls nothing per segment: returns the segment count;
 * segment i starts at out + i * (h + size) and all but the last are h + size bytes long.
 */
export function split(p: usize, len: u32, t: u32, h: u32, size: u32, tcp: bool, out: usize): u32 {
  const v4 = load<u8>(p) >> 4 == 4;
  const payload = len - h;
  const segs: u32 = payload == 0 ? 1 : (payload + size - 1) / size;
  const id = v4 ? be16(p + 4) : 0;
  const seq = tcp ? be32(p + t + 4) : 0;
  const flags = tcp ? <u32>load<u8>(p + t + 13) : 0;
  let dst = out;
  for (let i: u32 = 0; i < segs; i++) {
    const n = min(size, payload - i * size);
    const total = h + n;
    memory.copy(dst, p, h);
    memory.copy(dst + h, p + h + i * size, n);
    if (v4) {
      put16(dst + 2, total);
      put16(dst + 4, (id + i) & 0xffff);
      setIPv4Checksum(dst, t);
    } else {
      put16(dst + 4, total - 40);
    }
    if (tcp) {
      put32(dst + t + 4, seq + i * size);
      let f = flags;
      if (i != segs - 1) f &= ~0x09; // FIN, PSH only on the last
      if (i != 0) f &= ~0x80; // CWR only on the first
      store<u8>(dst + t + 13, <u8>f);
      store<u16>(dst + t + 16, 0);
      store<u16>(dst + t + 16, transportChecksum(dst, total, t, 6));
    } else {
      put16(dst + t + 4, total - t);
      store<u16>(dst + t + 6, 0);
      const c = transportChecksum(dst, total, t, 17);
      store<u16>(dst + t + 6, c == 0 ? 0xffff : c);
    }
    dst += total;
  }
  return segs;
}
