/**
 * @module Test helpers for the core: an independent checksum, packet builders (IPv4/IPv6 with
 * TCP/UDP/ICMP), virtio_net_hdr, and drivers that push a batch through a core's rings and
 * collect what comes out. Shared by the vector, fuzz and benchmark code.
 */
import * as L from "../../src/core/layout.ts";
import type { Core } from "../../src/core/types.ts";

/** Deterministic PRNG (mulberry32) so failures reproduce. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const hex = (s: string) => Uint8Array.from(s.replace(/\s+/g, "").match(/../g)!.map((b) => parseInt(b, 16)));
export const toHex = (b: Uint8Array) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** RFC 1071 checksum over `parts` concatenated (each part padded only at the very end). */
export function inetChecksum(...parts: Uint8Array[]): number {
  const all = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) { all.set(p, o); o += p.length; }
  let s = 0;
  for (let i = 0; i < all.length; i += 2) s += (all[i]! << 8) | (all[i + 1] ?? 0);
  while (s > 0xffff) s = (s & 0xffff) + Math.floor(s / 65536);
  return ~s & 0xffff;
}

export interface PacketSpec {
  v6?: boolean;
  src: Uint8Array;
  dst: Uint8Array;
  proto: number; // 6 TCP, 17 UDP, 1 ICMP, 58 ICMPv6
  ttl?: number;
  payload?: Uint8Array;
  id?: number;
  tos?: number;
  df?: boolean;
  sport?: number;
  dport?: number;
  seq?: number;
  ack?: number;
  flags?: number;
  options?: Uint8Array;
  flowLabel?: number;
}

/** Builds a packet with correct lengths and checksums. */
export function buildPacket(s: PacketSpec): Uint8Array {
  const payload = s.payload ?? new Uint8Array(0);
  const opts = s.options ?? new Uint8Array(0);
  const l4len = s.proto === 6 ? 20 + opts.length : 8;
  const l4 = new Uint8Array(l4len + payload.length);
  const d4 = new DataView(l4.buffer);
  if (s.proto === 6) {
    d4.setUint16(0, s.sport ?? 40001); d4.setUint16(2, s.dport ?? 5201);
    d4.setUint32(4, s.seq ?? 1000); d4.setUint32(8, s.ack ?? 2000);
    l4[12] = ((20 + opts.length) / 4) << 4; l4[13] = s.flags ?? 0x10;
    d4.setUint16(14, 502); l4.set(opts, 20);
  } else if (s.proto === 17) {
    d4.setUint16(0, s.sport ?? 40000); d4.setUint16(2, s.dport ?? 8285); d4.setUint16(4, l4.length);
  } else {
    l4[0] = s.proto === 58 ? 128 : 8; d4.setUint16(4, 0x1234); d4.setUint16(6, 1);
  }
  l4.set(payload, l4len);
  const csumAt = s.proto === 6 ? 16 : s.proto === 17 ? 6 : 2;
  const hlen = s.v6 ? 40 : 20;
  const pkt = new Uint8Array(hlen + l4.length);
  const dv = new DataView(pkt.buffer);
  if (s.v6) {
    dv.setUint32(0, 0x60000000 | ((s.tos ?? 0) << 20) | (s.flowLabel ?? 0));
    dv.setUint16(4, l4.length); pkt[6] = s.proto; pkt[7] = s.ttl ?? 64;
    pkt.set(s.src, 8); pkt.set(s.dst, 24);
  } else {
    pkt[0] = 0x45; pkt[1] = s.tos ?? 0; dv.setUint16(2, pkt.length); dv.setUint16(4, s.id ?? 0x1000);
    dv.setUint16(6, s.df === false ? 0 : 0x4000); pkt[8] = s.ttl ?? 64; pkt[9] = s.proto;
    pkt.set(s.src, 12); pkt.set(s.dst, 16);
    dv.setUint16(10, inetChecksum(pkt.subarray(0, 20)));
  }
  if (s.proto !== 1) {
    const ph = new Uint8Array(s.v6 ? 40 : 12);
    const pv = new DataView(ph.buffer);
    if (s.v6) { ph.set(s.src, 0); ph.set(s.dst, 16); pv.setUint32(32, l4.length); ph[39] = s.proto; }
    else { ph.set(s.src, 0); ph.set(s.dst, 4); ph[9] = s.proto; pv.setUint16(10, l4.length); }
    let c = inetChecksum(ph, l4);
    if (s.proto === 17 && c === 0) c = 0xffff;
    d4.setUint16(csumAt, c);
  } else {
    d4.setUint16(csumAt, inetChecksum(l4));
  }
  pkt.set(l4, hlen);
  return pkt;
}

/** A 10-byte virtio_net_hdr (host byte order = little-endian). */
export function vnetHdr(flags: number, gsoType: number, hdrLen: number, gsoSize: number, csumStart: number, csumOffset: number): Uint8Array {
  const b = new Uint8Array(10);
  const v = new DataView(b.buffer);
  b[0] = flags; b[1] = gsoType;
  v.setUint16(2, hdrLen, true); v.setUint16(4, gsoSize, true); v.setUint16(6, csumStart, true); v.setUint16(8, csumOffset, true);
  return b;
}

export const v4 = (a: number, b: number, c: number, d: number) => Uint8Array.of(a, b, c, d);
export const v4n = (b: Uint8Array) => ((b[0]! << 24) | (b[1]! << 16) | (b[2]! << 8) | b[3]!) >>> 0;

export interface UdpOut { bytes: Uint8Array; ip: number; port: number; peer: number; off: number }
export interface EgressResult { udp: UdpOut[]; tun: Uint8Array[]; verdicts: number[]; calls: number }

/** Writes packets into EG_IN (at `stride` apart), runs egress until all are consumed. */
export function runEgress(core: Core, packets: Uint8Array[], stride = 65552): EgressResult {
  const { bytes, view } = core;
  const res: EgressResult = { udp: [], tun: [], verdicts: [], calls: 0 };
  packets.forEach((p, i) => {
    const off = L.EG_IN + i * stride;
    bytes.set(p, off);
    const d = L.EG_IN_DESC + i * L.IN_DESC_SIZE;
    view.setUint32(d, off, true); view.setUint32(d + 4, p.length, true);
  });
  let done = 0;
  while (done < packets.length) {
    const k = core.egress(done, packets.length - done);
    res.calls++;
    if (k === 0) throw new Error("egress consumed nothing");
    for (let j = 0; j < core.egressUdpCount(); j++) {
      const d = L.EG_UDP_DESC + j * L.UDP_DESC_SIZE;
      const off = view.getUint32(d, true);
      res.udp.push({
        off, bytes: bytes.slice(off, off + view.getUint32(d + 4, true)),
        ip: view.getUint32(d + 8), port: view.getUint16(d + 12), peer: view.getUint16(d + 14, true),
      });
    }
    for (let j = 0; j < core.egressTunCount(); j++) {
      const d = L.EG_TUN_DESC + j * L.TUN_DESC_SIZE;
      const off = view.getUint32(d, true);
      res.tun.push(bytes.slice(off, off + view.getUint32(d + 4, true)));
    }
    done += k;
  }
  for (let i = 0; i < packets.length; i++) res.verdicts.push(view.getUint16(L.EG_IN_DESC + i * L.IN_DESC_SIZE + 14, true));
  return res;
}

export interface Datagram { from: number; bytes: Uint8Array; seg?: number }
export interface IngressResult { tun: Uint8Array[]; verdicts: number[] }

/** Writes datagrams into IN_IN (`stride` apart, 16 bytes of headroom) and runs ingress. */
export function runIngress(core: Core, datagrams: Datagram[], stride = 65552): IngressResult {
  const { bytes, view } = core;
  datagrams.forEach((g, i) => {
    const off = L.IN_IN + i * stride + 16;
    bytes.set(g.bytes, off);
    const d = L.IN_IN_DESC + i * L.IN_DESC_SIZE;
    view.setUint32(d, off, true); view.setUint32(d + 4, g.bytes.length, true);
    view.setUint32(d + 8, g.from); view.setUint16(d + 12, g.seg ?? 0, true);
  });
  const res: IngressResult = { tun: [], verdicts: [] };
  let done = 0;
  while (done < datagrams.length) {
    const k = core.ingress(done, datagrams.length - done);
    if (k === 0) throw new Error("ingress consumed nothing");
    for (let j = 0; j < core.ingressTunCount(); j++) {
      const d = L.IN_TUN_DESC + j * L.TUN_DESC_SIZE;
      const off = view.getUint32(d, true);
      res.tun.push(bytes.slice(off, off + view.getUint32(d + 4, true)));
    }
    done += k;
  }
  for (let i = 0; i < datagrams.length; i++) res.verdicts.push(view.getUint16(L.IN_IN_DESC + i * L.IN_DESC_SIZE + 14, true));
  return res;
}

/** The standard test topology: cluster 10.244.0.0/16 in /24 leases; we are 10.244.1.0/24. */
export function setupCluster(core: Core, peers = 8): void {
  core.setTunAddr4(0x0af40100);
  core.regions.arg.set(hex("fd000001000000000000000000000000"));
  core.setTunAddr6();
  core.setClusterNetwork(0x0af40000, 16, 24);
  for (let i = 2; i < 2 + peers; i++) {
    core.peerSet(i, (192 << 24 | 168 << 16 | i) >>> 0, 8285, (0x0af40000 | (i << 8)) >>> 0, 24);
    core.route4Insert((0x0af40000 | (i << 8)) >>> 0, 24, i);
    core.regions.arg.set(hex(`fd00000${i.toString(16)}000000000000000000000000`));
    core.peerSetSubnet6(i, 64);
    core.route6Insert(64, i);
  }
}
