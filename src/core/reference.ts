/**
 * @module The weft core written again in plain TypeScript: the same functions over a memory of
 * the same layout (asm/layout.ts), with the same verdicts, counters and output bytes at the same
 * offsets. Tests use it as the oracle for the Wasm core, the benchmark as its baseline. It is
 * written for clarity, not speed: per-length Maps for longest-prefix match, big-endian
 * DataView reads, a Map for flows. Internal tables (tries, rule hash, direct index) are not
 * mirrored into memory, and their capacity limits (CHUNK_CAP, RULE_MAX) are not modelled.
 */
import * as L from "./layout.ts";
import { coreRegions } from "./regions.ts";
import type { Core } from "./types.ts";

const VNET = L.VNET_HDR_LEN;
const STOP = -1;

/** Ones'-complement sum of big-endian 16-bit words (odd tail padded with a zero byte). */
function sum16(u8: Uint8Array, start: number, len: number, acc = 0): number {
  const end = start + len;
  let i = start;
  for (; i + 1 < end; i += 2) acc += (u8[i]! << 8) | u8[i + 1]!;
  if (i < end) acc += u8[i]! << 8;
  return acc;
}

function fold(acc: number): number {
  while (acc > 0xffff) acc = (acc % 0x10000) + Math.floor(acc / 0x10000);
  return acc;
}

function mask4(len: number): number {
  return len === 0 ? 0 : (0xffffffff << (32 - len)) >>> 0;
}

function addrToBigint(u8: Uint8Array, off: number): bigint {
  let v = 0n;
  for (let i = 0; i < 16; i++) v = (v << 8n) | BigInt(u8[off + i]!);
  return v;
}

function mask6(len: number): bigint {
  return len === 0 ? 0n : ((1n << 128n) - 1n) ^ ((1n << BigInt(128 - len)) - 1n);
}

/** A fresh reference core with its own MEMORY_BYTES buffer. */
export function createReferenceCore(): Core {
  const buffer = new ArrayBuffer(L.MEMORY_BYTES);
  const u8 = new Uint8Array(buffer);
  const dv = new DataView(buffer);
  const regions = coreRegions(buffer);
  const counters = regions.counters;

  let vnet = false;
  /** OPT_PEER_ID_IN: ingress descriptors name the peer. */
  let peerIdIn = false;
  let tunAddr4 = 0;
  const tun6 = new Uint8Array(16);
  // Our lease subnets for egress anti-spoofing; length 0: any source.
  let own4 = 0, own4Len = 0, own6 = 0n, own6Len = 0;

  // Routes: one Map per prefix length, lengths in use sorted longest first.
  const v4 = Array.from({ length: 33 }, () => new Map<number, number>());
  const v6 = Array.from({ length: 129 }, () => new Map<bigint, number>());
  let lens4: number[] = [];
  let lens6: number[] = [];
  const usedLens = (maps: Map<unknown, number>[]) =>
    maps.map((m, len) => (m.size ? len : -1)).filter((l) => l >= 0).reverse();

  function lookup4(addr: number): number {
    for (const len of lens4) {
      const v = v4[len]!.get((addr & mask4(len)) >>> 0);
      if (v !== undefined) return v;
    }
    return L.NO_ROUTE;
  }

  function lookup6(off: number): number {
    if (lens6.length === 0) return L.NO_ROUTE;
    const a = addrToBigint(u8, off);
    for (const len of lens6) {
      const v = v6[len]!.get(a & mask6(len));
      if (v !== undefined) return v;
    }
    return L.NO_ROUTE;
  }

  // Peers: mirrored into the PEERS region (flags, ip, port, subnet4, len4, len6, subnet6) and
  // PUBLIC6; public addresses (IPv4 as a number, IPv6 as a bigint) map back to peer ids.
  const byPublic = new Map<number, number>();
  const byPublic6 = new Map<bigint, number>();
  const peerOff = (id: number) => L.PEERS + id * L.PEER_SIZE;
  const peerFlags = (id: number) => dv.getUint32(peerOff(id), true);
  const peerValid = (id: number) => id >= 0 && id < L.PEER_CAP && (peerFlags(id) & L.PEER_VALID) !== 0;

  /** Forgets peer `id`'s public addresses (it is valid). */
  function forgetPublic(id: number): void {
    const ip = dv.getUint32(peerOff(id) + 4, true);
    if (ip !== 0) byPublic.delete(ip);
    if (peerFlags(id) & L.PEER_PUB6) byPublic6.delete(addrToBigint(u8, L.PUBLIC6 + id * 16));
  }

  function peerSet(id: number, ip: number, port: number, subnet4: number, len4: number): number {
    ip >>>= 0;
    if (id < 0 || id >= L.PEER_CAP || port < 0 || port > 0xffff || len4 < 0 || len4 > 32) return L.ERR_INVALID;
    const owner = ip === 0 ? undefined : byPublic.get(ip);
    if (owner !== undefined && owner !== id) return L.ERR_EXISTS;
    const p = peerOff(id);
    if (peerValid(id)) forgetPublic(id);
    if (ip !== 0) byPublic.set(ip, id);
    u8.fill(0, p, p + L.PEER_SIZE);
    dv.setUint32(p, 1, true);
    dv.setUint32(p + 4, ip, true);
    dv.setUint32(p + 8, port, true);
    dv.setUint32(p + 12, (subnet4 & mask4(len4)) >>> 0, true);
    dv.setUint32(p + 16, len4, true);
    return 0;
  }

  function peerSetSubnet6(id: number, len6: number): number {
    if (id < 0 || id >= L.PEER_CAP || len6 < 0 || len6 > 128) return L.ERR_INVALID;
    if (!peerValid(id)) return L.ERR_NOT_FOUND;
    const p = peerOff(id);
    let a = addrToBigint(u8, L.ARG) & mask6(len6);
    for (let i = 15; i >= 0; i--, a >>= 8n) u8[p + 32 + i] = Number(a & 0xffn);
    dv.setUint32(p + 20, len6, true);
    dv.setUint32(p, peerFlags(id) | L.PEER_V6, true);
    return 0;
  }

  function peerSetPublic6(id: number, via6: number): number {
    if (id < 0 || id >= L.PEER_CAP) return L.ERR_INVALID;
    if (!peerValid(id)) return L.ERR_NOT_FOUND;
    const p = peerOff(id);
    if (via6 === 0 && dv.getUint32(p + 4, true) === 0) return L.ERR_INVALID;
    const a = addrToBigint(u8, L.ARG);
    const owner = byPublic6.get(a);
    if (owner !== undefined && owner !== id) return L.ERR_EXISTS;
    if (peerFlags(id) & L.PEER_PUB6) byPublic6.delete(addrToBigint(u8, L.PUBLIC6 + id * 16));
    u8.copyWithin(L.PUBLIC6 + id * 16, L.ARG, L.ARG + 16);
    byPublic6.set(a, id);
    dv.setUint32(p, (peerFlags(id) & ~L.PEER_VIA6) | L.PEER_PUB6 | (via6 !== 0 ? L.PEER_VIA6 : 0), true);
    return 0;
  }

  function peerDelete(id: number): number {
    if (id < 0 || id >= L.PEER_CAP) return L.ERR_INVALID;
    if (!peerValid(id)) return L.ERR_NOT_FOUND;
    const p = peerOff(id);
    forgetPublic(id);
    u8.fill(0, p, p + L.PEER_SIZE);
    return 0;
  }

  /** Whether packet `p` comes from our own lease subnet of its family (always when unset). */
  function fromOwnSubnet(p: number): boolean {
    if ((u8[p]! >> 4) === 4) return own4Len === 0 || ((dv.getUint32(p + 12) & mask4(own4Len)) >>> 0) === own4;
    return own6Len === 0 || (addrToBigint(u8, p + 8) & mask6(own6Len)) === own6;
  }

  function inPeerSubnet(id: number, p: number): boolean {
    const e = peerOff(id);
    if ((u8[p]! >> 4) === 4) {
      const len = dv.getUint32(e + 16, true);
      return ((dv.getUint32(p + 12) & mask4(len)) >>> 0) === dv.getUint32(e + 12, true);
    }
    if ((dv.getUint32(e, true) & 2) === 0) return false;
    const len = dv.getUint32(e + 20, true);
    return (addrToBigint(u8, p + 8) & mask6(len)) === addrToBigint(u8, e + 32);
  }

  // ---------------------------------------------------------------- shared packet steps

  const bump = (i: number) => { counters[i] = counters[i]! + 1; };

  /** The packet's own length, or the negated verdict. */
  function checkIP(p: number, n: number): number {
    if (n === 0) return -L.V_TOO_SHORT;
    const version = u8[p]! >> 4;
    if (version === 4) {
      if (n < 20) return -L.V_TOO_SHORT;
      const ihl = (u8[p]! & 15) * 4;
      if (ihl < 20 || ihl > n) return -L.V_BAD_HEADER_LENGTH;
      const total = dv.getUint16(p + 2);
      if (total < ihl || total > n) return -L.V_BAD_TOTAL_LENGTH;
      if (fold(sum16(u8, p, ihl)) !== 0xffff) return -L.V_BAD_CHECKSUM;
      return total;
    }
    if (version === 6) {
      if (n < 40) return -L.V_TOO_SHORT;
      const total = 40 + dv.getUint16(p + 4);
      return total > n ? -L.V_BAD_TOTAL_LENGTH : total;
    }
    return -L.V_BAD_VERSION;
  }

  /** TTL / hop limit: drop at <= 1, else decrement (IPv4: RFC 1624 eqn. 3 checksum update). */
  function forwardStep(p: number): number {
    if ((u8[p]! >> 4) === 4) {
      const ttl = u8[p + 8]!;
      if (ttl <= 1) return L.V_TTL_EXPIRED;
      const m = dv.getUint16(p + 8);
      const m2 = m - 0x100;
      u8[p + 8] = ttl - 1;
      const hc = dv.getUint16(p + 10);
      dv.setUint16(p + 10, ~fold((~hc & 0xffff) + (~m & 0xffff) + m2) & 0xffff);
    } else {
      if (u8[p + 7]! <= 1) return L.V_TTL_EXPIRED;
      u8[p + 7]!--;
    }
    return L.V_OK;
  }

  function setIPv4Checksum(p: number, hlen: number): void {
    dv.setUint16(p + 10, 0);
    dv.setUint16(p + 10, ~fold(sum16(u8, p, hlen)) & 0xffff);
  }

  function pseudo(ip: number, proto: number, length: number): number {
    const isV4 = (u8[ip]! >> 4) === 4;
    const acc = isV4 ? sum16(u8, ip + 12, 8) : sum16(u8, ip + 8, 32);
    return acc + proto + length;
  }

  function transportChecksum(ip: number, total: number, t: number, proto: number): number {
    return ~fold(sum16(u8, ip + t, total - t, pseudo(ip, proto, total - t))) & 0xffff;
  }

  // ---------------------------------------------------------------- egress

  let udpCount = 0, tunCount = 0, outUsed = 0, tunUsed = 0;

  function egress(start: number, count: number): number {
    udpCount = 0; tunCount = 0; outUsed = 0; tunUsed = 0;
    let done = 0;
    while (done < count && start + done < L.EG_IN_CAP) {
      const d = L.EG_IN_DESC + (start + done) * L.IN_DESC_SIZE;
      const v = egressOne(dv.getUint32(d, true), dv.getUint32(d + 4, true));
      if (v === STOP) break;
      dv.setUint16(d + 14, v, true);
      bump(L.C_EG + v);
      done++;
    }
    return done;
  }

  function egressOne(off: number, len: number): number {
    if (off < L.EG_IN || off + len > L.EG_IN + L.EG_IN_SIZE) return L.V_BAD_DESCRIPTOR;
    let p = off, n = len;
    let flags = 0, gso = 0, size = 0, csumStart = 0, csumOffset = 0;
    if (vnet) {
      if (n < VNET) return L.V_BAD_VNET_HDR;
      flags = u8[p]!;
      gso = u8[p + 1]! & 0x7f;
      size = dv.getUint16(p + 4, true);
      csumStart = dv.getUint16(p + 6, true);
      csumOffset = dv.getUint16(p + 8, true);
      p += VNET;
      n -= VNET;
    }
    if (gso !== 0) return egressSuper(p, n, gso, size);
    if (udpCount >= L.EG_UDP_CAP) return STOP;
    const ipLen = checkIP(p, n);
    if (ipLen < 0) return -ipLen;
    if (flags & 1) {
      if (csumStart > ipLen || csumOffset + 2 > ipLen - csumStart) return L.V_BAD_VNET_HDR;
      const c = ~fold(sum16(u8, p + csumStart, ipLen - csumStart)) & 0xffff;
      dv.setUint16(p + csumStart + csumOffset, c === 0 ? 0xffff : c);
      bump(L.C_EG_CSUM);
    }
    const peer = routeTo(p, ipLen);
    if (peer < 0) return -peer;
    const v = forwardStep(p);
    if (v !== L.V_OK) return v;
    emitUdp(p, ipLen, peer);
    return L.V_OK;
  }

  function routeTo(p: number, len: number): number {
    if (!fromOwnSubnet(p)) return -L.V_SPOOFED;
    const r = (u8[p]! >> 4) === 4 ? lookup4(dv.getUint32(p + 16)) : lookup6(p + 24);
    if (r === L.NO_ROUTE) {
      replyUnreachable(p, len);
      return -L.V_NO_ROUTE;
    }
    return peerValid(r) ? r : -L.V_NO_PEER;
  }

  function emitUdp(p: number, len: number, peer: number): void {
    const e = peerOff(peer);
    const d = L.EG_UDP_DESC + udpCount * L.UDP_DESC_SIZE;
    dv.setUint32(d, p, true);
    dv.setUint32(d + 4, len, true);
    dv.setUint32(d + 8, (dv.getUint32(e, true) & L.PEER_VIA6) !== 0 ? 0 : dv.getUint32(e + 4, true));
    dv.setUint16(d + 12, dv.getUint32(e + 8, true));
    dv.setUint16(d + 14, peer, true);
    udpCount++;
    bump(L.C_EG_DATAGRAMS);
  }

  function replyUnreachable(p: number, len: number): void {
    const head = vnet ? VNET : 0;
    if (tunCount >= L.EG_TUN_CAP || tunUsed + head + 1280 > L.EG_TUN_SIZE) return;
    const out = L.EG_TUN + tunUsed;
    const n = (u8[p]! >> 4) === 4 ? unreachable4(p, len, out + head) : unreachable6(p, len, out + head);
    if (n === 0) return;
    u8.fill(0, out, out + head);
    const d = L.EG_TUN_DESC + tunCount * L.TUN_DESC_SIZE;
    dv.setUint32(d, out, true);
    dv.setUint32(d + 4, head + n, true);
    tunCount++;
    tunUsed += head + n;
    bump(L.C_EG_ICMP);
  }

  function unreachable4(p: number, len: number, out: number): number {
    if (u8[p + 9] === 1 || (dv.getUint16(p + 6) & 0x1fff) !== 0) return 0;
    const quote = Math.min((u8[p]! & 15) * 4 + 8, len);
    u8.fill(0, out, out + 28);
    u8[out] = 0x45;
    dv.setUint16(out + 2, 28 + quote);
    u8[out + 8] = 8;
    u8[out + 9] = 1;
    dv.setUint32(out + 12, tunAddr4);
    u8.copyWithin(out + 16, p + 12, p + 16);
    setIPv4Checksum(out, 20);
    u8[out + 20] = 3;
    u8.copyWithin(out + 28, p, p + quote);
    dv.setUint16(out + 22, ~fold(sum16(u8, out + 20, 8 + quote)) & 0xffff);
    return 28 + quote;
  }

  function unreachable6(p: number, len: number, out: number): number {
    if (u8[p + 24] === 0xff || u8[p + 8] === 0xff) return 0;
    if (u8[p + 6] === 58 && len > 40 && u8[p + 40]! < 128) return 0;
    const quote = Math.min(len, 1280 - 48);
    u8.fill(0, out, out + 48);
    u8[out] = 0x60;
    dv.setUint16(out + 4, 8 + quote);
    u8[out + 6] = 58;
    u8[out + 7] = 64;
    u8.set(tun6, out + 8);
    u8.copyWithin(out + 24, p + 8, p + 24);
    u8[out + 40] = 1;
    u8.copyWithin(out + 48, p, p + quote);
    dv.setUint16(out + 42, transportChecksum(out, 48 + quote, 40, 58));
    return 48 + quote;
  }

  function egressSuper(p: number, n: number, gso: number, size: number): number {
    const len = checkIP(p, n);
    if (len < 0) return -len;
    const isV4 = (u8[p]! >> 4) === 4;
    const t = isV4 ? (u8[p]! & 15) * 4 : 40;
    const proto = isV4 ? u8[p + 9]! : u8[p + 6]!;
    if (isV4 && (dv.getUint16(p + 6) & 0x3fff) !== 0) return L.V_BAD_VNET_HDR;
    const tcp = gso === 1 || gso === 4;
    let h: number;
    if (tcp) {
      if ((gso === 1) !== isV4 || proto !== 6 || t + 20 > len) return L.V_BAD_VNET_HDR;
      const doff = (u8[p + t + 12]! >> 4) * 4;
      if (doff < 20 || t + doff > len) return L.V_BAD_VNET_HDR;
      h = t + doff;
    } else if (gso === 5) {
      if (proto !== 17 || t + 8 > len) return L.V_BAD_VNET_HDR;
      h = t + 8;
    } else {
      return L.V_BAD_VNET_HDR;
    }
    if (size === 0) return L.V_BAD_VNET_HDR;
    const payload = len - h;
    const segs = payload === 0 ? 1 : Math.ceil(payload / size);
    const bytes = payload + segs * h;
    if (segs > L.EG_UDP_CAP || bytes > L.EG_OUT_SIZE) return L.V_NO_SPACE;
    if (udpCount + segs > L.EG_UDP_CAP || outUsed + bytes > L.EG_OUT_SIZE) return STOP;
    const peer = routeTo(p, len);
    if (peer < 0) return -peer;
    const v = forwardStep(p);
    if (v !== L.V_OK) return v;
    const id = isV4 ? dv.getUint16(p + 4) : 0;
    const seq = tcp ? dv.getUint32(p + t + 4) : 0;
    let dst = L.EG_OUT + outUsed;
    for (let i = 0; i < segs; i++) {
      const chunk = Math.min(size, payload - i * size);
      const total = h + chunk;
      u8.copyWithin(dst, p, p + h);
      u8.copyWithin(dst + h, p + h + i * size, p + h + i * size + chunk);
      if (isV4) {
        dv.setUint16(dst + 2, total);
        dv.setUint16(dst + 4, (id + i) & 0xffff);
        setIPv4Checksum(dst, t);
      } else {
        dv.setUint16(dst + 4, total - 40);
      }
      if (tcp) {
        dv.setUint32(dst + t + 4, (seq + i * size) >>> 0);
        if (i !== segs - 1) u8[dst + t + 13]! &= ~0x09;
        if (i !== 0) u8[dst + t + 13]! &= ~0x80;
        dv.setUint16(dst + t + 16, 0);
        dv.setUint16(dst + t + 16, transportChecksum(dst, total, t, 6));
      } else {
        dv.setUint16(dst + t + 4, total - t);
        dv.setUint16(dst + t + 6, 0);
        const c = transportChecksum(dst, total, t, 17);
        dv.setUint16(dst + t + 6, c === 0 ? 0xffff : c);
      }
      emitUdp(dst, total, peer);
      dst += total;
    }
    outUsed += bytes;
    bump(L.C_EG_SPLIT);
    return L.V_OK;
  }

  // ---------------------------------------------------------------- ingress

  // Per-call packet records (parallel arrays) and flows (key -> record of the open group).
  const cap = L.GRO_PKT_CAP;
  const rOff = new Int32Array(cap), rLen = new Int32Array(cap), rNext = new Int32Array(cap);
  const rLast = new Int32Array(cap), rNextSeq = new Uint32Array(cap), rTotal = new Int32Array(cap);
  const rGso = new Int32Array(cap), rHdr = new Int32Array(cap), rCount = new Int32Array(cap);
  const rCopy = new Uint8Array(cap), rMember = new Uint8Array(cap), rClosed = new Uint8Array(cap), rPsh = new Uint8Array(cap);
  const flows = new Map<string, number>();
  let pkts = 0, inTun = 0, inUsed = 0;

  function ingress(start: number, count: number): number {
    pkts = 0; inTun = 0; inUsed = 0;
    flows.clear();
    let done = 0;
    while (done < count && start + done < L.IN_IN_CAP) {
      const d = L.IN_IN_DESC + (start + done) * L.IN_DESC_SIZE;
      const off = dv.getUint32(d, true), len = dv.getUint32(d + 4, true), seg = dv.getUint16(d + 12, true);
      let verdict = L.V_OK;
      if (off < L.IN_IN + VNET || off + len > L.IN_IN + L.IN_IN_SIZE || (seg !== 0 && seg < 20)) {
        verdict = L.V_BAD_DESCRIPTOR;
        bump(L.C_IN + verdict);
      } else {
        const datagrams = seg === 0 || len <= seg ? 1 : Math.ceil(len / seg);
        if (pkts + datagrams > cap) break;
        const from = dv.getUint32(d + 8);
        const peer = peerIdIn ? (peerValid(dv.getUint32(d + 8, true)) ? dv.getUint32(d + 8, true) : -1)
          : (from !== 0 ? byPublic.get(from) : byPublic6.get(addrToBigint(u8, L.IN_SRC6 + (start + done) * 16))) ?? -1;
        for (let k = 0; k < datagrams; k++) {
          const n = datagrams === 1 ? len : Math.min(seg, len - k * seg);
          const v = ingressOne(off + k * seg, n, peer, k > 0);
          bump(L.C_IN + v);
          if (v !== L.V_OK) verdict = v;
        }
      }
      dv.setUint16(d + 14, verdict, true);
      done++;
    }
    emitAll();
    return done;
  }

  function ingressOne(p: number, n: number, peer: number, copy: boolean): number {
    if (peer < 0) return L.V_UNKNOWN_SOURCE;
    const len = checkIP(p, n);
    if (len < 0) return -len;
    if (!inPeerSubnet(peer, p)) return L.V_SPOOFED;
    const v = forwardStep(p);
    if (v !== L.V_OK) return v;
    record(p, len, copy);
    return L.V_OK;
  }

  function record(p: number, len: number, copy: boolean): void {
    const r = pkts++;
    rOff[r] = p; rLen[r] = len; rNext[r] = -1; rCount[r] = 1;
    rCopy[r] = copy ? 1 : 0; rMember[r] = 0; rClosed[r] = 0; rPsh[r] = 0;
    if (!vnet) return;
    const isV4 = (u8[p]! >> 4) === 4;
    if (isV4 ? u8[p] !== 0x45 || u8[p + 9] !== 6 || (dv.getUint16(p + 6) & 0x3fff) !== 0 : u8[p + 6] !== 6) return;
    const t = isV4 ? 20 : 40;
    if (t + 20 > len) return;
    const th = (u8[p + t + 12]! >> 4) * 4;
    if (th < 20 || t + th >= len) return;
    const flags = u8[p + t + 13]!;
    if ((flags & ~0x18) !== 0 || (flags & 0x10) === 0) return;
    if (fold(sum16(u8, p + t, len - t, pseudo(p, 6, len - t))) !== 0xffff) return;
    const payload = len - t - th;
    const seq = dv.getUint32(p + t + 4);
    const psh = (flags & 0x08) !== 0;
    const key = `${isV4 ? 4 : 6}:${Array.from(u8.subarray(isV4 ? p + 12 : p + 8, p + t + 4)).join(",")}`;
    const head = flows.get(key);
    if (head === undefined && flows.size >= L.GRO_FLOW_MAX) return;
    if (head !== undefined && canJoin(head, p, t, th, payload, seq)) {
      const last = rLast[head]!;
      rNext[last] = r; rLast[head] = r;
      rNextSeq[head] = (rNextSeq[head]! + payload) >>> 0;
      rTotal[head] = rTotal[head]! + payload;
      rCount[head] = rCount[head]! + 1;
      rMember[r] = 1;
      if (payload < rGso[head]!) rClosed[head] = 1;
      if (psh) { rClosed[head] = 1; rPsh[head] = 1; }
      return;
    }
    flows.set(key, r);
    rLast[r] = r; rNextSeq[r] = (seq + payload) >>> 0; rTotal[r] = payload; rGso[r] = payload; rHdr[r] = t + th;
    if (psh) { rClosed[r] = 1; rPsh[r] = 1; }
  }

  function canJoin(head: number, p: number, t: number, th: number, payload: number, seq: number): boolean {
    const g = rOff[head]!;
    if (rClosed[head] || seq !== rNextSeq[head] || payload > rGso[head]!) return false;
    if (rHdr[head] !== t + th || rHdr[head]! + rTotal[head]! + payload > 65535) return false;
    const same = (a: number, b: number, n: number) => {
      for (let i = 0; i < n; i++) if (u8[a + i] !== u8[b + i]) return false;
      return true;
    };
    if (t === 20) {
      if (u8[g + 1] !== u8[p + 1] || !same(g + 6, p + 6, 3)) return false; // TOS, DF, TTL
    } else if (!same(g, p, 4) || u8[g + 7] !== u8[p + 7]) {
      return false; // traffic class, flow label, hop limit
    }
    return same(g + t + 8, p + t + 8, 4) && same(g + t + 20, p + t + 20, th - 20);
  }

  function reserve(n: number): number {
    if (inUsed + n > L.IN_OUT_SIZE) {
      bump(L.C_IN + L.V_NO_SPACE);
      return 0;
    }
    const out = L.IN_OUT + inUsed;
    inUsed += n;
    return out;
  }

  function emit(p: number, len: number): void {
    const d = L.IN_TUN_DESC + inTun * L.TUN_DESC_SIZE;
    dv.setUint32(d, p, true);
    dv.setUint32(d + 4, len, true);
    inTun++;
    bump(L.C_IN_WRITES);
  }

  function emitAll(): void {
    for (let r = 0; r < pkts; r++) {
      if (rMember[r]) continue;
      const p = rOff[r]!, len = rLen[r]!;
      if (!vnet) emit(p, len);
      else if (rCount[r]! > 1) emitGroup(r);
      else if (!rCopy[r]) {
        u8.fill(0, p - VNET, p);
        emit(p - VNET, len + VNET);
      } else {
        const out = reserve(len + VNET);
        if (out === 0) continue;
        u8.fill(0, out, out + VNET);
        u8.copyWithin(out + VNET, p, p + len);
        emit(out, len + VNET);
      }
    }
  }

  function emitGroup(head: number): void {
    const g = rOff[head]!, hdr = rHdr[head]!, size = hdr + rTotal[head]!;
    const out = reserve(size + VNET);
    if (out === 0) return;
    const isV4 = (u8[g]! >> 4) === 4;
    const t = isV4 ? 20 : 40;
    u8[out] = 1;
    u8[out + 1] = isV4 ? 1 : 4;
    dv.setUint16(out + 2, hdr, true);
    dv.setUint16(out + 4, rGso[head]!, true);
    dv.setUint16(out + 6, t, true);
    dv.setUint16(out + 8, 16, true);
    const ip = out + VNET;
    u8.copyWithin(ip, g, g + hdr);
    let dst = ip + hdr;
    for (let r = head; r >= 0; r = rNext[r]!) {
      const p = rOff[r]!, n = rLen[r]! - hdr;
      u8.copyWithin(dst, p + hdr, p + hdr + n);
      dst += n;
      if (r !== head) bump(L.C_IN_MERGED);
    }
    if (isV4) {
      dv.setUint16(ip + 2, size);
      setIPv4Checksum(ip, 20);
    } else {
      dv.setUint16(ip + 4, size - 40);
    }
    if (rPsh[head]) u8[ip + t + 13]! |= 0x08;
    dv.setUint16(ip + t + 16, fold(pseudo(ip, 6, size - t)));
    emit(out, size + VNET);
  }

  // ---------------------------------------------------------------- routes

  function route4Insert(prefix: number, len: number, value: number): number {
    if (len < 0 || len > 32 || value < 0 || value > L.ROUTE_VALUE_MAX) return L.ERR_INVALID;
    v4[len]!.set((prefix & mask4(len)) >>> 0, value);
    lens4 = usedLens(v4);
    return 0;
  }

  function route4Delete(prefix: number, len: number): number {
    if (len < 0 || len > 32) return L.ERR_INVALID;
    if (!v4[len]!.delete((prefix & mask4(len)) >>> 0)) return L.ERR_NOT_FOUND;
    lens4 = usedLens(v4);
    return 0;
  }

  function route6Insert(len: number, value: number): number {
    if (len < 0 || len > 128 || value < 0 || value > L.ROUTE_VALUE_MAX) return L.ERR_INVALID;
    v6[len]!.set(addrToBigint(u8, L.ARG) & mask6(len), value);
    lens6 = usedLens(v6);
    return 0;
  }

  function route6Delete(len: number): number {
    if (len < 0 || len > 128) return L.ERR_INVALID;
    if (!v6[len]!.delete(addrToBigint(u8, L.ARG) & mask6(len))) return L.ERR_NOT_FOUND;
    lens6 = usedLens(v6);
    return 0;
  }

  const lookupOut = regions.lookupOut;

  return {
    kind: "reference",
    buffer,
    bytes: u8,
    view: dv,
    regions,
    layoutVersion: () => L.LAYOUT_VERSION,
    setOptions: (flags) => { vnet = (flags & L.OPT_VNET_HDR) !== 0; peerIdIn = (flags & L.OPT_PEER_ID_IN) !== 0; },
    setTunAddr4: (addr) => { tunAddr4 = addr >>> 0; },
    setTunAddr6: () => { tun6.set(u8.subarray(L.ARG, L.ARG + 16)); },
    setOwnSubnet4(subnet, len) {
      if (len < 0 || len > 32) return L.ERR_INVALID;
      own4Len = len;
      own4 = (subnet & mask4(len)) >>> 0;
      return 0;
    },
    setOwnSubnet6(len) {
      if (len < 0 || len > 128) return L.ERR_INVALID;
      own6Len = len;
      own6 = addrToBigint(u8, L.ARG) & mask6(len);
      return 0;
    },
    route4Insert,
    route4Delete,
    route4Lookup: (addr) => lookup4(addr >>> 0),
    route4LookupBatch(count) {
      const n = Math.min(count, L.LOOKUP_CAP);
      let found = 0;
      for (let i = 0; i < n; i++) {
        const v = lookup4(dv.getUint32(L.LOOKUP_IN + i * 4, true));
        lookupOut[i] = v;
        if (v !== L.NO_ROUTE) found++;
      }
      return found;
    },
    route6Insert,
    route6Delete,
    route6Lookup: () => lookup6(L.ARG),
    route6LookupBatch(count) {
      const n = Math.min(count, L.LOOKUP_CAP);
      let found = 0;
      for (let i = 0; i < n; i++) {
        const v = lookup6(L.LOOKUP_IN + i * 16);
        lookupOut[i] = v;
        if (v !== L.NO_ROUTE) found++;
      }
      return found;
    },
    setClusterNetwork(_network, networkLen, subnetLen) {
      // The direct index is a Wasm-side shortcut with the same answers; only its argument
      // checks are visible.
      if (networkLen < 0 || networkLen > subnetLen || subnetLen > 32 || subnetLen === 0 || subnetLen - networkLen > 16) {
        return L.ERR_INVALID;
      }
      return 0;
    },
    routeClear() {
      for (const m of v4) m.clear();
      for (const m of v6) m.clear();
      lens4 = []; lens6 = [];
    },
    peerSet,
    peerSetSubnet6,
    peerSetPublic6,
    peerDelete,
    egress,
    egressUdpCount: () => udpCount,
    egressTunCount: () => tunCount,
    ingress,
    ingressTunCount: () => inTun,
  };
}
