/**
 * @module The part of `Sys` both runtimes share: given libc's entry points as a runtime binds
 * them (C's own return values, -1 on failure), it checks buffer bounds, turns -1 into -errno
 * and hides the socklen_t in/out arguments. `bun.ts` and `deno.ts` only bind symbols.
 */
import { MMSGHDR_SIZE, MSGHDR_SIZE, POLLFD_SIZE } from "./linux.ts";
import type { Sys } from "./sys.ts";

/** libc calls as bound by a runtime: arguments as in C, pointers as typed arrays (or null). */
export interface Libc {
  open(path: Uint8Array, flags: number, mode: number): number;
  close(fd: number): number;
  read(fd: number, buf: Uint8Array, len: number): number;
  write(fd: number, buf: Uint8Array, len: number): number;
  /** read()/write() at byte `off` of `buf` (0 < off; bounds already checked). */
  readAt(fd: number, buf: Uint8Array, off: number, len: number): number;
  writeAt(fd: number, buf: Uint8Array, off: number, len: number): number;
  ioctl(fd: number, request: number, arg: Uint8Array): number;
  ioctlInt(fd: number, request: number, arg: number): number;
  socket(domain: number, type: number, protocol: number): number;
  bind(fd: number, addr: Uint8Array, addrLen: number): number;
  connect(fd: number, addr: Uint8Array, addrLen: number): number;
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null, addrLen: number): number;
  recvfrom(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null, addrLen: Uint8Array | null): number;
  sendmsg(fd: number, msghdr: Uint8Array, flags: number): number;
  recvmsg(fd: number, msghdr: Uint8Array, flags: number): number;
  sendmmsg(fd: number, vec: Uint8Array, vlen: number, flags: number): number;
  /** With a NULL timeout. */
  recvmmsg(fd: number, vec: Uint8Array, vlen: number, flags: number): number;
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array, len: number): number;
  getsockopt(fd: number, level: number, name: number, value: Uint8Array, len: Uint8Array): number;
  getsockname(fd: number, addr: Uint8Array, len: Uint8Array): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  flock(fd: number, operation: number): number;
  if_nametoindex(name: Uint8Array): number;
  getpid(): number;
  /** `param` is a `struct sched_param` (one int, the priority). */
  sched_setscheduler(pid: number, policy: number, param: Uint8Array): number;
  sched_yield(): number;
  /** The calling thread's errno. */
  errno(): number;
  addressOf(buf: Uint8Array): bigint;
}

const encoder = new TextEncoder();

function cString(s: string): Uint8Array {
  return encoder.encode(s + "\0");
}

function tooSmall(op: string, need: number, have: number): RangeError {
  return new RangeError(`${op}: needs ${need} bytes but the buffer holds ${have}`);
}

/** Throws unless `off` is a whole byte offset and `off + len` lies within `buf`. */
function checkRange(op: string, buf: Uint8Array, off: number, len: number): void {
  if (!Number.isInteger(off) || off < 0) throw new RangeError(`${op}: offset ${off} must be a whole number of bytes, 0 or more`);
  if (off + len > buf.byteLength) throw new RangeError(`${op}: needs bytes ${off}..${off + len} but the buffer holds ${buf.byteLength}`);
}

/**
 * Sys.read or Sys.write over libc's call at the buffer's start (`whole`) and at an offset
 * (`at`): bounds checked, the length defaulting to the rest of the buffer.
 */
function bufferIo(
  op: string,
  whole: (fd: number, buf: Uint8Array, len: number) => number,
  at: (fd: number, buf: Uint8Array, off: number, len: number) => number,
  ret: (rc: number) => number,
): (fd: number, buf: Uint8Array, len?: number, off?: number) => number {
  return (fd, buf, len, off = 0) => {
    if (off === 0) {
      const n = len ?? buf.byteLength;
      if (n > buf.byteLength) throw tooSmall(op, n, buf.byteLength);
      return ret(whole(fd, buf, n));
    }
    const n = len ?? buf.byteLength - off;
    checkRange(op, buf, off, n);
    return ret(at(fd, buf, off, n));
  };
}

/** The `Sys` over `c`. Errno is read right after a failed call, before other code can run. */
export function libcSys(runtime: string, c: Libc): Sys {
  const socklen = new Uint8Array(new ArrayBuffer(4));
  const socklenValue = new Uint32Array(socklen.buffer);
  /** struct sched_param { int sched_priority; }: 0, the only priority SCHED_OTHER and SCHED_IDLE take. */
  const schedParam = new Uint8Array(new ArrayBuffer(4));
  const ret = (rc: number): number => (rc < 0 ? -c.errno() : rc);

  return {
    runtime,
    open: (path, flags, mode = 0) => ret(c.open(cString(path), flags, mode)),
    close: (fd) => ret(c.close(fd)),
    read: bufferIo("read", c.read, c.readAt, ret),
    write: bufferIo("write", c.write, c.writeAt, ret),
    ioctl: (fd, request, arg) => ret(typeof arg === "number" ? c.ioctlInt(fd, request, arg) : c.ioctl(fd, request, arg)),
    socket: (domain, type, protocol) => ret(c.socket(domain, type, protocol)),
    bind: (fd, addr) => ret(c.bind(fd, addr, addr.byteLength)),
    connect: (fd, addr) => ret(c.connect(fd, addr, addr.byteLength)),
    sendto(fd, buf, len, flags, addr) {
      if (len > buf.byteLength) throw tooSmall("sendto", len, buf.byteLength);
      return ret(c.sendto(fd, buf, len, flags, addr, addr ? addr.byteLength : 0));
    },
    recvfrom(fd, buf, len, flags, addr) {
      if (len > buf.byteLength) throw tooSmall("recvfrom", len, buf.byteLength);
      if (addr === null) return ret(c.recvfrom(fd, buf, len, flags, null, null));
      socklenValue[0] = addr.byteLength;
      return ret(c.recvfrom(fd, buf, len, flags, addr, socklen));
    },
    sendmsg(fd, msghdr, flags) {
      if (msghdr.byteLength < MSGHDR_SIZE) throw tooSmall("sendmsg", MSGHDR_SIZE, msghdr.byteLength);
      return ret(c.sendmsg(fd, msghdr, flags));
    },
    recvmsg(fd, msghdr, flags) {
      if (msghdr.byteLength < MSGHDR_SIZE) throw tooSmall("recvmsg", MSGHDR_SIZE, msghdr.byteLength);
      return ret(c.recvmsg(fd, msghdr, flags));
    },
    sendmmsg(fd, vec, vlen, flags) {
      if (vlen * MMSGHDR_SIZE > vec.byteLength) throw tooSmall("sendmmsg", vlen * MMSGHDR_SIZE, vec.byteLength);
      return ret(c.sendmmsg(fd, vec, vlen, flags));
    },
    recvmmsg(fd, vec, vlen, flags) {
      if (vlen * MMSGHDR_SIZE > vec.byteLength) throw tooSmall("recvmmsg", vlen * MMSGHDR_SIZE, vec.byteLength);
      return ret(c.recvmmsg(fd, vec, vlen, flags));
    },
    poll(fds, nfds, timeoutMs) {
      if (nfds * POLLFD_SIZE > fds.byteLength) throw tooSmall("poll", nfds * POLLFD_SIZE, fds.byteLength);
      return ret(c.poll(fds, nfds, timeoutMs));
    },
    setsockopt: (fd, level, name, value) => ret(c.setsockopt(fd, level, name, value, value.byteLength)),
    getsockopt(fd, level, name, value) {
      socklenValue[0] = value.byteLength;
      const rc = ret(c.getsockopt(fd, level, name, value, socklen));
      return rc < 0 ? rc : socklenValue[0]!;
    },
    getsockname(fd, addr) {
      socklenValue[0] = addr.byteLength;
      const rc = ret(c.getsockname(fd, addr, socklen));
      return rc < 0 ? rc : socklenValue[0]!;
    },
    fcntl: (fd, cmd, arg) => ret(c.fcntl(fd, cmd, arg)),
    flock: (fd, operation) => ret(c.flock(fd, operation)),
    addressOf: (buf) => c.addressOf(buf),
    ifNameToIndex: (name) => c.if_nametoindex(cString(name)),
    getpid: () => c.getpid(),
    // pid 0: the calling thread (Linux applies the policy per thread).
    setSchedPolicy: (policy) => ret(c.sched_setscheduler(0, policy, schedParam)),
    schedYield: () => ret(c.sched_yield()),
  };
}
