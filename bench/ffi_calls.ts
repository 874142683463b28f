/**
 * @module FFI call cost and batched UDP throughput, under Bun and Deno. Prints figures, asserts
 * nothing.
 *
 *   bun bench/ffi_calls.ts            creates a namespace, runs the measurements in it under
 *                                     both runtimes, deletes it (needs root)
 *   <runtime> bench/ffi_calls.ts --inner   the measurements alone (inside a namespace)
 *
 * Measured: `getpid()` through `Sys` (FFI plus a real, trivial syscall: glibc does not cache
 * the pid) over 1e6 calls; then 64 x 1400-byte datagrams per sendmmsg and per recvmmsg on
 * loopback, one thread doing both, for about 2 s.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

async function inner(): Promise<void> {
  const { loadSys, check } = await import("../ffi/sys.ts");
  const { MSG_DONTWAIT } = await import("../ffi/linux.ts");
  const { localPort, openUdpSocket, setBuffers, UdpBatch } = await import("../ffi/udp.ts");
  const sys = await loadSys();

  const CALLS = 1e6;
  for (let i = 0; i < 1e5; i++) sys.getpid(); // warm up the JIT
  let t = performance.now();
  for (let i = 0; i < CALLS; i++) sys.getpid();
  const getpidNs = ((performance.now() - t) * 1e6) / CALLS;

  const BATCH = 64, SIZE = 1400, SLOT = 2048;
  const memory = new WebAssembly.Memory({ initial: 4, maximum: 4 });
  const heap = new Uint8Array(memory.buffer);
  const a = openUdpSocket(sys, { ip: "127.0.0.1", port: 0 });
  const b = openUdpSocket(sys, { ip: "127.0.0.1", port: 0 });
  setBuffers(sys, a);
  setBuffers(sys, b);
  const slots = (first: number) => Array.from({ length: BATCH }, (_, i) => heap.subarray((first + i) * SLOT, (first + i + 1) * SLOT));
  const tx = new UdpBatch(sys, a, slots(0));
  const rx = new UdpBatch(sys, b, slots(BATCH));
  const portB = localPort(sys, b);
  for (let i = 0; i < BATCH; i++) { tx.setLength(i, SIZE); tx.setDestination(i, 0x7f000001, portB); }

  let sent = 0, received = 0, sendMs = 0, recvMs = 0, sendCalls = 0, recvCalls = 0;
  const end = performance.now() + 2000;
  while (performance.now() < end) {
    t = performance.now();
    for (let done = 0; done < BATCH;) { done += check(tx.send(BATCH - done, 0, done), "sendmmsg"); sendCalls++; }
    const t1 = performance.now();
    for (let got = 0; got < BATCH;) { got += check(rx.recv(BATCH - got, MSG_DONTWAIT), "recvmmsg"); recvCalls++; }
    recvMs += performance.now() - t1;
    sendMs += t1 - t;
    sent += BATCH;
    received += BATCH;
  }
  sys.close(a);
  sys.close(b);
  const perSecond = (n: number, ms: number) => Math.round((n / ms) * 1000);
  console.log(JSON.stringify({
    runtime: sys.runtime,
    getpidNs: Number(getpidNs.toFixed(1)),
    sendmmsgDatagramsPerS: perSecond(sent, sendMs),
    recvmmsgDatagramsPerS: perSecond(received, recvMs),
    roundTripDatagramsPerS: perSecond(received, sendMs + recvMs),
    usPerSendmmsg: Number(((sendMs * 1000) / sendCalls).toFixed(1)),
    usPerRecvmmsg: Number(((recvMs * 1000) / recvCalls).toFixed(1)),
  }));
}

function outer(): void {
  const script = fileURLToPath(import.meta.url);
  const bin = (name: string) => fileURLToPath(new URL(`../node_modules/.bin/${name}`, import.meta.url));
  const ns = `weft-bench-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  execFileSync("ip", ["netns", "add", ns]);
  try {
    execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
    for (const cmd of [[bin("bun"), script], [bin("deno"), "run", "--allow-all", script]]) {
      const r = spawnSync("ip", ["netns", "exec", ns, ...cmd, "--inner"], { encoding: "utf8", timeout: 60_000 });
      const line = r.stdout.trim().split("\n").at(-1) || r.stderr;
      const f = JSON.parse(line) as Record<string, number | string>;
      console.log(
        `${String(f.runtime).padEnd(5)} getpid ${f.getpidNs} ns/call | 64 x 1400 B on loopback: ` +
          `sendmmsg ${f.sendmmsgDatagramsPerS} dgram/s (${f.usPerSendmmsg} us/call), ` +
          `recvmmsg ${f.recvmmsgDatagramsPerS} dgram/s (${f.usPerRecvmmsg} us/call), ` +
          `send+recv in one thread ${f.roundTripDatagramsPerS} dgram/s`,
      );
    }
  } finally {
    spawnSync("ip", ["netns", "delete", ns]);
  }
}

if (process.argv.includes("--inner")) await inner();
else outer();
