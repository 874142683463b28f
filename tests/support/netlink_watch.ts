/**
 * @module Watches a namespace's routes and neighbours (ARP and FDB) as they change, with a
 * wall-clock timestamp per event: the benches' and tests' way to see when an agent programmed a
 * peer. Run inside the namespace (`ip netns exec <ns> bun netlink_watch.ts`); prints
 * `{"ready":true}` once subscribed, then one JSON line per event:
 *   {"t":ms,"k":"route","a":"new"|"del","dst":"10.0.5.0/24","table":254}
 *   {"t":ms,"k":"neigh"|"fdb","a":"new"|"del","ip":"10.0.5.0","mac":"aa:bb:…"}
 *   {"t":ms,"k":"overrun"}   (the socket overflowed: re-read the state with `ip`)
 * Exits when stdin closes.
 */
import { NetlinkMonitor } from "../../ffi/netlink/index.ts";
import { EINTR, POLLFD_SIZE, POLLIN, SOL_SOCKET, SO_RCVBUFFORCE, pollRevents, setPollfd, structBuffer } from "../../ffi/linux.ts";
import { check, loadSys } from "../../ffi/sys.ts";

const AF_BRIDGE = 7;
const sys = await loadSys();
const mon = NetlinkMonitor.open(sys, ["ipv4-route", "neigh"]);
const size = structBuffer(4);
new DataView(size.buffer).setInt32(0, 32 << 20, true);
sys.setsockopt(mon.fd, SOL_SOCKET, SO_RCVBUFFORCE, size); // bursts of thousands of events
const fds = structBuffer(POLLFD_SIZE * 2);
setPollfd(fds, 0, mon.fd, POLLIN);
setPollfd(fds, 1, 0, POLLIN);
const enc = new TextEncoder();
const out = (s: string) => { const b = enc.encode(s); let o = 0; while (o < b.length) { const n = sys.write(1, b.subarray(o)); if (n <= 0) break; o += n; } };
const now = () => performance.timeOrigin + performance.now();
const stdinBuf = new Uint8Array(256);
out(`${JSON.stringify({ ready: true })}\n`);
for (;;) {
  const r = sys.poll(fds, 2, -1);
  if (r < 0 && r !== -EINTR) check(r, "netlink_watch: poll");
  if (pollRevents(fds, 1) !== 0 && sys.read(0, stdinBuf) <= 0) break;
  const t = now();
  let text = "";
  for (const e of mon.read()) {
    if (e.kind === "route") text += `${JSON.stringify({ t, k: "route", a: e.action, dst: e.route.dst, table: e.route.table })}\n`;
    else if (e.kind === "neigh") {
      text += `${JSON.stringify({ t, k: e.neigh.family === AF_BRIDGE ? "fdb" : "neigh", a: e.action, ip: e.neigh.ip, mac: e.neigh.mac })}\n`;
    } else if (e.kind === "overrun") text += `${JSON.stringify({ t, k: "overrun" })}\n`;
  }
  if (text) out(text);
}
mon.close();
