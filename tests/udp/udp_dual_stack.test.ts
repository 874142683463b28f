/**
 * @module The udp backend carrying IPv4 and IPv6 on the real kernel: three hosts as namespaces
 * with a dual-stack underlay (192.168.77.0/24 and 2001:db8:77::/64, tests/support/netns.ts's
 * `ipv6Network` option), config `{"Network":"10.51.0.0/16","EnableIPv6":true,
 * "IPv6Network":"fd51::/56","Backend":{"Type":"udp"}}`, one dual-stack container per host.
 * h1 (Bun) and h2 (the compiled executable) reach their peers over IPv4 (the default: what
 * flanneld hosts speak), h3 (Deno) runs with WEFT_UDP_PREFER_IPV6=1 and sends over the IPv6
 * underlay, so both underlay families carry both inner families. Full-mesh ping and TCP over
 * IPv4 and IPv6, a TCPv6 transfer through the offloads (TSO split, GRO coalescing), ICMPv6
 * unreachable, egress anti-spoofing. Everything is removed afterwards.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { type Cluster, Cluster as ClusterClass, type Container, type Host, exec, ip, ipJson, waitFor } from "../support/netns.ts";

const isRoot = process.getuid?.() === 0;
const PROBE = join(import.meta.dir, "udp_probe.ts");
const BUN = process.execPath;
const NETWORK = "10.51.0.0/16";
const NETWORK6 = "fd51::/56";

let c: Cluster;
const children = new Set<ChildProcess>();

/** Starts `udp_probe.ts args` in `ns`; resolves once it printed {"ready":true}; `result` is its last line. */
async function probe(ns: string, args: string[]): Promise<{ result: Promise<any>; kill(): void }> {
  const p = spawn("ip", ["netns", "exec", ns, BUN, PROBE, ...args], { stdio: ["ignore", "pipe", "pipe"] });
  children.add(p);
  let text = "", err = "";
  const lines: any[] = [];
  let onReady!: () => void;
  const ready = new Promise<void>((r) => (onReady = r));
  p.stderr!.on("data", (d) => (err += d));
  p.stdout!.on("data", (d: Buffer) => {
    const parts = (text + d).split("\n");
    text = parts.pop()!;
    for (const l of parts) {
      const v = JSON.parse(l);
      lines.push(v);
      if (v.ready) onReady();
    }
  });
  const result = new Promise<any>((resolve, reject) => p.on("close", (code, signal) => {
    children.delete(p);
    if (code === 0 || signal === "SIGKILL") resolve(lines.at(-1));
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

async function dataPath(h: Host): Promise<any> {
  return (await c.status(h)).dataPath;
}

/** UDP datagrams the namespace's kernel received over IPv4 and over IPv6 (/proc/net/snmp, snmp6). */
function udpIn(ns: string): { v4: number; v6: number } {
  const snmp = exec(ns, ["cat", "/proc/net/snmp"]).stdout.split("\n").filter((l) => l.startsWith("Udp:"));
  const v4 = Number(snmp[1]!.split(/\s+/)[snmp[0]!.split(/\s+/).indexOf("InDatagrams")]);
  const v6 = Number(/^Udp6InDatagrams\s+(\d+)/m.exec(exec(ns, ["cat", "/proc/net/snmp6"]).stdout)![1]);
  return { v4, v6 };
}

/** `ping -c 3` from `from` to `to`; the replies received. */
function ping(from: Container, to: string): number {
  const r = exec(from.ns, ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", to]);
  const m = /(\d+) received/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

describe.skipIf(!isRoot)("udp backend, dual stack, on three hosts", () => {
  beforeAll(async () => {
    c = await ClusterClass.create({ hosts: 1, backend: "udp", network: NETWORK, ipv6Network: NETWORK6, runtime: "bun" });
    await c.addHost({ runtime: "binary" });
    c.opts.agentEnv = { WEFT_UDP_PREFER_IPV6: "1" };
    try {
      await c.addHost({ runtime: "deno" });
    } finally {
      c.opts.agentEnv = undefined;
    }
    for (const h of c.hosts) await waitFor(async () => (await dataPath(h)).peers.length === 2, 15_000, `${h.name} to program its peers`);
  }, 90_000);

  afterAll(async () => {
    for (const p of children) p.kill("SIGKILL");
    await c?.destroy();
  }, 30_000);

  test("flannel0 has the lease's IPv4 and IPv6 addresses and both network routes; sockets on both underlays", async () => {
    const h = c.hosts[0]!;
    const link = ipJson(h.ns, "link", "show", "flannel0")[0] as any;
    expect(link.mtu).toBe(1500 - 48); // room for the IPv6 underlay's headers
    expect(h.env?.mtu).toBe(1452);
    const v6 = h.env!.ipv6Subnet!; // e.g. fd51:0:0:7::1/64
    const v6net = v6.replace(/1\/64$/, "");
    const addrs = (ipJson(h.ns, "-6", "addr", "show", "dev", "flannel0")[0] as any).addr_info
      .filter((a: any) => a.scope === "global").map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual([`${v6net}/128`]);
    expect(ip(h.ns, "-6", "route", "show", NETWORK6)).toContain(`${NETWORK6} dev flannel0`);
    expect(ip(h.ns, "route", "show", NETWORK)).toContain(`${NETWORK} dev flannel0 scope link`);
    const ss = exec(h.ns, ["ss", "-Huln", "sport", "= :8285"]).stdout;
    expect(ss).toContain(`${h.ip}:8285`);
    expect(ss).toContain(`[${h.ip6}]:8285`);
    const dp = await dataPath(h);
    expect(dp.listen6).toBe(`[${h.ip6}]:8285`);
    // h1 reaches h2 over IPv4 and h3 (which prefers IPv6) over IPv4 too; h3 reaches both over IPv6.
    expect(dp.peers.map((p: any) => [p.publicIP, p.publicIPv6, p.underlay, p.ipv6]).sort()).toEqual([
      [c.hosts[1]!.ip, c.hosts[1]!.ip6, "ipv4", true], [c.hosts[2]!.ip, c.hosts[2]!.ip6, "ipv4", true],
    ]);
    expect((await dataPath(c.hosts[2]!)).peers.map((p: any) => p.underlay)).toEqual(["ipv6", "ipv6"]);
    // The lease says this host carries IPv6 and listens on its PublicIPv6 (flanneld writes no
    // BackendV6Data for udp, so weft never sends IPv6 to a flanneld host).
    const mine = JSON.parse(c.weft(["leases", "list", "--json"])).find((l: any) => l.publicIP === h.ip);
    expect(JSON.stringify(mine.value)).toBe(`{"PublicIP":"${h.ip}","PublicIPv6":"${h.ip6}","BackendV6Data":{"IPv6Underlay":true}}`);
  });

  test("every container pings every other over IPv4 and IPv6 (full mesh)", () => {
    const failures: string[] = [];
    for (const from of c.containers) {
      for (const to of c.containers.filter((t) => t !== from)) {
        for (const addr of [to.ip, to.ip6!]) if (ping(from, addr) === 0) failures.push(`${from.host.name} -> ${addr}`);
      }
    }
    expect(failures).toEqual([]);
  }, 60_000);

  test("every container reaches every other over TCP, IPv4 and IPv6 (full mesh), over both underlays", async () => {
    const servers = await Promise.all(c.containers.map((ct) => probe(ct.ns, ["echo", "7101"])));
    const before = c.hosts.map((h) => udpIn(h.ns));
    try {
      for (const from of c.containers) {
        const others = c.containers.filter((t) => t !== from);
        const targets = others.flatMap((t) => [t.ip, t.ip6!]);
        const results = run(from.ns, ["connect", "7101", ...targets]);
        expect(results).toEqual(others.flatMap((t) => [
          { target: `${t.ip}:7101`, ok: true }, { target: `[${t.ip6}]:7101`, ok: true },
        ]));
      }
    } finally {
      servers.forEach((s) => s.kill());
    }
    const after = c.hosts.map((h) => udpIn(h.ns));
    // h3 sent to h1 and h2 over IPv6; h1 and h2 sent to everyone over IPv4.
    expect(after[0]!.v6 - before[0]!.v6).toBeGreaterThan(0);
    expect(after[1]!.v6 - before[1]!.v6).toBeGreaterThan(0);
    expect(after[2]!.v4 - before[2]!.v4).toBeGreaterThan(0);
  }, 60_000);

  test("a 50 MiB TCP transfer over IPv6 arrives intact, split and coalesced by the offloads (both underlays)", async () => {
    const [h1, , h3] = c.hosts;
    for (const [a, b] of [[h1!, h3!], [h3!, h1!]] as const) {
      const from = a.containers[0]!, to = b.containers[0]!;
      const before = { a: (await dataPath(a)).counters, b: (await dataPath(b)).counters };
      const sink = await probe(to.ns, ["sink", "7102"]);
      const sent = run(from.ns, ["source", to.ip6!, "7102", "50"]);
      expect(await sink.result).toEqual(sent);
      expect(sent.bytes).toBe(50 << 20);
      const after = { a: (await dataPath(a)).counters, b: (await dataPath(b)).counters };
      const split = after.a.superSplit - before.a.superSplit, merged = after.b.segmentsMerged - before.b.segmentsMerged;
      console.log(`${a.name} -> ${b.name} over IPv6 (${a === h3 ? "IPv6" : "IPv4"} underlay): ${split} super-packets split, ${merged} segments merged, ` +
        `${after.a.tx.packets - before.a.tx.packets} datagrams in ${after.a.tx.syscalls - before.a.tx.syscalls} sendmmsg`);
      if ((await dataPath(a)).offloads.includes("vnet_hdr on")) {
        expect(split).toBeGreaterThan(0);
        expect(merged).toBeGreaterThan(0);
      }
      expect(after.a.tx.errors - before.a.tx.errors).toBe(0);
    }
  }, 120_000);

  test("a container sending from an address outside its host's lease is stopped at egress (IPv4 and IPv6)", async () => {
    const [h1, h2] = c.hosts;
    const from = h1!.containers[0]!, to = h2!.containers[0]!;
    ip(from.ns, "addr", "add", "10.51.250.5/32", "dev", "eth0");
    ip(from.ns, "-6", "addr", "add", "fd51:0:0:ee::5/128", "dev", "eth0", "nodad");
    try {
      const before = (await dataPath(h1!)).counters;
      for (const [src, dst] of [["10.51.250.5", to.ip], ["fd51:0:0:ee::5", to.ip6!]]) {
        const r = exec(from.ns, ["ping", "-n", "-c", "2", "-i", "0.2", "-W", "1", "-I", src!, dst!]);
        expect(r.stdout).toContain(" 0 received");
      }
      const after = (await dataPath(h1!)).counters;
      expect((after.egressDrops.spoofed ?? 0) - (before.egressDrops.spoofed ?? 0)).toBe(4);
      // The same container from its own addresses still gets through.
      expect(ping(from, to.ip6!)).toBeGreaterThan(0);
    } finally {
      ip(from.ns, "addr", "del", "10.51.250.5/32", "dev", "eth0");
      ip(from.ns, "-6", "addr", "del", "fd51:0:0:ee::5/128", "dev", "eth0");
    }
  }, 30_000);

  test("no route inside the IPv6 network: the sender gets ICMPv6 destination unreachable", async () => {
    const [h1] = c.hosts;
    const from = h1!.containers[0]!;
    const before = (await dataPath(h1!)).counters;
    const r = exec(from.ns, ["ping", "-n", "-c", "1", "-W", "2", "fd51:0:0:ee::9"]);
    expect(r.stdout).toMatch(/Destination unreachable: No route/);
    const after = (await dataPath(h1!)).counters;
    expect(after.icmpUnreachable - before.icmpUnreachable).toBeGreaterThanOrEqual(1);
  }, 30_000);
});
