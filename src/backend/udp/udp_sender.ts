/**
 * @module Sends the core's egress UDP descriptors (EG_UDP_DESC) with sendmmsg, straight out of
 * the core's memory: iovecs point at the packets where the core left them (EG_IN in place,
 * EG_OUT for split segments), so nothing is copied.
 *
 * Runs of equal-sized datagrams to one peer (the segments of a TSO super-packet, or a burst of
 * full-sized packets) become one message with a UDP_SEGMENT cmsg: the kernel cuts it back into
 * the same datagrams, each one encapsulated packet on the wire, so flanneld's udp backend on the
 * other side sees exactly what it would without GSO. A run ends at a new peer, a larger
 * datagram, after one shorter datagram (GSO's "last may be shorter"), at GSO_MAX_SEGMENTS or at
 * GSO_MAX_BYTES of payload. When sending a GSO message fails (EIO: the route's device cannot
 * segment), the rest is resent one datagram per message, and EIO turns GSO off for good.
 *
 * Underlay families: a descriptor addressed to 0.0.0.0 goes to the peer's public IPv6 (read
 * from the core's PUBLIC6) through the IPv6 socket; the others through the IPv4 one. One
 * sendmmsg takes one socket, so a build stops where the family changes.
 *
 * Flow of `send(count)`:
 *  1. build messages from descriptor `d` on (sockaddr, iovecs merged when contiguous, cmsg),
 *     all of one underlay family;
 *  2. sendmmsg them on that family's socket; a partial send resumes at the first unsent message;
 *  3. an error on a GSO message rebuilds from its first descriptor without GSO; an error on a
 *     plain message counts its datagram as a send error and skips it;
 *  4. repeat from the descriptor where the build stopped (MAX_MSGS per call).
 * Memory: headers, iovecs, addresses and cmsgs live in one ArrayBuffer this object owns; the
 * core's memory is fixed-size, so the addresses taken once stay valid.
 */
import { EG_UDP_DESC, EG_UDP_CAP, PUBLIC6, UDP_DESC_SIZE } from "../../core/layout.ts";
import {
  AF_INET, AF_INET6, EINTR, EIO, IOVEC_SIZE, MMSGHDR_SIZE, SOCKADDR_IN_SIZE, SOCKADDR_IN6_SIZE, SOL_UDP, UDP_SEGMENT, structBuffer,
} from "../../../ffi/linux.ts";
import type { Sys } from "../../../ffi/sys.ts";
import { hostIndex } from "./worker_stats.ts";

/** Messages per sendmmsg (the kernel's UIO_MAXIOV). */
const MAX_MSGS = 1024;
/** Segments per GSO message (the kernel's UDP_MAX_SEGMENTS is 64 on older kernels). */
export const GSO_MAX_SEGMENTS = 64;
/** Payload bytes per GSO message: an IPv4 datagram's 65535 minus the IP and UDP headers. */
export const GSO_MAX_BYTES = 65535 - 20 - 8;
const CONTROL_ROOM = 24; // CMSG_SPACE(sizeof(u16))
const NAME_ROOM = 32; // a sockaddr_in6, rounded up to 8
const TWO32 = 4294967296;

const TX_PACKETS = hostIndex("txPackets"), TX_BYTES = hostIndex("txBytes"), TX_MESSAGES = hostIndex("txMessages");
const TX_SYSCALLS = hostIndex("txSyscalls"), TX_ERRORS = hostIndex("txErrors"), TX_FALLBACKS = hostIndex("txGsoFallbacks");

export class UdpSender {
  /** Whether runs are sent with UDP_SEGMENT (turned off after an EIO). */
  gso: boolean;
  readonly #sys: Sys;
  readonly #fd: number;
  readonly #fd6: number;
  /** The underlay family (4 or 6) of the messages the last build made. */
  #family = 4;
  readonly #core32: Uint32Array;
  readonly #w: Uint32Array;
  readonly #msgViews: Uint8Array[] = [];
  readonly #iovW: number;
  readonly #nameW: number;
  readonly #controlW: number;
  readonly #iovBase: number;
  readonly #coreLo: number;
  readonly #coreHi: number;
  /** Per built message: first descriptor, datagrams, bytes. */
  readonly #first = new Uint32Array(MAX_MSGS);
  readonly #segs = new Uint32Array(MAX_MSGS);
  readonly #bytes = new Uint32Array(MAX_MSGS);
  /** Per built message: index of its first iovec, and the index after its last. */
  readonly #iovFirst = new Uint32Array(MAX_MSGS);
  readonly #iovEnd = new Uint32Array(MAX_MSGS);
  /** The descriptor where the last build stopped. */
  #end = 0;

  /**
   * @param coreBytes the core's whole memory (descriptors hold offsets into it)
   * @param gso whether the socket accepts UDP_SEGMENT (probeUdpGso)
   * @param fd6 the IPv6 underlay socket, or -1 (then datagrams to IPv6 peers count as errors)
   */
  constructor(sys: Sys, fd: number, coreBytes: Uint8Array, gso: boolean, fd6 = -1) {
    this.#sys = sys;
    this.#fd = fd;
    this.#fd6 = fd6;
    this.gso = gso;
    this.#core32 = new Uint32Array(coreBytes.buffer, coreBytes.byteOffset, coreBytes.byteLength >>> 2);
    const iovOff = MAX_MSGS * MMSGHDR_SIZE;
    const nameOff = iovOff + EG_UDP_CAP * IOVEC_SIZE;
    const controlOff = nameOff + MAX_MSGS * NAME_ROOM;
    const mem = structBuffer(controlOff + MAX_MSGS * CONTROL_ROOM);
    this.#w = new Uint32Array(mem.buffer);
    this.#iovW = iovOff >>> 2;
    this.#nameW = nameOff >>> 2;
    this.#controlW = controlOff >>> 2;
    const base = Number(sys.addressOf(mem));
    this.#iovBase = base + iovOff;
    const core = Number(sys.addressOf(coreBytes));
    this.#coreLo = core % TWO32;
    this.#coreHi = Math.floor(core / TWO32);
    const w = this.#w;
    for (let m = 0; m < MAX_MSGS; m++) {
      const h = m * (MMSGHDR_SIZE >>> 2);
      const name = base + nameOff + m * NAME_ROOM;
      const control = base + controlOff + m * CONTROL_ROOM;
      w[h] = name % TWO32; w[h + 1] = Math.floor(name / TWO32);
      w[h + 2] = SOCKADDR_IN_SIZE;
      w[h + 8] = control % TWO32; w[h + 9] = Math.floor(control / TWO32);
      // The cmsg is always UDP_SEGMENT; msg_controllen says whether it is used.
      const c = this.#controlW + m * (CONTROL_ROOM >>> 2);
      w[c] = 16 + 2; w[c + 2] = SOL_UDP; w[c + 3] = UDP_SEGMENT;
      this.#msgViews.push(mem.subarray(m * MMSGHDR_SIZE));
    }
  }

  /** Sends the first `count` descriptors of EG_UDP_DESC, adding to the counters in `row`. */
  send(count: number, row: Float64Array): void {
    let d = 0;
    while (d < count) {
      let n = this.#build(d, count, 0, this.gso);
      const fd = this.#family === 6 ? this.#fd6 : this.#fd;
      let m = 0;
      if (fd < 0) { // no IPv6 socket: the control plane never programs such a peer
        for (let k = 0; k < n; k++) row[TX_ERRORS] = row[TX_ERRORS]! + this.#segs[k]!;
        m = n;
      }
      while (m < n) {
        row[TX_SYSCALLS]!++;
        const r = this.#sys.sendmmsg(fd, this.#msgViews[m]!, n - m, 0);
        if (r > 0) {
          for (let k = m; k < m + r; k++) {
            row[TX_PACKETS] = row[TX_PACKETS]! + this.#segs[k]!;
            row[TX_BYTES] = row[TX_BYTES]! + this.#bytes[k]!;
          }
          row[TX_MESSAGES] = row[TX_MESSAGES]! + r;
          m += r;
        } else if (r === -EINTR) {
          continue;
        } else if (this.#segs[m]! > 1) {
          if (r === -EIO) {
            this.gso = false;
            row[TX_FALLBACKS]!++;
          }
          n = m + this.#build(this.#first[m]!, count, m, false);
        } else {
          row[TX_ERRORS]!++;
          m++;
        }
      }
      d = this.#end;
    }
  }

  /**
   * Builds messages from descriptor `from` (up to `to`) into message slots from `at`; returns
   * how many, and leaves in #end the descriptor after the last one used.
   */
  #build(from: number, to: number, at: number, gso: boolean): number {
    const w = this.#w, c32 = this.#core32;
    let m = at - 1;
    let peer = -1, size = 0, segs = 0, bytes = 0, closed = true;
    let iov = at === 0 ? 0 : this.#iovEnd[at - 1]!;
    let lastEnd = -1;
    let d = from;
    for (; d < to; d++) {
      const dw = (EG_UDP_DESC + d * UDP_DESC_SIZE) >>> 2;
      const off = c32[dw]!, len = c32[dw + 1]!, dest = c32[dw + 3]!;
      const p = dest >>> 16;
      const joins = gso && !closed && p === peer && segs < GSO_MAX_SEGMENTS && bytes + len <= GSO_MAX_BYTES && len <= size;
      if (joins) {
        if (len < size) closed = true;
        segs++;
        bytes += len;
        if (off === lastEnd) {
          w[this.#iovW + (iov - 1) * 4 + 2] = w[this.#iovW + (iov - 1) * 4 + 2]! + len;
        } else {
          this.#setIov(iov++, off, len);
        }
        lastEnd = off + len;
        continue;
      }
      if (m >= at) this.#finish(m, segs, bytes, size, iov);
      const family = c32[dw + 2] === 0 ? 6 : 4;
      if (m >= at && family !== this.#family) break; // one sendmmsg, one socket
      if (m + 1 >= MAX_MSGS || iov >= EG_UDP_CAP) break;
      this.#family = family;
      m++;
      peer = p; size = len; segs = 1; bytes = len; closed = false;
      this.#first[m] = d;
      this.#iovFirst[m] = iov;
      const h = m * (MMSGHDR_SIZE >>> 2);
      const iovAddr = this.#iovBase + iov * IOVEC_SIZE;
      w[h + 4] = iovAddr % TWO32; w[h + 5] = Math.floor(iovAddr / TWO32);
      const nw = this.#nameW + m * (NAME_ROOM >>> 2);
      if (family === 4) {
        w[nw] = AF_INET | ((dest & 0xffff) << 16); // family, then the port (network order)
        w[nw + 1] = c32[dw + 2]!; // the address bytes, network order
        w[nw + 2] = 0; w[nw + 3] = 0;
        w[h + 2] = SOCKADDR_IN_SIZE;
      } else {
        // sockaddr_in6: family, port, flow info 0, the peer's public IPv6 as the core holds it, scope 0
        const a = (PUBLIC6 >>> 2) + (dest >>> 16) * 4;
        w[nw] = AF_INET6 | ((dest & 0xffff) << 16);
        w[nw + 1] = 0;
        w[nw + 2] = c32[a]!; w[nw + 3] = c32[a + 1]!; w[nw + 4] = c32[a + 2]!; w[nw + 5] = c32[a + 3]!;
        w[nw + 6] = 0;
        w[h + 2] = SOCKADDR_IN6_SIZE;
      }
      this.#setIov(iov++, off, len);
      lastEnd = off + len;
    }
    if (m >= at) this.#finish(m, segs, bytes, size, iov);
    this.#end = d;
    return m - at + 1;
  }

  #setIov(i: number, off: number, len: number): void {
    const w = this.#w, o = this.#iovW + i * 4;
    let lo = this.#coreLo + off, hi = this.#coreHi;
    if (lo >= TWO32) { lo -= TWO32; hi++; }
    w[o] = lo; w[o + 1] = hi; w[o + 2] = len; w[o + 3] = 0;
  }

  /** Completes message `m`: its iovecs end before `iovEnd`; a GSO cmsg when it carries several datagrams. */
  #finish(m: number, segs: number, bytes: number, size: number, iovEnd: number): void {
    const w = this.#w, h = m * (MMSGHDR_SIZE >>> 2);
    w[h + 6] = iovEnd - this.#iovFirst[m]!; w[h + 7] = 0;
    if (segs > 1) {
      w[h + 10] = CONTROL_ROOM;
      w[this.#controlW + m * (CONTROL_ROOM >>> 2) + 4] = size;
    } else {
      w[h + 10] = 0;
    }
    w[h + 11] = 0;
    w[h + 12] = 0;
    this.#iovEnd[m] = iovEnd;
    this.#segs[m] = segs;
    this.#bytes[m] = bytes;
  }
}
