/**
 * @module Run by answer.test.ts (Bun or Deno) in a fresh namespace: a PacketLoop on a real TUN
 * `weft0` (10.9.1.0/16) and a UDP socket on 127.0.0.1, with one peer, 127.0.0.2, owning
 * 10.9.2.0/24. The peer sends an ICMP echo request for 10.9.1.0 (the TUN's own address); the
 * kernel answers it while the loop writes the request into the TUN, so the loop should read and
 * send that reply in the same turn, without another poll(). Prints one JSON line: the packets
 * the turn handled and what the peer got back.
 */
import { writeFileSync } from "node:fs";
import { loadCore } from "../../src/core/loader.ts";
import { check, loadSys } from "../../ffi/sys.ts";
import { openTun } from "../../ffi/tun.ts";
import { localPort, openUdpSocket } from "../../ffi/udp.ts";
import { sockaddrIn, structBuffer } from "../../ffi/linux.ts";
import { ControlLog, ControlReader } from "../../src/backend/udp/control_log.ts";
import { PacketLoop } from "../../src/backend/udp/packet_loop.ts";
import { createStatsBuffer, statsRow } from "../../src/backend/udp/worker_stats.ts";
import { buildPacket, v4 } from "../core/packets.ts";
import { sh } from "../support/ns.ts";

const ip = (...args: string[]) => sh(["ip", ...args]);
const sys = await loadSys();
const core = await loadCore();
const tun = openTun(sys, { name: "weft0", nonBlocking: true });
// No IPv6 on it: router solicitations and MLD reports would be the first packets the TUN holds.
writeFileSync("/proc/sys/net/ipv6/conf/weft0/disable_ipv6", "1");
ip("addr", "add", "10.9.1.0/16", "dev", "weft0");
ip("link", "set", "weft0", "mtu", "1472", "up");
const udp = openUdpSocket(sys, { ip: "127.0.0.1", port: 0, nonBlocking: true });
const peer = openUdpSocket(sys, { ip: "127.0.0.2", port: 0, nonBlocking: true });
check(core.peerSet(0, 0x7f000002, localPort(sys, peer), 0x0a090200, 24) || core.route4Insert(0x0a090200, 24, 0), "core: peer 0");

// The echo request 10.9.2.5 -> 10.9.1.0 (buildPacket: id 0x1234, seq 1), 8 bytes of payload.
const req = buildPacket({ src: v4(10, 9, 2, 5), dst: v4(10, 9, 1, 0), proto: 1, payload: new Uint8Array(8) });

const stats = createStatsBuffer(1);
const row = statsRow(stats, 0);
const loop = new PacketLoop(sys, core, { tunFd: tun.fd, udpFd: udp, vnetHdr: false, gso: false, gro: false, ifaceMtu: 1500, warmUp: false }, new ControlReader(new ControlLog(1).buffer, 0), row);
check(sys.sendto(peer, req, req.length, 0, sockaddrIn(0x7f000001, localPort(sys, udp))), "peer: send the echo request");
const handled = loop.turn(1000);
const back = structBuffer(2048);
const n = sys.recvfrom(peer, back, back.length, 0, null);
const b = new DataView(back.buffer);
console.log(JSON.stringify({
  handled,
  reply: n > 0 ? { len: n, src: b.getUint32(12), dst: b.getUint32(16), type: b.getUint8(20), id: b.getUint16(24), seq: b.getUint16(26) } : n,
}));

