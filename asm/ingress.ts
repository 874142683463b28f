/**
 * @module Ingress, UDP -> TUN: one call processes a batch of received datagrams.
 *
 * Per input descriptor (one datagram, or with `seg` != 0 a UDP GRO buffer of datagrams of
 * `seg` bytes, the last possibly shorter):
 *  1. check the descriptor: inside IN_IN with VNET_HDR_LEN bytes of headroom before `off`;
 *     stop the call if its datagrams would not fit the per-call record table;
 *  2. find the peer by the datagram's source address: the descriptor's IPv4, or when that is
 *     0.0.0.0 the IPv6 one at IN_SRC6 + 16 * index (unknown -> drop); with OPT_PEER_ID_IN the
 *     descriptor's word 2 is the peer id itself (the wireguard backend's opened messages);
 *  3. per datagram: check the IP header; the inner source must lie in that peer's subnet
 *     (anti-spoofing, which flanneld lacks); TTL / hop limit <= 1 -> drop, else decrement;
 *  4. record it (gro.ts), merging TCP segments of one flow when writing with virtio_net_hdr.
 * Then every record becomes a TUN descriptor: in place (the virtio_net_hdr goes into the
 * headroom) or, for merged groups and datagrams after the first of a GRO buffer, copied to
 * IN_OUT.
 */
import {
  IN_IN, IN_IN_SIZE, IN_IN_DESC, IN_IN_CAP, IN_DESC_SIZE, IN_SRC6, VNET_HDR_LEN, GRO_PKT_CAP, C_IN,
  V_OK, V_UNKNOWN_SOURCE, V_SPOOFED, V_BAD_DESCRIPTOR, PEER_CAP,
} from "./layout";
import { vnetHdr, peerIdIn, bump } from "./config";
import { checkIP, forwardStep, be32 } from "./ip";
import { mask4 } from "./route";
import { PEER_VALID, peerAt, peerByAddress, peerByAddress6, peerHasSource6 } from "./peers";
import { groReset, groAdd, groEmit, groPacketCount, groTunCount } from "./gro";

/**
 * Processes input descriptors start .. start+count-1; returns how many were consumed (fewer
 * when the record table filled up). Outputs restart empty at each call.
 */
export function ingress(start: u32, count: u32): u32 {
  groReset();
  let done: u32 = 0;
  while (done < count && start + done < <u32>IN_IN_CAP) {
    const d = <usize>IN_IN_DESC + <usize>(start + done) * <usize>IN_DESC_SIZE;
    const off = load<u32>(d);
    const len = load<u32>(d, 4);
    const seg = <u32>load<u16>(d, 12);
    let verdict: u32 = V_OK;
    if (off < <u32>IN_IN + <u32>VNET_HDR_LEN || len > <u32>IN_IN_SIZE || off - <u32>IN_IN > <u32>IN_IN_SIZE - len || (seg != 0 && seg < 20)) {
      verdict = V_BAD_DESCRIPTOR;
      bump(<u32>C_IN + verdict);
    } else {
      const datagrams: u32 = seg == 0 || len <= seg ? 1 : (len + seg - 1) / seg;
      if (groPacketCount() + datagrams > <u32>GRO_PKT_CAP) break;
      const from = load<u32>(d, 8);
      const peer = peerIdIn ? peerById(from) : from != 0 ? peerByAddress(bswap<u32>(from)) : peerByAddress6(<usize>IN_SRC6 + <usize>(start + done) * 16);
      for (let k: u32 = 0; k < datagrams; k++) {
        const p = <usize>off + <usize>(k * seg);
        const n = datagrams == 1 ? len : min(seg, len - k * seg);
        const v = ingressOne(p, n, peer, k > 0);
        bump(<u32>C_IN + v);
        if (v != V_OK) verdict = v;
      }
    }
    store<u16>(d, <u16>verdict, 14);
    done++;
  }
  groEmit(vnetHdr);
  return done;
}

/** Peer `id` when it is a valid entry (OPT_PEER_ID_IN), else -1. */
function peerById(id: u32): i32 {
  return id < <u32>PEER_CAP && (load<u32>(peerAt(id)) & PEER_VALID) != 0 ? <i32>id : -1;
}

/** TUN descriptors produced by the last ingress() call. */
export function ingressTunCount(): u32 { return groTunCount(); }

function ingressOne(p: usize, n: u32, peer: i32, noHeadroom: bool): u32 {
  if (peer < 0) return V_UNKNOWN_SOURCE;
  const ipLen = checkIP(p, n);
  if (ipLen < 0) return <u32>-ipLen;
  const e = peerAt(<u32>peer);
  if (load<u8>(p) >> 4 == 4) {
    if ((be32(p + 12) & mask4(load<u32>(e, 16))) != load<u32>(e, 12)) return V_SPOOFED;
  } else if (!peerHasSource6(e, p + 8)) {
    return V_SPOOFED;
  }
  const v = forwardStep(p);
  if (v != V_OK) return v;
  groAdd(p, <u32>ipLen, noHeadroom, vnetHdr);
  return V_OK;
}
