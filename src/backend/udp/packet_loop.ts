/**
 * @module One packet loop: a TUN queue and a UDP socket moved through one core instance, in
 * batches, on the calling thread (a Worker: every call here may block). Runtime-neutral: it
 * takes a `Sys` and a `Core`, so tests drive it in a namespace and workers run it forever.
 *
 * Each turn:
 *  1. replay the control log into the core (peers, routes; stop request);
 *  2. poll(TUN, UDP, 200 ms);
 *  3. TUN readable: read up to `readBatch` packets (super-packets with their virtio_net_hdr when
 *     offloads are on) into EG_IN slots, egress(), sendmmsg the datagrams (UdpSender, GSO runs),
 *     write ICMP unreachables back into the TUN; repeat egress() for what did not fit;
 *  4. UDP readable: one recvmmsg (MSG_DONTWAIT; with UDP GRO each message may hold many
 *     datagrams) into IN_IN slots after VNET_HDR_LEN bytes of headroom, ingress(), write every
 *     resulting packet (coalesced TCP super-packets with a virtio_net_hdr) into the TUN;
 *  5. fold the core's counters into this worker's stats row.
 * Ownership: the core owns EG_IN/IN_IN and its rings only during egress()/ingress(); the
 * kernel owns a slot only during the read()/recvmmsg() that fills it and the write()/sendmmsg()
 * that drains it. Nothing is allocated per packet, except a view for a TUN write that does not
 * start at a slot (a copied or coalesced packet: one per super-packet, not per segment).
 */
import * as L from "../../core/layout.ts";
import type { Core } from "../../core/types.ts";
import { AF_INET, EAGAIN, EINTR, MSG_DONTWAIT, POLLERR, POLLFD_SIZE, POLLHUP, POLLIN, pollRevents, setPollfd, structBuffer } from "../../../ffi/linux.ts";
import type { Sys } from "../../../ffi/sys.ts";
import { UdpBatch } from "../../../ffi/udp.ts";
import type { ControlReader } from "./control_log.ts";
import { type LoopTrace, traceStage } from "./loop_trace.ts";
import { UdpSender } from "./udp_sender.ts";
import { foldCoreCounters, hostIndex } from "./worker_stats.ts";

export interface PacketLoopOptions {
  tunFd: number;
  udpFd: number;
  /** The TUN carries a virtio_net_hdr before each packet (IFF_VNET_HDR). */
  vnetHdr: boolean;
  /** The socket accepts UDP_SEGMENT. */
  gso: boolean;
  /** UDP_GRO is on: a received message may hold many datagrams. */
  gro: boolean;
  /** The underlay MTU: no datagram from a peer is larger (without GRO). */
  ifaceMtu: number;
  /**
   * After handling packets, keep polling without sleeping for this many microseconds before
   * blocking again (0: always block). Waking a thread blocked in poll() costs tens of µs on a
   * VM, four times per round trip; a reply usually comes within this window.
   */
  spinUs?: number;
  /** Time each stage (loop_trace.ts) and report summaries to the main thread. */
  trace?: boolean;
}

const READY = POLLIN | POLLERR | POLLHUP;
const POLL_MS = 200;
const C = {
  rxPackets: hostIndex("rxPackets"), rxBytes: hostIndex("rxBytes"), rxMessages: hostIndex("rxMessages"),
  rxSyscalls: hostIndex("rxSyscalls"), rxTruncated: hostIndex("rxTruncated"), rxErrors: hostIndex("rxErrors"),
  tunReads: hostIndex("tunReads"), tunReadBytes: hostIndex("tunReadBytes"), tunReadErrors: hostIndex("tunReadErrors"),
  tunWrites: hostIndex("tunWrites"), tunWriteBytes: hostIndex("tunWriteBytes"), tunWriteErrors: hostIndex("tunWriteErrors"),
  polls: hostIndex("polls"), controlFailures: hostIndex("controlFailures"), gsoOn: hostIndex("gsoOn"),
};

const T = {
  egWake: traceStage("egWake"), tunRead: traceStage("tunRead"), tunReadMore: traceStage("tunReadMore"),
  egCore: traceStage("egCore"), udpSend: traceStage("udpSend"), egTotal: traceStage("egTotal"),
  inWake: traceStage("inWake"), udpRecv: traceStage("udpRecv"), inCore: traceStage("inCore"),
  tunWrite: traceStage("tunWrite"), inTotal: traceStage("inTotal"), tail: traceStage("tail"),
};

const align = (n: number, a: number) => Math.ceil(n / a) * a;

export class PacketLoop {
  readonly #sys: Sys;
  readonly #core: Core;
  readonly #o: PacketLoopOptions;
  readonly #control: ControlReader;
  readonly #row: Float64Array;
  readonly #u32: Uint32Array;
  readonly #u16: Uint16Array;
  readonly #bytes: Uint8Array;
  readonly #pollfds = structBuffer(2 * POLLFD_SIZE);
  readonly #sender: UdpSender;
  readonly #lastCounters = new Uint32Array(L.COUNTER_COUNT);
  // Egress: TUN read slots in EG_IN.
  readonly #egViews: Uint8Array[] = [];
  readonly #egOffs: Uint32Array;
  readonly readBatch: number;
  // Ingress: recvmmsg slots in IN_IN, VNET_HDR_LEN bytes after each slot start.
  readonly #batch: UdpBatch;
  readonly #inStride: number;
  readonly recvBatch: number;
  /** Views for TUN writes of packets left in place in an ingress slot (by slot). */
  readonly #inPlace: Uint8Array[] = [];
  readonly #inPlaceSkew: number;
  /** Stage timing (WEFT_UDP_TRACE), or null. */
  readonly #trace: LoopTrace | null;
  /** When the last wake-up's work ended (trace only). */
  #workEnd = 0;
  /** When poll() last returned (trace only). */
  #woke = 0;

  constructor(sys: Sys, core: Core, options: PacketLoopOptions, control: ControlReader, row: Float64Array, trace: LoopTrace | null = null) {
    this.#trace = trace;
    this.#sys = sys;
    this.#core = core;
    this.#o = options;
    this.#control = control;
    this.#row = row;
    this.#bytes = core.bytes;
    this.#u32 = new Uint32Array(core.buffer);
    this.#u16 = new Uint16Array(core.buffer);
    core.setOptions(options.vnetHdr ? L.OPT_VNET_HDR : 0);

    // A TUN read is one packet: up to 64 KiB plus the header with offloads, else one MTU.
    const egStride = options.vnetHdr ? align(L.VNET_HDR_LEN + 65535, 64) : align(Math.max(options.ifaceMtu, 1500), 64);
    this.readBatch = Math.min(options.vnetHdr ? 64 : 256, Math.floor(L.EG_IN_SIZE / egStride), L.EG_IN_CAP);
    this.#egOffs = new Uint32Array(this.readBatch);
    for (let i = 0; i < this.readBatch; i++) {
      const off = L.EG_IN + i * egStride;
      this.#egOffs[i] = off;
      this.#egViews.push(this.#bytes.subarray(off, off + egStride));
    }

    // A received message is one datagram of at most the underlay MTU, or a GRO train of 64 KiB.
    this.#inStride = align(L.VNET_HDR_LEN + (options.gro ? 65535 : Math.max(options.ifaceMtu, 1500)), 64);
    this.recvBatch = Math.min(options.gro ? 64 : 256, Math.floor(L.IN_IN_SIZE / this.#inStride), L.IN_IN_CAP);
    const slots: Uint8Array[] = [];
    this.#inPlaceSkew = options.vnetHdr ? 0 : L.VNET_HDR_LEN;
    for (let i = 0; i < this.recvBatch; i++) {
      const base = L.IN_IN + i * this.#inStride;
      slots.push(this.#bytes.subarray(base + L.VNET_HDR_LEN, base + this.#inStride));
      this.#inPlace.push(this.#bytes.subarray(base + this.#inPlaceSkew, base + this.#inStride));
    }
    this.#batch = new UdpBatch(sys, options.udpFd, slots);
    this.#sender = new UdpSender(sys, options.udpFd, this.#bytes, options.gso);
    setPollfd(this.#pollfds, 0, options.tunFd, POLLIN);
    setPollfd(this.#pollfds, 1, options.udpFd, POLLIN);
  }

  /** Runs turns until the control log asks to stop. */
  run(): void {
    const spinMs = (this.#o.spinUs ?? 0) / 1000;
    let spinEnd = 0;
    for (;;) {
      const n = this.turn(spinMs > 0 && performance.now() < spinEnd ? 0 : POLL_MS);
      if (n < 0) return;
      if (n > 0 && spinMs > 0) spinEnd = performance.now() + spinMs;
    }
  }

  /**
   * One turn (see the module flow). Returns the packets and messages handled, or -1 once a stop
   * was requested.
   */
  turn(timeoutMs: number): number {
    const applied = this.#control.applyTo(this.#core);
    if (applied > 0) this.#row[C.controlFailures] = this.#control.failures;
    if (this.#control.stopping) return -1;
    const tr = this.#trace;
    if (tr && this.#workEnd > 0) { tr.add(T.tail, performance.now() - this.#workEnd); this.#workEnd = 0; }
    const rc = this.#sys.poll(this.#pollfds, 2, timeoutMs);
    this.#row[C.polls]!++;
    let n = 0;
    if (tr) this.#woke = performance.now();
    if (rc > 0) {
      if (pollRevents(this.#pollfds, 0) & READY) n += this.egress();
      if (pollRevents(this.#pollfds, 1) & READY) n += this.ingress();
    } else if (rc < 0 && rc !== -EINTR) {
      throw new Error(`udp packet loop: poll on TUN fd ${this.#o.tunFd} and UDP fd ${this.#o.udpFd} failed: errno ${-rc}`);
    }
    if (n > 0 || applied > 0) this.publish();
    if (tr) {
      const now = performance.now();
      if (n > 0) { tr.active(now); this.#workEnd = now; } else tr.flush(now);
    }
    return n;
  }

  /** Folds the core counters into the stats row (after every turn). */
  publish(): void {
    foldCoreCounters(this.#core.regions.counters, this.#lastCounters, this.#row);
    this.#row[C.gsoOn] = this.#sender.gso ? 1 : 0;
  }

  /** Reads what the TUN has (up to readBatch packets) and sends it. Returns packets read. */
  egress(): number {
    const sys = this.#sys, u32 = this.#u32, row = this.#row, fd = this.#o.tunFd;
    const tr = this.#trace;
    let t0 = 0, t = 0;
    if (tr) { t0 = t = performance.now(); tr.egressStart(t0); tr.add(T.egWake, t0 - this.#woke); }
    let n = 0;
    while (n < this.readBatch) {
      if (tr && n === 1) t = stamp(tr, T.tunRead, t);
      const r = sys.read(fd, this.#egViews[n]!);
      if (r <= 0) {
        if (r < 0 && r !== -EAGAIN && r !== -EINTR) row[C.tunReadErrors]!++;
        break;
      }
      const dw = (L.EG_IN_DESC + n * L.IN_DESC_SIZE) >>> 2;
      u32[dw] = this.#egOffs[n]!;
      u32[dw + 1] = r;
      row[C.tunReadBytes] = row[C.tunReadBytes]! + r;
      n++;
    }
    if (tr) t = stamp(tr, n === 0 ? T.tunRead : T.tunReadMore, t);
    if (n === 0) return 0;
    row[C.tunReads] = row[C.tunReads]! + n;
    const core = this.#core;
    for (let start = 0; start < n;) {
      const k = core.egress(start, n - start);
      if (tr) t = stamp(tr, T.egCore, t);
      const udp = core.egressUdpCount();
      if (udp > 0) this.#sender.send(udp, row);
      if (tr && udp > 0) { t = stamp(tr, T.udpSend, t); tr.sent(t); }
      const tun = core.egressTunCount();
      if (tun > 0) this.#writeTun(L.EG_TUN_DESC, tun);
      if (k === 0) break; // cannot happen (k >= 1 for n >= 1); never spin
      start += k;
    }
    if (tr) tr.add(T.egTotal, performance.now() - t0);
    return n;
  }

  /** Receives one batch from the socket and writes it into the TUN. Returns messages received. */
  ingress(): number {
    const b = this.#batch, row = this.#row;
    const tr = this.#trace;
    let t0 = 0, t = 0;
    if (tr) { t0 = t = performance.now(); tr.ingressStart(t0); tr.add(T.inWake, t0 - this.#woke); }
    const r = b.recv(this.recvBatch, MSG_DONTWAIT);
    if (tr) t = stamp(tr, T.udpRecv, t);
    row[C.rxSyscalls]!++;
    if (r <= 0) {
      if (r < 0 && r !== -EAGAIN && r !== -EINTR) row[C.rxErrors]!++;
      return 0;
    }
    const u8 = this.#bytes, u32 = this.#u32, u16 = this.#u16;
    let n = 0;
    for (let i = 0; i < r; i++) {
      if (b.truncated(i)) { row[C.rxTruncated]!++; continue; }
      if (b.sourceFamily(i) !== AF_INET) continue;
      const len = b.length(i);
      const seg = this.#o.gro ? b.segmentSize(i) : 0;
      const d = L.IN_IN_DESC + n * L.IN_DESC_SIZE;
      u32[d >>> 2] = L.IN_IN + i * this.#inStride + L.VNET_HDR_LEN;
      u32[(d >>> 2) + 1] = len;
      const src = b.sourceAddress(i); // sockaddr_in: the address is bytes 4..8, network order
      u8[d + 8] = src[4]!; u8[d + 9] = src[5]!; u8[d + 10] = src[6]!; u8[d + 11] = src[7]!;
      u16[(d + 12) >>> 1] = seg;
      row[C.rxPackets] = row[C.rxPackets]! + (seg > 0 && len > seg ? Math.ceil(len / seg) : 1);
      row[C.rxBytes] = row[C.rxBytes]! + len;
      n++;
    }
    row[C.rxMessages] = row[C.rxMessages]! + r;
    const core = this.#core;
    for (let start = 0; start < n;) {
      const k = core.ingress(start, n - start);
      if (tr) t = stamp(tr, T.inCore, t);
      const tun = core.ingressTunCount();
      if (tun > 0) this.#writeTun(L.IN_TUN_DESC, tun);
      if (tr && tun > 0) t = stamp(tr, T.tunWrite, t);
      if (k === 0) break;
      start += k;
    }
    if (tr) tr.add(T.inTotal, performance.now() - t0);
    return r;
  }

  /** Writes `count` TUN descriptors {off, len} found at `ring`. */
  #writeTun(ring: number, count: number): void {
    const sys = this.#sys, u32 = this.#u32, row = this.#row, fd = this.#o.tunFd;
    for (let i = 0; i < count; i++) {
      const dw = (ring + i * L.TUN_DESC_SIZE) >>> 2;
      const off = u32[dw]!, len = u32[dw + 1]!;
      const rel = off - L.IN_IN - this.#inPlaceSkew;
      const slot = rel >= 0 && rel % this.#inStride === 0 ? rel / this.#inStride : -1;
      const view = slot >= 0 && slot < this.recvBatch ? this.#inPlace[slot]! : this.#bytes.subarray(off, off + len);
      const w = sys.write(fd, view, len);
      if (w < 0) {
        row[C.tunWriteErrors]!++;
      } else {
        row[C.tunWrites]!++;
        row[C.tunWriteBytes] = row[C.tunWriteBytes]! + len;
      }
    }
  }
}

/** Records the time since `since` for stage `i`; returns now. */
function stamp(tr: LoopTrace, i: number, since: number): number {
  const now = performance.now();
  tr.add(i, now - since);
  return now;
}
