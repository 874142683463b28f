/**
 * @module Runs inside a fresh namespace under Bun or Deno (see udp_namespace.test.ts): moves 64
 * datagrams over loopback with UdpBatch (sendmmsg/recvmmsg) from and into slots of a fixed-size
 * WebAssembly.Memory, then sendmsg/recvmsg, UDP GSO and GRO. Prints one JSON object.
 */
import { check, loadSys } from "../../ffi/sys.ts";
import {
  MSG_DONTWAIT, MSGHDR_SIZE, POLLIN, setIovec, setMsghdr, setPollfd, sockaddrIn, structBuffer,
} from "../../ffi/linux.ts";
import { enableUdpGro, localPort, openUdpSocket, probeUdpGso, setBuffers, UdpBatch } from "../../ffi/udp.ts";
import { formatIPv4, parseIPv4 } from "../../src/net/ip.ts";

const sys = await loadSys();
const out: Record<string, unknown> = { runtime: sys.runtime };
const LOOPBACK = parseIPv4("127.0.0.1");
const COUNT = 64, SIZE = 1400, SLOT = 2048;

// Payload slots in a Wasm memory whose size is fixed, as the data path's core will have it.
const memory = new WebAssembly.Memory({ initial: 8, maximum: 8 }) // 512 KiB;
const heap = new Uint8Array(memory.buffer);
const slot = (i: number) => heap.subarray(i * SLOT, (i + 1) * SLOT);
const txSlots = Array.from({ length: COUNT }, (_, i) => slot(i));
const rxSlots = Array.from({ length: COUNT }, (_, i) => slot(COUNT + i));

const a = openUdpSocket(sys, { ip: "127.0.0.1", port: 0 });
const b = openUdpSocket(sys, { ip: "127.0.0.1", port: 0 });
const portA = localPort(sys, a), portB = localPort(sys, b);
const buffers = setBuffers(sys, b);
out.buffersForced = buffers.recv >= 7 << 20 && buffers.send >= 7 << 20;

const pollfd = structBuffer(8);
function waitReadable(fd: number): boolean {
  setPollfd(pollfd, 0, fd, POLLIN);
  return sys.poll(pollfd, 1, 3000) === 1;
}

/** Receives until `want` datagrams arrived on `batch` (or 3 s without one); calls `each` per message. */
function receive(batch: UdpBatch, want: number, each: (i: number, k: number) => void): number {
  let k = 0;
  while (k < want && waitReadable(batch.fd)) {
    const n = check(batch.recv(batch.capacity, MSG_DONTWAIT), "recvmmsg");
    for (let i = 0; i < n; i++) each(i, k++);
  }
  return k;
}

// 1. 64 datagrams of 1400 bytes: one sendmmsg, recvmmsg until all are in.
const tx = new UdpBatch(sys, a, txSlots);
const rx = new UdpBatch(sys, b, rxSlots);
for (let i = 0; i < COUNT; i++) {
  txSlots[i]!.fill(i, 0, SIZE);
  tx.setLength(i, SIZE);
  tx.setDestination(i, LOOPBACK, portB);
}
out.sent = tx.send(COUNT);
const problems: string[] = [];
out.received = receive(rx, COUNT, (i, k) => {
  const from = `${formatIPv4(rx.sourceIPv4(i))}:${rx.sourcePort(i)}`;
  if (rx.length(i) !== SIZE || rx.truncated(i)) problems.push(`#${k} length ${rx.length(i)}`);
  if (from !== `127.0.0.1:${portA}` || rx.sourceFamily(i) !== 2) problems.push(`#${k} from ${from}`);
  if (rxSlots[i]![0] !== k || rxSlots[i]![SIZE - 1] !== k) problems.push(`#${k} holds ${rxSlots[i]![0]}`);
});
out.problems = problems;
out.emptyRecv = rx.recv(COUNT, MSG_DONTWAIT); // -EAGAIN

// 2. Echo: the received addresses are the destinations of the reply.
for (let i = 0; i < 4; i++) rx.setLength(i, 100);
const rxBack = new UdpBatch(sys, a, rxSlots.slice(0, 4).map((_, i) => slot(3 * COUNT + i)));
out.echoSent = rx.send(4);
out.echoBack = receive(rxBack, 4, () => {}) + ` of ${rxBack.length(0)} bytes`;

// 3. sendmsg/recvmsg with a hand-built msghdr.
const msg = structBuffer(MSGHDR_SIZE), iov = structBuffer(16), to = sockaddrIn(LOOPBACK, portB);
setIovec(iov, 0, sys.addressOf(txSlots[5]!), 300);
setMsghdr(msg, 0, { name: sys.addressOf(to), nameLen: 16, iov: sys.addressOf(iov), iovLen: 1 });
out.sendmsg = sys.sendmsg(a, msg, 0);
setIovec(iov, 0, sys.addressOf(rxSlots[0]!), SLOT);
setMsghdr(msg, 0, { iov: sys.addressOf(iov), iovLen: 1 });
out.recvmsg = waitReadable(b) ? [sys.recvmsg(b, msg, 0), rxSlots[0]![0]] : "timeout";

// 4. UDP GSO: one message of 3500 bytes in 1000-byte segments arrives as 4 datagrams.
out.gso = probeUdpGso(sys, a);
const jumbo = new UdpBatch(sys, a, [heap.subarray(2 * COUNT * SLOT, 2 * COUNT * SLOT + 65536)]);
jumbo.setLength(0, 3500);
jumbo.setSegmentSize(0, 1000);
jumbo.setDestination(0, LOOPBACK, portB);
out.gsoSent = jumbo.send(1);
const sizes: number[] = [];
receive(rx, 4, (i) => sizes.push(rx.length(i)));
out.gsoReceived = sizes;

// 5. UDP GRO: a receiver that asks for it gets the 4 segments back as one message.
const c = openUdpSocket(sys, { ip: "127.0.0.1", port: 0 });
out.gro = enableUdpGro(sys, c);
const big = new UdpBatch(sys, c, [heap.subarray(2 * COUNT * SLOT + 65536, 2 * COUNT * SLOT + 2 * 65536)]);
jumbo.setDestination(0, LOOPBACK, localPort(sys, c));
out.groSent = jumbo.send(1);
const coalesced: number[] = [];
receive(big, 1, (i) => coalesced.push(big.length(i), big.segmentSize(i)));
out.groReceived = coalesced; // [length, segment size]

// 6. A datagram longer than its slot is cut and flagged.
jumbo.setSegmentSize(0, 0);
jumbo.setLength(0, 3000);
jumbo.setDestination(0, LOOPBACK, portB);
jumbo.send(1);
const cut: unknown[] = [];
receive(rx, 1, (i) => cut.push(rx.length(i), rx.truncated(i)));
out.truncated = cut;

for (const fd of [a, b, c]) sys.close(fd);
console.log(JSON.stringify(out));
