/**
 * IPv6 end to end: three hosts as namespaces on a dual-stack underlay (192.168.77.0/24 and
 * 2001:db8:77::/64), a real etcd, agents as the compiled `dist/weft`, and containers made by the
 * CNI plugin (weft as `flannel`, Debian's bridge and host-local) with an address of each family.
 *
 * - vxlan, dual stack (one cluster shared in order): every container reaches every container on
 *   the other hosts by ICMP and TCP over IPv4 and IPv6; with --ip-masq, IPv6 traffic leaving the
 *   cluster network is masqueraded and traffic inside it is not; an agent restart deletes or
 *   re-adds no IPv6 route or neighbour anywhere, keeps flannel-v6.1's MAC and loses no IPv6
 *   ping; a host whose lease goes while an agent is down has its IPv6 entries removed from the
 *   others at once and from that agent at its start; the host comes back and is reached again.
 * - host-gw, dual stack: full mesh over both families; the restart and stale-route checks.
 * - IPv6-only clusters (EnableIPv4 false) for vxlan and for host-gw: full mesh over IPv6.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import {
  Cluster, type Container, type Host, exec, ipJson, ipMonitor, ping, sourceSeenBy, startEchoServer,
  startPinger, startWhoamiServer, tcpConnect, waitFor,
} from "../support/netns.ts";
import { lostAfterFirstReply } from "./suite.ts";

const ECHO_PORT = 7000;
const WHOAMI_PORT = 7001;
const IPV6_NETWORK = "fd10::/48";

/** Every container pings and opens a TCP connection to every container on the other hosts, over `family`. */
async function expectFullMesh(c: Cluster, family: 4 | 6): Promise<number> {
  const failures: string[] = [];
  const addr = (x: Container) => (family === 4 ? x.ip : x.ip6!);
  let pairs = 0;
  await Promise.all(c.containers.map(async (from) => {
    const targets = c.containers.filter((t) => t.host !== from.host).map(addr);
    pairs += targets.length;
    const pings = await ping(from.ns, targets, { count: 2, intervalMs: 50 });
    for (const [ip, r] of pings) if (r.received !== r.sent) failures.push(`ping ${addr(from)} -> ${ip}: ${r.received}/${r.sent}`);
    for (const r of tcpConnect(from.ns, targets, ECHO_PORT)) if (!r.ok) failures.push(`tcp ${addr(from)} -> ${r.target}: ${r.error}`);
  }));
  expect(failures).toEqual([]);
  return pairs;
}

/** A peer's IPv6 entries on `on`: routes to its IPv6 subnet, and on flannel-v6.1 its neighbour and FDB entry. */
function peerEntries6(on: Host, subnet6: string, mac6?: string): { routes: number; neighs: number; fdbs: number } {
  const routes = ipJson(on.ns, "-6", "route", "show", subnet6).length;
  if (!ipJson(on.ns, "link", "show").some((l) => l.ifname === "flannel-v6.1")) return { routes, neighs: 0, fdbs: 0 };
  const addr = subnet6.split("/")[0];
  const neighs = ipJson(on.ns, "-6", "neigh", "show", "dev", "flannel-v6.1").filter((n) => n.dst === addr).length;
  const fdbOut = exec(on.ns, ["bridge", "-j", "fdb", "show", "dev", "flannel-v6.1"]).stdout.trim();
  const fdbs = mac6 ? (JSON.parse(fdbOut || "[]") as { mac: string }[]).filter((f) => f.mac === mac6).length : 0;
  return { routes, neighs, fdbs };
}

function vtepMac6(h: Host): string | undefined {
  return ipJson(h.ns, "link", "show").find((l) => l.ifname === "flannel-v6.1")?.address as string | undefined;
}

/** A cluster whose containers all run an echo server; peers' routes of both families in place. */
async function cluster(opts: Parameters<typeof Cluster.create>[0], servers: { stop(): void }[]): Promise<Cluster> {
  const started = Date.now();
  const c = await Cluster.create({ hosts: 3, containersPerHost: 1, ipv6Network: IPV6_NETWORK, ...opts });
  const created = Date.now();
  try {
    for (const x of c.containers) servers.push(await startEchoServer(x.ns, ECHO_PORT));
    await waitFor(() => c.hosts.every((h) => c.peerRoutes6(h).length === 2 && (opts?.ipv6Only || c.peerRoutes(h).length === 2)), 10_000, "peer routes on every host");
  } catch (e) {
    await c.destroy();
    throw e;
  }
  console.log(`[ipv6] ${opts?.backend} ${opts?.ipv6Only ? "IPv6-only" : "dual-stack"} cluster of 3: created in ${created - started} ms, routed ${Date.now() - created} ms later`);
  return c;
}

/** The restart and stale-entry checks, shared by vxlan and host-gw. */
function restartAndStaleTests(get: () => Cluster, backend: string): void {
  test(`${backend}: an agent restart deletes and re-adds no IPv6 route or neighbour and loses no IPv6 ping`, async () => {
    const c = get();
    const h = c.hosts[1]!;
    const macsBefore = c.hosts.map(vtepMac6);
    const monitors = await Promise.all(c.hosts.map((x) => ipMonitor(x.ns, ["route", "neigh"])));
    const others = c.containers.filter((x) => x.host !== h);
    const into = startPinger(others[0]!.ns, [h.containers[0]!.ip6!], 20);
    const out = startPinger(h.containers[0]!.ns, others.map((x) => x.ip6!), 20);
    await waitFor(() => into.events.some((e) => e.rtt !== undefined) && out.events.some((e) => e.rtt !== undefined), 5000, "first replies");
    await c.stopAgent(h);
    await c.startAgent(h);
    await Bun.sleep(1500); // its first snapshot, reconcile and its own lease's re-put reach every host
    const lines = (await Promise.all(monitors.map((m) => m.stop()))).flat();
    const subnets = c.hosts.map((x) => x.subnet6.split("/")[0]!);
    const macs = c.hosts.map(vtepMac6).filter((m): m is string => m !== undefined);
    const churn = lines.filter((l) => subnets.some((s) => l.includes(` ${s}/`) || l.includes(`${s} dev flannel`)) || macs.some((m) => l.includes(m)));
    expect(churn).toEqual([]);
    expect(c.hosts.map(vtepMac6)).toEqual(macsBefore);
    for (const p of [into, out]) {
      const { events } = await p.stop();
      expect(lostAfterFirstReply(events)).toEqual([]);
      expect(events.length).toBeGreaterThan(10);
    }
  }, 60_000);

  test(`${backend}: a vanished host's IPv6 entries leave the running peers at once and the restarted agent at its start`, async () => {
    const c = get();
    const [a, b, gone] = c.hosts as [Host, Host, Host];
    const subnet6 = gone.subnet6;
    const mac6 = vtepMac6(gone);
    const full = { routes: 1, neighs: mac6 ? 1 : 0, fdbs: mac6 ? 1 : 0 };
    expect(peerEntries6(b, subnet6, mac6)).toEqual(full);
    await c.stopAgent(a);
    await c.killAgent(gone);
    c.weft(["leases", "release", gone.env!.subnet ? gone.subnet : subnet6]);
    const empty = (h: Host) => { const e = peerEntries6(h, subnet6, mac6); return e.routes + e.neighs + e.fdbs === 0; };
    await waitFor(() => empty(b), 5000, `${subnet6} to go from ${b.name}`);
    expect(peerEntries6(a, subnet6, mac6)).toEqual(full); // stale: nobody running to remove it
    await c.startAgent(a);
    await waitFor(() => empty(a), 5000, `${a.name} to remove ${subnet6}'s stale IPv6 entries`);
    await c.startAgent(gone);
    expect(gone.subnet6).toBe(subnet6); // it takes its previous subnets again
    await waitFor(() => c.hosts.every((h) => c.peerRoutes6(h).length === 2), 5000, "peer routes after the host came back");
    await expectFullMesh(c, 6);
  }, 60_000);
}

describe("vxlan, dual stack, 3 hosts", () => {
  let c: Cluster;
  const servers: { stop(): void }[] = [];
  beforeAll(async () => {
    c = await cluster({ backend: "vxlan", agentArgs: ["--ip-masq"] }, servers);
  }, 90_000);
  afterAll(async () => {
    for (const s of servers) s.stop();
    await c?.destroy();
  }, 30_000);

  test("both devices, the lease's BackendV6Data, FLANNEL_MTU the smaller device MTU", async () => {
    const h = c.hosts[0]!;
    const links = ipJson<{ ifname: string; mtu: number; address: string }[]>(h.ns, "link", "show");
    expect(links.find((l) => l.ifname === "flannel.1")!.mtu).toBe(1450);
    expect(links.find((l) => l.ifname === "flannel-v6.1")!.mtu).toBe(1430);
    expect(h.env!.mtu).toBe(1430);
    const leases = JSON.parse(c.weft(["leases", "list", "--json"])) as { key?: string; subnet?: string; value?: string }[];
    const text = JSON.stringify(leases);
    expect(text).toContain(vtepMac6(h)!);
    const status = await c.status(h);
    expect(JSON.stringify(status)).toContain(h.subnet6);
  }, 30_000);

  test("every container reaches every container on the other hosts over IPv4 and IPv6 (ICMP and TCP)", async () => {
    expect(await expectFullMesh(c, 4)).toBe(6);
    expect(await expectFullMesh(c, 6)).toBe(6);
  }, 60_000);

  /** From host 1's container: the sources a whoami server outside the cluster and one in host 2's container see. */
  async function expectMasquerade(): Promise<void> {
    const outside = await startWhoamiServer(c.underlay, WHOAMI_PORT);
    const inside = await startWhoamiServer(c.hosts[1]!.containers[0]!.ns, WHOAMI_PORT);
    try {
      const from = c.hosts[0]!.containers[0]!;
      const peer = c.hosts[1]!.containers[0]!;
      const seen = sourceSeenBy(from.ns, [`${Cluster.UNDERLAY6}fe`, peer.ip6!, `${Cluster.UNDERLAY}.254`, peer.ip], WHOAMI_PORT);
      expect(Object.fromEntries(seen)).toEqual<Record<string, string | undefined>>({
        [`${Cluster.UNDERLAY6}fe`]: c.hosts[0]!.ip6!, // out of the cluster: the host's underlay address
        [peer.ip6!]: from.ip6,                      // inside it: the container's own
        [`${Cluster.UNDERLAY}.254`]: c.hosts[0]!.ip,
        [peer.ip]: from.ip,
      });
    } finally {
      outside.stop();
      inside.stop();
    }
  }

  test("--ip-masq: IPv6 traffic leaving the cluster network is masqueraded, traffic inside it is not", async () => {
    expect(exec(c.hosts[0]!.ns, ["ip6tables-save", "-t", "nat"]).stdout).toContain("-A FLANNEL-POSTRTG -s fd10::/48 ! -d ff00::/8");
    await expectMasquerade();
  }, 30_000);

  test("forward rules: with the FORWARD policy DROP on every host, containers still reach each other through FLANNEL-FWD", async () => {
    const policy = (p: string) => { for (const h of c.hosts) for (const t of ["iptables", "ip6tables"]) exec(h.ns, [t, "-P", "FORWARD", p]); };
    expect(exec(c.hosts[0]!.ns, ["ip6tables-save", "-t", "filter"]).stdout).toContain("-A FLANNEL-FWD -s fd10::/48");
    policy("DROP");
    try {
      await expectFullMesh(c, 6);
      await expectFullMesh(c, 4);
    } finally {
      policy("ACCEPT");
    }
  }, 60_000);

  test("the same with EnableNFTables: the flannel-ipv6 table masquerades, the ip6tables rules are gone", async () => {
    const h = c.hosts[0]!;
    c.setConfig(JSON.stringify({ ...JSON.parse(c.config), EnableNFTables: true }));
    await c.stopAgent(h);
    await c.startAgent(h);
    expect(exec(h.ns, ["nft", "list", "chain", "ip6", "flannel-ipv6", "postrtg"]).stdout).toContain("ip6 saddr fd10::/48 ip6 daddr != ff00::/8 masquerade");
    expect(exec(h.ns, ["ip6tables-save", "-t", "nat"]).stdout).not.toContain("FLANNEL-POSTRTG -s");
    await expectMasquerade();
  }, 30_000);

  restartAndStaleTests(() => c, "vxlan");
});

describe("host-gw, dual stack, 3 hosts", () => {
  let c: Cluster;
  const servers: { stop(): void }[] = [];
  beforeAll(async () => {
    c = await cluster({ backend: "host-gw" }, servers);
  }, 90_000);
  afterAll(async () => {
    for (const s of servers) s.stop();
    await c?.destroy();
  }, 30_000);

  test("IPv6 routes via each peer's PublicIPv6 on eth0; full mesh over IPv4 and IPv6", async () => {
    const h = c.hosts[0]!;
    const routes = c.peerRoutes6(h).map((r) => `${r.dst} via ${r.gateway} dev ${r.dev}`).sort();
    expect(routes).toEqual(c.hosts.slice(1).map((p) => `${p.subnet6} via ${p.ip6} dev eth0`).sort());
    expect(h.env!.mtu).toBe(1500);
    expect(await expectFullMesh(c, 4)).toBe(6);
    expect(await expectFullMesh(c, 6)).toBe(6);
  }, 60_000);

  restartAndStaleTests(() => c, "host-gw");
});

for (const backend of ["vxlan", "host-gw"] as const) {
  describe(`${backend}, IPv6-only (EnableIPv4 false), 3 hosts`, () => {
    let c: Cluster;
    const servers: { stop(): void }[] = [];
    beforeAll(async () => {
      c = await cluster({ backend, ipv6Only: true }, servers);
    }, 90_000);
    afterAll(async () => {
      for (const s of servers) s.stop();
      await c?.destroy();
    }, 30_000);

    test("IPv6-only leases (key 0.0.0.0-0&…), no IPv4 data path, full mesh over IPv6; an IPv6 lease released", async () => {
      const h = c.hosts[0]!;
      expect(h.env!.subnet).toBeUndefined();
      expect(c.containers.every((x) => x.ip === x.ip6)).toBe(true);
      expect(ipJson<{ ifname: string }[]>(h.ns, "link", "show").map((l) => l.ifname)).not.toContain("flannel.1");
      const keys = (JSON.parse(c.weft(["leases", "list", "--json"])) as { key: string }[]).map((l) => l.key).sort();
      expect(keys).toEqual(c.hosts.map((x) => `0.0.0.0-0&${x.subnet6.replace("/", "-")}`).sort());
      expect(c.peerRoutes(h)).toEqual([]);
      expect(await expectFullMesh(c, 6)).toBe(6);
      // `weft leases release` takes an IPv6 subnet: the lease goes, and its route from every peer.
      const gone = c.hosts[2]!;
      await c.stopAgent(gone);
      c.weft(["leases", "release", gone.subnet6]);
      await waitFor(() => c.hosts.slice(0, 2).every((x) => c.peerRoutes6(x).length === 1), 5000, `${gone.subnet6} to go from the peers`);
    }, 60_000);
  });
}
