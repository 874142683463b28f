/**
 * @module The udp backend on the real kernel: three hosts as namespaces (tests/support/netns.ts:
 * underlay bridge, real etcd, agents as processes), config
 * `{"Network":"10.50.0.0/16","Backend":{"Type":"udp"}}`, one container per host on cni0.
 * h1 runs `bun src/main.ts`, h2 the compiled binary, h3 Deno: the packet workers are checked in
 * every runtime, talking to each other; at the end h3 runs with busy-polling, then its worker
 * is made to die mid-traffic and must come back. Everything is removed afterwards, also on failure.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Cluster, Cluster as ClusterClass, type Host, exec, ip, ipJson, ping, startEchoServer, startPinger, tcpConnect, waitFor } from "../support/netns.ts";

const isRoot = process.getuid?.() === 0;
const PROBE = join(import.meta.dir, "udp_probe.ts");
const BUN = process.execPath;
const NETWORK = "10.50.0.0/16";

let c: Cluster;
const children = new Set<ChildProcess>();

/** Starts `udp_probe.ts args` in `ns`; resolves once it printed {"ready":true}; `result` is its last line. */
async function probe(ns: string, args: string[]): Promise<{ result: Promise<any>; kill(): void }> {
  const p = spawn("ip", ["netns", "exec", ns, BUN, PROBE, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(p);
  let text = "", err = "";
  p.stderr!.on("data", (d) => (err += d));
  const lines: any[] = [];
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stdout!.on("data", (d: Buffer) => {
    text += d;
    const parts = text.split("\n");
    text = parts.pop()!;
    for (const l of parts) {
      const v = JSON.parse(l);
      lines.push(v);
      if (v.ready) onReady();
    }
  });
  const result = new Promise<any>((resolve, reject) => p.on("close", (code) => {
    children.delete(p);
    if (code === 0) resolve(lines.at(-1));
    else reject(new Error(`udp_probe ${args.join(" ")} in ${ns} exited ${code}: ${err}`));
  }));
  await Promise.race([ready, result]);
  return { result, kill: () => p.kill("SIGKILL") };
}

function run(ns: string, args: string[]): any {
  const r = exec(ns, [BUN, PROBE, ...args]);
  if (r.code !== 0) throw new Error(`udp_probe ${args.join(" ")} in ${ns} exited ${r.code}: ${r.stderr}`);
  return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
}

/** Linux scheduling policies, as /proc/<pid>/task/<tid>/stat shows them (field 41). */
const SCHED_OTHER = 0, SCHED_IDLE = 5;

/** The agent's packet threads (Bun names a Worker's thread "Worker"): state, policy, CPU ticks. */
function packetThreads(pid: number): { tid: number; state: string; policy: number; cpuTicks: number }[] {
  return readdirSync(`/proc/${pid}/task`).flatMap((tid) => {
    try {
      if (readFileSync(`/proc/${pid}/task/${tid}/comm`, "utf8").trim() !== "Worker") return [];
      const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
      const f = stat.slice(stat.lastIndexOf(") ") + 2).split(" "); // f[0] is field 3
      return [{ tid: Number(tid), state: f[0]!, policy: Number(f[38]), cpuTicks: Number(f[11]) + Number(f[12]) }];
    } catch {
      return []; // the thread ended between readdir and read
    }
  });
}

/**
 * Restarts `h`'s agent under Bun with `env` added (and under `wrap`, when given), and waits until
 * it has programmed both peers.
 */
async function restartWith(h: Host, env: Record<string, string>, wrap?: string[]): Promise<void> {
  await c.stopAgent(h);
  c.opts.agentEnv = env;
  c.opts.agentWrap = wrap;
  try {
    await c.startAgent(h, "bun");
  } finally {
    c.opts.agentEnv = undefined;
    c.opts.agentWrap = undefined;
  }
  await waitFor(async () => (await dataPath(h)).peers.length === 2, 15_000, `${h.name} to program its peers`);
}

async function dataPath(h: Host): Promise<any> {
  return (await c.status(h)).dataPath;
}

/** The host address .5 of `h`'s lease (a source address the peer owns). */
function addrIn(h: Host, last = 5): string {
  return h.subnet.replace(/\.0\/\d+$/, `.${last}`);
}

describe.skipIf(!isRoot)("udp backend on three hosts", () => {
  beforeAll(async () => {
    // One agent per runtime: sources under Bun, the compiled executable (its worker is bundled
    // inside it), and Deno.
    c = await ClusterClass.create({ hosts: 1, backend: "udp", network: NETWORK, runtime: "bun" });
    await c.addHost({ runtime: "binary" });
    await c.addHost({ runtime: "deno" });
    // Every agent programs both peers before the tests send anything.
    for (const h of c.hosts) await waitFor(async () => (await dataPath(h)).peers.length === 2, 15_000, `${h.name} to program its peers`);
  }, 90_000);

  afterAll(async () => {
    for (const p of children) p.kill("SIGKILL");
    await c?.destroy();
  }, 30_000);

  test("flannel0, its address and route, the socket and the lease are flanneld's", async () => {
    const h = c.hosts[0]!;
    const link = ipJson(h.ns, "-d", "link", "show", "flannel0")[0] as any;
    expect(link.mtu).toBe(1500 - 28);
    expect(link.linkinfo.info_kind).toBe("tun");
    expect(link.flags).toContain("UP");
    const addrs = (ipJson(h.ns, "-4", "addr", "show", "dev", "flannel0")[0] as any).addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual([h.subnet.replace(/\/24$/, "/32")]);
    expect(ip(h.ns, "route", "show", NETWORK)).toContain(`${NETWORK} dev flannel0 scope link`);
    expect(exec(h.ns, ["ss", "-Huln", "sport", "= :8285"]).stdout).toContain(`${h.ip}:8285`);
    expect(h.env?.mtu).toBe(1472);
    const leases = JSON.parse(c.weft(["leases", "list", "--json"]));
    const mine = JSON.stringify(leases).includes(`"PublicIP":"${h.ip}","PublicIPv6":null}`) ||
      leases.some((l: any) => l.publicIP === h.ip && !l.backendType);
    expect(mine).toBe(true);
    const dp = await dataPath(h);
    console.log(`h1 data path: ${dp.offloads}`);
    expect(dp.backend).toBe("udp");
  });

  test("every container reaches every other over TCP (full mesh, Bun and Deno workers)", async () => {
    const servers = await Promise.all(c.containers.map((ct) => startEchoServer(ct.ns, 7001)));
    try {
      for (const from of c.containers) {
        const targets = c.containers.filter((t) => t !== from).map((t) => `${t.ip}:7001`);
        const results = tcpConnect(from.ns, targets);
        expect(results.map((r) => [r.target, r.ok, r.error])).toEqual(targets.map((t) => [t, true, undefined]));
      }
    } finally {
      servers.forEach((s) => s.stop());
    }
  }, 60_000);

  test("a 100 MiB TCP transfer arrives intact (sha256 on both sides)", async () => {
    const [a, b] = [c.hosts[0]!.containers[0]!, c.hosts[1]!.containers[0]!];
    const before = (await dataPath(c.hosts[0]!)).counters;
    const sink = await probe(b.ns, ["sink", "7002"]);
    const t0 = performance.now();
    const sent = run(a.ns, ["source", b.ip, "7002", "100"]);
    const got = await sink.result;
    const s = (performance.now() - t0) / 1000;
    expect(got).toEqual(sent);
    expect(sent.bytes).toBe(100 << 20);
    const after = (await dataPath(c.hosts[0]!)).counters;
    console.log(`100 MiB in ${s.toFixed(2)} s (${((sent.bytes * 8) / s / 1e9).toFixed(2)} Gbit/s incl. setup); ` +
      `h1 sent ${after.tx.packets - before.tx.packets} datagrams in ${after.tx.syscalls - before.tx.syscalls} sendmmsg, ` +
      `${after.superSplit - before.superSplit} super-packets split`);
    expect(after.tx.packets - before.tx.packets).toBeGreaterThan(70_000); // 100 MiB / 1420-byte segments
  }, 120_000);

  test("datagrams from a non-peer underlay address are dropped and counted", async () => {
    const [h1] = c.hosts;
    const target = h1!.containers[0]!;
    const rogue = c.addHostNamespace(); // on the underlay, no agent, no lease
    const listen = await probe(target.ns, ["udp-listen", "9001", "1500"]);
    const before = (await dataPath(h1!)).counters;
    run(rogue.ns, ["inject", h1!.ip, "8285", "10.50.250.9", target.ip, "9001", "rogue", "5"]);
    expect((await listen.result).count).toBe(0);
    const after = (await dataPath(h1!)).counters;
    expect((after.ingressDrops.unknown_source ?? 0) - (before.ingressDrops.unknown_source ?? 0)).toBe(5);
    expect(after.spoofed - before.spoofed).toBe(5);
    const metrics = await (await c.fetch(h1!, "/metrics")).text();
    expect(metrics).toMatch(/^weft_udp_dropped_packets_total\{direction="ingress",reason="unknown_source"\} [1-9]\d*$/m);
  }, 60_000);

  test("a peer's datagram with an inner source outside its lease is dropped; inside it, delivered", async () => {
    const [h1, h2, h3] = c.hosts;
    const target = h1!.containers[0]!;
    const listen = await probe(target.ns, ["udp-listen", "9002", "1500"]);
    const before = (await dataPath(h1!)).counters;
    // From h2's own address: once claiming h3's subnet (spoofed), once its own (control).
    run(h2!.ns, ["inject", h1!.ip, "8285", addrIn(h3!), target.ip, "9002", "spoofed", "3"]);
    run(h2!.ns, ["inject", h1!.ip, "8285", addrIn(h2!), target.ip, "9002", "genuine", "2"]);
    const got = await listen.result;
    expect(got.payloads).toEqual(["genuine", "genuine"]);
    const after = (await dataPath(h1!)).counters;
    expect((after.ingressDrops.spoofed ?? 0) - (before.ingressDrops.spoofed ?? 0)).toBe(3);
    const metrics = await (await c.fetch(h1!, "/metrics")).text();
    expect(metrics).toMatch(/^weft_udp_spoofed_datagrams_total [1-9]\d*$/m);
  }, 60_000);

  test("no route: the sender gets ICMP net unreachable", async () => {
    const [h1] = c.hosts;
    const from = h1!.containers[0]!;
    const before = (await dataPath(h1!)).counters;
    // node, not bun: Bun's node:net reports every failed connect as ECONNREFUSED.
    const r = exec(from.ns, ["node", "-e",
      "const s=require('net').connect(80,'10.50.250.2');s.on('connect',()=>{console.log('connected');process.exit()});" +
      "s.on('error',e=>{console.log(e.code);process.exit()});setTimeout(()=>{console.log('timeout');process.exit()},3000)"]);
    expect(r.stdout.trim()).toBe("ENETUNREACH");
    const after = (await dataPath(h1!)).counters;
    expect(after.icmpUnreachable - before.icmpUnreachable).toBeGreaterThanOrEqual(1);
  }, 30_000);

  test("a peer advertising another backend is refused with one clear error, and not programmed", async () => {
    const [h1] = c.hosts;
    const key = "/coreos.com/network/subnets/10.50.200.0-24";
    const value = '{"PublicIP":"192.168.77.99","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"aa:bb:cc:dd:ee:ff"}}';
    const etcd = c.etcd.client();
    await etcd.put(key).value(value);
    try {
      await waitFor(async () => (await dataPath(h1!)).refused["10.50.200.0-24"], 10_000, "the vxlan lease to be refused");
      await etcd.put(key).value(value); // the same again: no second error
      await Bun.sleep(300);
      const errors = h1!.log.split("\n").filter((l) => l.startsWith("E") && l.includes("10.50.200.0-24"));
      expect(errors.length).toBe(1);
      expect(errors[0]).toContain('advertises BackendType "vxlan" but this host runs the udp backend');
      expect((await dataPath(h1!)).peers.map((p: any) => p.key)).not.toContain("10.50.200.0-24");
    } finally {
      await etcd.delete().key(key);
    }
  }, 30_000);

  test("shutdown removes flannel0 and frees the port; restart comes back with the same lease", async () => {
    const [h1, , h3] = c.hosts as [Host, Host, Host];
    const subnet = h3.subnet;
    const code = await c.stopAgent(h3);
    if (code !== 0) console.log(`--- h3 log ---\n${h3.log.slice(-3000)}`);
    expect(code).toBe(0);
    expect(ipJson(h3.ns, "link", "show").some((l: any) => l.ifname === "flannel0")).toBe(false);
    expect(exec(h3.ns, ["ss", "-Huln", "sport", "= :8285"]).stdout.trim()).toBe("");
    await c.startAgent(h3, "bun");
    expect(h3.subnet).toBe(subnet);
    await waitFor(async () => (await dataPath(h3)).peers.length === 2, 15_000, "h3 to program its peers again");
    // Every echo is answered, the first one included: the peers reached the worker's core
    // before the packet that woke it (it used to be answered with ICMP net unreachable).
    const first = h1.containers[0]!.ip;
    expect((await ping(h3.containers[0]!.ns, first, { count: 10, intervalMs: 20 })).get(first)!.received).toBe(10);
    const srv = await startEchoServer(h3.containers[0]!.ns, 7003);
    try {
      expect(tcpConnect(c.hosts[0]!.containers[0]!.ns, h3.containers[0]!.ip, 7003)[0]!.ok).toBe(true);
    } finally {
      srv.stop();
    }
  }, 60_000);

  test("busy-poll (WEFT_UDP_SPIN_US): after traffic the packet thread spins as SCHED_IDLE, then sleeps as SCHED_OTHER", async () => {
    const [h1, , h3] = c.hosts as [Host, Host, Host];
    await restartWith(h3, { WEFT_UDP_SPIN_US: "1000000" });
    expect(h3.log).toContain("busy-poll 1000000 µs after traffic (SCHED_IDLE)");
    const dp = await dataPath(h3);
    expect(dp.busyPollUs).toBe(1_000_000);
    expect(dp.offloads).toEndWith(", 1 worker, busy-poll 1000000 µs after traffic (SCHED_IDLE)");
    expect((await dataPath(h1)).busyPollUs).toBe(0); // the default
    const worker = () => {
      const ts = packetThreads(h3.agent!.pid!);
      expect(ts.length).toBe(1);
      return ts[0]!;
    };
    // Quiet: the thread sleeps in poll() as an ordinary thread.
    await waitFor(() => worker().policy === SCHED_OTHER && worker().state === "S", 5_000, "h3's packet thread to sleep");
    const from = h3.containers[0]!.ns, to = h1.containers[0]!.ip;
    expect((await ping(from, to, { count: 3, intervalMs: 20 })).get(to)!.received).toBe(3);
    // Right after the traffic it polls without sleeping, at idle priority.
    const spinning = await waitFor(() => worker().policy === SCHED_IDLE, 600, "h3's packet thread to spin as SCHED_IDLE");
    expect(spinning).toBe(true);
    // Echoes sent while it spins are answered (the spinning thread forwards them).
    expect((await ping(from, to, { count: 5, intervalMs: 20 })).get(to)!.received).toBe(5);
    // The window closes: an ordinary thread again, asleep, using no CPU. The agents' health
    // probes pass through this thread every few seconds and open a new window each time (and a
    // loaded machine runs a SCHED_IDLE thread late): a quiet 300 ms, seen within 20 s, shows it
    // sleeps when nothing comes.
    const quiet: number[] = [];
    for (const end = Date.now() + 20_000; Date.now() < end && !(quiet.at(-1)! <= 1);) {
      const w = worker();
      if (w.policy !== SCHED_OTHER || w.state !== "S") { await Bun.sleep(20); continue; }
      await Bun.sleep(300);
      quiet.push(worker().cpuTicks - w.cpuTicks);
    }
    expect(quiet.length, "h3's packet thread never slept as an ordinary thread within 20 s").toBeGreaterThan(0);
    expect(Math.min(...quiet)).toBeLessThanOrEqual(1);

    // Without CAP_SYS_NICE a SCHED_IDLE thread could not become SCHED_OTHER again: no busy-poll.
    await restartWith(h3, { WEFT_UDP_SPIN_US: "1000000" }, ["setpriv", "--bounding-set=-sys_nice", "--inh-caps=-sys_nice"]);
    expect(h3.log).toContain("udp backend: WEFT_UDP_SPIN_US=1000000 ignored: busy-polling runs the packet threads as SCHED_IDLE, and this process lacks CAP_SYS_NICE");
    expect((await dataPath(h3)).busyPollUs).toBe(0);
    // Right after the restart, even the first echo is answered (the worker applies the peers
    // pushed while it slept before it forwards the packet that woke it).
    expect((await ping(from, to, { count: 10, intervalMs: 20 })).get(to)!.received).toBe(10);
    expect(worker().policy).toBe(SCHED_OTHER);
  }, 60_000);

  test("a packet worker that dies mid-traffic is restarted with every peer, and traffic resumes", async () => {
    const [h1, h2, h3] = c.hosts as [Host, Host, Host];
    await restartWith(h3, { WEFT_TEST_UDP_WORKER_CRASH_AFTER: "40" });
    const from = h3.containers[0]!.ns;
    const targets = [h1.containers[0]!.ip, h2.containers[0]!.ip];
    const pinger = startPinger(from, targets, 20, 500);
    let crashedAt = 0;
    try {
      // 40 packets are ~10 rounds of two echoes and their replies: the worker dies, comes back.
      const dp = await waitFor(async () => {
        const d = await dataPath(h3);
        return d.workerRestarts[0] === 1 && d.workers[0] === "running" ? d : undefined;
      }, 15_000, "h3's packet worker to die and be restarted");
      expect(dp.workers).toEqual(["running"]);
      crashedAt = Date.now();
      await Bun.sleep(500);
    } finally {
      const { events } = await pinger.stop();
      const sentAt = (e: { t: number; rtt?: number }) => e.t - (e.rtt ?? 500);
      const after = events.filter((e) => crashedAt > 0 && sentAt(e) > crashedAt);
      // Every echo sent after the restart is answered, from both peers.
      for (const ip of targets) expect(after.filter((e) => e.ip === ip && e.rtt !== undefined).length).toBeGreaterThanOrEqual(10);
      expect(after.filter((e) => e.lost).length).toBe(0);
    }
    // The restarted core has both peers (they came from the state handed over, not the log).
    const replies = await ping(from, targets, { count: 5, intervalMs: 20 });
    for (const ip of targets) expect(replies.get(ip)!.received).toBe(5);
    expect(h3.log).toContain("packet worker 0 failed; restarting it in 100 ms");
    expect(h3.log).toContain("crashing after");
    expect(h3.log).toContain("packet worker 0 is back (restart 1), with every peer");
    const metrics = await (await c.fetch(h3, "/metrics")).text();
    expect(metrics).toMatch(/^weft_errors_total\{kind="udp_worker"\} 1$/m);
  }, 60_000);
});
