/**
 * @module UDP sockets for the udp backend's data path: open and tune a socket (big buffers,
 * GSO/GRO probes) and move datagrams in batches with `UdpBatch` (recvmmsg/sendmmsg over
 * preallocated headers pointing into caller-owned slots), allocating nothing per batch.
 */
import { parseIP } from "../src/net/ip.ts";
import {
  AF_INET, AF_INET6, findCmsgInt, IOVEC_SIZE, MMSGHDR_SIZE, MSG_TRUNC, MSG_WAITFORONE, O_NONBLOCK,
  SO_RCVBUF, SO_RCVBUFFORCE, SO_REUSEADDR, SO_REUSEPORT, SO_SNDBUF, SO_SNDBUFFORCE, SOCK_CLOEXEC,
  SOCK_DGRAM, sockaddrIn, sockaddrIn6, SOCKADDR_IN_SIZE, SOCKADDR_IN6_SIZE, SOL_SOCKET, SOL_UDP,
  structBuffer, UDP_GRO, UDP_SEGMENT, cmsgLen, EPERM, F_GETFL, F_SETFL, IPPROTO_IPV6, IPV6_V6ONLY,
} from "./linux.ts";
import { check, type Sys } from "./sys.ts";

export interface UdpSocketOptions {
  /** Local address to bind, IPv4 or IPv6 literal ("0.0.0.0" for all). */
  ip: string;
  /** Local port; 0 lets the kernel choose (see `localPort`). */
  port: number;
  /** SO_REUSEADDR and SO_REUSEPORT: several sockets (one per worker) on one port. */
  reuse?: boolean;
  /** O_NONBLOCK: calls return -EAGAIN instead of blocking. */
  nonBlocking?: boolean;
  /** IPV6_V6ONLY on an IPv6 socket: it leaves IPv4 to a socket of its own on the same port. */
  v6only?: boolean;
}

function intValue(n: number): Uint8Array {
  const b = structBuffer(4);
  new DataView(b.buffer).setInt32(0, n, true);
  return b;
}

/**
 * Opens a UDP socket bound to `ip:port` and returns its fd (the caller closes it).
 *
 * Equivalent to flanneld's udp backend socket on `IfaceAddr:Port` (`ss -ulpn` shows it).
 */
export function openUdpSocket(sys: Sys, options: UdpSocketOptions): number {
  const addr = parseIP(options.ip, "UDP socket address");
  const where = addr.family === 4 ? `${options.ip}:${options.port}` : `[${options.ip}]:${options.port}`;
  const sockaddr = addr.family === 4 ? sockaddrIn(addr.ip, options.port) : sockaddrIn6(addr.ip, options.port);
  const fd = check(sys.socket(addr.family === 4 ? AF_INET : AF_INET6, SOCK_DGRAM | SOCK_CLOEXEC, 0), `socket for UDP ${where}`);
  try {
    if (options.reuse) {
      check(sys.setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, intValue(1)), `SO_REUSEADDR on UDP ${where}`);
      check(sys.setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, intValue(1)), `SO_REUSEPORT on UDP ${where}`);
    }
    if (options.v6only && addr.family === 6) {
      check(sys.setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, intValue(1)), `IPV6_V6ONLY on UDP ${where}`);
    }
    if (options.nonBlocking) {
      const fl = check(sys.fcntl(fd, F_GETFL, 0), `F_GETFL on UDP ${where}`);
      check(sys.fcntl(fd, F_SETFL, fl | O_NONBLOCK), `O_NONBLOCK on UDP ${where}`);
    }
    check(sys.bind(fd, sockaddr), `bind UDP ${where}`);
  } catch (e) {
    sys.close(fd);
    throw e;
  }
  return fd;
}

/** The local port a socket is bound to (after binding port 0). */
export function localPort(sys: Sys, fd: number): number {
  const addr = structBuffer(SOCKADDR_IN6_SIZE);
  check(sys.getsockname(fd, addr), `getsockname on fd ${fd}`);
  return (addr[2]! << 8) | addr[3]!;
}

/** 7 MiB, as wireguard-go and quic-go ask for, so bursts of a batch never overflow. */
export const UDP_BUFFER_BYTES = 7 << 20;

/**
 * Sets both socket buffers to `bytes`, past `net.core.[rw]mem_max` when allowed
 * (SO_SNDBUFFORCE/SO_RCVBUFFORCE need CAP_NET_ADMIN; without it, the capped SO_SNDBUF/SO_RCVBUF).
 * Returns the sizes in force as the kernel reports them (twice the request: it counts overhead).
 */
export function setBuffers(sys: Sys, fd: number, bytes = UDP_BUFFER_BYTES): { send: number; recv: number } {
  const value = intValue(bytes);
  for (const [force, plain, what] of [[SO_SNDBUFFORCE, SO_SNDBUF, "send"], [SO_RCVBUFFORCE, SO_RCVBUF, "receive"]] as const) {
    const rc = sys.setsockopt(fd, SOL_SOCKET, force, value);
    if (rc === -EPERM) check(sys.setsockopt(fd, SOL_SOCKET, plain, value), `${what} buffer ${bytes} on fd ${fd}`);
    else check(rc, `forced ${what} buffer ${bytes} on fd ${fd}`);
  }
  const out = structBuffer(4);
  const read = (name: number) => {
    check(sys.getsockopt(fd, SOL_SOCKET, name, out), `getsockopt ${name} on fd ${fd}`);
    return new DataView(out.buffer).getInt32(0, true);
  };
  return { send: read(SO_SNDBUF), recv: read(SO_RCVBUF) };
}

/** Whether the socket accepts UDP_SEGMENT (UDP GSO: one send, many equal datagrams; Linux ≥ 4.18). */
export function probeUdpGso(sys: Sys, fd: number): boolean {
  return sys.getsockopt(fd, SOL_UDP, UDP_SEGMENT, structBuffer(4)) >= 0;
}

/**
 * Turns on UDP_GRO (Linux ≥ 5.0): one receive may return several datagrams of one flow
 * back to back, with their size in a cmsg (`UdpBatch.segmentSize`). Returns whether it took.
 */
export function enableUdpGro(sys: Sys, fd: number): boolean {
  return sys.setsockopt(fd, SOL_UDP, UDP_GRO, intValue(1)) >= 0;
}

/** Room for the sender's address of each message: a sockaddr_in6 fits, rounded to 8. */
const NAME_ROOM = 32;
/** Room for control messages per message (UDP_GRO's int needs 24; more is left for others). */
const CONTROL_ROOM = 64;
/**
 * u32 word offsets inside one mmsghdr (msg_controllen's low half, msg_flags, msg_len; and
 * msg_namelen, which only this module writes), and the
 * words per mmsghdr and per sender address: for hot loops that read `UdpBatch.words` directly
 * instead of calling one accessor per field (see `UdpBatch.nameWords`).
 */
export const W_CONTROLLEN = 10, W_FLAGS = 12, W_LEN = 14;
const W_NAMELEN = 2;
export const MMSG_WORDS = MMSGHDR_SIZE / 4, NAME_WORDS = NAME_ROOM / 4;
const IOV_WORDS = IOVEC_SIZE / 4;

/**
 * A batch of up to `capacity` datagrams for one socket, received with one recvmmsg or sent with
 * one sendmmsg. Headers, iovecs, addresses and control data live in memory the batch owns;
 * payloads live in the caller's `slots`.
 *
 * Ownership:
 * - `slots[i]` (e.g. a fixed region of a Wasm memory) stays the caller's. The batch stores its
 *   address once, so it must never move or detach while the batch lives (no growable memory,
 *   no transfer). The kernel writes into it only during `recv()` and reads it only during
 *   `send()`; between calls the caller may read and rewrite it freely.
 * - Per-message results (`length`, `source*`, `segmentSize`, `truncated`) are valid from one
 *   `recv()` to the next `recv()`/`send()`.
 * - Send settings (`setLength`, `setDestination*`, `setSegmentSize`) hold until changed or until
 *   a `recv()`, which overwrites lengths and addresses (so received datagrams can be echoed).
 *
 * @example
 *   const batch = new UdpBatch(sys, fd, slots);        // slots: Uint8Array[] of 2048 bytes
 *   const n = batch.recv();                             // blocks for the first datagram
 *   for (let i = 0; i < n; i++) handle(slots[i], batch.length(i), batch.sourceIPv4(i));
 */
export class UdpBatch {
  readonly capacity: number;
  private readonly mem: Uint8Array;
  /**
   * The batch's memory as u32 words (host order): message `i`'s header starts at word
   * `i * MMSG_WORDS`, its sender's sockaddr at `nameWords + i * NAME_WORDS` (sa_family in the
   * low 16 bits of the first word, an IPv4 address in the second, in network byte order).
   * Read-only for callers; valid as the accessors' results are.
   */
  readonly words: Uint32Array;
  /** Word offset of message 0's sender address in `words`. */
  readonly nameWords: number;
  private readonly from: Uint8Array[];
  private readonly slotLength: Uint32Array;
  private readonly gso: Uint16Array;
  private readonly iovOff: number;
  private readonly nameOff: number;
  private readonly controlOff: number;

  constructor(private readonly sys: Sys, readonly fd: number, slots: readonly Uint8Array[]) {
    const n = slots.length;
    if (n === 0 || n > 1024) throw new RangeError(`UdpBatch of ${n} slots is invalid (1..1024, the kernel's UIO_MAXIOV)`);
    this.capacity = n;
    this.iovOff = n * MMSGHDR_SIZE;
    this.nameOff = this.iovOff + n * IOVEC_SIZE;
    this.controlOff = this.nameOff + n * NAME_ROOM;
    this.nameWords = this.nameOff / 4;
    this.mem = structBuffer(this.controlOff + n * CONTROL_ROOM);
    this.words = new Uint32Array(this.mem.buffer);
    this.slotLength = new Uint32Array(n);
    this.gso = new Uint16Array(n);
    this.from = [];
    const base = sys.addressOf(this.mem);
    const pointer = (w: number, addr: bigint) => {
      this.words[w] = Number(addr & 0xffffffffn);
      this.words[w + 1] = Number(addr >> 32n);
    };
    for (let i = 0; i < n; i++) {
      const slot = slots[i]!;
      if (slot.byteLength === 0) throw new RangeError(`UdpBatch slot ${i} is empty`);
      this.slotLength[i] = slot.byteLength;
      const m = i * MMSG_WORDS, iov = (this.iovOff + i * IOVEC_SIZE) / 4;
      pointer(m, base + BigInt(this.nameOff + i * NAME_ROOM));
      pointer(m + 4, base + BigInt(this.iovOff + i * IOVEC_SIZE));
      this.words[m + 6] = 1; // msg_iovlen
      pointer(m + 8, base + BigInt(this.controlOff + i * CONTROL_ROOM));
      pointer(iov, sys.addressOf(slot));
      this.words[iov + 2] = slot.byteLength;
      this.from.push(this.mem.subarray(i * MMSGHDR_SIZE));
    }
  }

  /**
   * Receives up to `n` datagrams with one recvmmsg into slots 0..n-1. Returns how many arrived,
   * or -errno (-EAGAIN with MSG_DONTWAIT when none is queued). The default MSG_WAITFORONE blocks
   * until the first datagram, then takes only what is already queued.
   */
  recv(n = this.capacity, flags = MSG_WAITFORONE): number {
    if (n > this.capacity) throw new RangeError(`UdpBatch.recv of ${n} exceeds its capacity ${this.capacity}`);
    const w = this.words;
    for (let i = 0; i < n; i++) {
      const m = i * MMSG_WORDS;
      w[m + W_NAMELEN] = NAME_ROOM;
      w[m + W_CONTROLLEN] = CONTROL_ROOM;
      w[m + W_FLAGS] = 0;
      w[(this.iovOff >> 2) + i * IOV_WORDS + 2] = this.slotLength[i]!;
    }
    return this.sys.recvmmsg(this.fd, this.mem, n, flags);
  }

  /**
   * Sends messages `start`..`start+n-1` with one sendmmsg. Returns how many the kernel took
   * (send the rest again from `start + result`), or -errno. -EIO on a message with a segment
   * size means the device cannot segment: clear `setSegmentSize` and resend.
   */
  send(n: number, flags = 0, start = 0): number {
    if (start + n > this.capacity) throw new RangeError(`UdpBatch.send of ${start}+${n} exceeds its capacity ${this.capacity}`);
    const w = this.words;
    for (let i = start; i < start + n; i++) {
      const m = i * MMSG_WORDS;
      const seg = this.gso[i]!;
      if (seg === 0) {
        w[m + W_CONTROLLEN] = 0;
      } else {
        // struct cmsghdr { size_t len = CMSG_LEN(2); int level = SOL_UDP; int type = UDP_SEGMENT } u16 size
        const c = (this.controlOff >> 2) + i * (CONTROL_ROOM >> 2);
        w[c] = cmsgLen(2); w[c + 1] = 0; w[c + 2] = SOL_UDP; w[c + 3] = UDP_SEGMENT; w[c + 4] = seg;
        w[m + W_CONTROLLEN] = 24; // CMSG_SPACE(2)
      }
      w[m + W_FLAGS] = 0;
    }
    return this.sys.sendmmsg(this.fd, this.from[start]!, n, flags);
  }

  /** Bytes of message `i` to send (at most its slot's size). */
  setLength(i: number, len: number): void {
    if (len > this.slotLength[i]!) throw new RangeError(`UdpBatch length ${len} exceeds slot ${i}'s ${this.slotLength[i]} bytes`);
    this.words[(this.iovOff >> 2) + i * IOV_WORDS + 2] = len;
  }

  /** Sends message `i` to IPv4 `ip` (unsigned 32-bit number) and `port`. */
  setDestination(i: number, ip: number, port: number): void {
    const o = this.nameOff + i * NAME_ROOM, b = this.mem;
    b[o] = AF_INET; b[o + 1] = 0; b[o + 2] = port >>> 8; b[o + 3] = port;
    b[o + 4] = ip >>> 24; b[o + 5] = ip >>> 16; b[o + 6] = ip >>> 8; b[o + 7] = ip;
    b.fill(0, o + 8, o + SOCKADDR_IN_SIZE);
    this.words[i * MMSG_WORDS + W_NAMELEN] = SOCKADDR_IN_SIZE;
  }

  /** Sends message `i` to a prebuilt sockaddr (sockaddr_in or sockaddr_in6), copied. */
  setDestinationAddr(i: number, sockaddr: Uint8Array): void {
    if (sockaddr.byteLength > SOCKADDR_IN6_SIZE) throw new RangeError(`sockaddr of ${sockaddr.byteLength} bytes exceeds ${SOCKADDR_IN6_SIZE}`);
    this.mem.set(sockaddr, this.nameOff + i * NAME_ROOM);
    this.words[i * MMSG_WORDS + W_NAMELEN] = sockaddr.byteLength;
  }

  /**
   * UDP GSO for message `i`: its payload is cut into datagrams of `size` bytes (the last may be
   * shorter), each sent as its own packet. 0 sends the payload as one datagram.
   */
  setSegmentSize(i: number, size: number): void {
    if (!Number.isInteger(size) || size < 0 || size > 65535) throw new RangeError(`UDP segment size ${size} is out of range (0..65535)`);
    this.gso[i] = size;
  }

  /** Bytes received (after recv) or sent (after send) for message `i`. */
  length(i: number): number {
    return this.words[i * MMSG_WORDS + W_LEN]!;
  }

  /** Whether message `i` was longer than its slot (the rest is lost). */
  truncated(i: number): boolean {
    return (this.words[i * MMSG_WORDS + W_FLAGS]! & MSG_TRUNC) !== 0;
  }

  /** Address family of message `i`'s sender: AF_INET (2) or AF_INET6 (10). */
  sourceFamily(i: number): number {
    const o = this.nameOff + i * NAME_ROOM;
    return this.mem[o]! | (this.mem[o + 1]! << 8);
  }

  /** Sender's IPv4 address of message `i` as an unsigned 32-bit number (AF_INET only). */
  sourceIPv4(i: number): number {
    const o = this.nameOff + i * NAME_ROOM + 4, b = this.mem;
    return ((b[o]! << 24) | (b[o + 1]! << 16) | (b[o + 2]! << 8) | b[o + 3]!) >>> 0;
  }

  /** Sender's port of message `i`. */
  sourcePort(i: number): number {
    const o = this.nameOff + i * NAME_ROOM + 2;
    return (this.mem[o]! << 8) | this.mem[o + 1]!;
  }

  /**
   * With UDP_GRO: the size of each datagram coalesced into message `i` (its length is then a
   * multiple of it, plus a shorter last one); 0 when the message is a single datagram.
   */
  segmentSize(i: number): number {
    const len = this.words[i * MMSG_WORDS + W_CONTROLLEN]!;
    if (len === 0) return 0;
    const size = findCmsgInt(this.mem, this.controlOff + i * CONTROL_ROOM, len, SOL_UDP, UDP_GRO);
    return size < 0 ? 0 : size;
  }
}
