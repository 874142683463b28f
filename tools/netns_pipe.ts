/**
 * @module One end of a TCP forwarder into a network namespace: run inside the namespace
 * (`ip netns exec <ns> bun tools/netns_pipe.ts HOST PORT`), it connects to HOST:PORT there and
 * copies stdin to the connection and the connection to stdout. The other end
 * (`tools/netns_forward.ts`) listens in the root namespace and spawns one of these per
 * connection, so a namespace's services are reachable from the root namespace without adding
 * any link to it.
 */
import { createConnection } from "node:net";

const [host, portText] = process.argv.slice(2);
const port = Number(portText);
if (!host || !Number.isInteger(port) || port <= 0 || port > 65535) {
  process.stderr.write(`usage: netns_pipe.ts HOST PORT (got ${JSON.stringify(process.argv.slice(2))})\n`);
  process.exit(2);
}
const sock = createConnection({ host, port, noDelay: true });
sock.on("error", (e) => { process.stderr.write(`netns_pipe ${host}:${port}: ${e.message}\n`); process.exit(1); });
sock.on("close", () => process.exit(0));
process.stdin.on("data", (d) => sock.write(d));
process.stdin.on("end", () => sock.end());
sock.on("data", (d) => process.stdout.write(d));
