/**
 * @module NetlinkSocket: one NETLINK_ROUTE socket over `Sys` that sends requests and reads their
 * answers: an ack or NetlinkError (`ack`), a single reply (`get`), a multipart dump (`dump`), or
 * acks for many requests sent together (`batch`, how 1000 peers are programmed at once). Calls
 * block the calling thread (poll with a timeout, then recv); each is sub-millisecond, which the
 * agent's main thread accepts.
 *
 * Buffers: the socket owns one receive buffer; messages handed to a `parse` callback are views
 * into it, valid only during the callback. Requests are the caller's; `setSeq` writes their
 * sequence number in place before sending.
 */
import {
  EAGAIN, EINTR, MSG_DONTWAIT, POLLFD_SIZE, POLLIN, SO_RCVBUF, SO_RCVBUFFORCE, SOCK_CLOEXEC, SOCK_NONBLOCK, SOCK_RAW,
  SOL_SOCKET, setPollfd, sockaddrNl, structBuffer,
} from "../linux.ts";
import type { Sys } from "../sys.ts";
import { check } from "../sys.ts";
import {
  AF_NETLINK, NETLINK_CAP_ACK, NETLINK_EXT_ACK, NETLINK_ROUTE, NLM_F_ACK, NLM_F_DUMP_INTR, NLMSG_DONE, NLMSG_ERROR,
  NLMSG_HDRLEN, NLMSG_NOOP, NLMSG_OVERRUN, SOL_NETLINK,
} from "./constants.ts";
import { NetlinkError } from "./error.ts";
import { type NetlinkMessage, messageHeader, parseErrorReply, parseMessages, setSeq } from "./message.ts";

/** One encoded request with what to say about it if the kernel refuses it. */
export interface NetlinkRequest {
  /** The encoded message (its sequence number is overwritten when sent). */
  readonly msg: Uint8Array;
  /** The operation, e.g. "routeReplace". */
  readonly op: string;
  /** The request in `ip` terms, e.g. "10.244.1.0/24 via 10.244.1.0 dev 4 onlink". */
  readonly summary: string;
}

export interface NetlinkSocketOptions {
  /** How long to wait for each answer, in ms. Default 5000. */
  readonly timeoutMs?: number;
  /** Requests sent per sendto in `batch`; their acks must fit the receive buffer. Default 256. */
  readonly batchChunk?: number;
}

const ETIMEDOUT = 110;
const ENOBUFS = 105;

/** Receive buffer: dumps come in skbs of at most 32 KiB; one page more for safety. */
const RECV_BUF = 64 * 1024;
/** Socket receive queue asked for, so a chunk of acks never overruns it (needs CAP_NET_ADMIN to pass rmem_max). */
const RCVBUF_BYTES = 4 * 1024 * 1024;
const DUMP_RETRIES = 3;

function int32(v: number): Uint8Array {
  const b = structBuffer(4);
  new DataView(b.buffer).setInt32(0, v, true);
  return b;
}

/**
 * Opens a NETLINK_ROUTE socket with extended acks and capped acks turned on. Shared by
 * NetlinkSocket and NetlinkMonitor.
 */
export function openRouteSocket(sys: Sys, nonblocking: boolean, op: string): number {
  const fd = check(sys.socket(AF_NETLINK, SOCK_RAW | SOCK_CLOEXEC | (nonblocking ? SOCK_NONBLOCK : 0), NETLINK_ROUTE), `${op}: socket(AF_NETLINK)`);
  try {
    check(sys.bind(fd, sockaddrNl(0, 0)), `${op}: bind(AF_NETLINK)`);
    // Best effort: older kernels lack these; the answers are then only less informative.
    sys.setsockopt(fd, SOL_NETLINK, NETLINK_EXT_ACK, int32(1));
    sys.setsockopt(fd, SOL_NETLINK, NETLINK_CAP_ACK, int32(1));
    if (sys.setsockopt(fd, SOL_SOCKET, SO_RCVBUFFORCE, int32(RCVBUF_BYTES)) < 0) {
      sys.setsockopt(fd, SOL_SOCKET, SO_RCVBUF, int32(RCVBUF_BYTES));
    }
  } catch (e) {
    sys.close(fd);
    throw e;
  }
  return fd;
}

export class NetlinkSocket {
  private seq = Math.floor(Math.random() * 0x7fffffff);
  private readonly buf = structBuffer(RECV_BUF);
  private readonly pollfd = structBuffer(POLLFD_SIZE);
  private readonly kernel = sockaddrNl(0, 0);
  private readonly timeoutMs: number;
  private readonly batchChunk: number;
  private closed = false;

  private constructor(private readonly sys: Sys, readonly fd: number, opts: NetlinkSocketOptions) {
    this.timeoutMs = opts.timeoutMs ?? 5000;
    this.batchChunk = opts.batchChunk ?? 256;
    setPollfd(this.pollfd, 0, fd, POLLIN);
  }

  /** Opens a socket: `socket(AF_NETLINK, SOCK_RAW|SOCK_CLOEXEC, NETLINK_ROUTE)` + bind. */
  static open(sys: Sys, opts: NetlinkSocketOptions = {}): NetlinkSocket {
    return new NetlinkSocket(sys, openRouteSocket(sys, false, "NetlinkSocket.open"), opts);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sys.close(this.fd);
  }

  /** Sends a request that asks for an ack; returns on success, throws NetlinkError otherwise. */
  ack(req: NetlinkRequest): void {
    const err = this.batch([req])[0];
    if (err) throw err;
  }

  /**
   * Sends a request answered by one message (a get by name/index, `ip route get`) and returns
   * `parse` of it. A kernel error throws NetlinkError.
   */
  get<T>(req: NetlinkRequest, parse: (m: NetlinkMessage) => T): T {
    const seq = this.send(req.msg, req);
    for (;;) {
      for (const m of this.receive(req)) {
        if (m.seq !== seq) continue; // a late answer to an earlier, timed-out request
        if (m.type === NLMSG_ERROR) this.throwIfError(m, req);
        else return parse(m);
      }
    }
  }

  /**
   * Sends a dump request and returns `parse` of every reply part, dropping `undefined`s (so
   * `parse` can filter). A dump the kernel marks interrupted (the table changed meanwhile) is
   * retried.
   */
  dump<T>(req: NetlinkRequest, parse: (m: NetlinkMessage) => T | undefined): T[] {
    for (let attempt = 1; ; attempt++) {
      const seq = this.send(req.msg, req);
      const out: T[] = [];
      let interrupted = false;
      let done = false;
      while (!done) {
        for (const m of this.receive(req)) {
          if (m.seq !== seq) continue;
          if (m.flags & NLM_F_DUMP_INTR) interrupted = true;
          if (m.type === NLMSG_DONE) { done = true; break; }
          if (m.type === NLMSG_ERROR) this.throwIfError(m, req);
          else if (m.type !== NLMSG_NOOP && m.type !== NLMSG_OVERRUN) {
            const v = parse(m);
            if (v !== undefined) out.push(v);
          }
        }
      }
      if (!interrupted) return out;
      if (attempt >= DUMP_RETRIES) {
        throw new NetlinkError(4, req.op, `${req.summary} (dump interrupted ${attempt} times; the table keeps changing)`);
      }
    }
  }

  /**
   * Sends many requests (each must ask for an ack) a chunk per sendto, then collects every ack.
   * Returns one entry per request: null for success, the NetlinkError otherwise. Nothing is
   * retried or rolled back: that is the caller's policy.
   */
  batch(reqs: readonly NetlinkRequest[]): (NetlinkError | null)[] {
    const results: (NetlinkError | null)[] = new Array(reqs.length).fill(null);
    for (let start = 0; start < reqs.length; start += this.batchChunk) {
      const chunk = reqs.slice(start, start + this.batchChunk);
      this.batchChunkOnce(chunk, start, results);
    }
    return results;
  }

  private batchChunkOnce(chunk: readonly NetlinkRequest[], base: number, results: (NetlinkError | null)[]): void {
    let total = 0;
    for (const r of chunk) {
      const h = messageHeader(r.msg);
      if (!(h.flags & NLM_F_ACK)) throw new TypeError(`netlink batch: ${r.op} ${r.summary} does not ask for an ack (NLM_F_ACK)`);
      total += (h.len + 3) & ~3;
    }
    const out = new Uint8Array(total);
    const indexOfSeq = new Map<number, number>();
    let off = 0;
    for (const [i, r] of chunk.entries()) {
      const seq = this.nextSeq();
      indexOfSeq.set(seq, i);
      out.set(r.msg, off);
      setSeq(out, seq, off);
      off += (r.msg.length + 3) & ~3;
    }
    const sent = this.sys.sendto(this.fd, out, out.length, 0, this.kernel);
    if (sent < 0) throw new NetlinkError(-sent, chunk[0]!.op, `${chunk[0]!.summary} (sendto of ${chunk.length} requests)`);
    while (indexOfSeq.size > 0) {
      for (const m of this.receive(chunk[0]!, `${indexOfSeq.size} of ${chunk.length} acks missing`)) {
        if (m.type !== NLMSG_ERROR) continue;
        const i = indexOfSeq.get(m.seq);
        if (i === undefined) continue; // not ours, or answered already
        indexOfSeq.delete(m.seq);
        const e = parseErrorReply(m);
        if (e.errno !== 0) results[base + i] = new NetlinkError(e.errno, chunk[i]!.op, chunk[i]!.summary, e.extAck);
      }
    }
  }

  private nextSeq(): number {
    this.seq = (this.seq + 1) >>> 0;
    if (this.seq === 0) this.seq = 1;
    return this.seq;
  }

  private send(msg: Uint8Array, req: NetlinkRequest): number {
    const seq = this.nextSeq();
    setSeq(msg, seq);
    const n = this.sys.sendto(this.fd, msg, msg.length, 0, this.kernel);
    if (n < 0) throw new NetlinkError(-n, req.op, `${req.summary} (sendto)`);
    return seq;
  }

  /** Waits up to the timeout for one datagram and splits it into messages (views into `buf`). */
  private receive(req: NetlinkRequest, waiting = "no answer"): NetlinkMessage[] {
    if (this.closed) throw new Error("netlink: socket is closed");
    for (;;) {
      const ready = this.sys.poll(this.pollfd, 1, this.timeoutMs);
      if (ready === -EINTR) continue;
      if (ready < 0) throw new NetlinkError(-ready, req.op, `${req.summary} (poll)`);
      if (ready === 0) throw new NetlinkError(ETIMEDOUT, req.op, `${req.summary} (${waiting} after ${this.timeoutMs} ms)`);
      const n = this.sys.recvfrom(this.fd, this.buf, this.buf.length, MSG_DONTWAIT, null);
      if (n === -EINTR || n === -EAGAIN) continue;
      if (n === -ENOBUFS) {
        throw new NetlinkError(ENOBUFS, req.op, `${req.summary} (receive queue overrun: answers were lost)`);
      }
      if (n < 0) throw new NetlinkError(-n, req.op, `${req.summary} (recvfrom)`);
      if (n < NLMSG_HDRLEN) continue;
      return parseMessages(this.buf, n);
    }
  }

  private throwIfError(m: NetlinkMessage, req: NetlinkRequest): void {
    const e = parseErrorReply(m);
    if (e.errno !== 0) throw new NetlinkError(e.errno, req.op, req.summary, e.extAck);
  }
}
