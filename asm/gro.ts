/**
 * @module Coalescing (GRO) of TCP segments received from peers into super-packets for an
 * IFF_VNET_HDR TUN, after wireguard-go's tun/offload_linux.go. Two passes per ingress call:
 * `groAdd` records every accepted packet and links it into its flow's open group when it
 * continues it exactly; `groEmit` then writes each group (or single packet) as one TUN write.
 *
 * A packet may join a group when it is TCP over IPv4 without options / IPv6 without extension
 * headers, unfragmented, only ACK (and PSH) set, carries payload, has a valid checksum (the
 * kernel will not check it again: the super-packet goes up with NEEDS_CSUM), and matches the
 * group's first packet in addresses, ports, ACK number, TCP options, TOS/traffic class and flow
 * label, TTL/hop limit and DF; its sequence number continues the group and its payload is no
 * larger than the first's. A shorter payload or PSH closes the group. At most 64 KiB - 1 of
 * IP packet per group, at most GRO_FLOW_MAX flows tracked per call.
 *
 * Record (32 bytes): off u32, len u32, next i32, last i32, nextSeq u32, total u32 (payload of
 * the group), gso u16, hdrLen u8, flags u8, count u16.
 */
import {
  GRO_PKTS, GRO_FLOWS, GRO_FLOW_SLOTS, GRO_FLOW_MAX, IN_OUT, IN_OUT_SIZE, IN_TUN_DESC, TUN_DESC_SIZE,
  VNET_HDR_LEN, C_IN, C_IN_WRITES, C_IN_MERGED, V_NO_SPACE,
} from "./layout";
import { sumBytes, fold16, pseudoSum, setIPv4Checksum } from "./checksum";
import { be16, be32, put16 } from "./ip";
import { bump } from "./config";

const F_COPY: u32 = 1; // no headroom before the packet: copy it to IN_OUT
const F_MEMBER: u32 = 4; // merged into an earlier record
const F_CLOSED: u32 = 8; // group takes no more segments
const F_PSH: u32 = 16; // group ends with PSH

let pktCount: u32 = 0;
let flowCount: u32 = 0;
let generation: u32 = 0;
let tunCount: u32 = 0;
let outUsed: u32 = 0;

// @ts-ignore: decorator
@inline function rec(i: u32): usize { return <usize>GRO_PKTS + <usize>i * 32; }

/** Starts a new call. */
export function groReset(): void {
  pktCount = 0; flowCount = 0; tunCount = 0; outUsed = 0;
  generation++;
  if (generation == 0) {
    memory.fill(<usize>GRO_FLOWS, 0, <usize>GRO_FLOW_SLOTS * 16);
    generation = 1;
  }
}

export function groPacketCount(): u32 { return pktCount; }
export function groTunCount(): u32 { return tunCount; }

/** Records the checked, forwarded packet `p` (`len` bytes); with `coalesce` tries to merge it. */
export function groAdd(p: usize, len: u32, copy: bool, coalesce: bool): void {
  const r = pktCount++;
  const q = rec(r);
  store<u32>(q, <u32>p);
  store<u32>(q, len, 4);
  store<i32>(q, -1, 8);
  store<u32>(q, 0, 24);
  store<u8>(q, copy ? <u8>F_COPY : 0, 27);
  store<u16>(q, 1, 28);
  if (!coalesce) return;

  // Candidate?
  const v4 = load<u8>(p) >> 4 == 4;
  let t: u32;
  if (v4) {
    if (load<u8>(p) != 0x45 || load<u8>(p, 9) != 6 || (load<u16>(p, 6) & 0xff3f) != 0) return;
    t = 20;
  } else {
    if (load<u8>(p, 6) != 6) return;
    t = 40;
  }
  if (t + 20 > len) return;
  const th = (<u32>load<u8>(p + t + 12) >> 4) * 4;
  if (th < 20 || t + th >= len) return; // no payload, or header overruns
  const flags = <u32>load<u8>(p + t + 13);
  if ((flags & ~0x18) != 0 || (flags & 0x10) == 0) return; // only ACK, ACK|PSH
  const tcpLen = len - t;
  const sum = v4 ? pseudoSum(p + 12, p + 16, 4, 6, tcpLen) : pseudoSum(p + 8, p + 24, 16, 6, tcpLen);
  if (fold16(sumBytes(p + t, tcpLen, sum)) != 0xffff) return;
  const payload = len - t - th;
  const seq = be32(p + t + 4);
  const psh = (flags & 0x08) != 0;

  // Find the flow.
  const alen: u32 = v4 ? 8 : 32;
  const aoff: u32 = v4 ? 12 : 8;
  let h: u32 = 0x811c9dc5;
  for (let i: u32 = 0; i < alen; i += 4) h = (h ^ load<u32>(p + aoff + i)) * 0x01000193;
  h = (h ^ load<u32>(p + t)) * 0x01000193;
  h ^= h >> 15;
  let slot = h & (<u32>GRO_FLOW_SLOTS - 1);
  while (true) {
    const f = <usize>GRO_FLOWS + <usize>slot * 16;
    if (load<u32>(f) != generation) {
      if (flowCount >= <u32>GRO_FLOW_MAX) return;
      flowCount++;
      store<u32>(f, generation);
      store<u32>(f, h, 4);
      startGroup(f, r, th, payload, seq, psh);
      return;
    }
    if (load<u32>(f, 4) == h) {
      const head = load<u32>(f, 8);
      const g = <usize>load<u32>(rec(head));
      if (load<u8>(g) >> 4 == load<u8>(p) >> 4 && memory.compare(g + aoff, p + aoff, alen) == 0 && load<u32>(g + t) == load<u32>(p + t)) {
        if (canJoin(rec(head), g, p, t, th, payload, seq)) {
          join(rec(head), r, payload, psh);
        } else {
          startGroup(f, r, th, payload, seq, psh);
        }
        return;
      }
    }
    slot = (slot + 1) & (<u32>GRO_FLOW_SLOTS - 1);
  }
}

function startGroup(f: usize, r: u32, th: u32, payload: u32, seq: u32, psh: bool): void {
  const q = rec(r);
  const t: u32 = load<u8>(<usize>load<u32>(q)) >> 4 == 4 ? 20 : 40;
  store<u32>(f, r, 8);
  store<i32>(q, <i32>r, 12);
  store<u32>(q, seq + payload, 16);
  store<u32>(q, payload, 20);
  store<u16>(q, <u16>payload, 24);
  store<u8>(q, <u8>(t + th), 26);
  if (psh) store<u8>(q, load<u8>(q, 27) | <u8>(F_CLOSED | F_PSH), 27);
}

function canJoin(hq: usize, g: usize, p: usize, t: u32, th: u32, payload: u32, seq: u32): bool {
  const gflags = <u32>load<u8>(hq, 27);
  if (gflags & F_CLOSED) return false;
  if (seq != load<u32>(hq, 16) || payload > <u32>load<u16>(hq, 24)) return false;
  const hdrLen = <u32>load<u8>(hq, 26);
  if (hdrLen != t + th) return false;
  if (hdrLen + load<u32>(hq, 20) + payload > 65535) return false;
  if (t == 20) {
    if (load<u8>(g, 1) != load<u8>(p, 1) || load<u16>(g, 6) != load<u16>(p, 6) || load<u8>(g, 8) != load<u8>(p, 8)) return false;
  } else {
    if (load<u32>(g) != load<u32>(p) || load<u8>(g, 7) != load<u8>(p, 7)) return false;
  }
  if (load<u32>(g + t + 8) != load<u32>(p + t + 8)) return false; // ACK number
  return th == 20 || memory.compare(g + t + 20, p + t + 20, th - 20) == 0;
}

function join(hq: usize, r: u32, payload: u32, psh: bool): void {
  const last = load<u32>(hq, 12);
  store<u32>(rec(last), r, 8);
  store<u32>(hq, r, 12);
  store<u32>(hq, load<u32>(hq, 16) + payload, 16);
  store<u32>(hq, load<u32>(hq, 20) + payload, 20);
  store<u16>(hq, load<u16>(hq, 28) + 1, 28);
  const q = rec(r);
  store<u8>(q, load<u8>(q, 27) | <u8>F_MEMBER, 27);
  let f = <u32>load<u8>(hq, 27);
  if (payload < <u32>load<u16>(hq, 24)) f |= F_CLOSED;
  if (psh) f |= F_CLOSED | F_PSH;
  store<u8>(hq, <u8>f, 27);
}

/** Writes one TUN descriptor per group or packet, in arrival order of their first packets. */
export function groEmit(vnet: bool): void {
  for (let r: u32 = 0; r < pktCount; r++) {
    const q = rec(r);
    const flags = <u32>load<u8>(q, 27);
    if (flags & F_MEMBER) continue;
    const p = <usize>load<u32>(q);
    const len = load<u32>(q, 4);
    if (!vnet) { emit(p, len); continue; }
    if (load<u16>(q, 28) > 1) { emitGroup(q); continue; }
    if (!(flags & F_COPY)) {
      memory.fill(p - <usize>VNET_HDR_LEN, 0, <usize>VNET_HDR_LEN);
      emit(p - <usize>VNET_HDR_LEN, len + <u32>VNET_HDR_LEN);
      continue;
    }
    const out = reserve(len + <u32>VNET_HDR_LEN);
    if (out == 0) continue;
    memory.fill(out, 0, <usize>VNET_HDR_LEN);
    memory.copy(out + <usize>VNET_HDR_LEN, p, len);
    emit(out, len + <u32>VNET_HDR_LEN);
  }
}

function reserve(n: u32): usize {
  if (outUsed + n > <u32>IN_OUT_SIZE) {
    bump(<u32>C_IN + <u32>V_NO_SPACE);
    return 0;
  }
  const out = <usize>IN_OUT + <usize>outUsed;
  outUsed += n;
  return out;
}

function emit(p: usize, len: u32): void {
  const d = <usize>IN_TUN_DESC + <usize>tunCount * <usize>TUN_DESC_SIZE;
  store<u32>(d, <u32>p);
  store<u32>(d, len, 4);
  tunCount++;
  bump(<u32>C_IN_WRITES);
}

function emitGroup(hq: usize): void {
  const g = <usize>load<u32>(hq);
  const hdrLen = <u32>load<u8>(hq, 26);
  const total = load<u32>(hq, 20);
  const size = hdrLen + total;
  const out = reserve(size + <u32>VNET_HDR_LEN);
  if (out == 0) return;
  const v4 = load<u8>(g) >> 4 == 4;
  const t: u32 = v4 ? 20 : 40;
  // virtio_net_hdr: NEEDS_CSUM, TCPV4/TCPV6, hdr_len, gso_size, csum_start, csum_offset.
  store<u8>(out, 1);
  store<u8>(out, v4 ? 1 : 4, 1);
  store<u16>(out, <u16>hdrLen, 2);
  store<u16>(out, load<u16>(hq, 24), 4);
  store<u16>(out, <u16>t, 6);
  store<u16>(out, 16, 8);
  const ip = out + <usize>VNET_HDR_LEN;
  memory.copy(ip, g, hdrLen);
  let dst = ip + <usize>hdrLen;
  let r = <i32>(<u32>(hq - <usize>GRO_PKTS) / 32);
  let merged: u32 = 0;
  while (r >= 0) {
    const q = rec(<u32>r);
    const p = <usize>load<u32>(q);
    const n = load<u32>(q, 4) - hdrLen;
    memory.copy(dst, p + <usize>hdrLen, n);
    dst += n;
    r = load<i32>(q, 8);
    merged++;
  }
  if (v4) {
    put16(ip + 2, size);
    setIPv4Checksum(ip, 20);
  } else {
    put16(ip + 4, size - 40);
  }
  if (load<u8>(hq, 27) & <u8>F_PSH) store<u8>(ip + t + 13, load<u8>(ip + t + 13) | 0x08);
  const sum = v4 ? pseudoSum(ip + 12, ip + 16, 4, 6, size - t) : pseudoSum(ip + 8, ip + 24, 16, 6, size - t);
  store<u16>(ip + t + 16, <u16>fold16(sum));
  emit(out, size + <u32>VNET_HDR_LEN);
  for (let i: u32 = 1; i < merged; i++) bump(<u32>C_IN_MERGED);
}
