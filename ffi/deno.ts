/**
 * @module `Sys` over libc with `Deno.dlopen` (Deno 2.9 needs no `--unstable-ffi` flag, but
 * accepts it; it needs `--allow-ffi`). Typed arrays are passed as "buffer" parameters, results
 * are i32, errno is read through `__errno_location()` only when a call fails.
 *
 * Deno's fast path (V8 fast calls) takes 64-bit integer parameters only as BigInts; a number
 * there sends the call down the slow path (~100 ns more). C's `size_t`/`nfds_t` parameters are
 * therefore declared "usize" (so the full register is defined) and fed from a table of BigInts
 * filled on first use, so read/write/poll with lengths below 64 KiB + 64 allocate nothing once
 * warm. `unsigned int` (vlen), `int` and `socklen_t` parameters are exact as u32/i32.
 *
 * The `Deno` global is typed locally (only what this file uses) so the tree type-checks under
 * tsc with Bun's types as well as under `deno check`.
 */
import { type Libc, libcSys } from "./libc.ts";
import type { Sys } from "./sys.ts";

type Pointer = object | null;
interface DenoFfi {
  dlopen(path: string, symbols: Record<string, unknown>): { symbols: Record<string, (...args: any[]) => any> };
  UnsafePointer: { of(buf: Uint8Array | Uint32Array): Pointer; value(p: Pointer): number | bigint };
  UnsafePointerView: new (p: NonNullable<Pointer>) => { getInt32(offset?: number): number };
}
const Deno = (globalThis as unknown as { Deno: DenoFfi }).Deno;

const LIBC = {
  __errno_location: { parameters: [], result: "pointer" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  write: { parameters: ["i32", "buffer", "usize"], result: "i32" },
  read_addr: { name: "read", parameters: ["i32", "usize", "usize"], result: "i32" },
  write_addr: { name: "write", parameters: ["i32", "usize", "usize"], result: "i32" },
  ioctl: { parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctl_int: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  socket: { parameters: ["i32", "i32", "i32"], result: "i32" },
  bind: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  connect: { parameters: ["i32", "buffer", "u32"], result: "i32" },
  sendto: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "u32"], result: "i32" },
  recvfrom: { parameters: ["i32", "buffer", "usize", "i32", "buffer", "buffer"], result: "i32" },
  sendmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  recvmsg: { parameters: ["i32", "buffer", "i32"], result: "i32" },
  sendmmsg: { parameters: ["i32", "buffer", "u32", "i32"], result: "i32" },
  recvmmsg: { parameters: ["i32", "buffer", "u32", "i32", "pointer"], result: "i32" },
  poll: { parameters: ["buffer", "usize", "i32"], result: "i32" },
  setsockopt: { parameters: ["i32", "i32", "i32", "buffer", "u32"], result: "i32" },
  getsockopt: { parameters: ["i32", "i32", "i32", "buffer", "buffer"], result: "i32" },
  getsockname: { parameters: ["i32", "buffer", "buffer"], result: "i32" },
  fcntl: { parameters: ["i32", "i32", "u64"], result: "i32" },
  flock: { parameters: ["i32", "i32"], result: "i32" },
  if_nametoindex: { parameters: ["buffer"], result: "u32" },
  getpid: { parameters: [], result: "i32" },
  sched_setscheduler: { parameters: ["i32", "i32", "buffer"], result: "i32" },
  sched_yield: { parameters: [], result: "i32" },
} as const;

/** Lengths below this come from the BigInt table (a TUN packet with its vnet header fits). */
const SIZE_TABLE = 65536 + 64;

/** Loads libc and returns the Deno `Sys`. Call once per thread (each Worker has its own errno). */
export function createSys(): Sys {
  const c = Deno.dlopen("libc.so.6", LIBC).symbols;
  const errnoAt = c.__errno_location() as Pointer;
  if (errnoAt === null) throw new Error("ffi/deno: __errno_location() returned NULL");
  const errno = new Deno.UnsafePointerView(errnoAt);
  const sizes: (bigint | undefined)[] = new Array(SIZE_TABLE).fill(undefined);
  /** `n` as a BigInt for a "usize" parameter, without allocating for table-sized values. */
  const usize = (n: number): bigint => (n < SIZE_TABLE ? (sizes[n] ??= BigInt(n)) : BigInt(n));
  const u64 = (n: number): bigint => BigInt.asUintN(64, BigInt(n));
  // readAt/writeAt: the address of a byte inside a buffer, as a number (exact below 2^53), from
  // the address of its ArrayBuffer taken once (V8 never moves a backing store). A number for a
  // "usize" takes V8's slow call path (~100 ns) but allocates nothing, unlike a pointer object
  // or a subarray per call.
  const bases = new WeakMap<ArrayBufferLike, number>();
  const addressAt = (buf: Uint8Array, off: number): number => {
    let base = bases.get(buf.buffer);
    if (base === undefined) {
      const whole = new Uint8Array(buf.buffer, 0, 1);
      base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(whole)));
      bases.set(buf.buffer, base);
    }
    return base + buf.byteOffset + off;
  };

  const libc: Libc = {
    open: c.open!,
    close: c.close!,
    read: (fd, buf, len) => c.read!(fd, buf, usize(len)),
    write: (fd, buf, len) => c.write!(fd, buf, usize(len)),
    readAt: (fd, buf, off, len) => c.read_addr!(fd, addressAt(buf, off), usize(len)),
    writeAt: (fd, buf, off, len) => c.write_addr!(fd, addressAt(buf, off), usize(len)),
    ioctl: (fd, request, arg) => c.ioctl!(fd, u64(request), arg),
    ioctlInt: (fd, request, arg) => c.ioctl_int!(fd, u64(request), u64(arg)),
    socket: c.socket!,
    bind: c.bind!,
    connect: c.connect!,
    sendto: (fd, buf, len, flags, addr, addrLen) => c.sendto!(fd, buf, usize(len), flags, addr, addrLen),
    recvfrom: (fd, buf, len, flags, addr, addrLen) => c.recvfrom!(fd, buf, usize(len), flags, addr, addrLen),
    sendmsg: c.sendmsg!,
    recvmsg: c.recvmsg!,
    sendmmsg: c.sendmmsg!,
    recvmmsg: (fd, vec, vlen, flags) => c.recvmmsg!(fd, vec, vlen, flags, null),
    poll: (fds, nfds, timeoutMs) => c.poll!(fds, usize(nfds), timeoutMs),
    setsockopt: c.setsockopt!,
    getsockopt: c.getsockopt!,
    getsockname: c.getsockname!,
    fcntl: (fd, cmd, arg) => c.fcntl!(fd, cmd, u64(arg)),
    flock: c.flock!,
    if_nametoindex: c.if_nametoindex!,
    getpid: c.getpid!,
    sched_setscheduler: c.sched_setscheduler!,
    sched_yield: c.sched_yield!,
    errno: () => errno.getInt32(0),
    addressOf: (buf) => BigInt(Deno.UnsafePointer.value(Deno.UnsafePointer.of(buf))),
  };
  return libcSys("deno", libc);
}
