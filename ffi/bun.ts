/**
 * @module `Sys` over libc with `bun:ffi`. Typed arrays go to C as pointers directly (no stale
 * `ptr()` numbers), results come back as i32 and errno is read from `__errno_location()` only
 * when a call fails, so the hot calls (read, write, sendmsg, recvmsg, sendmmsg, recvmmsg, poll)
 * allocate nothing.
 *
 * Widths: `size_t`/`nfds_t`/`unsigned long` parameters are declared u64 so the full register is
 * defined (Bun converts numbers to them without allocating); `ssize_t` results are read as
 * i32, which is exact for every length below 2 GiB and for -1.
 */
import { dlopen, FFIType, ptr, read as peek } from "bun:ffi";
import { type Libc, libcSys } from "./libc.ts";
import type { Sys } from "./sys.ts";

const { i32, u32, u64, ptr: p } = FFIType;

const LIBC = {
  __errno_location: { args: [], returns: p },
  open: { args: [p, i32, u32], returns: i32 },
  close: { args: [i32], returns: i32 },
  read: { args: [i32, p, u64], returns: i32 },
  write: { args: [i32, p, u64], returns: i32 },
  ioctl: { args: [i32, u64, p], returns: i32 },
  socket: { args: [i32, i32, i32], returns: i32 },
  bind: { args: [i32, p, u32], returns: i32 },
  connect: { args: [i32, p, u32], returns: i32 },
  sendto: { args: [i32, p, u64, i32, p, u32], returns: i32 },
  recvfrom: { args: [i32, p, u64, i32, p, p], returns: i32 },
  sendmsg: { args: [i32, p, i32], returns: i32 },
  recvmsg: { args: [i32, p, i32], returns: i32 },
  sendmmsg: { args: [i32, p, u32, i32], returns: i32 },
  recvmmsg: { args: [i32, p, u32, i32, p], returns: i32 },
  poll: { args: [p, u64, i32], returns: i32 },
  setsockopt: { args: [i32, i32, i32, p, u32], returns: i32 },
  getsockopt: { args: [i32, i32, i32, p, p], returns: i32 },
  getsockname: { args: [i32, p, p], returns: i32 },
  fcntl: { args: [i32, i32, u64], returns: i32 },
  flock: { args: [i32, i32], returns: i32 },
  if_nametoindex: { args: [p], returns: u32 },
  getpid: { args: [], returns: i32 },
  sched_setscheduler: { args: [i32, i32, p], returns: i32 },
  sched_yield: { args: [], returns: i32 },
} as const;

/** Loads libc and returns the Bun `Sys`. Call once per thread (each Worker has its own errno). */
export function createSys(): Sys {
  const c = dlopen("libc.so.6", LIBC).symbols;
  const errnoAt = c.__errno_location();
  if (errnoAt === null) throw new Error("ffi/bun: __errno_location() returned NULL");
  const libc: Libc = {
    open: c.open,
    close: c.close,
    read: c.read,
    write: c.write,
    // ptr(buf, off) is the address at the moment of the call, so it cannot go stale.
    readAt: (fd, buf, off, len) => c.read(fd, ptr(buf, off), len),
    writeAt: (fd, buf, off, len) => c.write(fd, ptr(buf, off), len),
    ioctl: c.ioctl,
    // A pointer parameter carries an integer argument unchanged (Bun takes numbers as pointers).
    ioctlInt: c.ioctl as unknown as Libc["ioctlInt"],
    socket: c.socket,
    bind: c.bind,
    connect: c.connect,
    sendto: c.sendto,
    recvfrom: c.recvfrom,
    sendmsg: c.sendmsg,
    recvmsg: c.recvmsg,
    sendmmsg: c.sendmmsg,
    recvmmsg: (fd, vec, vlen, flags) => c.recvmmsg(fd, vec, vlen, flags, null),
    poll: c.poll,
    setsockopt: c.setsockopt,
    getsockopt: c.getsockopt,
    getsockname: c.getsockname,
    fcntl: c.fcntl,
    flock: c.flock,
    if_nametoindex: c.if_nametoindex,
    getpid: c.getpid,
    sched_setscheduler: c.sched_setscheduler,
    sched_yield: c.sched_yield,
    errno: () => peek.i32(errnoAt, 0),
    addressOf: (buf) => BigInt(ptr(buf)),
  };
  return libcSys("bun", libc);
}
