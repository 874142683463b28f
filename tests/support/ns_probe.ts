/**
 * @module The probes the multi-host tests, the demo and the benches run inside container
 * namespaces (this VM has no `ping` or `nc`): ICMP echo over a raw socket, a TCP echo server and
 * a TCP echo client. Run as a child process (`ip netns exec <ns> bun ns_probe.ts …`); results are
 * JSON lines on stdout, each with a wall-clock time `t` (ms, sub-ms precision) so timings from
 * different namespaces compare.
 *
 *   bun ns_probe.ts ping [--count N] [--interval MS] [--timeout MS] [--stdin] [--stagger] IP...
 *       (IPv4 and IPv6 targets; IPv6 echoes go out of a raw ICMPv6 socket, the kernel sums them)
 *       one echo to every target per round; N rounds (0 = until stdin closes). `--stdin` also
 *       reads more targets from stdin, one per line. `--stagger` spreads a round's echoes over
 *       the interval (target k at k·MS/targets), so paths measured together take turns
 *       instead of sending at once; each round starts one target later than the last.
 *       Prints {"ip","seq","rtt","t"} per reply and {"ip","seq","lost":true,"t"} per echo
 *       unanswered after the timeout.
 *   bun ns_probe.ts serve PORT            TCP echo on [::]:PORT (IPv4 too); prints {"ready":true}
 *   bun ns_probe.ts connect [--timeout MS] IP:PORT...   (IPv6 as [addr]:port or addr:port)
 *   bun ns_probe.ts whoami PORT           TCP on [::]:PORT answering each connection with the
 *                                         source address it came from; prints {"ready":true}
 *   bun ns_probe.ts ask IP:PORT...        prints {"target","source"} per whoami server asked
 *                                         (is the traffic masqueraded on its way?)
 *       connects to each in turn, sends a line, expects it back; {"target","ok","ms","error"?}
 */
import { createConnection, createServer } from "node:net";
import {
  AF_INET, AF_INET6, EAGAIN, EINTR, IPPROTO_ICMP, IPPROTO_ICMPV6, MSG_DONTWAIT, POLLFD_SIZE, POLLIN, SOCK_RAW,
  pollRevents, setPollfd, sockaddrIn, sockaddrIn6, structBuffer,
} from "../../ffi/linux.ts";
import { check, loadSys } from "../../ffi/sys.ts";
import { parseIP } from "../../src/net/ip.ts";

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

/** A ping target: the text it was given as (results are keyed by it) and its parsed address. */
type Target = { text: string } & ReturnType<typeof parseIP>;

function target(text: string, what: string): Target {
  return { text, ...parseIP(text, what) };
}

async function ping(args: string[]): Promise<void> {
  const count = flag(args, "--count", 1);
  const interval = flag(args, "--interval", 200);
  const timeout = flag(args, "--timeout", 1000);
  const fromStdin = args.includes("--stdin");
  const stagger = args.includes("--stagger");
  const targets: Target[] = args.filter((a) => a !== "--stdin" && a !== "--stagger").map((a) => target(a, "ping target"));

  const sys = await loadSys();
  const fd = check(sys.socket(AF_INET, SOCK_RAW, IPPROTO_ICMP), "ns_probe ping: socket(AF_INET, SOCK_RAW, ICMP)");
  // IPv6 may be off in a namespace: then only IPv6 targets fail.
  const fd6 = sys.socket(AF_INET6, SOCK_RAW, IPPROTO_ICMPV6);
  const id = process.pid & 0xffff;
  const pkt = structBuffer(64);
  const rx = structBuffer(2048);
  const dst = structBuffer(16);
  const dst6 = structBuffer(28);
  const stdinBuf = new Uint8Array(4096);
  const pollfds = structBuffer(POLLFD_SIZE * 3);
  setPollfd(pollfds, 0, fd, POLLIN);
  setPollfd(pollfds, 1, fd6 >= 0 ? fd6 : -1, POLLIN);
  setPollfd(pollfds, 2, 0, POLLIN);
  const enc = new TextEncoder();
  const emit = (o: object) => { sys.write(1, enc.encode(`${JSON.stringify(o)}\n`)); };

  // seq -> outstanding echo; one sequence space over all targets.
  const pending = new Map<number, { t: Target; sent: number }>();
  let seq = 0;
  let stdinOpen = true;
  let stdinRest = "";
  let rounds = 0;
  let nextRound = now();
  /** With --stagger: the target whose echo goes next in this round. */
  let turn = 0;

  const send = (t: Target) => {
    seq = (seq + 1) & 0xffff;
    pkt.fill(0);
    pkt[0] = t.family === 4 ? 8 : 128; // echo request
    pkt[4] = id >> 8; pkt[5] = id & 0xff;
    pkt[6] = seq >> 8; pkt[7] = seq & 0xff;
    pending.set(seq, { t, sent: now() });
    if (t.family === 6) {
      if (fd6 < 0) throw new Error(`ns_probe ping: cannot ping ${t.text}: socket(AF_INET6, SOCK_RAW, ICMPV6) failed (${fd6})`);
      sys.sendto(fd6, pkt, pkt.length, 0, sockaddrIn6(t.ip, 0, 0, dst6)); // the kernel fills in the ICMPv6 checksum
      return;
    }
    const c = inetChecksum(pkt, pkt.length);
    pkt[2] = c >> 8; pkt[3] = c & 0xff;
    sys.sendto(fd, pkt, pkt.length, 0, sockaddrIn(t.ip, 0, dst)); // unreachable: reported as lost
  };

  /** An echo reply with our id: `off` is where its ICMP header starts; IPv4 replies are also matched by source. */
  const reply = (off: number, src: number | undefined) => {
    if (((rx[off + 4]! << 8) | rx[off + 5]!) !== id) return;
    const s = (rx[off + 6]! << 8) | rx[off + 7]!;
    const p = pending.get(s);
    if (!p || (src !== undefined && p.t.ip !== src)) return;
    pending.delete(s);
    const at = now();
    emit({ ip: p.t.text, seq: s, rtt: Math.round((at - p.sent) * 1000) / 1000, t: at });
  };

  for (;;) {
    const t = now();
    for (const [s, p] of pending) {
      if (t - p.sent >= timeout) { pending.delete(s); emit({ ip: p.t.text, seq: s, lost: true, t }); }
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
        for (const x of targets) send(x);
        rounds++;
      }
      nextRound += step;
      if (nextRound < t) nextRound = t + step;
      continue;
    }
    let until = done ? t + timeout : nextRound;
    for (const p of pending.values()) until = Math.min(until, p.sent + timeout);
    const waitMs = Math.max(0, Math.ceil(until - t));
    const r = sys.poll(pollfds, fromStdin || count === 0 ? 3 : 2, waitMs);
    if (r < 0 && r !== -EINTR) check(r, "ns_probe ping: poll");
    if (r <= 0) continue;
    if (pollRevents(pollfds, 2) !== 0 && stdinOpen) {
      const n = sys.read(0, stdinBuf);
      if (n <= 0) { stdinOpen = false; setPollfd(pollfds, 2, -1, 0); }
      else {
        stdinRest += new TextDecoder().decode(stdinBuf.subarray(0, n));
        const lines = stdinRest.split("\n");
        stdinRest = lines.pop()!;
        for (const l of lines) if (l.trim()) targets.push(target(l.trim(), "ping target on stdin"));
      }
    }
    for (;;) {
      const n = sys.recvfrom(fd, rx, rx.length, MSG_DONTWAIT, null);
      if (n === -EAGAIN || n < 0) break;
      const ihl = (rx[0]! & 0x0f) * 4;
      if (n < ihl + 8 || rx[ihl] !== 0) continue; // not an echo reply
      reply(ihl, ((rx[12]! << 24) | (rx[13]! << 16) | (rx[14]! << 8) | rx[15]!) >>> 0);
    }
    // An ICMPv6 raw socket reads from the ICMPv6 header on (no IPv6 header): matched by id and seq.
    while (fd6 >= 0) {
      const n = sys.recvfrom(fd6, rx, rx.length, MSG_DONTWAIT, null);
      if (n === -EAGAIN || n < 0) break;
      if (n >= 8 && rx[0] === 129) reply(0, undefined);
    }
  }
  sys.close(fd);
  if (fd6 >= 0) sys.close(fd6);
}

function serve(args: string[]): void {
  const port = Number(args[0]);
  const server = createServer((sock) => {
    sock.on("data", (d) => sock.write(d));
    sock.on("error", () => sock.destroy());
  });
  server.listen(port, "::", () => console.log(JSON.stringify({ ready: true, port })));
}

async function connectAll(args: string[]): Promise<void> {
  const timeout = flag(args, "--timeout", 2000);
  for (const target of args) {
    // "10.0.0.2:7000", "[fd10::2]:7000" or "fd10::2:7000": the port is after the last colon.
    const colon = target.lastIndexOf(":");
    const host = target.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    const port = target.slice(colon + 1);
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

function whoami(args: string[]): void {
  const server = createServer((sock) => {
    sock.end(`${(sock.remoteAddress ?? "").replace(/^::ffff:/, "")}\n`);
    sock.on("error", () => sock.destroy());
  });
  server.listen(Number(args[0]), "::", () => console.log(JSON.stringify({ ready: true })));
}

async function ask(args: string[]): Promise<void> {
  for (const target of args) {
    const colon = target.lastIndexOf(":");
    const host = target.slice(0, colon).replace(/^\[(.*)\]$/, "$1");
    const source = await new Promise<string>((resolve) => {
      let got = "";
      const sock = createConnection({ host, port: Number(target.slice(colon + 1)) });
      const timer = setTimeout(() => { sock.destroy(); resolve("(timed out)"); }, 2000);
      sock.on("data", (d) => { got += d; });
      sock.on("end", () => { clearTimeout(timer); resolve(got.trim()); });
      sock.on("error", (e) => { clearTimeout(timer); resolve(`(${e.message})`); });
    });
    console.log(JSON.stringify({ target, source }));
  }
}

const [mode, ...rest] = process.argv.slice(2);
if (mode === "ping") await ping(rest);
else if (mode === "serve") serve(rest);
else if (mode === "connect") await connectAll(rest);
else if (mode === "whoami") whoami(rest);
else if (mode === "ask") await ask(rest);
else {
  console.error("usage: ns_probe.ts ping [--count N] [--interval MS] [--timeout MS] [--stdin] IP... | serve PORT | connect IP:PORT... | whoami PORT | ask IP:PORT...");
  process.exit(2);
}
