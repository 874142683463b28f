/**
 * @module Probes for the udp backend's namespace tests and bench, run as child processes inside
 * namespaces (`ip netns exec <ns> bun udp_probe.ts …`). Results are one JSON line on stdout.
 *
 *   sink PORT                  TCP (IPv4 and IPv6): accept one connection, hash all it sends; prints
 *                              {"ready":true} when listening, then {"bytes","sha256"}
 *   source IP PORT MIB         TCP: send MIB MiB of varied random data; prints {"bytes","sha256"}
 *   udp-listen PORT MS         count UDP datagrams arriving within MS ms; prints {"ready":true},
 *                              then {"count","payloads":[…]}
 *   echo PORT                  TCP (IPv4 and IPv6): echo what each connection sends, until killed;
 *                              prints {"ready":true}
 *   connect PORT IP...         TCP: to each IP:PORT in turn (IPv4 or IPv6), send a line and
 *                              expect it back within 3 s; prints [{"target","ok","error"?}…]
 *   inject IP PORT SRC DST DPORT TAG COUNT
 *                              send COUNT datagrams to underlay IP:PORT, each carrying a bare
 *                              IPv4/UDP packet SRC -> DST:DPORT with payload TAG: what a udp
 *                              peer (flanneld's or weft's) sends; prints {"sent"}
 */
import { createHash, randomBytes } from "node:crypto";
import { createSocket } from "node:dgram";
import { createConnection, createServer } from "node:net";
import { parseIPv4 } from "../../src/net/ip.ts";

const [mode, ...args] = process.argv.slice(2);
const out = (v: unknown) => process.stdout.write(`${JSON.stringify(v)}\n`);

/** An IPv4 header + UDP header (checksum 0, allowed over IPv4) + payload. */
function innerPacket(src: number, dst: number, dport: number, payload: Buffer): Buffer {
  const p = Buffer.alloc(28 + payload.length);
  p[0] = 0x45;
  p.writeUInt16BE(p.length, 2);
  p[8] = 64; // TTL
  p[9] = 17; // UDP
  p.writeUInt32BE(src, 12);
  p.writeUInt32BE(dst, 16);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += p.readUInt16BE(i);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  p.writeUInt16BE(~sum & 0xffff, 10);
  p.writeUInt16BE(40000, 20);
  p.writeUInt16BE(dport, 22);
  p.writeUInt16BE(8 + payload.length, 24);
  payload.copy(p, 28);
  return p;
}

if (mode === "sink") {
  const hash = createHash("sha256");
  let bytes = 0;
  const server = createServer((sock) => {
    sock.on("data", (d: Buffer) => { hash.update(d); bytes += d.length; });
    sock.on("end", () => { out({ bytes, sha256: hash.digest("hex") }); sock.end(); server.close(); });
  });
  server.listen(Number(args[0]), "::", () => out({ ready: true }));
} else if (mode === "echo") {
  const server = createServer((sock) => {
    sock.on("data", (d) => sock.write(d));
    sock.on("error", () => sock.destroy());
  });
  server.listen(Number(args[0]), "::", () => out({ ready: true }));
} else if (mode === "connect") {
  const [port, ...hosts] = args;
  const results: { target: string; ok: boolean; error?: string }[] = [];
  for (const host of hosts) {
    const target = host.includes(":") ? `[${host}]:${port}` : `${host}:${port}`;
    const line = `weft ${process.pid} ${target}\n`;
    results.push(await new Promise((resolve) => {
      let got = "";
      const sock = createConnection({ host, port: Number(port) }, () => sock.write(line));
      const timer = setTimeout(() => { sock.destroy(); resolve({ target, ok: false, error: "timed out" }); }, 3000);
      sock.on("data", (d) => {
        got += d;
        if (got === line) { clearTimeout(timer); sock.end(); resolve({ target, ok: true }); }
      });
      sock.on("error", (e) => { clearTimeout(timer); resolve({ target, ok: false, error: e.message }); });
    }));
  }
  out(results);
} else if (mode === "source") {
  const [host, port, mib] = [args[0]!, Number(args[1]), Number(args[2])];
  const base = randomBytes(1 << 20);
  const hash = createHash("sha256");
  let i = 0;
  const sock = createConnection({ host, port }, () => {
    const pump = () => {
      while (i < mib) {
        const chunk = Buffer.from(base);
        chunk.writeUInt32BE(i, 0); // every MiB differs
        hash.update(chunk);
        i++;
        if (!sock.write(chunk)) return void sock.once("drain", pump);
      }
      sock.end(() => out({ bytes: mib << 20, sha256: hash.digest("hex") }));
    };
    pump();
  });
  sock.on("error", (e) => { console.error(`source: ${e.message}`); process.exit(1); });
} else if (mode === "udp-listen") {
  const payloads: string[] = [];
  const s = createSocket("udp4");
  s.on("message", (m) => payloads.push(m.toString()));
  s.bind(Number(args[0]), "0.0.0.0", () => {
    out({ ready: true });
    setTimeout(() => { out({ count: payloads.length, payloads }); s.close(); }, Number(args[1]));
  });
} else if (mode === "inject") {
  const [ip, port, src, dst, dport, tag, count] = args;
  const packet = innerPacket(parseIPv4(src!), parseIPv4(dst!), Number(dport), Buffer.from(tag!));
  const s = createSocket("udp4");
  let sent = 0;
  const next = () => {
    if (sent === Number(count)) { out({ sent }); s.close(); return; }
    s.send(packet, Number(port), ip!, (e) => { if (e) { console.error(`inject: ${e.message}`); process.exit(1); } sent++; setTimeout(next, 5); });
  };
  next();
} else {
  console.error("usage: udp_probe.ts sink PORT | echo PORT | connect PORT IP... | source IP PORT MIB | udp-listen PORT MS | inject IP PORT SRC DST DPORT TAG COUNT");
  process.exit(2);
}
