/**
 * @module A one-shot TCP echo, the tests' "ping" (the VM has no ping binary): run `listen` in one
 * namespace and `connect` in another; exits 0 when the bytes made the round trip, 1 otherwise.
 *
 *   bun tcp_probe.ts listen <ip> <port>    # prints "ready", echoes one connection, exits
 *   bun tcp_probe.ts connect <ip> <port>   # sends a line, expects it back
 */
import { createConnection, createServer } from "node:net";

const [mode, host, portText] = process.argv.slice(2);
const port = Number(portText);
const timeout = setTimeout(() => { console.error(`tcp_probe ${mode} ${host}:${port}: timed out`); process.exit(1); }, 5000);

if (mode === "listen") {
  const server = createServer((sock) => {
    sock.on("data", (d) => sock.end(d));
    sock.on("close", () => { server.close(); clearTimeout(timeout); });
  });
  server.listen(port, host, () => console.log("ready"));
} else if (mode === "connect") {
  const payload = `weft-probe-${process.pid}\n`;
  let got = "";
  const sock = createConnection({ host, port }, () => sock.write(payload));
  sock.on("data", (d) => { got += d.toString(); });
  sock.on("error", (e) => { console.error(`tcp_probe connect ${host}:${port}: ${e.message}`); process.exit(1); });
  sock.on("close", () => { clearTimeout(timeout); process.exit(got === payload ? 0 : 1); });
} else {
  console.error("usage: tcp_probe.ts listen|connect <ip> <port>");
  process.exit(2);
}
