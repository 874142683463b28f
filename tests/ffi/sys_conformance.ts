/**
 * @module The Sys conformance checks, run as a script under each runtime (`bun` or `deno run
 * --allow-all`): prints one JSON object of observed results for sys_conformance.test.ts to
 * compare. Touches no network state (reads /dev/zero, writes /dev/null, opens an unbound socket).
 */
import { check, loadSys, SysError } from "../../ffi/sys.ts";
import {
  AF_INET, EINVAL, F_GETFL, LOCK_EX, LOCK_NB, LOCK_UN, F_SETFL, ifreq, ifreqInt, MSG_DONTWAIT, MSGHDR_SIZE, O_NONBLOCK, O_RDONLY, O_WRONLY, POLLIN,
  pollRevents, SCHED_IDLE, SCHED_OTHER, setIovec, setMsghdr, setPollfd, SIOCGIFMTU, SO_TYPE, SOCK_DGRAM, SOCKADDR_IN_SIZE, sockaddrIn, SOL_SOCKET,
  structBuffer,
} from "../../ffi/linux.ts";

const sys = await loadSys();
const out: Record<string, unknown> = { runtime: sys.runtime };

out.openMissing = sys.open("/nonexistent/weft", O_RDONLY);
out.closeBad = sys.close(-1);
try {
  check(sys.open("/nonexistent/weft", O_RDONLY), "open /nonexistent/weft");
} catch (e) {
  out.checkThrows = e instanceof SysError ? `${e.errno} ${e.message}` : String(e);
}

const zero = check(sys.open("/dev/zero", O_RDONLY), "open /dev/zero");
const buf = new Uint8Array(32).fill(0xff);
out.readZero = sys.read(zero, buf.subarray(3), 16);
out.readBytes = [buf[2], buf[3], buf[18], buf[19]];
buf.fill(0xff);
out.readZeroAt = [sys.read(zero, buf, 4, 5), [buf[4], buf[5], buf[8], buf[9]]];
buf.fill(0xff);
try {
  sys.read(zero, buf, 33);
} catch (e) {
  out.readTooLong = (e as Error).message;
}
const fds = structBuffer(8);
setPollfd(fds, 0, zero, POLLIN);
out.poll = [sys.poll(fds, 1, 0), pollRevents(fds, 0)];
sys.close(zero);

const nul = check(sys.open("/dev/null", O_WRONLY), "open /dev/null");
out.writeNull = sys.write(nul, buf, 20);
out.writeNullAt = [sys.write(nul, buf, 5, 10), sys.write(nul, buf, undefined, 30)];
try {
  sys.write(nul, buf, 4, 30);
} catch (e) {
  out.writeAtTooLong = (e as Error).message;
}
sys.close(nul);

// read/write at an offset: a loopback UDP socket connected to itself carries exactly the bytes.
const loop = check(sys.socket(AF_INET, SOCK_DGRAM, 0), "socket");
check(sys.bind(loop, sockaddrIn(0x7f000001, 0)), "bind 127.0.0.1:0");
const self = structBuffer(SOCKADDR_IN_SIZE);
sys.getsockname(loop, self);
check(sys.connect(loop, self), "connect to self");
const wasm = new Uint8Array(new WebAssembly.Memory({ initial: 1, maximum: 1 }).buffer); // the udp path writes from one
wasm.set([1, 2, 3, 4, 5, 6, 7, 8, 9], 100);
const got = new Uint8Array(16).fill(0xee);
out.writeAtLoop = sys.write(loop, wasm, 3, 104);
out.readAtLoop = [sys.read(loop, got, 5, 6), [...got.subarray(5, 10)]];
sys.close(loop);

const sock = check(sys.socket(AF_INET, SOCK_DGRAM, 0), "socket");
const opt = structBuffer(8);
out.soType = [sys.getsockopt(sock, SOL_SOCKET, SO_TYPE, opt), opt[0]];
out.bindShort = sys.bind(sock, structBuffer(4));
const req = ifreq("lo");
out.loMtu = [sys.ioctl(sock, SIOCGIFMTU, req), ifreqInt(req)];
out.ioctlIntBad = sys.ioctl(-1, SIOCGIFMTU, 0);
const fl = sys.fcntl(sock, F_GETFL, 0);
out.fcntl = [fl & 3, sys.fcntl(sock, F_SETFL, fl | O_NONBLOCK), (sys.fcntl(sock, F_GETFL, 0) & O_NONBLOCK) !== 0];
out.recvfromEmpty = sys.recvfrom(sock, buf, 32, MSG_DONTWAIT, structBuffer(16));
const iov = structBuffer(16), msg = structBuffer(MSGHDR_SIZE), data = structBuffer(64);
setIovec(iov, 0, sys.addressOf(data), 64);
setMsghdr(msg, 0, { iov: sys.addressOf(iov), iovLen: 1 });
out.recvmsgEmpty = sys.recvmsg(sock, msg, MSG_DONTWAIT);
out.recvmmsgEmpty = sys.recvmmsg(sock, structBuffer(64), 1, MSG_DONTWAIT);
sys.close(sock);

// flock: a second open file of the same inode cannot take the lock; after LOCK_UN it can.
const lockA = check(sys.open("/dev/null", O_RDONLY), "open /dev/null"), lockB = check(sys.open("/dev/null", O_RDONLY), "open /dev/null");
out.flock = [sys.flock(lockA, LOCK_EX | LOCK_NB), sys.flock(lockB, LOCK_EX | LOCK_NB), sys.flock(lockA, LOCK_UN), sys.flock(lockB, LOCK_EX | LOCK_NB), sys.flock(-1, LOCK_EX)];
sys.close(lockA);
sys.close(lockB);

const whole = structBuffer(64);
out.addressOfOffset = Number(sys.addressOf(whole.subarray(24)) - sys.addressOf(whole));
out.ifIndex = [sys.ifNameToIndex("lo"), sys.ifNameToIndex("weft-none0")];
out.getpid = sys.getpid() === process.pid;

/** This thread's scheduling policy: field 41 of /proc/thread-self/stat (the 39th after "comm) "). */
function policy(): number {
  const fd = check(sys.open("/proc/thread-self/stat", O_RDONLY), "open /proc/thread-self/stat");
  const text = new Uint8Array(1024);
  const n = check(sys.read(fd, text), "read /proc/thread-self/stat");
  sys.close(fd);
  const stat = new TextDecoder().decode(text.subarray(0, n));
  return Number(stat.slice(stat.lastIndexOf(") ") + 2).split(" ")[38]);
}
out.schedPolicy = [sys.setSchedPolicy(SCHED_IDLE), policy(), sys.setSchedPolicy(SCHED_OTHER), policy(), sys.setSchedPolicy(99) === -EINVAL, sys.schedYield()];

console.log(JSON.stringify(out));
