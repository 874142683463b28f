/**
 * @module Run by warm_up.test.ts (Bun or Deno) in a fresh namespace: warms a real core up over
 * loopback with and without virtio_net_hdr, then checks that every packet came back out of the
 * stand-in TUN, that the temporary peer and route are gone, and that a loop built afterwards
 * starts its counters at zero. Prints one JSON line.
 */
import { loadCore } from "../../src/core/loader.ts";
import { loadSys } from "../../ffi/sys.ts";
import { ControlLog, ControlReader } from "../../src/backend/udp/control_log.ts";
import { PacketLoop } from "../../src/backend/udp/packet_loop.ts";
import { warmUp } from "../../src/backend/udp/warm_up.ts";
import { createStatsBuffer, statsRow, sumStats } from "../../src/backend/udp/worker_stats.ts";

const sys = await loadSys();
const out: Record<string, unknown> = {};
for (const vnetHdr of [false, true]) {
  const core = await loadCore();
  const options = { tunFd: -1, udpFd: -1, vnetHdr, gso: true, gro: true, ifaceMtu: 1500 };
  const t = performance.now();
  const back = warmUp(sys, core, options, 320);
  const stats = createStatsBuffer(1);
  const loop = new PacketLoop(sys, core, options, new ControlReader(new ControlLog(1).buffer, 0), statsRow(stats, 0));
  loop.publish();
  const s = sumStats(stats, 1);
  out[vnetHdr ? "vnet" : "plain"] = {
    back,
    routeGone: core.route4Lookup(0x0affff02) < 0,
    countersFromZero: s.tx.packets === 0 && s.icmpUnreachable === 0 && Object.keys(s.egressDrops).length === 0 && Object.keys(s.ingressDrops).length === 0,
  };
  out[vnetHdr ? "vnetMs" : "plainMs"] = Math.round(performance.now() - t);
}
console.log(JSON.stringify(out));
