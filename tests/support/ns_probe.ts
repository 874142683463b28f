/**
 * @module The probes the multi-host tests, the demo and the benches run inside container
 * namespaces (this VM has no `ping` or `nc`): ICMP echo over a raw socket, a TCP echo server and
 * a TCP echo client. Run as a child process (`ip netns exec <ns> bun ns_probe.ts …`); results are
 * JSON lines on stdout, each with a wall-clock time `t` (ms, sub-ms precision) so timings from
 * different namespaces compare.
 *
 *   bun ns_probe.ts ping [--count N] [--interval MS] [--timeout MS] [--stdin] [--stagger] IP...
 *       one echo to every target per round; N rounds (0 = until stdin closes). `--stdin` also
 *       reads more targets from stdin, one per line. `--stagger` spreads a round's echoes over
 *       the interval (target k at k·MS/targets), so paths measured together take turns
 *       instead of sending at once; each round starts one target later than the last.
 *       Prints {"ip","seq","rtt","t"} per reply and {"ip","seq","lost":true,"t"} per echo
 *       unanswered after the timeout.
 *   bun ns_probe.ts serve PORT            TCP echo on 0.0.0.0:PORT; prints {"ready":true}
 *   bun ns_probe.ts connect [--timeout MS] IP:PORT...
 *       connects to each in turn, sends a line, expects it back; {"target","ok","ms","error"?}
 */
import { createConnection, createServer } from "node:net";
import {
  AF_INET, EAGAIN, EINTR, IPPROTO_ICMP, MSG_DONTWAIT, POLLFD_SIZE, POLLIN, SOCK_RAW, pollRevents, setPollfd,
  sockaddrIn, structBuffer,
} from "../../ffi/linux.ts";
import { check, loadSys } from "../../ffi/sys.ts";
import { formatIPv4, parseIPv4 } from "../../src/net/ip.ts";

const now = () => performance.timeOrigin + performance.now();

/** The Internet checksum (RFC 1071) of `buf[0..len)`. */
function inetChecksum(buf: Uint8Array, len: number): number {
  let sum = 0;
  for (let i = 0; i + 1 < len; i += 2) sum += (buf[i]! << 8) | buf[i + 1]!;
  if (len & 1) sum += buf[len - 1]! << 8;
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

function flag(args: string[], name: string, dflt: number): number {
  const i = args.indexOf(name);
  if (i < 0) return dflt;
  const v = Number(args[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new RangeError(`ns_probe: ${name} ${args[i + 1]} must be a number ≥ 0`);
  args.splice(i, 2);
  return v;
}

async function ping(args: string[]): Promise<void> {
  const count = flag(args, "--count", 1);
  const interval = flag(args, "--interval", 200);
  const timeout = flag(args, "--timeout", 1000);
  const fromStdin = args.includes("--stdin");
  const stagger = args.includes("--stagger");
  const targets: number[] = args.filter((a) => a !== "--stdin" && a !== "--stagger").map((a) => parseIPv4(a, "ping target"));

  const sys = await loadSys();
  const fd = check(sys.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), "ns_probe ping: socket(AF_INET, SOCK_RAW, ICMP)");
  const id = process.pid & 0xffff;
  const pkt = structBuffer(64);
  const rx = structBuffer(2048);
  const dst = structBuffer(16);
  const stdinBuf = new Uint8Array(4096);
  const pollfds = structBuffer(POLLFD_SIZE * 2);
  setPollfd(pollfds, 0, fd, POLLIN);
  setPollfd(pollfds, 1, 0, POLLIN);
  const enc = new TextEncoder();
  const emit = (o: object) => { sys.write(1, enc.encode(`${JSON.stringify(o)}\n`)); };

  // seq -> outstanding echo; one sequence space over all targets.
  const pending = new Map<number, { ip: number; sent: number }>();
  let seq = 0;
  let stdinOpen = true;
  let stdinRest = "";
  let rounds = 0;
  let nextRound = now();
  /** With --stagger: the target whose echo goes next in this round. */
  let turn = 0;

  const send = (ip: number) => {
    seq = (seq + 1) & 0xffff;
    pkt.fill(0);
    pkt[0] = 8; // echo request
    pkt[4] = id >> 8; pkt[5] = id & 0xff;
    pkt[6] = seq >> 8; pkt[7] = seq & 0xff;
    const c = inetChecksum(pkt, pkt.length);
    pkt[2] = c >> 8; pkt[3] = c & 0xff;
    pending.set(seq, { ip, sent: now() });
    sys.sendto(fd, pkt, pkt.length, 0, sockaddrIn(ip, 0, dst)); // unreachable: reported as lost
  };

  for (;;) {
    const t = now();
    for (const [s, p] of pending) {
      if (t - p.sent >= timeout) { pending.delete(s); emit({ ip: formatIPv4(p.ip), seq: s, lost: true, t }); }
    }
    const done = count > 0 ? rounds >= count : !stdinOpen;
    if (done && pending.size === 0) break;
    if (!done && t >= nextRound) {
      let step = interval;
      if (stagger && targets.length > 1) {
        // Each round starts one target later: every path follows every other equally often, so
        // none always comes right after the one that warmed the code paths they share.
        send(targets[(turn + rounds) % targets.length]!);
        step = interval / targets.length;
        if (++turn >= targets.length) { turn = 0; rounds++; }
      } else {
        for (const ip of targets) send(ip);
        rounds++;
      }
      nextRound += step;
      if (nextRound < t) nextRound = t + step;
      continue;
    }
    let until = done ? t + timeout : nextRound;
    for (const p of pending.values()) until = Math.min(until, p.sent + timeout);
    const waitMs = Math.max(0, Math.ceil(until - t));
    const r = sys.poll(pollfds, fromStdin || count === 0 ? 2 : 1, waitMs);
    if (r < 0 && r !== -EINTR) check(r, "ns_probe ping: poll");
    if (r <= 0) continue;
    if (pollRevents(pollfds, 1) !== 0 && stdinOpen) {
      const n = sys.read(0, stdinBuf);
      if (n <= 0) { stdinOpen = false; setPollfd(pollfds, 1, -1, 0); }
      else {
        stdinRest += new TextDecoder().decode(stdinBuf.subarray(0, n));
        const lines = stdinRest.split("\n");
        stdinRest = lines.pop()!;
        for (const l of lines) if (l.trim()) targets.push(parseIPv4(l.trim(), "ping target on stdin"));
      }
    }
    for (;;) {
      const n = sys.recvfrom(fd, rx, rx.length, MSG_DONTWAIT, null);
      if (n === -EAGAIN || n < 0) break;
      const ihl = (rx[0]! & 0x0f) * 4;
      if (n < ihl + 8 || rx[ihl] !== 0) continue; // not an echo reply
      if (((rx[ihl + 4]! << 8) | rx[ihl + 5]!) !== id) continue;
      const s = (rx[ihl + 6]! << 8) | rx[ihl + 7]!;
      const p = pending.get(s);
      const src = ((rx[12]! << 24) | (rx[13]! << 16) | (rx[14]! << 8) | rx[15]!) >>> 0;
      if (!p || p.ip !== src) continue;
      pending.delete(s);
      const at = now();
      emit({ ip: formatIPv4(src), seq: s, rtt: Math.round((at - p.sent) * 1000) / 1000, t: at });
    }
  }
  sys.close(fd);
}

function serve(args: string[]): void {
  const port = Number(args[0]);
  const server = createServer((sock) => {
    sock.on("data", (d) => sock.write(d));
    sock.on("error", () => sock.destroy());
  });
  server.listen(port, "0.0.0.0", () => console.log(JSON.stringify({ ready: true, port })));
}

async function connectAll(args: string[]): Promise<void> {
  const timeout = flag(args, "--timeout", 2000);
  for (const target of args) {
    const [host, port] = target.split(":");
    const start = now();
    const payload = `weft-probe ${process.pid} ${target}\n`;
    const result = await new Promise<{ ok: boolean; error?: string }>((resolve) => {
      let got = "";
      const sock = createConnection({ host: host!, port: Number(port) }, () => sock.write(payload));
      const timer = setTimeout(() => { sock.destroy(); resolve({ ok: false, error: "timed out" }); }, timeout);
      sock.on("data", (d) => {
        got += d;
        if (got === payload) { clearTimeout(timer); sock.end(); resolve({ ok: true }); }
      });
      sock.on("error", (e) => { clearTimeout(timer); resolve({ ok: false, error: e.message }); });
    });
    console.log(JSON.stringify({ target, ...result, ms: Math.round((now() - start) * 1000) / 1000 }));
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "ping") await ping(rest);
else if (mode === "serve") serve(rest);
else if (mode === "connect") await connectAll(rest);
else {
  console.error("usage: ns_probe.ts ping [--count N] [--interval MS] [--timeout MS] [--stdin] IP... | serve PORT | connect IP:PORT...");
  process.exit(2);
}
