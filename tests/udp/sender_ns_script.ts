/**
 * @module Run by udp_sender.test.ts (Bun or Deno) in namespace A, joined by a veth
 * (va 10.9.0.1 — vb 10.9.0.2) to namespace B: UdpSender sends hand-made egress descriptors from
 * a real core's memory to two "peers" in B (this script again, `--receive`, started in B for
 * each run): with UDP GSO, without, with GSO after `ethtool -K va tx off` (older kernels refuse
 * GSO without checksum offload with EIO; 6.x segments in software), and with GSO through a Sys
 * that fails every GSO sendmmsg with EIO, as a kernel would on an xfrm route (no IPsec here):
 * the sender must fall back, and the datagrams still cross the real kernel; and with the second
 * peer reached over IPv6 (va fd09::1 — vb fd09::2; its descriptors addressed 0.0.0.0, the
 * address in the core's PUBLIC6), so one batch goes out through two sockets. Prints one JSON
 * line: per run the messages sent, fallbacks, and the datagrams each peer received.
 *
 *   WEFT_TEST_PEER_NS=B sender_ns_script.ts   (in A)      sender_ns_script.ts --receive   (in B)
 */
import { spawn, spawnSync } from "node:child_process";
import { EG_OUT, EG_UDP_DESC, PUBLIC6, UDP_DESC_SIZE } from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import { EIO, MSG_DONTWAIT, structBuffer } from "../../ffi/linux.ts";
import { loadSys, type Sys } from "../../ffi/sys.ts";
import { UdpBatch, openUdpSocket, probeUdpGso } from "../../ffi/udp.ts";
import { UdpSender } from "../../src/backend/udp/udp_sender.ts";
import { hostIndex } from "../../src/backend/udp/worker_stats.ts";

const PEER_IP = [10, 9, 0, 2];
const PORTS = [9100, 9101];
const sys = await loadSys();
const self = new URL(import.meta.url).pathname;
const deno = "Deno" in globalThis;

if (process.argv.includes("--receive")) {
  // Both peers: print what arrives within 700 ms, in order (the second one over IPv4 or IPv6).
  const peers = PORTS.map((port) => openUdpSocket(sys, { ip: "10.9.0.2", port, nonBlocking: true }));
  peers.push(openUdpSocket(sys, { ip: "fd09::2", port: PORTS[1]!, nonBlocking: true }));
  console.log("ready");
  const got: string[][] = [[], []];
  const slots = Array.from({ length: 16 }, () => structBuffer(2048));
  const batches = peers.map((fd) => new UdpBatch(sys, fd, slots));
  const end = Date.now() + 700;
  while (Date.now() < end) {
    batches.forEach((b, p) => {
      const n = b.recv(16, MSG_DONTWAIT);
      for (let i = 0; i < n; i++) got[Math.min(p, 1)]!.push(`${slots[i]![0]}:${b.length(i)}`);
    });
    await new Promise((r) => setTimeout(r, 5));
  }
  console.log(JSON.stringify(got));
  process.exit(0);
}

const nsB = process.env.WEFT_TEST_PEER_NS!;
const core = await loadCore();
const sender = openUdpSocket(sys, { ip: "10.9.0.1", port: 0 });
const sender6 = openUdpSocket(sys, { ip: "fd09::1", port: 0 });

/** [peer, length, contiguous with the previous one] — see the expected grouping in the test. */
const PLAN: [number, number, boolean][] = [
  [0, 1400, false], [0, 1400, true], [0, 1400, true], [0, 600, true], // one GSO message, last shorter
  [1, 1000, false], [1, 1000, false], // one GSO message over two iovecs
  [0, 1400, false], [0, 500, false], // the peer changed: a new message, 500 joins as the shorter last
  [0, 900, false], // after a shorter last datagram the message is closed: a new one
];

/** `v6`: the second peer (id 2) is reached over IPv6, at fd09::2. */
function fill(v6 = false): void {
  const u8 = core.bytes, dv = core.view;
  u8.set([0xfd, 0x09, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 2], PUBLIC6 + 2 * 16);
  let off = EG_OUT;
  PLAN.forEach(([peer, len, contiguous], i) => {
    if (!contiguous) off += 4096; // a gap: not contiguous with the previous datagram
    u8.fill(i + 1, off, off + len);
    const d = EG_UDP_DESC + i * UDP_DESC_SIZE;
    dv.setUint32(d, off, true);
    dv.setUint32(d + 4, len, true);
    u8.set(v6 && peer === 1 ? [0, 0, 0, 0] : PEER_IP, d + 8);
    dv.setUint16(d + 12, PORTS[peer]!, false); // network order
    dv.setUint16(d + 14, peer + 1, true);
    off += len;
  });
}

/** Starts the receiving peers in B; resolves with what they got. */
async function receiver(): Promise<() => Promise<string[][]>> {
  const argv = deno ? [process.execPath, "run", "-A", self, "--receive"] : [process.execPath, self, "--receive"];
  const child = spawn("ip", ["netns", "exec", nsB, ...argv], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  await new Promise<void>((resolve) => child.stdout!.on("data", (d) => { out += d; if (out.includes("ready")) resolve(); }));
  return () => new Promise((resolve) => child.on("close", () => resolve(JSON.parse(out.trim().split("\n").at(-1)!))));
}

/** The real Sys, except that a sendmmsg whose first message carries a cmsg fails with EIO. */
const eioOnGso: Sys = Object.assign(Object.create(sys) as Sys, {
  sendmmsg: (fd: number, vec: Uint8Array, vlen: number, flags: number) =>
    (vec[40]! | (vec[41]! << 8)) > 0 ? -EIO : sys.sendmmsg(fd, vec, vlen, flags),
});

async function run(gso: boolean, through: Sys = sys, v6 = false) {
  fill(v6);
  const received = await receiver();
  const s = new UdpSender(through, sender, core.bytes, gso, v6 ? sender6 : -1);
  const row = new Float64Array(128);
  s.send(PLAN.length, row);
  return {
    messages: row[hostIndex("txMessages")], packets: row[hostIndex("txPackets")], bytes: row[hostIndex("txBytes")],
    errors: row[hostIndex("txErrors")], fallbacks: row[hostIndex("txGsoFallbacks")], gsoAfter: s.gso, received: await received(),
    ...(v6 ? { syscalls: row[hostIndex("txSyscalls")] } : {}),
  };
}

const gsoAvailable = probeUdpGso(sys, sender);
const withGso = await run(true);
const withoutGso = await run(false);
const eio = await run(true, eioOnGso);
const mixed = await run(true, sys, true);
spawnSync("ethtool", ["-K", "va", "tx", "off"]);
const noCsum = await run(true);
console.log(JSON.stringify({ gsoAvailable, withGso, withoutGso, eio, mixed, noCsum }));
