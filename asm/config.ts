/**
 * @module Core-wide settings and counters: the host's options (virtio_net_hdr on the TUN) and
 * the TUN addresses used as the source of ICMP errors (flanneld: the lease's TUN address).
 */
import { ARG, COUNTERS, OPT_VNET_HDR } from "./layout";

/** IPv6 TUN address (16 bytes, network order), kept apart from the host-written ARG area. */
export const TUN6: usize = <usize>ARG + 0x400;

export let vnetHdr = false;
export let tunAddr4: u32 = 0;

/** Sets option flags (OPT_VNET_HDR: TUN reads and writes carry a virtio_net_hdr). */
export function setOptions(flags: u32): void { vnetHdr = (flags & OPT_VNET_HDR) != 0; }

/** Sets the IPv4 source of ICMP errors written to the TUN. */
export function setTunAddr4(addr: u32): void { tunAddr4 = addr; }

/** Sets the IPv6 source of ICMPv6 errors from ARG[0..16]. */
export function setTunAddr6(): void { memory.copy(TUN6, <usize>ARG, 16); }

/** Adds one to counter `i`. */
// @ts-ignore: decorator
@inline export function bump(i: u32): void {
  const p = <usize>COUNTERS + <usize>i * 4;
  store<u32>(p, load<u32>(p) + 1);
}
