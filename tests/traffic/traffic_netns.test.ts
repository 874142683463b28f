/**
 * Kernel tests of src/traffic: setupTrafficRules runs inside namespaces this test creates
 * (traffic_script.ts under `ip netns exec`), and `iptables-save` / `nft list` there must show
 * exactly flanneld's rules in order; a deleted rule comes back within one resync period; a lease
 * change removes the old rules; switching EnableNFTables removes the other engine's rules. A
 * functional check sends UDP from a "container" to a "remote" namespace and looks at the source
 * address: masqueraded outside the cluster network, untouched inside it. The root namespace's
 * firewall is never touched. Needs root; skipped otherwise.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { iptablesRules, ruleLine } from "../../src/traffic/iptables_rules.ts";
import { nftListed, nftRules } from "../../src/traffic/nft_rules.ts";
import { type RuleSpec, ruleSpecs } from "../../src/traffic/spec.ts";
import { parseIPv4Net, parseIPv6Net } from "../../src/net/ip.ts";
import { addNetns, delNetns, ip, isRoot as canMakeNetns, nsExec, nsSh, uniqueName } from "../support/ns.ts";

const ROOT = join(import.meta.dir, "../..");
const SCRIPT = join(import.meta.dir, "traffic_script.ts");
const UDP = join(import.meta.dir, "udp_source.ts");
const isRoot = canMakeNetns && spawnSync("iptables", ["--version"]).status === 0 && spawnSync("nft", ["--version"]).status === 0;

const namespaces: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill("SIGKILL");
  for (const ns of namespaces) delNetns(ns);
});

/** `ip netns exec <ns> argv…`; throws unless it exits 0. Returns stdout. */
function inNs(ns: string, argv: string[]): string {
  return nsSh(ns, argv, { timeoutMs: 30_000 });
}

/** A fresh namespace `uniqueName("traffic", role)` with lo up; deleted in afterAll. */
function makeNs(role: string): string {
  const ns = addNetns(uniqueName("traffic", role));
  namespaces.push(ns);
  return ns;
}

function dropNs(ns: string): void {
  delNetns(ns);
  namespaces.splice(namespaces.indexOf(ns), 1);
}

// deno-lint-ignore no-explicit-any
type Json = any;

const V4_CONFIG = { Network: "10.42.0.0/16", Backend: { Type: "vxlan" } };
const DUAL_CONFIG = { ...V4_CONFIG, EnableIPv6: true, IPv6Network: "2001:cafe:42::/56" };
const LEASE = { subnet: "10.42.5.0/24", ipv6Subnet: "2001:cafe:42:5::/64" };

/** traffic_script.ts in `ns` with mode once; its JSON lines merged ({ready, stopped} or {error}). */
function setupOnce(ns: string, args: Record<string, unknown>): Json {
  const r = nsExec(ns, [process.execPath, SCRIPT, JSON.stringify({ mode: "once", ...args })], { timeoutMs: 30_000, cwd: ROOT });
  const out = Object.assign({}, ...r.stdout.trim().split("\n").filter(Boolean).map((l) => JSON.parse(l)));
  if (r.code !== 0 && !out.error) throw new Error(`traffic_script exited ${r.code}: ${r.stderr}`);
  return out;
}

/** traffic_script.ts in `ns` with mode run; resolves once it printed {"ready"}. */
async function setupRunning(ns: string, args: Record<string, unknown>): Promise<{ child: ChildProcess; lines: Json[] }> {
  const child = spawn("ip", ["netns", "exec", ns, process.execPath, SCRIPT, JSON.stringify({ mode: "run", ...args })], {
    cwd: ROOT, stdio: ["ignore", "pipe", "pipe"],
  });
  children.push(child);
  const lines: Json[] = [];
  let buf = "";
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => { stderr += d.toString(); });
  await new Promise<void>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const line = JSON.parse(buf.slice(0, nl));
        buf = buf.slice(nl + 1);
        lines.push(line);
        if (line.ready) resolve();
        if (line.error) reject(new Error(line.error));
      }
    });
    child.on("close", (code) => reject(new Error(`traffic_script exited ${code}: ${stderr}`)));
  });
  return { child, lines };
}

/** Sends SIGTERM and waits for the {"stopped"} line. */
async function stopRunning(r: { child: ChildProcess; lines: Json[] }): Promise<Json> {
  const closed = new Promise((resolve) => r.child.on("close", resolve));
  r.child.kill("SIGTERM");
  await closed;
  return r.lines.find((l) => l.stopped);
}

/** The `-A` lines of the given chains in `iptables-save -t TABLE` output, in order. */
function savedChains(ns: string, tool: "iptables" | "ip6tables", table: string, chains: string[]): string[] {
  return inNs(ns, [`${tool}-save`, "-t", table]).split("\n").filter((l) => chains.some((c) => l.startsWith(`-A ${c} `)));
}

function expectedIptables(spec: RuleSpec): string[] {
  return iptablesRules(spec).map((r) => ruleLine("-A", r));
}

/** The rule lines of one nft chain, or undefined when the table/chain is absent. */
function nftChainRules(ns: string, family: string, table: string, chain: string): string[] | undefined {
  const r = nsExec(ns, ["nft", "list", "chain", family, table, chain]);
  if (r.code !== 0) return undefined;
  return r.stdout.split("\n").map((l) => l.trim()).filter((l) => l && !/^(table|chain|comment|type) |^}$/.test(l));
}

function nftTables(ns: string): string[] {
  return inNs(ns, ["nft", "list", "tables"]).split("\n").filter((l) => l.includes("flannel"));
}

async function waitFor(what: string, f: () => boolean, ms: number): Promise<number> {
  const t0 = Date.now();
  while (!f()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await Bun.sleep(50);
  }
  return Date.now() - t0;
}

const V4_MASQ = [
  `-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG`,
  `-A FLANNEL-POSTRTG -m mark --mark 0x4000/0x4000 -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG -s 10.42.5.0/24 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG -s 10.42.0.0/16 -d 10.42.5.0/24 -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.5.0/24 -m comment --comment "flanneld masq" -j RETURN`,
  `-A FLANNEL-POSTRTG -s 10.42.0.0/16 ! -d 224.0.0.0/4 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
  `-A FLANNEL-POSTRTG ! -s 10.42.0.0/16 -d 10.42.0.0/16 -m comment --comment "flanneld masq" -j MASQUERADE --random-fully`,
];
const V4_FORWARD = [
  `-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD`,
  `-A FLANNEL-FWD -s 10.42.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
  `-A FLANNEL-FWD -d 10.42.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT`,
];

const nets = (subnet = LEASE.subnet) => ({ network: parseIPv4Net("10.42.0.0/16"), subnet: parseIPv4Net(subnet) });
const dualNets = { ...nets(), ipv6Network: parseIPv6Net("2001:cafe:42::/56"), ipv6Subnet: parseIPv6Net(LEASE.ipv6Subnet) };

describe.skipIf(!isRoot)("traffic rules in a namespace", () => {
  test("iptables mode: exactly flanneld's v4 rules, in order; a restart leaves one copy", () => {
    const ns = makeNs("v4");
    try {
      const out = setupOnce(ns, { config: V4_CONFIG, lease: LEASE });
      expect(out.ready).toMatchObject({ engine: "iptables", randomFully: true });
      for (let round = 0; round < 2; round++) {
        expect(savedChains(ns, "iptables", "nat", ["POSTROUTING", "FLANNEL-POSTRTG"])).toEqual(V4_MASQ);
        expect(savedChains(ns, "iptables", "filter", ["FORWARD", "FLANNEL-FWD"])).toEqual(V4_FORWARD);
        expect(nftTables(ns)).toEqual([]);
        if (round === 0) expect(setupOnce(ns, { config: V4_CONFIG, lease: LEASE }).ready).toBeDefined();
      }
    } finally {
      dropNs(ns);
    }
  }, 60_000);

  test("iptables mode, dual stack, random-fully off: ip6tables gets the v6 rules", () => {
    const ns = makeNs("dual");
    try {
      const out = setupOnce(ns, { config: DUAL_CONFIG, lease: LEASE, randomFullyDisabled: true });
      expect(out.ready.randomFully).toBe(false);
      const [m4, m6, f4, f6] = ruleSpecs(dualNets, { ipMasq: true, forwardRules: true, randomFully: false });
      expect(savedChains(ns, "iptables", "nat", ["POSTROUTING", "FLANNEL-POSTRTG"])).toEqual(expectedIptables(m4!));
      expect(savedChains(ns, "ip6tables", "nat", ["POSTROUTING", "FLANNEL-POSTRTG"])).toEqual(expectedIptables(m6!));
      expect(savedChains(ns, "iptables", "filter", ["FORWARD", "FLANNEL-FWD"])).toEqual(expectedIptables(f4!));
      expect(savedChains(ns, "ip6tables", "filter", ["FORWARD", "FLANNEL-FWD"])).toEqual(expectedIptables(f6!));
      expect(expectedIptables(m6!)[5]).toBe(`-A FLANNEL-POSTRTG -s 2001:cafe:42::/56 ! -d ff00::/8 -m comment --comment "flanneld masq" -j MASQUERADE`);
    } finally {
      dropNs(ns);
    }
  }, 60_000);

  test("iptables mode: a deleted rule or jump is back within one resync period", async () => {
    const ns = makeNs("resync");
    try {
      const running = await setupRunning(ns, { config: V4_CONFIG, lease: LEASE, resyncSeconds: 0.5 });
      const masqOk = () => savedChains(ns, "iptables", "nat", ["POSTROUTING", "FLANNEL-POSTRTG"]).join("\n") === V4_MASQ.join("\n");
      const fwdOk = () => savedChains(ns, "iptables", "filter", ["FORWARD", "FLANNEL-FWD"]).join("\n") === V4_FORWARD.join("\n");
      inNs(ns, ["iptables", "-t", "nat", "-D", "FLANNEL-POSTRTG", "3"]);
      expect(masqOk()).toBe(false);
      expect(await waitFor("the masq rule to return", masqOk, 1500)).toBeLessThan(1500);
      inNs(ns, ["iptables", "-t", "filter", "-D", "FORWARD", "-m", "comment", "--comment", "flanneld forward", "-j", "FLANNEL-FWD"]);
      await waitFor("the FORWARD jump to return", fwdOk, 1500);
      // A foreign rule inserted at the top of our chain also makes it rebuild, in order.
      inNs(ns, ["iptables", "-t", "nat", "-I", "FLANNEL-POSTRTG", "1", "-j", "ACCEPT"]);
      await waitFor("our chain to be rewritten", masqOk, 1500);
      const stopped = await stopRunning(running);
      expect(stopped.stopped.rebuilds).toBeGreaterThanOrEqual(3);
      expect(stopped.metrics).toContain("weft_traffic_rule_rebuilds_total 3");
      // Kept at shutdown.
      expect(masqOk() && fwdOk()).toBe(true);
    } finally {
      dropNs(ns);
    }
  }, 60_000);

  test("a lease change removes the previous subnet's rules (iptables), a flush replaces them (nft)", () => {
    const ns = makeNs("lease");
    try {
      setupOnce(ns, { config: DUAL_CONFIG, lease: LEASE });
      const previous = { network: "10.42.0.0/16", subnet: "10.42.5.1/24", ipv6Network: "2001:cafe:42::/56", ipv6Subnet: "2001:cafe:42:5::1/64" };
      const next = { subnet: "10.42.9.0/24", ipv6Subnet: "2001:cafe:42:9::/64" };
      expect(setupOnce(ns, { config: DUAL_CONFIG, lease: next, previous }).ready).toBeDefined();
      const nat4 = inNs(ns, ["iptables-save", "-t", "nat"]);
      const nat6 = inNs(ns, ["ip6tables-save", "-t", "nat"]);
      expect(nat4).not.toContain("10.42.5.0/24");
      expect(nat6).not.toContain("2001:cafe:42:5::/64");
      const [m4, m6] = ruleSpecs({ ...dualNets, subnet: parseIPv4Net(next.subnet), ipv6Subnet: parseIPv6Net(next.ipv6Subnet) },
        { ipMasq: true, forwardRules: false, randomFully: true });
      expect(savedChains(ns, "iptables", "nat", ["POSTROUTING", "FLANNEL-POSTRTG"])).toEqual(expectedIptables(m4!));
      expect(savedChains(ns, "ip6tables", "nat", ["POSTROUTING", "FLANNEL-POSTRTG"])).toEqual(expectedIptables(m6!));

      const nft = { ...DUAL_CONFIG, EnableNFTables: true };
      setupOnce(ns, { config: nft, lease: LEASE });
      setupOnce(ns, { config: nft, lease: next, previous });
      expect(nftChainRules(ns, "ip", "flannel-ipv4", "postrtg")).toEqual(nftRules(m4!).map(nftListed));
      expect(nftChainRules(ns, "ip6", "flannel-ipv6", "postrtg")).toEqual(nftRules(m6!).map(nftListed));
    } finally {
      dropNs(ns);
    }
  }, 60_000);

  test("switching EnableNFTables removes the other engine's rules, both ways (§12.11)", () => {
    const ns = makeNs("switch");
    try {
      setupOnce(ns, { config: DUAL_CONFIG, lease: LEASE });
      const out = setupOnce(ns, { config: { ...DUAL_CONFIG, EnableNFTables: true }, lease: LEASE });
      expect(out.ready).toMatchObject({ engine: "nftables", randomFully: true });
      for (const tool of ["iptables", "ip6tables"] as const) {
        const saved = inNs(ns, [`${tool}-save`]);
        expect(saved).not.toContain("FLANNEL-");
        expect(saved).not.toContain("flanneld");
      }
      expect(nftTables(ns)).toEqual(["table ip flannel-ipv4", "table ip6 flannel-ipv6"]);
      const [m4, m6, f4, f6] = ruleSpecs(dualNets, { ipMasq: true, forwardRules: true, randomFully: true });
      expect(nftChainRules(ns, "ip", "flannel-ipv4", "postrtg")).toEqual([
        "meta mark 0x00004000 return",
        "ip saddr 10.42.5.0/24 ip daddr 10.42.0.0/16 return",
        "ip saddr 10.42.0.0/16 ip daddr 10.42.5.0/24 return",
        "ip saddr != 10.42.0.0/16 ip daddr 10.42.5.0/24 return",
        "ip saddr 10.42.0.0/16 ip daddr != 224.0.0.0/4 masquerade fully-random",
        "ip saddr != 10.42.0.0/16 ip daddr 10.42.0.0/16 masquerade fully-random",
      ]);
      expect(nftChainRules(ns, "ip", "flannel-ipv4", "forward")).toEqual(nftRules(f4!));
      expect(nftChainRules(ns, "ip6", "flannel-ipv6", "postrtg")).toEqual(nftRules(m6!).map(nftListed));
      expect(nftChainRules(ns, "ip6", "flannel-ipv6", "forward")).toEqual(nftRules(f6!));
      expect(inNs(ns, ["nft", "list", "chain", "ip", "flannel-ipv4", "postrtg"])).toContain("type nat hook postrouting priority srcnat; policy accept;");
      expect(inNs(ns, ["nft", "list", "chain", "ip", "flannel-ipv4", "forward"])).toContain("type filter hook forward priority filter; policy accept;");

      setupOnce(ns, { config: DUAL_CONFIG, lease: LEASE });
      expect(nftTables(ns)).toEqual([]);
      expect(savedChains(ns, "iptables", "nat", ["POSTROUTING", "FLANNEL-POSTRTG"])).toEqual(expectedIptables(m4!));
      expect(savedChains(ns, "ip6tables", "filter", ["FORWARD", "FLANNEL-FWD"])).toEqual(expectedIptables(f6!));
    } finally {
      dropNs(ns);
    }
  }, 60_000);

  test("nftables mode: a deleted rule or table is back within one resync period", async () => {
    const ns = makeNs("nftresync");
    try {
      const running = await setupRunning(ns, { config: { ...V4_CONFIG, EnableNFTables: true }, lease: LEASE, resyncSeconds: 0.5 });
      const [m4] = ruleSpecs(nets(), { ipMasq: true, forwardRules: true, randomFully: true });
      const want = nftRules(m4!).map(nftListed);
      const ok = () => JSON.stringify(nftChainRules(ns, "ip", "flannel-ipv4", "postrtg")) === JSON.stringify(want);
      expect(ok()).toBe(true);
      const handle = /masquerade fully-random # handle (\d+)/.exec(inNs(ns, ["nft", "-a", "list", "chain", "ip", "flannel-ipv4", "postrtg"]))![1]!;
      inNs(ns, ["nft", "delete", "rule", "ip", "flannel-ipv4", "postrtg", "handle", handle]);
      expect(ok()).toBe(false);
      await waitFor("the nft rule to return", ok, 1500);
      inNs(ns, ["nft", "delete", "table", "ip", "flannel-ipv4"]);
      await waitFor("the nft table to return", ok, 1500);
      expect(nftChainRules(ns, "ip", "flannel-ipv4", "forward")).toEqual(["ip saddr 10.42.0.0/16 accept", "ip daddr 10.42.0.0/16 accept"]);
      const stopped = await stopRunning(running);
      expect(stopped.stopped.rebuilds).toBeGreaterThanOrEqual(3); // postrtg, then postrtg + forward
      expect(ok()).toBe(true);
    } finally {
      dropNs(ns);
    }
  }, 60_000);

  test("iptables mode without br_netfilter's sysctls fails start-up with flanneld's message", () => {
    const ns = makeNs("nobr");
    try {
      const out = setupOnce(ns, { config: V4_CONFIG, lease: LEASE, bridgeSysctlDir: "/nonexistent/bridge" });
      expect(out.error).toStartWith("Failed to check br_netfilter: stat /nonexistent/bridge/bridge-nf-call-iptables: no such file or directory");
      expect(inNs(ns, ["iptables-save"])).not.toContain("FLANNEL");
    } finally {
      dropNs(ns);
    }
  }, 60_000);

  test("functional: container traffic leaving the cluster network is masqueraded, traffic inside it is not", async () => {
    // host: ctr0 10.42.5.1/24 (the bridge's role) ↔ container eth0 10.42.5.2/24;
    //       up0 192.168.77.1/24 ↔ remote eth0 192.168.77.2/24 and 10.42.9.2/24 (another node's pod).
    const host = makeNs("host");
    const ctr = makeNs("ctr");
    const remote = makeNs("remote");
    try {
      const ipCmd = (ns: string, cmd: string) => ip(ns, ...cmd.split(" "));
      ipCmd(host, `link add ctr0 type veth peer name eth0 netns ${ctr}`);
      ipCmd(host, `link add up0 type veth peer name eth0 netns ${remote}`);
      for (const cmd of ["addr add 10.42.5.1/24 dev ctr0", "addr add 192.168.77.1/24 dev up0", "link set ctr0 up", "link set up0 up",
        "route add 10.42.9.0/24 via 192.168.77.2"]) ipCmd(host, cmd);
      for (const cmd of ["addr add 10.42.5.2/24 dev eth0", "link set eth0 up", "route add default via 10.42.5.1"]) ipCmd(ctr, cmd);
      for (const cmd of ["addr add 192.168.77.2/24 dev eth0", "addr add 10.42.9.2/24 dev eth0", "link set eth0 up",
        "route add 10.42.5.0/24 via 192.168.77.1"]) ipCmd(remote, cmd);
      inNs(host, ["sysctl", "-q", "-w", "net.ipv4.ip_forward=1"]);

      const sources = async (sends: Array<[string, string]>): Promise<Record<string, string>> => {
        const server = spawn("ip", ["netns", "exec", remote, process.execPath, UDP, "listen", "9999", String(sends.length)], {
          stdio: ["ignore", "pipe", "pipe"],
        });
        children.push(server);
        let out = "";
        await new Promise<void>((resolve, reject) => {
          server.stdout!.on("data", (d: Buffer) => { out += d.toString(); if (out.includes("ready")) resolve(); });
          server.on("close", (code) => reject(new Error(`udp listener exited ${code}`)));
        });
        const closed = new Promise((resolve) => server.on("close", resolve));
        for (const [label, dst] of sends) inNs(ctr, [process.execPath, UDP, "send", dst, "9999", label]);
        await closed;
        const seen: Record<string, string> = {};
        for (const line of out.trim().split("\n").map((l) => JSON.parse(l))) if (line.from) seen[line.data] = line.from;
        return seen;
      };

      // Without rules both arrive from the container's own address.
      expect(await sources([["outside", "192.168.77.2"], ["cluster", "10.42.9.2"]]))
        .toEqual({ outside: "10.42.5.2", cluster: "10.42.5.2" });
      expect(setupOnce(host, { config: V4_CONFIG, lease: LEASE }).ready).toBeDefined();
      expect(await sources([["outside", "192.168.77.2"], ["cluster", "10.42.9.2"]]))
        .toEqual({ outside: "192.168.77.1", cluster: "10.42.5.2" });
      // The same holds in nftables mode.
      setupOnce(host, { config: { ...V4_CONFIG, EnableNFTables: true }, lease: LEASE });
      expect(await sources([["outside", "192.168.77.2"], ["cluster", "10.42.9.2"]]))
        .toEqual({ outside: "192.168.77.1", cluster: "10.42.5.2" });
    } finally {
      for (const ns of [host, ctr, remote]) dropNs(ns);
    }
  }, 60_000);
});
