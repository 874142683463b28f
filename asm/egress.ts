/**
 * @module Egress, TUN -> UDP: one call processes a batch of TUN reads.
 *
 * Per input descriptor:
 *  1. check the descriptor lies in the EG_IN arena; with OPT_VNET_HDR take the virtio_net_hdr;
 *  2. a GSO super-packet goes to `egressSuper` (step 7); others need one free UDP descriptor,
 *     else the call stops here (the host drains and calls again from this descriptor);
 *  3. check the IP header; complete a partial checksum (NEEDS_CSUM);
 *  4. the source must lie in our own lease subnet of its family (when set), else drop as
 *     V_SPOOFED; look up the destination: no route -> ICMP unreachable into the TUN (as
 *     flanneld), drop;
 *  5. the route's peer must exist; TTL / hop limit <= 1 -> drop, else decrement (RFC 1624);
 *  6. emit a UDP descriptor pointing at the packet in place (no copy), addressed to the peer's
 *     public IPv4, or 0.0.0.0 when the peer is reached over IPv6 (the host reads PUBLIC6);
 *  7. super-packets: check the transport header and that the segments fit the output (else
 *     stop, or drop when they could never fit), then steps 4-5 once, then split into EG_OUT.
 * The descriptor's verdict is written back and counted.
 */
import {
  EG_IN, EG_IN_SIZE, EG_IN_DESC, EG_IN_CAP, IN_DESC_SIZE, EG_UDP_DESC, EG_UDP_CAP, UDP_DESC_SIZE,
  EG_OUT, EG_OUT_SIZE, EG_TUN, EG_TUN_SIZE, EG_TUN_DESC, EG_TUN_CAP, TUN_DESC_SIZE, VNET_HDR_LEN,
  PEER_CAP, NO_ROUTE, C_EG, C_EG_DATAGRAMS, C_EG_SPLIT, C_EG_CSUM, C_EG_ICMP,
  V_OK, V_NO_ROUTE, V_BAD_VNET_HDR, V_NO_PEER, V_NO_SPACE, V_BAD_DESCRIPTOR, V_SPOOFED,
} from "./layout";
import { vnetHdr, bump, fromOwnSubnet } from "./config";
import { checkIP, forwardStep, be32 } from "./ip";
import { route4Lookup, route6LookupAt } from "./route";
import { peerAt, PEER_VALID, PEER_VIA6 } from "./peers";
import { unreachable } from "./icmp";
import { GSO_NONE, GSO_TCPV4, GSO_TCPV6, GSO_UDP_L4, completeChecksum, split } from "./gso";

/** Internal result: output full, leave this descriptor for the next call. */
const STOP: i32 = -1;

let udpCount: u32 = 0;
let tunCount: u32 = 0;
let outUsed: u32 = 0;
let tunUsed: u32 = 0;

/**
 * Processes input descriptors start .. start+count-1; returns how many were consumed (fewer
 * when the outputs filled up). Outputs restart empty at each call.
 */
export function egress(start: u32, count: u32): u32 {
  udpCount = 0; tunCount = 0; outUsed = 0; tunUsed = 0;
  let done: u32 = 0;
  while (done < count && start + done < <u32>EG_IN_CAP) {
    const d = <usize>EG_IN_DESC + <usize>(start + done) * <usize>IN_DESC_SIZE;
    const v = egressOne(load<u32>(d), load<u32>(d, 4));
    if (v == STOP) break;
    store<u16>(d, <u16>v, 14);
    bump(<u32>C_EG + <u32>v);
    done++;
  }
  return done;
}

/** UDP descriptors produced by the last egress() call. */
export function egressUdpCount(): u32 { return udpCount; }
/** TUN descriptors (ICMP replies) produced by the last egress() call. */
export function egressTunCount(): u32 { return tunCount; }

function egressOne(off: u32, len: u32): i32 {
  if (off < <u32>EG_IN || len > <u32>EG_IN_SIZE || off - <u32>EG_IN > <u32>EG_IN_SIZE - len) return V_BAD_DESCRIPTOR;
  let p = <usize>off;
  let n = len;
  let flags: u32 = 0, gso: u32 = GSO_NONE, size: u32 = 0, csumStart: u32 = 0, csumOffset: u32 = 0;
  if (vnetHdr) {
    if (n < <u32>VNET_HDR_LEN) return V_BAD_VNET_HDR;
    flags = load<u8>(p);
    gso = load<u8>(p, 1) & 0x7f;
    size = load<u16>(p, 4);
    csumStart = load<u16>(p, 6);
    csumOffset = load<u16>(p, 8);
    p += <usize>VNET_HDR_LEN;
    n -= <u32>VNET_HDR_LEN;
  }
  if (gso != GSO_NONE) return egressSuper(p, n, gso, size);
  if (udpCount >= <u32>EG_UDP_CAP) return STOP;
  const ipLen = checkIP(p, n);
  if (ipLen < 0) return -ipLen;
  const len2 = <u32>ipLen;
  if (flags & 1) {
    if (csumStart > len2 || csumOffset + 2 > len2 - csumStart) return V_BAD_VNET_HDR;
    completeChecksum(p, len2, csumStart, csumOffset);
    bump(<u32>C_EG_CSUM);
  }
  const peer = routeTo(p, len2);
  if (peer < 0) return -peer;
  const v = forwardStep(p);
  if (v != V_OK) return v;
  emitUdp(p, len2, <u32>peer);
  return V_OK;
}

/**
 * The peer id for packet `p`, or the negated verdict (an ICMP reply is queued for no route; a
 * source outside our lease gets none).
 */
function routeTo(p: usize, len: u32): i32 {
  if (!fromOwnSubnet(p)) return -V_SPOOFED;
  const r = load<u8>(p) >> 4 == 4 ? route4Lookup(be32(p + 16)) : route6LookupAt(p + 24);
  if (r == NO_ROUTE) {
    replyUnreachable(p, len);
    return -V_NO_ROUTE;
  }
  if (r >= <i32>PEER_CAP || !(load<u32>(peerAt(<u32>r)) & PEER_VALID)) return -V_NO_PEER;
  return r;
}

function replyUnreachable(p: usize, len: u32): void {
  const head: u32 = vnetHdr ? <u32>VNET_HDR_LEN : 0;
  if (tunCount >= <u32>EG_TUN_CAP || tunUsed + head + 1280 > <u32>EG_TUN_SIZE) return;
  const out = <usize>EG_TUN + <usize>tunUsed;
  const n = unreachable(p, len, out + head);
  if (n == 0) return;
  if (head) memory.fill(out, 0, head);
  const d = <usize>EG_TUN_DESC + <usize>tunCount * <usize>TUN_DESC_SIZE;
  store<u32>(d, <u32>out);
  store<u32>(d, head + n, 4);
  tunCount++;
  tunUsed += head + n;
  bump(<u32>C_EG_ICMP);
}

function emitUdp(p: usize, len: u32, peer: u32): void {
  const e = peerAt(peer);
  const d = <usize>EG_UDP_DESC + <usize>udpCount * <usize>UDP_DESC_SIZE;
  store<u32>(d, <u32>p);
  store<u32>(d, len, 4);
  store<u32>(d, load<u32>(e) & PEER_VIA6 ? 0 : bswap<u32>(load<u32>(e, 4)), 8);
  store<u16>(d, bswap<u16>(<u16>load<u32>(e, 8)), 12);
  store<u16>(d, <u16>peer, 14);
  udpCount++;
  bump(<u32>C_EG_DATAGRAMS);
}

function egressSuper(p: usize, n: u32, gso: u32, size: u32): i32 {
  const ipLen = checkIP(p, n);
  if (ipLen < 0) return -ipLen;
  const len = <u32>ipLen;
  const v4 = load<u8>(p) >> 4 == 4;
  let t: u32, proto: u32;
  if (v4) {
    t = (<u32>load<u8>(p) & 15) * 4;
    proto = load<u8>(p, 9);
    if (load<u16>(p, 6) & 0xff3f) return V_BAD_VNET_HDR; // fragment offset or MF (LE view)
  } else {
    t = 40;
    proto = load<u8>(p, 6);
  }
  let h: u32;
  const tcp = gso == GSO_TCPV4 || gso == GSO_TCPV6;
  if (tcp) {
    if ((gso == GSO_TCPV4) != v4 || proto != 6 || t + 20 > len) return V_BAD_VNET_HDR;
    const doff = (<u32>load<u8>(p + t + 12) >> 4) * 4;
    if (doff < 20 || t + doff > len) return V_BAD_VNET_HDR;
    h = t + doff;
  } else if (gso == GSO_UDP_L4) {
    if (proto != 17 || t + 8 > len) return V_BAD_VNET_HDR;
    h = t + 8;
  } else {
    return V_BAD_VNET_HDR;
  }
  if (size == 0) return V_BAD_VNET_HDR;
  const payload = len - h;
  const segs: u32 = payload == 0 ? 1 : (payload + size - 1) / size;
  const bytes = payload + segs * h;
  if (segs > <u32>EG_UDP_CAP || bytes > <u32>EG_OUT_SIZE) return V_NO_SPACE;
  if (udpCount + segs > <u32>EG_UDP_CAP || outUsed + bytes > <u32>EG_OUT_SIZE) return STOP;
  const peer = routeTo(p, len);
  if (peer < 0) return -peer;
  const v = forwardStep(p);
  if (v != V_OK) return v;
  const out = <usize>EG_OUT + <usize>outUsed;
  split(p, len, t, h, size, tcp, out);
  let seg = out;
  for (let i: u32 = 0; i < segs; i++) {
    const total = i == segs - 1 ? bytes - i * (h + size) : h + size;
    emitUdp(seg, total, <u32>peer);
    seg += total;
  }
  outUsed += bytes;
  bump(<u32>C_EG_SPLIT);
  return V_OK;
}
