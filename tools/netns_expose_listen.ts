/**
 * @module The namespace end of `netns_expose.ts`: run inside a namespace
 * (`ip netns exec <ns> bun tools/netns_expose_listen.ts HOST PORT SOCKET`), it listens on
 * HOST:PORT there and joins each connection to the Unix socket SOCKET (Unix sockets are not
 * bound to a network namespace), prints `{"ready":true}` once listening, and runs until killed.
 */
import { createConnection, createServer } from "node:net";

const [host, portText, path] = process.argv.slice(2);
const port = Number(portText);
if (!host || !path || !Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`usage: netns_expose_listen.ts HOST PORT SOCKET (got ${JSON.stringify(process.argv.slice(2))})\n`);
  process.exit(2);
}
const server = createServer((sock) => {
  sock.setNoDelay(true);
  const up = createConnection({ path });
  sock.pipe(up);
  up.pipe(sock);
  sock.on("error", () => up.destroy());
  up.on("error", () => sock.destroy());
  sock.on("close", () => up.destroy());
  up.on("close", () => sock.destroy());
});
server.on("error", (e) => { process.stderr.write(`netns_expose_listen ${host}:${port}: ${e.message}\n`); process.exit(1); });
server.listen(port, host, () => process.stdout.write(`${JSON.stringify({ ready: true })}\n`));
