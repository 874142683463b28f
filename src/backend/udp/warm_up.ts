/**
 * @module JIT warm-up of a packet worker before it reports ready. JavaScriptCore and V8 run new
 * code in their interpreters and baseline tiers until it has run thousands of times; the
 * forwarding path of a worker that sees one ping every 10 ms would stay there for minutes, and
 * measured (bench/udp_path.ts, first RTT round after the agents start, 3 runs each) the added
 * RTT with echoes 10 ms apart was 286–364 µs without warm-up and 214–284 µs with it.
 *
 * So each worker first forwards a few thousand synthetic packets through the very code that
 * carries traffic — a PacketLoop with the same options and the same core — over loopback:
 *
 *   app socket ──write──▶ "TUN" socket ──egress()──▶ UDP socket ──ingress()──▶ "TUN" ──▶ app
 *
 * It runs whole turns (poll, control log, egress, ingress), not egress()/ingress() alone: called
 * directly, they left turn(), Sys.poll() and ControlReader.applyTo() in the baseline tier —
 * JavaScriptCore's compile log (BUN_JSC_reportDFGCompileTimes=1, bench/udp_path.ts
 * --agent-log) showed them never optimized during the first 2,200 echoes of a run.
 *
 * A connected UDP socket stands in for the TUN (one datagram per read/write, like a TUN fd).
 * The core gets a temporary peer 127.0.0.1:<UDP socket's port> owning WARM_NET/24, and loses
 * it again afterwards; the packets are UDP in IPv4 from WARM_NET.1 to WARM_NET.2 (with a
 * virtio_net_hdr when the loop uses one). Nothing leaves loopback, and the caller builds its
 * real loop afterwards (which starts counting from the core's counters as they are then).
 * Best effort: a failure (say, loopback down) only means the warm-up is skipped.
 */
import * as L from "../../core/layout.ts";
import type { Core } from "../../core/types.ts";
import { check, type Sys } from "../../../ffi/sys.ts";
import { enableUdpGro, localPort, openUdpSocket } from "../../../ffi/udp.ts";
import { SOCKADDR_IN_SIZE, sockaddrIn, structBuffer } from "../../../ffi/linux.ts";
import { ControlLog, ControlReader } from "./control_log.ts";
import { LoopTrace } from "./loop_trace.ts";
import { PacketLoop, type PacketLoopOptions } from "./packet_loop.ts";
import { statsRow, createStatsBuffer } from "./worker_stats.ts";

/**
 * Round trips forwarded: enough for the optimizing tiers of both engines (JavaScriptCore: DFG on
 * the whole forwarding path, 70–90 ms). 15,000 rounds (300–430 ms per worker start) also bring
 * turn(), egress() and ingress() to FTL before the first packet, and no JIT work is left for the
 * traffic — but the added RTT did not change (bench/udp_path.ts, 2 alternating pairs of runs:
 * +204/+206 µs 10 ms apart against +144/+202), so the start stays short.
 */
export const WARM_UP_ROUNDS = 3000;
/** The temporary peer's id (the highest; PeerTable hands out ids from 0). */
const WARM_PEER = L.PEER_CAP - 1;
/** 10.255.255.0/24: the temporary peer's subnet (the packets never leave loopback). */
const WARM_NET = 0x0affff00;
const LOOPBACK = 0x7f000001;
const PAYLOAD = 64;

/** The synthetic packet: [virtio_net_hdr,] IPv4 header (valid checksum), UDP header, payload. */
export function warmUpPacket(vnetHdr: boolean): Uint8Array {
  const hdr = vnetHdr ? L.VNET_HDR_LEN : 0;
  const total = 20 + 8 + PAYLOAD;
  const b = structBuffer(hdr + total);
  const v = new DataView(b.buffer, hdr);
  v.setUint8(0, 0x45);
  v.setUint16(2, total);
  v.setUint8(8, 64); // TTL
  v.setUint8(9, 17); // UDP
  v.setUint32(12, WARM_NET + 1);
  v.setUint32(16, WARM_NET + 2);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += v.getUint16(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  v.setUint16(10, ~sum & 0xffff);
  v.setUint16(20, 40000); // ports; UDP checksum 0 (none), as IPv4 allows
  v.setUint16(22, 40001);
  v.setUint16(24, 8 + PAYLOAD);
  return b;
}

/**
 * Forwards `rounds` synthetic packets through a PacketLoop built like the real one; returns
 * how many came back out of the "TUN", or throws when loopback is unusable (the caller goes on
 * without warm-up).
 */
export function warmUp(sys: Sys, core: Core, options: PacketLoopOptions, rounds = WARM_UP_ROUNDS): number {
  const fds: number[] = [];
  const open = () => {
    const fd = openUdpSocket(sys, { ip: "127.0.0.1", port: 0, nonBlocking: true });
    fds.push(fd);
    return fd;
  };
  try {
    const tun = open(), app = open(), udp = open();
    // As the real socket: the bursts then arrive as one GRO message (the cmsg branch runs too).
    if (options.gro) enableUdpGro(sys, udp);
    check(sys.connect(tun, sockaddrIn(LOOPBACK, localPort(sys, app))), "connect the warm-up TUN socket");
    check(sys.connect(app, sockaddrIn(LOOPBACK, localPort(sys, tun))), "connect the warm-up app socket");
    const rc = core.peerSet(WARM_PEER, LOOPBACK, localPort(sys, udp), WARM_NET, 24) || core.route4Insert(WARM_NET, 24, WARM_PEER);
    if (rc < 0) throw new Error(`udp warm-up: the core refused the temporary peer ${WARM_PEER} (error ${rc})`);
    // With tracing on, the real loop takes the trace branches: so does the warm-up (its
    // summaries dropped), else the compiled code would be thrown away at the first real packet.
    const trace = options.trace ? new LoopTrace(() => {}) : null;
    const loop = new PacketLoop(sys, core, { ...options, tunFd: tun, udpFd: udp, udp6Fd: undefined }, new ControlReader(new ControlLog(1).buffer, 0), statsRow(createStatsBuffer(1), 0), trace);
    const packet = warmUpPacket(options.vnetHdr);
    const back = structBuffer(65536 + SOCKADDR_IN_SIZE);
    let out = 0;
    for (let i = 0; i < rounds; i++) {
      const burst = i % 16 === 15 ? 4 : 1; // now and then a batch, for the batch paths
      for (let k = 0; k < burst; k++) sys.write(app, packet);
      // Whole turns, as the real loop runs them (poll and control log included): the "TUN" is
      // read and the datagrams sent; then they are received, written back into the "TUN" and
      // the same-turn look for an answer finds none; then a turn with nothing ready.
      loop.turn(0);
      loop.turn(0);
      loop.turn(0);
      while (sys.read(app, back) > 0) out++;
    }
    return out;
  } finally {
    core.peerDelete(WARM_PEER);
    core.route4Delete(WARM_NET, 24);
    for (const fd of fds) sys.close(fd);
  }
}
