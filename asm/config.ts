/**
 * @module Core-wide settings and counters: the host's options (virtio_net_hdr on the TUN), the
 * TUN addresses used as the source of ICMP errors (flanneld: the lease's TUN address), and our
 * own lease subnets, the only sources egress forwards (send-side anti-spoofing).
 */
import { ARG, COUNTERS, OPT_PEER_ID_IN, OPT_VNET_HDR } from "./layout";

/** IPv6 TUN address (16 bytes, network order), kept apart from the host-written ARG area. */
export const TUN6: usize = <usize>ARG + 0x400;
/** Our IPv6 lease subnet (16 bytes, masked), beside it. */
export const OWN6: usize = <usize>ARG + 0x420;

export let vnetHdr = false;
/** Ingress descriptors carry a peer id, not a source address (OPT_PEER_ID_IN). */
export let peerIdIn = false;
export let tunAddr4: u32 = 0;
/** Our lease subnets; length 0: no check for that family (the default). */
export let own4: u32 = 0;
export let own4Len: u32 = 0;
export let own6Len: u32 = 0;

/**
 * Sets option flags (OPT_VNET_HDR: TUN reads and writes carry a virtio_net_hdr; OPT_PEER_ID_IN:
 * ingress descriptors name the peer).
 */
export function setOptions(flags: u32): void {
  vnetHdr = (flags & OPT_VNET_HDR) != 0;
  peerIdIn = (flags & OPT_PEER_ID_IN) != 0;
}

/** Sets the IPv4 source of ICMP errors written to the TUN. */
export function setTunAddr4(addr: u32): void { tunAddr4 = addr; }

/** Sets the IPv6 source of ICMPv6 errors from ARG[0..16]. */
export function setTunAddr6(): void { memory.copy(TUN6, <usize>ARG, 16); }

/** Egress forwards only IPv4 packets from `subnet/len` (len 0: any source). */
export function setOwnSubnet4(subnet: u32, len: u32): i32 {
  if (len > 32) return -2; // ERR_INVALID
  own4Len = len;
  own4 = len == 0 ? 0 : subnet & <u32>(0xffffffff << (32 - len));
  return 0;
}

/** Egress forwards only IPv6 packets from ARG[0..16]/len (len 0: any source). */
export function setOwnSubnet6(len: u32): i32 {
  if (len > 128) return -2; // ERR_INVALID
  own6Len = len;
  for (let i: u32 = 0; i < 16; i++) {
    const bits = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
    store<u8>(OWN6 + i, load<u8>(<usize>ARG + i) & <u8>(0xff00 >> bits));
  }
  return 0;
}

/** Whether the checked packet `p` comes from our own lease (always, for an unset family). */
export function fromOwnSubnet(p: usize): bool {
  if (load<u8>(p) >> 4 == 4) {
    if (own4Len == 0) return true;
    return (bswap<u32>(load<u32>(p, 12)) & <u32>(0xffffffff << (32 - own4Len))) == own4;
  }
  const len = own6Len;
  for (let i: u32 = 0; i < 16; i++) {
    const bits = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
    if (bits == 0) break;
    if ((load<u8>(p + 8 + i) & <u8>(0xff00 >> bits)) != load<u8>(OWN6 + i)) return false;
  }
  return true;
}

/** Adds one to counter `i`. */
// @ts-ignore: decorator
@inline export function bump(i: u32): void {
  const p = <usize>COUNTERS + <usize>i * 4;
  store<u32>(p, load<u32>(p) + 1);
}
