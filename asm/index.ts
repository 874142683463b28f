/**
 * @module weft's packet core (AssemblyScript -> build/weft_core.wasm): route lookup and packet
 * work for the userspace udp backend. Bytes in, verdicts and bytes out; no policy, no imports,
 * no allocation: every structure is a fixed region of one fixed-size memory (asm/layout.ts).
 *
 * Memory (offsets in asm/layout.ts, 61 MiB, initial = maximum, exported as `memory`):
 *   ARG        64 B   IPv6 arguments (network order) for route6*, peerSetSubnet6, peerSetPublic6,
 *                     setTunAddr6, setOwnSubnet6
 *   IN_SRC6    16 B per ingress descriptor: the IPv6 sender when the descriptor's IPv4 is 0
 *   COUNTERS   u32[64] wrapping counters: egress verdicts/extra at 0.., ingress at 32..
 *   LOOKUP_IN/OUT     batch lookup addresses in, i32 route values out (4096 each)
 *   EG_IN_DESC, EG_UDP_DESC, EG_TUN_DESC, IN_IN_DESC, IN_TUN_DESC   descriptor rings
 *   DIRECT, ROOT4, ROOT6, CHUNKS, RULES, PEERS, GRO_*   tables (core-owned, host may read)
 *   EG_IN 8 MiB, EG_OUT 8 MiB, EG_TUN 2 MiB, IN_IN 8 MiB, IN_OUT 12 MiB   packet arenas
 *   PUBLIC6    peers' public IPv6 addresses (16 B by peer id)
 *   WG_SESSIONS, WG_SEAL_DESC, WG_OPEN_DESC, WG_COUNTERS   WireGuard transport (asm/wg_transport.ts)
 *
 * Ring protocol (batch-synchronous; one thread drives one core instance):
 *   Between calls the host owns every byte. Egress: it reads TUN packets into EG_IN (anywhere,
 *   e.g. fixed slots of VNET_HDR_LEN + 65535 bytes, handing `Uint8Array` subviews straight to
 *   read()), fills descriptors i = 0..n-1 of EG_IN_DESC {off, len} and calls egress(0, n).
 *   During the call the core owns the inputs and both output rings; it returns how many
 *   descriptors it consumed (k >= 1 when n >= 1; fewer than n only when outputs filled) and
 *   writes each consumed descriptor's verdict. The host then owns everything again: it sends
 *   egressUdpCount() datagrams described by EG_UDP_DESC (they point into EG_IN, forwarded in
 *   place, or into EG_OUT; segments of one super-packet are contiguous and equal-sized but the
 *   last, so they fit one UDP_SEGMENT sendmsg; a destination of 0.0.0.0 means the peer's
 *   PUBLIC6 address), writes egressTunCount() ICMP replies from EG_TUN_DESC, and must finish
 *   with both before calling egress(k, n - k) or refilling the input slots those outputs point
 *   into. Ingress is the same with IN_IN_DESC {off, len, source IPv4 (0.0.0.0: the IPv6 source
 *   is at IN_SRC6 + 16 * i), seg}, ingress(start, count) and ingressTunCount() descriptors in IN_TUN_DESC
 *   (pointing at off - VNET_HDR_LEN in place, or into IN_OUT): the VNET_HDR_LEN bytes before
 *   each `off` belong to the slot and are overwritten, so recvmmsg iovecs start at slot + 10.
 *   Outputs of a call are valid until the next call in the same direction.
 */
export { setOptions, setTunAddr4, setTunAddr6, setOwnSubnet4, setOwnSubnet6 } from "./config";
export {
  route4Insert, route4Delete, route6Insert, route6Delete, setClusterNetwork, routeClear,
} from "./route";
export { peerSet, peerSetSubnet6, peerSetPublic6, peerDelete } from "./peers";
export { egress, egressUdpCount, egressTunCount } from "./egress";
export { ingress, ingressTunCount } from "./ingress";
export { wgSessionSet, wgSessionDelete, wgSeal, wgOpen } from "./wg_transport";
export { chacha20XorAt, poly1305At, aeadSealAt, aeadOpenAt, setChaChaSimd } from "./crypto_api";

import { ARG, LAYOUT_VERSION, LOOKUP_IN, LOOKUP_OUT, LOOKUP_CAP, NO_ROUTE } from "./layout";
import { route4Lookup as lookup4, route6LookupAt } from "./route";

/** The layout version this binary was built with (also the trivial export for call costs). */
export function layoutVersion(): i32 { return LAYOUT_VERSION; }

/** The route value for IPv4 `addr`, or NO_ROUTE. */
export function route4Lookup(addr: u32): i32 { return lookup4(addr); }

/** The route value for the IPv6 address at ARG, or NO_ROUTE. */
export function route6Lookup(): i32 { return route6LookupAt(<usize>ARG); }

/** Looks up `count` u32 IPv4 addresses at LOOKUP_IN into LOOKUP_OUT; returns how many matched. */
export function route4LookupBatch(count: u32): u32 {
  const n = min(count, <u32>LOOKUP_CAP);
  let found: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const v = lookup4(load<u32>(<usize>LOOKUP_IN + <usize>i * 4));
    store<i32>(<usize>LOOKUP_OUT + <usize>i * 4, v);
    if (v != NO_ROUTE) found++;
  }
  return found;
}

/** Looks up `count` 16-byte IPv6 addresses at LOOKUP_IN into LOOKUP_OUT; returns how many matched. */
export function route6LookupBatch(count: u32): u32 {
  const n = min(count, <u32>LOOKUP_CAP);
  let found: u32 = 0;
  for (let i: u32 = 0; i < n; i++) {
    const v = route6LookupAt(<usize>LOOKUP_IN + <usize>i * 16);
    store<i32>(<usize>LOOKUP_OUT + <usize>i * 4, v);
    if (v != NO_ROUTE) found++;
  }
  return found;
}
