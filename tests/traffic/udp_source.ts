/**
 * @module Shows which source address a datagram arrives with (is it masqueraded?), for
 * traffic_netns.test.ts. Run in namespaces as child processes:
 *
 *   bun udp_source.ts listen PORT COUNT   # prints {"ready":true}, then {"from","data"} per datagram
 *   bun udp_source.ts send IP PORT TEXT   # one datagram from a fresh socket (fresh source port)
 */
import { createSocket } from "node:dgram";

const [mode, ...rest] = process.argv.slice(2);
const timeout = setTimeout(() => { console.error(`udp_source ${mode}: timed out`); process.exit(1); }, 10_000);

if (mode === "listen") {
  const [port, count] = [Number(rest[0]), Number(rest[1])];
  let seen = 0;
  const sock = createSocket("udp4");
  sock.on("message", (msg, rinfo) => {
    console.log(JSON.stringify({ from: rinfo.address, data: msg.toString() }));
    if (++seen >= count) { clearTimeout(timeout); sock.close(); }
  });
  sock.bind(port, "0.0.0.0", () => console.log(JSON.stringify({ ready: true })));
} else if (mode === "send") {
  const [ip, port, text] = [rest[0]!, Number(rest[1]), rest[2]!];
  const sock = createSocket("udp4");
  sock.send(text, port, ip, (err) => {
    clearTimeout(timeout);
    if (err) { console.error(`udp_source send ${ip}:${port}: ${err.message}`); process.exit(1); }
    sock.close();
  });
} else {
  console.error("usage: udp_source.ts listen PORT COUNT | send IP PORT TEXT");
  process.exit(2);
}
