/**
 * @module The Linux ABI weft speaks: constants and pure packers for the structures its syscalls
 * take. No FFI here, so everything is tested byte for byte without a kernel.
 *
 * Layout: x86_64 (LP64, little-endian). arm64 has the same sizes, offsets and values for every
 * structure and constant in this file (both use the generic LP64 layout; the few constants that
 * differ between the two, such as O_DIRECTORY, are left out). "Host order" below means
 * little-endian; network order fields (ports, IPv4/IPv6 addresses) are big-endian.
 *
 *   struct iovec      16  { void *iov_base @0; size_t iov_len @8 }
 *   struct msghdr     56  { void *msg_name @0; u32 msg_namelen @8; struct iovec *msg_iov @16;
 *                           size_t msg_iovlen @24; void *msg_control @32;
 *                           size_t msg_controllen @40; int msg_flags @48 }
 *   struct mmsghdr    64  { struct msghdr msg_hdr @0; u32 msg_len @56 }
 *   struct cmsghdr    16  { size_t cmsg_len @0; int cmsg_level @8; int cmsg_type @12 } + data
 *   struct pollfd      8  { int fd @0; short events @4; short revents @6 }
 *   sockaddr_in       16  { u16 family @0; be16 port @2; be32 addr @4; zero[8] }
 *   sockaddr_in6      28  { u16 family @0; be16 port @2; be32 flowinfo @4; addr[16] @8;
 *                           u32 scope_id @24 }
 *   sockaddr_nl       12  { u16 family @0; u16 pad; u32 pid @4; u32 groups @8 }
 *   struct ifreq      40  { char name[16] @0; union { short flags; int mtu; int ifindex } @16 }
 *
 * Memory that the kernel reaches through a pointer stored in another structure (iovec bases,
 * msghdr names and controls) must not move while in use: allocate it with `structBuffer()`
 * (an explicit ArrayBuffer, never moved by either engine's GC) or take it from a fixed-size
 * `WebAssembly.Memory`.
 */

// ---------------------------------------------------------------- sockets

export const AF_UNSPEC = 0;
export const AF_UNIX = 1;
export const AF_INET = 2;
export const AF_INET6 = 10;
export const AF_NETLINK = 16;
export const AF_PACKET = 17;

export const SOCK_STREAM = 1;
export const SOCK_DGRAM = 2;
export const SOCK_RAW = 3;
export const SOCK_NONBLOCK = 0o4000;
export const SOCK_CLOEXEC = 0o2000000;

export const SOL_IP = 0;
export const SOL_SOCKET = 1;
export const SOL_UDP = 17;
export const SOL_IPV6 = 41;
export const SOL_NETLINK = 270;

export const IPPROTO_IP = 0;
export const IPPROTO_ICMP = 1;
export const IPPROTO_TCP = 6;
export const IPPROTO_UDP = 17;
export const IPPROTO_IPV6 = 41;
export const IPPROTO_ICMPV6 = 58;

export const NETLINK_ROUTE = 0;
export const NETLINK_ADD_MEMBERSHIP = 1;
export const NETLINK_DROP_MEMBERSHIP = 2;
export const NETLINK_EXT_ACK = 11;
export const NETLINK_GET_STRICT_CHK = 12;

export const SO_TYPE = 3;
export const SO_ERROR = 4;
export const SO_REUSEADDR = 2;
export const SO_SNDBUF = 7;
export const SO_RCVBUF = 8;
export const SO_REUSEPORT = 15;
export const SO_BINDTODEVICE = 25;
export const SO_SNDBUFFORCE = 32;
export const SO_RCVBUFFORCE = 33;

export const IP_TOS = 1;
export const IP_TTL = 2;
export const IP_PKTINFO = 8;
export const IP_MTU_DISCOVER = 10;
export const IP_PMTUDISC_DONT = 0;
export const IPV6_V6ONLY = 26;

/** setsockopt(SOL_UDP, UDP_SEGMENT, u16 size) or a cmsg: UDP GSO (Linux 4.18). */
export const UDP_SEGMENT = 103;
/** setsockopt(SOL_UDP, UDP_GRO, int 1): coalesced receive, segment size in a cmsg (Linux 5.0). */
export const UDP_GRO = 104;

export const MSG_PEEK = 0x2;
export const MSG_CTRUNC = 0x8;
export const MSG_TRUNC = 0x20;
export const MSG_DONTWAIT = 0x40;
export const MSG_ERRQUEUE = 0x2000;
export const MSG_NOSIGNAL = 0x4000;
/** recvmmsg: block for the first message only, then take what is queued. */
export const MSG_WAITFORONE = 0x10000;

// ---------------------------------------------------------------- files

export const O_RDONLY = 0;
export const O_WRONLY = 1;
export const O_RDWR = 2;
export const O_CREAT = 0o100;
export const O_EXCL = 0o200;
export const O_TRUNC = 0o1000;
export const O_APPEND = 0o2000;
export const O_NONBLOCK = 0o4000;
export const O_CLOEXEC = 0o2000000;

export const F_GETFD = 1;
export const F_SETFD = 2;
export const F_GETFL = 3;
export const F_SETFL = 4;
export const FD_CLOEXEC = 1;

/** flock(2) operations. */
export const LOCK_SH = 1;
export const LOCK_EX = 2;
export const LOCK_NB = 4;
export const LOCK_UN = 8;

/** ioctl on a namespace file (linux/nsfs.h): its type, as the CLONE_NEW* flag. */
export const NS_GET_NSTYPE = 0xb703;
export const CLONE_NEWNET = 0x40000000;

export const POLLIN = 0x1;
export const POLLPRI = 0x2;
export const POLLOUT = 0x4;
export const POLLERR = 0x8;
export const POLLHUP = 0x10;
export const POLLNVAL = 0x20;

// ---------------------------------------------------------------- scheduling (sched_setscheduler)

export const SCHED_OTHER = 0;
/** Runs only when nothing else wants the CPU; any waking thread preempts it at once. */
export const SCHED_IDLE = 5;

// ---------------------------------------------------------------- errno

export const EPERM = 1;
export const ENOENT = 2;
export const EINTR = 4;
export const EIO = 5;
export const EBADF = 9;
export const EAGAIN = 11;
export const EBUSY = 16;
export const EEXIST = 17;
export const ENODEV = 19;
export const EINVAL = 22;
export const EMSGSIZE = 90;
export const ENOPROTOOPT = 92;
export const EOPNOTSUPP = 95;

// ---------------------------------------------------------------- interfaces and TUN

export const SIOCGIFNAME = 0x8910;
export const SIOCGIFFLAGS = 0x8913;
export const SIOCSIFFLAGS = 0x8914;
export const SIOCGIFADDR = 0x8915;
export const SIOCGIFMTU = 0x8921;
export const SIOCSIFMTU = 0x8922;
export const SIOCGIFINDEX = 0x8933;

/** Device flags (ifreq.ifr_flags with SIOCGIFFLAGS). */
export const IFF_UP = 0x1;
export const IFF_RUNNING = 0x40;

/** TUN ioctls: _IOW('T', nr, int) and _IOR('T', nr, unsigned int) from linux/if_tun.h. */
export const TUNSETIFF = 0x400454ca;
export const TUNSETPERSIST = 0x400454cb;
export const TUNGETFEATURES = 0x800454cf;
export const TUNSETOFFLOAD = 0x400454d0;
export const TUNGETIFF = 0x800454d2;
export const TUNGETVNETHDRSZ = 0x800454d7;
export const TUNSETVNETHDRSZ = 0x400454d8;
export const TUNSETQUEUE = 0x400454d9;

/** TUNSETIFF flags (ifreq.ifr_flags). Distinct from the device flags above. */
export const IFF_TUN = 0x0001;
export const IFF_TAP = 0x0002;
export const IFF_MULTI_QUEUE = 0x0100;
export const IFF_ATTACH_QUEUE = 0x0200;
export const IFF_DETACH_QUEUE = 0x0400;
export const IFF_NO_PI = 0x1000;
export const IFF_VNET_HDR = 0x4000;

/** TUNSETOFFLOAD flags: what the kernel may hand us unsegmented / without checksum. */
export const TUN_F_CSUM = 0x01;
export const TUN_F_TSO4 = 0x02;
export const TUN_F_TSO6 = 0x04;
export const TUN_F_TSO_ECN = 0x08;
export const TUN_F_USO4 = 0x20;
export const TUN_F_USO6 = 0x40;

/** `struct virtio_net_hdr` before each packet on an IFF_VNET_HDR TUN (host order fields). */
export const VIRTIO_NET_HDR_LEN = 10;

export const IFNAMSIZ = 16;

// ---------------------------------------------------------------- structure sizes

export const IOVEC_SIZE = 16;
export const MSGHDR_SIZE = 56;
export const MMSGHDR_SIZE = 64;
export const CMSGHDR_SIZE = 16;
export const POLLFD_SIZE = 8;
export const SOCKADDR_IN_SIZE = 16;
export const SOCKADDR_IN6_SIZE = 28;
export const SOCKADDR_NL_SIZE = 12;
export const IFREQ_SIZE = 40;

/** Field offsets of `struct msghdr` (and of an `mmsghdr`'s header; `len` is msg_len). */
export const MSGHDR = {
  name: 0, namelen: 8, iov: 16, iovlen: 24, control: 32, controllen: 40, flags: 48, len: 56,
} as const;

/**
 * `size` zeroed bytes in their own ArrayBuffer: memory that neither engine moves, so its
 * address may be stored in structures the kernel reads later.
 */
export function structBuffer(size: number): Uint8Array {
  return new Uint8Array(new ArrayBuffer(size));
}

function view(buf: Uint8Array): DataView {
  return new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
}

function need(buf: Uint8Array, off: number, size: number, what: string): void {
  if (!Number.isInteger(off) || off < 0 || off + size > buf.byteLength) {
    throw new RangeError(`${what} needs ${size} bytes at offset ${off}, buffer has ${buf.byteLength}`);
  }
}

function checkPort(port: number): void {
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    throw new RangeError(`port ${port} is out of range (0..65535)`);
  }
}

// ---------------------------------------------------------------- sockaddrs

/**
 * A `sockaddr_in` for IPv4 `ip` (an unsigned 32-bit number, as `src/net/ip.ts` parses it) and
 * `port`, written into `out` at `off` (a new 16-byte structBuffer by default).
 */
export function sockaddrIn(ip: number, port: number, out = structBuffer(SOCKADDR_IN_SIZE), off = 0): Uint8Array {
  checkPort(port);
  need(out, off, SOCKADDR_IN_SIZE, "sockaddr_in");
  const v = view(out);
  v.setUint16(off, AF_INET, true);
  v.setUint16(off + 2, port, false);
  v.setUint32(off + 4, ip >>> 0, false);
  out.fill(0, off + 8, off + 16);
  return out;
}

/** A `sockaddr_in6` for IPv6 `ip` (a bigint) and `port`, with an optional scope (interface index). */
export function sockaddrIn6(
  ip: bigint, port: number, scopeId = 0, out = structBuffer(SOCKADDR_IN6_SIZE), off = 0,
): Uint8Array {
  checkPort(port);
  need(out, off, SOCKADDR_IN6_SIZE, "sockaddr_in6");
  const v = view(out);
  v.setUint16(off, AF_INET6, true);
  v.setUint16(off + 2, port, false);
  v.setUint32(off + 4, 0, false);
  for (let i = 15; i >= 0; i--) { out[off + 8 + i] = Number(ip & 0xffn); ip >>= 8n; }
  v.setUint32(off + 24, scopeId >>> 0, true);
  return out;
}

/** A `sockaddr_nl`: `pid` 0 lets the kernel pick (or means "the kernel" as a destination). */
export function sockaddrNl(pid = 0, groups = 0, out = structBuffer(SOCKADDR_NL_SIZE), off = 0): Uint8Array {
  need(out, off, SOCKADDR_NL_SIZE, "sockaddr_nl");
  const v = view(out);
  v.setUint16(off, AF_NETLINK, true);
  v.setUint16(off + 2, 0, true);
  v.setUint32(off + 4, pid >>> 0, true);
  v.setUint32(off + 8, groups >>> 0, true);
  return out;
}

export type Sockaddr =
  | { family: typeof AF_INET; ip: number; port: number }
  | { family: typeof AF_INET6; ip: bigint; port: number; scopeId: number }
  | { family: typeof AF_NETLINK; pid: number; groups: number };

/** Decodes a sockaddr_in, sockaddr_in6 or sockaddr_nl (cold paths; hot paths read fields directly). */
export function parseSockaddr(buf: Uint8Array, off = 0): Sockaddr {
  need(buf, off, 2, "sockaddr");
  const v = view(buf);
  const family = v.getUint16(off, true);
  if (family === AF_INET) {
    need(buf, off, SOCKADDR_IN_SIZE, "sockaddr_in");
    return { family, ip: v.getUint32(off + 4, false), port: v.getUint16(off + 2, false) };
  }
  if (family === AF_INET6) {
    need(buf, off, SOCKADDR_IN6_SIZE, "sockaddr_in6");
    let ip = 0n;
    for (let i = 0; i < 16; i++) ip = (ip << 8n) | BigInt(buf[off + 8 + i]!);
    return { family, ip, port: v.getUint16(off + 2, false), scopeId: v.getUint32(off + 24, true) };
  }
  if (family === AF_NETLINK) {
    need(buf, off, SOCKADDR_NL_SIZE, "sockaddr_nl");
    return { family, pid: v.getUint32(off + 4, true), groups: v.getUint32(off + 8, true) };
  }
  throw new TypeError(`sockaddr family ${family} is not supported (AF_INET 2, AF_INET6 10, AF_NETLINK 16)`);
}

// ---------------------------------------------------------------- ifreq

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Checks a Linux interface name: 1..15 bytes, no '/', ':' or whitespace. */
export function checkIfName(name: string): Uint8Array {
  const bytes = encoder.encode(name);
  if (bytes.length === 0 || bytes.length >= IFNAMSIZ || /[\s/:]/.test(name) || name === "." || name === "..") {
    throw new RangeError(`interface name ${JSON.stringify(name)} is invalid (1..15 bytes, no '/', ':' or spaces)`);
  }
  return bytes;
}

/**
 * A 40-byte `struct ifreq` for interface `name` with `ifr_flags` = `flags` (the union's first
 * 16 bits; pass 0 for requests that fill the union, e.g. SIOCGIFMTU).
 */
export function ifreq(name: string, flags = 0): Uint8Array {
  const out = structBuffer(IFREQ_SIZE);
  out.set(checkIfName(name));
  view(out).setUint16(16, flags & 0xffff, true);
  return out;
}

/** The NUL-terminated name in an ifreq (e.g. the one TUNSETIFF chose). */
export function ifreqName(req: Uint8Array): string {
  const end = req.subarray(0, IFNAMSIZ).indexOf(0);
  return decoder.decode(req.subarray(0, end < 0 ? IFNAMSIZ : end));
}

/** The union of an ifreq read as `short ifr_flags`. */
export function ifreqFlags(req: Uint8Array): number {
  return view(req).getUint16(16, true);
}

/** The union of an ifreq read as `int` (ifr_mtu, ifr_ifindex). */
export function ifreqInt(req: Uint8Array): number {
  return view(req).getInt32(16, true);
}

// ---------------------------------------------------------------- iovec, msghdr, mmsghdr, cmsg

/** Writes `struct iovec { base, len }` at `off`. */
export function setIovec(buf: Uint8Array, off: number, base: bigint, len: number): void {
  need(buf, off, IOVEC_SIZE, "iovec");
  const v = view(buf);
  v.setBigUint64(off, base, true);
  v.setBigUint64(off + 8, BigInt(len), true);
}

/** The fields of a `struct msghdr`; addresses come from `Sys.addressOf()`, 0n for none. */
export interface MsghdrFields {
  name?: bigint; nameLen?: number;
  iov: bigint; iovLen: number;
  control?: bigint; controlLen?: number;
  flags?: number;
}

/** Writes a `struct msghdr` at `off` (also the header of an `mmsghdr`; msg_len is left alone). */
export function setMsghdr(buf: Uint8Array, off: number, m: MsghdrFields): void {
  need(buf, off, MSGHDR_SIZE, "msghdr");
  const v = view(buf);
  v.setBigUint64(off + MSGHDR.name, m.name ?? 0n, true);
  v.setUint32(off + MSGHDR.namelen, m.nameLen ?? 0, true);
  v.setUint32(off + MSGHDR.namelen + 4, 0, true);
  v.setBigUint64(off + MSGHDR.iov, m.iov, true);
  v.setBigUint64(off + MSGHDR.iovlen, BigInt(m.iovLen), true);
  v.setBigUint64(off + MSGHDR.control, m.control ?? 0n, true);
  v.setBigUint64(off + MSGHDR.controllen, BigInt(m.controlLen ?? 0), true);
  v.setInt32(off + MSGHDR.flags, m.flags ?? 0, true);
  v.setUint32(off + MSGHDR.flags + 4, 0, true);
}

/** `msg_len` of the `i`th mmsghdr in `vec`: bytes received or sent for that message. */
export function mmsgLen(vec: Uint8Array, i: number): number {
  return view(vec).getUint32(i * MMSGHDR_SIZE + MSGHDR.len, true);
}

/** CMSG_ALIGN: control data is aligned to 8 bytes (sizeof(size_t)). */
export function cmsgAlign(n: number): number {
  return (n + 7) & ~7;
}

/** CMSG_SPACE(n): room one control message with `n` data bytes takes. */
export function cmsgSpace(n: number): number {
  return CMSGHDR_SIZE + cmsgAlign(n);
}

/** CMSG_LEN(n): the value of cmsg_len for `n` data bytes. */
export function cmsgLen(n: number): number {
  return CMSGHDR_SIZE + n;
}

/**
 * Writes one control message whose data is a `size`-byte (2 or 4) host-order integer, e.g.
 * `(SOL_UDP, UDP_SEGMENT, u16)`. Returns the bytes used (CMSG_SPACE).
 */
export function putCmsgInt(buf: Uint8Array, off: number, level: number, type: number, value: number, size: 2 | 4 = 4): number {
  const space = cmsgSpace(size);
  need(buf, off, space, "cmsg");
  const v = view(buf);
  v.setBigUint64(off, BigInt(cmsgLen(size)), true);
  v.setInt32(off + 8, level, true);
  v.setInt32(off + 12, type, true);
  buf.fill(0, off + CMSGHDR_SIZE, off + space);
  if (size === 2) v.setUint16(off + CMSGHDR_SIZE, value, true);
  else v.setInt32(off + CMSGHDR_SIZE, value, true);
  return space;
}

/**
 * Finds the control message (`level`, `type`) among `len` bytes of control data at `off` and
 * returns its data read as a host-order integer of its own size (2 or 4 bytes), or -1 when
 * absent. Allocates nothing, for the receive path (e.g. UDP_GRO's segment size).
 */
export function findCmsgInt(buf: Uint8Array, off: number, len: number, level: number, type: number): number {
  let p = off;
  const end = Math.min(off + len, buf.byteLength);
  while (p + CMSGHDR_SIZE <= end) {
    const clen = readU32(buf, p); // cmsg_len's upper half is 0 for any real message
    if (clen < CMSGHDR_SIZE || p + clen > end) return -1;
    if (readI32(buf, p + 8) === level && readI32(buf, p + 12) === type) {
      const n = clen - CMSGHDR_SIZE;
      if (n >= 4) return readI32(buf, p + CMSGHDR_SIZE);
      if (n >= 2) return buf[p + CMSGHDR_SIZE]! | (buf[p + CMSGHDR_SIZE + 1]! << 8);
      return -1;
    }
    p += cmsgAlign(clen);
  }
  return -1;
}

// ---------------------------------------------------------------- pollfd

/** Writes the `i`th `struct pollfd { fd, events, revents = 0 }`. */
export function setPollfd(buf: Uint8Array, i: number, fd: number, events: number): void {
  const off = i * POLLFD_SIZE;
  need(buf, off, POLLFD_SIZE, "pollfd");
  const v = view(buf);
  v.setInt32(off, fd, true);
  v.setInt16(off + 4, events, true);
  v.setInt16(off + 6, 0, true);
}

/** `revents` of the `i`th pollfd after poll(). */
export function pollRevents(buf: Uint8Array, i: number): number {
  return buf[i * POLLFD_SIZE + 6]! | (buf[i * POLLFD_SIZE + 7]! << 8);
}

// ---------------------------------------------------------------- little-endian field access

/** Reads a host-order (little-endian) u32 at `off` without a DataView. */
export function readU32(buf: Uint8Array, off: number): number {
  return (buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24)) >>> 0;
}

/** Reads a host-order (little-endian) i32 at `off` without a DataView. */
export function readI32(buf: Uint8Array, off: number): number {
  return buf[off]! | (buf[off + 1]! << 8) | (buf[off + 2]! << 16) | (buf[off + 3]! << 24);
}
