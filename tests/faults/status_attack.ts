/**
 * @module A hostile client of the status server, run as its own process (inside the agent's
 * namespace) so its 2000 sockets use its own descriptors: `bun status_attack.ts PORT CONNS MB
 * SECONDS`. Holds CONNS idle connections (slowloris: connect, send nothing; each one closed by
 * the server is reopened a second later; closed within 4 s counts as refused, later as dropped
 * at the header timeout) and streams one POST of MB megabytes to /healthz, for
 * SECONDS; then drops everything, asks /readyz on a fresh connection and prints one JSON line of
 * what it saw. Prints `started` once the connections are attempted.
 */
import { connect, type Socket } from "node:net";

const [port, conns, mb, seconds] = process.argv.slice(2).map(Number) as [number, number, number, number];
const end = Date.now() + seconds * 1000;
const sockets = new Set<Socket>();
let opened = 0, closedAtOnce = 0, closedLater = 0;

function slowloris(): void {
  if (Date.now() >= end) return;
  const t0 = Date.now();
  const s = connect(port, "127.0.0.1");
  sockets.add(s);
  s.on("connect", () => opened++);
  s.on("error", () => {});
  s.on("close", () => {
    sockets.delete(s);
    // The server's header timeout is 5 s: a connection closed well before was refused, however
    // long it waited in the listen backlog to be accepted and closed.
    if (Date.now() - t0 < 4000) closedAtOnce++;
    else closedLater++;
    setTimeout(slowloris, 1000);
  });
}

/** One POST of `mb` MB, written as fast as the server takes it, until the server answers or closes. */
function bigPost(onConnect: () => void): Promise<{ status: string; sentMB: number }> {
  return new Promise((resolve) => {
    const s = connect(port, "127.0.0.1");
    sockets.add(s);
    let answer = "", sent = 0;
    const chunk = Buffer.alloc(1 << 20, 0x61);
    const pump = () => {
      while (sent < mb && !s.destroyed && answer === "") {
        sent++;
        if (!s.write(chunk)) return void s.once("drain", pump);
      }
    };
    s.on("data", (d) => { answer += d.toString("latin1"); });
    s.on("error", () => {});
    s.on("close", () => resolve({ status: answer.split("\r\n")[0] ?? "", sentMB: sent }));
    s.on("connect", () => {
      s.write(`POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: ${mb * (1 << 20)}\r\n\r\n`);
      pump();
      onConnect();
    });
  });
}

// The POST connects first (so it holds a slot, not one refused at once), then the slowloris ones.
let started: () => void = () => {};
const connected = new Promise<void>((r) => (started = r));
const post = bigPost(() => started());
await connected;
for (let i = 0; i < conns; i++) slowloris();
console.log("started");
const postResult = await post;
await new Promise((r) => setTimeout(r, Math.max(0, end - Date.now())));
for (const s of sockets) s.destroy();
await new Promise((r) => setTimeout(r, 200));
// The agent may still be reaping the 2000 dropped connections (each frees a slot when it sees the
// close): a few tries within 15 s.
let readyz = 0;
for (const until = Date.now() + 15_000; readyz !== 200 && Date.now() < until;) {
  try {
    readyz = (await fetch(`http://127.0.0.1:${port}/readyz`, { signal: AbortSignal.timeout(5000) })).status;
  } catch { /* 0: no answer */ }
  if (readyz !== 200) await new Promise((r) => setTimeout(r, 500));
}
console.log(JSON.stringify({ opened, closedAtOnce, closedLater, post: postResult, readyz }));
process.exit(0);
