/**
 * @module One packet loop: a TUN queue and a UDP socket moved through one core instance, in
 * batches, on the calling thread (a Worker: every call here may block). Runtime-neutral: it
 * takes a `Sys` and a `Core`, so tests drive it in a namespace and workers run it forever.
 *
 * Each turn:
 *  1. poll(TUN, UDP[, UDP over IPv6]): without sleeping right after a turn that moved packets (the answer to
 *     what was just written into the TUN is often queued already), else for up to 200 ms —
 *     or, with busy-polling (spinUs), without sleeping as SCHED_IDLE until the window after the
 *     last traffic closes (#spin);
 *  2. replay the control log into the core (peers, routes; stop request) — one atomic load
 *     when nothing changed — after poll() returns, so that what changed while the thread slept
 *     applies to the packets that woke it;
 *  3. TUN readable: read up to `readBatch` packets (super-packets with their virtio_net_hdr
 *     when offloads are on) into EG_IN slots, egress(), sendmmsg the datagrams (UdpSender, GSO
 *     runs), write ICMP unreachables back into the TUN; when the last turn read nothing from
 *     the TUN, the first packet is sent before the next read (a sparse packet never waits for
 *     the read that says EAGAIN);
 *  4. each UDP socket readable: one recvmmsg (MSG_DONTWAIT; with UDP GRO each message may hold many
 *     datagrams; one message after a quiet turn, four times more for each busy one) into IN_IN
 *     slots after VNET_HDR_LEN bytes of headroom (an IPv6 sender's address into IN_SRC6, its
 *     descriptor's IPv4 0.0.0.0), ingress(), write every resulting packet
 *     (coalesced TCP super-packets with a virtio_net_hdr) into the TUN; when that wrote
 *     anything and step 3 did not run, step 3 runs now (the answer is often queued already);
 *  5. fold the core's counters into this worker's stats row: before sleeping, and at least every
 *     PUBLISH_MS under load — never between a packet and its answer.
 * Ownership: the core owns EG_IN/IN_IN and its rings only during egress()/ingress(); the
 * kernel owns a slot only during the read()/recvmmsg() that fills it and the write()/sendmmsg()
 * that drains it. Nothing is allocated per packet: TUN writes name their bytes by offset into
 * the core's memory (Sys.write's `off`), sends by iovecs into it.
 */
import * as L from "../../core/layout.ts";
import type { Core } from "../../core/types.ts";
import { AF_INET, AF_INET6, EAGAIN, EINTR, MSG_DONTWAIT, MSG_TRUNC, POLLERR, POLLFD_SIZE, POLLHUP, POLLIN, pollRevents, SCHED_IDLE, SCHED_OTHER, setPollfd, structBuffer } from "../../../ffi/linux.ts";
import type { Sys } from "../../../ffi/sys.ts";
import { MMSG_WORDS, NAME_WORDS, UdpBatch, W_CONTROLLEN, W_FLAGS, W_LEN } from "../../../ffi/udp.ts";
import type { ControlReader } from "./control_log.ts";
import { type LoopTrace, traceStage } from "./loop_trace.ts";
import { type EgressSlots, egressSlots, ingressSlots, readTun, writeTun } from "./core_slots.ts";
import { UdpSender } from "./udp_sender.ts";
import { foldCoreCounters, hostIndex } from "./worker_stats.ts";

export interface PacketLoopOptions {
  tunFd: number;
  udpFd: number;
  /** The UDP socket on the IPv6 underlay, when there is one. */
  udp6Fd?: number;
  /** The TUN carries a virtio_net_hdr before each packet (IFF_VNET_HDR). */
  vnetHdr: boolean;
  /** The socket accepts UDP_SEGMENT. */
  gso: boolean;
  /** UDP_GRO is on: a received message may hold many datagrams. */
  gro: boolean;
  /** The underlay MTU: no datagram from a peer is larger (without GRO). */
  ifaceMtu: number;
  /**
   * Busy-poll window in µs (0: always block). After a turn that moved packets, keep polling
   * without sleeping for up to this long, as a SCHED_IDLE thread: the next packet (the answer to
   * what just left, the next request) finds this thread awake instead of paying a wake-up, and
   * any thread that wakes on this CPU preempts the spinning one at once, so spinning takes no
   * CPU from other work. Back to SCHED_OTHER when the window closes or under load (two busy turns
   * in a row). The caller checks that the thread may return to SCHED_OTHER (CAP_SYS_NICE).
   */
  spinUs?: number;
  /** Time each stage (loop_trace.ts) and report summaries to the main thread. */
  trace?: boolean;
  /** Run warm_up.ts before the loop (the worker does; default true). */
  warmUp?: boolean;
  /** Tests only: throw after handling this many packets (a worker that dies mid-traffic). */
  crashAfterPackets?: number;
}

const READY = POLLIN | POLLERR | POLLHUP;
const POLL_MS = 200;
/** Under steady load the stats row is refreshed at least this often (ms). */
const PUBLISH_MS = 50;
const C = {
  rxPackets: hostIndex("rxPackets"), rxBytes: hostIndex("rxBytes"), rxMessages: hostIndex("rxMessages"),
  rxSyscalls: hostIndex("rxSyscalls"), rxTruncated: hostIndex("rxTruncated"), rxErrors: hostIndex("rxErrors"),
  polls: hostIndex("polls"), controlFailures: hostIndex("controlFailures"), gsoOn: hostIndex("gsoOn"),
};

const T = {
  egWake: traceStage("egWake"), tunRead: traceStage("tunRead"), tunReadMore: traceStage("tunReadMore"),
  egCore: traceStage("egCore"), udpSend: traceStage("udpSend"), egTotal: traceStage("egTotal"),
  inWake: traceStage("inWake"), udpRecv: traceStage("udpRecv"), inDesc: traceStage("inDesc"), inCore: traceStage("inCore"),
  tunWrite: traceStage("tunWrite"), inTotal: traceStage("inTotal"), tail: traceStage("tail"),
};


export class PacketLoop {
  readonly #sys: Sys;
  readonly #core: Core;
  readonly #o: PacketLoopOptions;
  // The options the hot paths read, as fields of this object: the JIT then sees one object
  // shape whoever built the options (the warm-up's spread copy or a worker's structured clone).
  readonly #tunFd: number;
  readonly #gro: boolean;
  readonly #control: ControlReader;
  readonly #row: Float64Array;
  readonly #u32: Uint32Array;
  readonly #bytes: Uint8Array;
  readonly #pollfds = structBuffer(3 * POLLFD_SIZE);
  /** 2, or 3 with the IPv6 socket. */
  readonly #nfds: number;
  readonly #sender: UdpSender;
  readonly #lastCounters = new Uint32Array(L.COUNTER_COUNT);
  // Egress: TUN read slots in EG_IN.
  readonly #eg: EgressSlots;
  readonly readBatch: number;
  // Ingress: recvmmsg slots in IN_IN, VNET_HDR_LEN bytes after each slot start.
  readonly #batch: UdpBatch;
  /** The IPv6 socket's batch, over the same slots (the two are received one after the other). */
  readonly #batch6: UdpBatch | null;
  readonly #inStride: number;
  readonly recvBatch: number;
  /** Stage timing (WEFT_UDP_TRACE), or null. */
  readonly #trace: LoopTrace | null;
  /** When the last wake-up's work ended (trace only). */
  #workEnd = 0;
  /** When poll() last returned (trace only). */
  #woke = 0;
  /** Counters changed since the last publish(), and when that was. */
  #dirty = false;
  #published = 0;
  /** Messages the next recvmmsg asks for. */
  #recvN = 1;
  /** TUN writes done so far (ingress() and ICMP errors), to tell whether a turn wrote any. */
  #tunWrites = 0;
  /** The last turn read nothing from the TUN (see egress()). */
  #quiet = true;
  /** Busy-poll (spinUs): the window in ms, when it closes, and whether this thread is SCHED_IDLE now. */
  #spinMs: number;
  #spinUntil = 0;
  #idle = false;

  constructor(sys: Sys, core: Core, options: PacketLoopOptions, control: ControlReader, row: Float64Array, trace: LoopTrace | null = null) {
    this.#trace = trace;
    this.#spinMs = (options.spinUs ?? 0) / 1000;
    this.#sys = sys;
    this.#core = core;
    this.#o = options;
    this.#tunFd = options.tunFd;
    this.#gro = options.gro;
    this.#control = control;
    this.#row = row;
    this.#bytes = core.bytes;
    this.#u32 = new Uint32Array(core.buffer);
    core.setOptions(options.vnetHdr ? L.OPT_VNET_HDR : 0);
    this.#lastCounters.set(core.regions.counters); // count from here (a warm-up ran before)

    this.#eg = egressSlots(this.#bytes, options.vnetHdr, options.ifaceMtu);
    this.readBatch = this.#eg.batch;
    const { slots, stride, batch } = ingressSlots(this.#bytes, options.gro, options.ifaceMtu);
    this.#inStride = stride;
    this.recvBatch = batch;
    this.#batch = new UdpBatch(sys, options.udpFd, slots);
    const fd6 = options.udp6Fd ?? -1;
    this.#batch6 = fd6 >= 0 ? new UdpBatch(sys, fd6, slots) : null;
    this.#sender = new UdpSender(sys, options.udpFd, this.#bytes, options.gso, fd6);
    setPollfd(this.#pollfds, 0, options.tunFd, POLLIN);
    setPollfd(this.#pollfds, 1, options.udpFd, POLLIN);
    if (fd6 >= 0) setPollfd(this.#pollfds, 2, fd6, POLLIN);
    this.#nfds = fd6 >= 0 ? 3 : 2;
  }

  /** Runs turns until the control log asks to stop. */
  run(): void {
    let busy = false, handled = 0;
    const crashAfter = this.#o.crashAfterPackets ?? Infinity;
    for (;;) {
      // After traffic, look again without sleeping: the answer to what was just written into
      // the TUN (an echo reply, a TCP ACK) is often queued already. Only before sleeping (or
      // every PUBLISH_MS while spinning) are the stats published, so that work never sits
      // between a packet and its answer.
      let n: number;
      if (busy) {
        n = this.turn(0);
      } else if (this.#spinUntil > 0) {
        n = this.#spin();
      } else {
        if (this.#dirty) this.publish();
        n = this.turn(POLL_MS);
      }
      if (n < 0) {
        if (this.#idle) this.#setIdle(false);
        return;
      }
      if (n > 0 && this.#spinMs > 0) {
        // Traffic reopens the busy-poll window. A lone packet was forwarded as SCHED_IDLE
        // (nothing else wanted this CPU, or the packet would have waited behind it); a second
        // busy turn in a row is load, which an idle-priority thread would lose to every other
        // thread, so the thread works as SCHED_OTHER until the traffic pauses.
        this.#spinUntil = performance.now() + this.#spinMs;
        if (this.#idle && busy) this.#setIdle(false);
      }
      busy = n > 0;
      handled += n;
      if (handled > crashAfter) throw new Error(`udp packet loop: crashing after ${handled} packets, as asked (WEFT_TEST_UDP_WORKER_CRASH_AFTER)`);
    }
  }

  /**
   * Busy-poll (spinUs): polls without sleeping, as SCHED_IDLE, until something is ready (then
   * handles it as a turn does and returns what was handled) or the window closes (then returns
   * 0, as SCHED_OTHER again). Between empty polls it yields to any other SCHED_IDLE thread of
   * this CPU (another host's spinner), so that two of them share a CPU by turns of microseconds
   * rather than of scheduler slices. A loop of its own rather than turns of turn(0): thousands
   * of empty turns between two packets would make turn()'s packet branches look never taken to
   * the JIT, and every packet would then pay for leaving the optimised code.
   */
  #spin(): number {
    if (!this.#idle) this.#setIdle(true);
    const sys = this.#sys, fds = this.#pollfds;
    while (this.#spinUntil > 0) {
      const rc = sys.poll(fds, this.#nfds, 0);
      if (!this.#applyControl()) return -1;
      if (rc !== 0) return this.#handle(rc);
      const now = performance.now();
      if (now >= this.#spinUntil) break;
      if (this.#dirty && now - this.#published >= PUBLISH_MS) this.publish(now);
      sys.schedYield();
    }
    this.#spinUntil = 0;
    if (this.#idle) this.#setIdle(false);
    return 0;
  }

  /**
   * One turn (see the module flow). Returns the packets and messages handled, or -1 once a stop
   * was requested.
   */
  turn(timeoutMs: number): number {
    const tr = this.#trace;
    if (tr && this.#workEnd > 0) { tr.add(T.tail, performance.now() - this.#workEnd); this.#workEnd = 0; }
    const rc = this.#sys.poll(this.#pollfds, this.#nfds, timeoutMs);
    // The log is read after poll(), not before: a change appended while this thread slept (the
    // first peer, a new one) must reach the core before the packet that woke the thread.
    if (!this.#applyControl()) return -1;
    return this.#handle(rc);
  }

  /** Replays the control log into the core; false once a stop was requested. */
  #applyControl(): boolean {
    const applied = this.#control.applyTo(this.#core);
    if (applied > 0) { this.#row[C.controlFailures] = this.#control.failures; this.#dirty = true; }
    return !this.#control.stopping;
  }

  /** Handles what poll() returned (`rc`; the revents are in the pollfds): steps 3 to 5 of a turn. */
  #handle(rc: number): number {
    const tr = this.#trace;
    this.#row[C.polls]!++;
    let n = 0;
    if (tr) this.#woke = performance.now();
    if (rc > 0) {
      const tunReady = (pollRevents(this.#pollfds, 0) & READY) !== 0;
      if (tunReady) n += this.egress();
      else this.#quiet = true;
      const udp4 = (pollRevents(this.#pollfds, 1) & READY) !== 0;
      const udp6 = this.#batch6 !== null && (pollRevents(this.#pollfds, 2) & READY) !== 0;
      if (udp4 || udp6) {
        const wrote = this.#tunWrites;
        if (udp4) n += this.ingress(this.#batch);
        if (udp6) n += this.ingress(this.#batch6!);
        // What was just written into the TUN is often answered at once (an echo reply, an ACK
        // of a local socket): the kernel queued the answer during the write. Read it now, not
        // after another poll(): one syscall fewer between a request and its answer leaving;
        // when there was no answer the read says EAGAIN (one syscall, on a turn that worked).
        if (!tunReady && this.#tunWrites !== wrote) {
          if (tr) this.#woke = performance.now();
          n += this.egress();
        }
      } else {
        this.#recvN = 1;
      }
    } else if (rc < 0 && rc !== -EINTR) {
      throw new Error(`udp packet loop: poll on TUN fd ${this.#o.tunFd} and UDP fd ${this.#o.udpFd} failed: errno ${-rc}`);
    } else {
      this.#recvN = 1;
      this.#quiet = true;
    }
    if (n > 0) {
      this.#dirty = true;
      const now = performance.now();
      if (now - this.#published >= PUBLISH_MS) this.publish(now); // under steady load
      if (tr) { tr.active(now); this.#workEnd = now; }
    } else if (tr) {
      tr.flush(performance.now());
    }
    return n;
  }

  /** Folds the core counters into the stats row (before sleeping, and every PUBLISH_MS under load). */
  publish(now = performance.now()): void {
    foldCoreCounters(this.#core.regions.counters, this.#lastCounters, this.#row);
    this.#row[C.gsoOn] = this.#sender.gso ? 1 : 0;
    this.#published = now;
    this.#dirty = false;
  }

  /**
   * Reads what the TUN has (up to readBatch packets) and sends it. After a turn that read no
   * packet from the TUN (a reply, sparse traffic), the first
   * packet goes out before the next read is tried: then that read usually only says
   * EAGAIN, and the packet should not wait for it. Under load the whole batch is read first, so
   * runs to one peer still become one GSO message. Returns packets read.
   */
  egress(): number {
    const tr = this.#trace;
    let t0 = 0;
    if (tr) { t0 = performance.now(); tr.egressStart(t0); tr.add(T.egWake, t0 - this.#woke); }
    const sparse = this.#quiet;
    const first = this.#readTun(0, sparse ? 1 : this.readBatch);
    if (tr) stamp(tr, T.tunRead, t0);
    this.#quiet = first === 0;
    if (first === 0) return 0;
    let n = first;
    if (sparse) {
      this.#forward(0, 1);
      const t1 = tr ? performance.now() : 0;
      n = this.#readTun(1, this.readBatch);
      if (tr) stamp(tr, T.tunReadMore, t1);
      if (n > 1) this.#forward(1, n - 1);
    } else {
      this.#forward(0, n);
    }
    if (tr) tr.add(T.egTotal, performance.now() - t0);
    return n;
  }

  /** Reads packets into EG_IN slots from..to-1 until the TUN has no more; returns the slot after the last filled. */
  #readTun(from: number, to: number): number {
    return readTun(this.#sys, this.#tunFd, this.#eg, this.#u32, this.#row, from, to);
  }

  /** egress() over EG_IN descriptors start..start+count-1: sends the datagrams, writes ICMP errors back. */
  #forward(start: number, count: number): void {
    const core = this.#core, row = this.#row, tr = this.#trace, end = start + count;
    let t = tr ? performance.now() : 0;
    while (start < end) {
      const k = core.egress(start, end - start);
      if (tr) t = stamp(tr, T.egCore, t);
      const udp = core.egressUdpCount();
      if (udp > 0) {
        this.#sender.send(udp, row);
      }
      if (tr && udp > 0) { t = stamp(tr, T.udpSend, t); tr.sent(t); }
      const tun = core.egressTunCount();
      if (tun > 0) this.#writeTun(L.EG_TUN_DESC, tun);
      if (k === 0) break; // cannot happen (k >= 1 for count >= 1); never spin
      start += k;
    }
  }

  /** Receives one batch from the socket of `b` and writes it into the TUN. Returns messages received. */
  ingress(b: UdpBatch = this.#batch): number {
    const row = this.#row;
    const tr = this.#trace;
    let t0 = 0, t = 0;
    if (tr) { t0 = t = performance.now(); tr.ingressStart(t0); tr.add(T.inWake, t0 - this.#woke); }
    // Sparse traffic asks for one message (no second, failing, attempt inside recvmmsg);
    // back-to-back readable turns ask for four times more each, up to the batch.
    const r = b.recv(this.#recvN, MSG_DONTWAIT);
    this.#recvN = Math.min(this.recvBatch, this.#recvN * 4);
    if (tr) t = stamp(tr, T.udpRecv, t);
    row[C.rxSyscalls]!++;
    if (r <= 0) {
      if (r < 0 && r !== -EAGAIN && r !== -EINTR) row[C.rxErrors]!++;
      return 0;
    }
    // One pass over the batch's own memory (no call per field: this runs cold after every idle
    // spell, when each extra function costs microseconds): message i -> IN_IN descriptor n.
    const u32 = this.#u32, w = b.words, nameWords = b.nameWords, gro = this.#gro, stride = this.#inStride;
    let n = 0, packets = 0, bytes = 0, truncated = 0;
    for (let i = 0; i < r; i++) {
      const m = i * MMSG_WORDS, a = nameWords + i * NAME_WORDS;
      if ((w[m + W_FLAGS]! & MSG_TRUNC) !== 0) { truncated++; continue; }
      const family = w[a]! & 0xffff;
      if (family !== AF_INET && family !== AF_INET6) continue;
      const len = w[m + W_LEN]!;
      const seg = gro && w[m + W_CONTROLLEN] !== 0 ? b.segmentSize(i) : 0;
      const d = (L.IN_IN_DESC + n * L.IN_DESC_SIZE) >>> 2;
      u32[d] = L.IN_IN + i * stride + L.VNET_HDR_LEN;
      u32[d + 1] = len;
      if (family === AF_INET) {
        u32[d + 2] = w[a + 1]!; // sin_addr: its 4 bytes as they are (network order), as the core reads them
      } else {
        // sin6_addr (words 2..5 of the sockaddr_in6) into IN_SRC6[n]; 0.0.0.0 says so
        const s6 = (L.IN_SRC6 >>> 2) + n * 4;
        u32[s6] = w[a + 2]!; u32[s6 + 1] = w[a + 3]!; u32[s6 + 2] = w[a + 4]!; u32[s6 + 3] = w[a + 5]!;
        u32[d + 2] = 0;
      }
      u32[d + 3] = seg; // segment size (u16); the verdict half is the core's to write
      packets += seg > 0 && len > seg ? Math.ceil(len / seg) : 1;
      bytes += len;
      n++;
    }
    row[C.rxPackets] = row[C.rxPackets]! + packets;
    row[C.rxBytes] = row[C.rxBytes]! + bytes;
    if (truncated > 0) row[C.rxTruncated] = row[C.rxTruncated]! + truncated;
    row[C.rxMessages] = row[C.rxMessages]! + r;
    if (tr) t = stamp(tr, T.inDesc, t);
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

  /**
   * Spinning (SCHED_IDLE) or working (SCHED_OTHER). A thread that may not become SCHED_IDLE (a
   * seccomp filter, say) stops busy-polling for good rather than retry at every packet; failing
   * to return to SCHED_OTHER ends the loop.
   */
  #setIdle(idle: boolean): void {
    const rc = this.#sys.setSchedPolicy(idle ? SCHED_IDLE : SCHED_OTHER);
    if (rc < 0) {
      if (idle) { this.#spinMs = 0; this.#spinUntil = 0; return; } // block as usual from now on
      throw new Error(`udp packet loop: cannot return the packet thread from SCHED_IDLE to SCHED_OTHER (errno ${-rc}): busy-polling (WEFT_UDP_SPIN_US) needs CAP_SYS_NICE`);
    }
    this.#idle = idle;
  }

  /** Writes `count` TUN descriptors {off, len} found at `ring`. */
  #writeTun(ring: number, count: number): void {
    this.#tunWrites += count;
    writeTun(this.#sys, this.#tunFd, this.#bytes, this.#u32, this.#row, ring, count);
  }
}

/** Records the time since `since` for stage `i`; returns now. */
function stamp(tr: LoopTrace, i: number, since: number): number {
  const now = performance.now();
  tr.add(i, now - since);
  return now;
}
