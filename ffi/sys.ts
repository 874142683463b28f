/**
 * @module The runtime-neutral syscall interface. `ffi/bun.ts` implements it with `bun:ffi`,
 * `ffi/deno.ts` with `Deno.dlopen`, both over libc; `loadSys()` picks the one for the running
 * runtime. Nothing outside `ffi/` imports `bun:ffi` or touches `Deno`: it takes a `Sys`.
 *
 * Conventions (mirroring the raw syscalls, so hot loops allocate nothing):
 * - Every call returns the syscall's non-negative result, or `-errno` on failure. `check()` turns
 *   a negative result into a thrown `SysError` for the cold paths.
 * - Buffers are `Uint8Array`s passed by reference; a call reads/writes `buf.byteLength` bytes
 *   unless a length is given. Structures that hold pointers (iovec, msghdr, mmsghdr) are built by
 *   the caller with `addressOf()` of buffers it keeps alive and unmoved for the call's duration:
 *   take them from `structBuffer()` (ffi/linux.ts: an explicit ArrayBuffer, which neither engine
 *   moves) or a fixed-size WebAssembly.Memory, never from a small `new Uint8Array(n)`.
 * - `ioctl`'s integer form passes the number itself as the argument (e.g. TUNSETOFFLOAD flags).
 * - Blocking calls block the calling thread: run packet loops in Workers.
 */

export interface Sys {
  /** "bun" or "deno". */
  readonly runtime: string;
  open(path: string, flags: number, mode?: number): number;
  close(fd: number): number;
  /**
   * Reads up to `len` bytes (default: to the end of `buf`) into `buf` from byte `off` (default
   * 0) on. `off` lets a loop fill one big buffer (a Wasm memory) at many places without making
   * a subarray view per call.
   */
  read(fd: number, buf: Uint8Array, len?: number, off?: number): number;
  /** Writes `len` bytes (default: to the end of `buf`) of `buf` from byte `off` (default 0) on. */
  write(fd: number, buf: Uint8Array, len?: number, off?: number): number;
  /** ioctl with a pointer argument (`arg` is the struct, e.g. `struct ifreq`) or an integer. */
  ioctl(fd: number, request: number, arg: Uint8Array | number): number;
  socket(domain: number, type: number, protocol: number): number;
  /** `addr` is a complete sockaddr (sockaddr_in, sockaddr_in6, sockaddr_nl …). */
  bind(fd: number, addr: Uint8Array): number;
  connect(fd: number, addr: Uint8Array): number;
  /** `addr` null for a connected socket. */
  sendto(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null): number;
  /** `addr`, when given, receives the sender's sockaddr (its byteLength is the room offered). */
  recvfrom(fd: number, buf: Uint8Array, len: number, flags: number, addr: Uint8Array | null): number;
  /** `msghdr` is a `struct msghdr` (56 bytes on x86_64) whose pointers the caller set. */
  sendmsg(fd: number, msghdr: Uint8Array, flags: number): number;
  recvmsg(fd: number, msghdr: Uint8Array, flags: number): number;
  /** `vec` holds `vlen` `struct mmsghdr` (64 bytes each on x86_64). */
  sendmmsg(fd: number, vec: Uint8Array, vlen: number, flags: number): number;
  /** No timeout argument (NULL): use poll() first or MSG_DONTWAIT. */
  recvmmsg(fd: number, vec: Uint8Array, vlen: number, flags: number): number;
  /** `fds` holds `nfds` `struct pollfd` (8 bytes each). */
  poll(fds: Uint8Array, nfds: number, timeoutMs: number): number;
  setsockopt(fd: number, level: number, name: number, value: Uint8Array): number;
  /** `value` receives the option; returns the option's length on success. */
  getsockopt(fd: number, level: number, name: number, value: Uint8Array): number;
  getsockname(fd: number, addr: Uint8Array): number;
  fcntl(fd: number, cmd: number, arg: number): number;
  /**
   * flock(2) on `fd` (LOCK_SH, LOCK_EX, LOCK_UN, | LOCK_NB): a lock the kernel drops when the
   * last descriptor of the open file goes, so a killed process never leaves one behind.
   */
  flock(fd: number, operation: number): number;
  /** The address of `buf`'s first byte, for building iovecs and msghdrs. */
  addressOf(buf: Uint8Array): bigint;
  /** Interface index of `name`, or 0 when there is no such interface. */
  ifNameToIndex(name: string): number;
  getpid(): number;
  /**
   * Sets the calling thread's scheduling policy (SCHED_OTHER, SCHED_IDLE …; priority 0). Going
   * back from SCHED_IDLE to SCHED_OTHER needs CAP_SYS_NICE (or a permissive RLIMIT_NICE): else -EPERM.
   */
  setSchedPolicy(policy: number): number;
  /** sched_yield(): lets the other runnable threads of this CPU's run queue go first. */
  schedYield(): number;
}

/** Linux errno names for messages (the ones this project meets). */
const ERRNO_NAMES: Record<number, string> = {
  1: "EPERM", 2: "ENOENT", 3: "ESRCH", 4: "EINTR", 5: "EIO", 6: "ENXIO", 9: "EBADF", 11: "EAGAIN",
  12: "ENOMEM", 13: "EACCES", 14: "EFAULT", 16: "EBUSY", 17: "EEXIST", 19: "ENODEV", 22: "EINVAL",
  24: "EMFILE", 28: "ENOSPC", 32: "EPIPE", 34: "ERANGE", 61: "ENODATA", 71: "EPROTO", 90: "EMSGSIZE",
  92: "ENOPROTOOPT", 93: "EPROTONOSUPPORT", 95: "EOPNOTSUPP", 97: "EAFNOSUPPORT", 98: "EADDRINUSE",
  99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH", 104: "ECONNRESET", 105: "ENOBUFS",
  110: "ETIMEDOUT", 111: "ECONNREFUSED", 113: "EHOSTUNREACH",
};

export function errnoName(errno: number): string {
  return ERRNO_NAMES[errno] ?? `errno ${errno}`;
}

/** A failed syscall: `errno` is positive; `op` says what was attempted, on what. */
export class SysError extends Error {
  constructor(readonly errno: number, readonly op: string) {
    super(`${op}: ${errnoName(errno)} (${errno})`);
    this.name = "SysError";
  }
}

/** Returns `rc` when it is non-negative, else throws a SysError for `op`. */
export function check(rc: number, op: string): number {
  if (rc < 0) throw new SysError(-rc, op);
  return rc;
}

let cached: Sys | undefined;

/** The Sys of the running runtime (Bun or Deno), loaded once. */
export async function loadSys(): Promise<Sys> {
  if (cached) return cached;
  const g = globalThis as { Bun?: unknown; Deno?: unknown };
  if (g.Bun) cached = (await import("./bun.ts")).createSys();
  else if (g.Deno) cached = (await import("./deno.ts")).createSys();
  else throw new Error("ffi: no syscall implementation for this runtime (weft runs under Bun or Deno)");
  return cached;
}
