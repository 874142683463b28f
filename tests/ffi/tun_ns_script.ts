/**
 * @module Runs inside a fresh namespace under Bun or Deno (see tun_namespace.test.ts): opens
 * TUN devices, routes an ICMP echo and UDP datagrams through the kernel and back, negotiates
 * offloads and multi-queue, writes a sysctl. Prints one JSON object of what it observed.
 */
import { execFileSync } from "node:child_process";
import { check, loadSys } from "../../ffi/sys.ts";
import { parseSockaddr, POLLIN, setPollfd, sockaddrIn, structBuffer, VIRTIO_NET_HDR_LEN } from "../../ffi/linux.ts";
import { enableTunOffloads, openTun, setTunOffload, setVnetHdrSize } from "../../ffi/tun.ts";
import { openUdpSocket } from "../../ffi/udp.ts";
import { readSysctl, writeSysctl } from "../../ffi/sysctl.ts";
import { formatIPv4, ipv4FromBytes, ipv4ToBytes, parseIPv4 } from "../../src/net/ip.ts";

const sys = await loadSys();
const out: Record<string, unknown> = { runtime: sys.runtime };
const ip = (...args: string[]) => execFileSync("ip", args);

function checksum(b: Uint8Array, from: number, to: number, seed = 0): number {
  let sum = seed;
  for (let i = from; i < to; i += 2) sum += (b[i]! << 8) | (i + 1 < to ? b[i + 1]! : 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An IPv4 packet around `payload` (IP checksum set; UDP checksum left 0, which IPv4 allows). */
function ipv4Packet(proto: number, src: string, dst: string, payload: Uint8Array): Uint8Array {
  const p = new Uint8Array(20 + payload.length);
  const v = new DataView(p.buffer);
  p[0] = 0x45; v.setUint16(2, p.length); v.setUint16(4, 0x1234); p[8] = 64; p[9] = proto;
  ipv4ToBytes(parseIPv4(src), p, 12); ipv4ToBytes(parseIPv4(dst), p, 16);
  v.setUint16(10, checksum(p, 0, 20));
  p.set(payload, 20);
  return p;
}

function icmpEcho(id: number, seq: number): Uint8Array {
  const m = new Uint8Array(8 + 4);
  const v = new DataView(m.buffer);
  m[0] = 8; v.setUint16(4, id); v.setUint16(6, seq); m.set([0x77, 0x65, 0x66, 0x74], 8);
  v.setUint16(2, checksum(m, 0, m.length));
  return m;
}

function udpDatagram(srcPort: number, dstPort: number, data: string): Uint8Array {
  const body = new TextEncoder().encode(data);
  const m = new Uint8Array(8 + body.length);
  const v = new DataView(m.buffer);
  v.setUint16(0, srcPort); v.setUint16(2, dstPort); v.setUint16(4, m.length); m.set(body, 8);
  return m;
}

const pollfd = structBuffer(8);
/** Reads packets from `fd` (skipping `skip` header bytes) until `want` matches one, or 3 s pass. */
function readUntil(fd: number, skip: number, want: (p: Uint8Array) => boolean): Uint8Array | null {
  const buf = new Uint8Array(65536 + skip);
  const deadline = Date.now() + 3000;
  while (Date.now() < deadline) {
    setPollfd(pollfd, 0, fd, POLLIN);
    if (sys.poll(pollfd, 1, 200) <= 0) continue;
    const n = check(sys.read(fd, buf), "read tun");
    const p = buf.slice(skip, n);
    if (want(p)) return p;
  }
  return null;
}

const isEchoReply = (id: number) => (p: Uint8Array) =>
  p[0]! >> 4 === 4 && p[9] === 1 && p[20] === 0 && ((p[24]! << 8) | p[25]!) === id;

// 1. A plain TUN (IFF_TUN|IFF_NO_PI): the kernel answers a ping and talks UDP through it.
const tun = openTun(sys, { name: "weft%d" });
out.name = tun.name;
writeSysctl(`net/ipv6/conf/${tun.name}/disable_ipv6`, 1); // no router solicitations in the way
ip("addr", "add", "10.77.0.1/24", "dev", tun.name);
ip("link", "set", tun.name, "up");

out.pingWrite = sys.write(tun.fd, ipv4Packet(1, "10.77.0.2", "10.77.0.1", icmpEcho(0x4242, 1)));
const reply = readUntil(tun.fd, 0, isEchoReply(0x4242));
out.pingReply = reply && `${formatIPv4(ipv4FromBytes(reply, 12))} -> ${formatIPv4(ipv4FromBytes(reply, 16))}`;

const udp = openUdpSocket(sys, { ip: "10.77.0.1", port: 6000 });
sys.write(tun.fd, ipv4Packet(17, "10.77.0.2", "10.77.0.1", udpDatagram(5000, 6000, "hello")));
const got = new Uint8Array(64), from = structBuffer(16);
setPollfd(pollfd, 0, udp, POLLIN);
sys.poll(pollfd, 1, 3000);
const n = sys.recvfrom(udp, got, 64, 0, from);
const src = parseSockaddr(from);
out.udpIn = `${new TextDecoder().decode(got.subarray(0, n))} from ${src.family === 2 ? `${formatIPv4(src.ip)}:${src.port}` : "?"}`;
out.udpOutSent = sys.sendto(udp, new TextEncoder().encode("world"), 5, 0, sockaddrIn(parseIPv4("10.77.0.2"), 5000));
const back = readUntil(tun.fd, 0, (p) => p[9] === 17 && ((p[22]! << 8) | p[23]!) === 5000);
out.udpOut = back && `${new TextDecoder().decode(back.subarray(28))} from port ${(back[20]! << 8) | back[21]!}`;
sys.close(udp);
sys.close(tun.fd);
out.goneAfterClose = sys.ifNameToIndex(tun.name) === 0;

// 2. IFF_VNET_HDR: offloads negotiated, every packet behind a 10-byte virtio_net_hdr.
const vnet = openTun(sys, { name: "weftv0", vnetHdr: true });
out.unknownOffloadAccepted = setTunOffload(sys, vnet.fd, 0x1000); // no such TUN_F_ flag: EINVAL
out.offloads = enableTunOffloads(sys, vnet.fd);
setVnetHdrSize(sys, vnet.fd, VIRTIO_NET_HDR_LEN);
out.features = execFileSync("ethtool", ["-k", vnet.name], { encoding: "utf8" })
  .split("\n").filter((l) => /^(tcp-segmentation-offload|tx-udp-segmentation|tx-checksumming):/.test(l)).map((l) => l.trim());
writeSysctl(`net/ipv6/conf/${vnet.name}/disable_ipv6`, 1);
ip("addr", "add", "10.78.0.1/24", "dev", vnet.name);
ip("link", "set", vnet.name, "up");
const framed = new Uint8Array(VIRTIO_NET_HDR_LEN + 32);
framed.set(ipv4Packet(1, "10.78.0.2", "10.78.0.1", icmpEcho(0x4343, 2)), VIRTIO_NET_HDR_LEN);
out.vnetWrite = sys.write(vnet.fd, framed);
out.vnetReply = readUntil(vnet.fd, VIRTIO_NET_HDR_LEN, isEchoReply(0x4343)) !== null;
sys.close(vnet.fd);

// 3. IFF_MULTI_QUEUE: a second open of the same name adds a queue.
const q0 = openTun(sys, { name: "weftmq0", multiQueue: true });
const q1 = openTun(sys, { name: "weftmq0", multiQueue: true });
out.multiQueue = [q0.name, q1.name, q0.fd !== q1.fd];
sys.close(q0.fd);
sys.close(q1.fd);
try {
  openTun(sys, { name: "weft-name-too-long" });
} catch (e) {
  out.badName = (e as Error).message;
}

// 4. sysctls are per namespace: this one is ours to change.
writeSysctl("net.ipv4.ip_forward", 1);
out.ipForward = readSysctl("net.ipv4.ip_forward");

console.log(JSON.stringify(out));
