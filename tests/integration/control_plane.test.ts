/**
 * The agent against a real etcd, as processes (the compiled dist/weft): allocation at scale,
 * restarts, reservations, expiry, bursts, compaction, an etcd outage, bad configs, admin commands
 * and the status server over HTTP. Agents advertise 127.0.0.N public IPs on `lo`; the alloc
 * backend programs nothing, so no traffic leaves loopback.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, type Runtime, runWeft, waitFor } from "../support/agent.ts";
import { EtcdServer, outageSignal } from "../support/etcd.ts";

let etcd: EtcdServer;
let dir: string;
const agents: AgentProcess[] = [];
let prefixN = 0;

const CONFIG = `{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}`;
/**
 * An agent's own lease is one of the first 100 free subnets (flannel's allocation: 10.5.1.0/24 to
 * 10.5.100.0/24 in a fresh prefix). Leases the tests write as peers lie above, from 10.5.101.0/24
 * on. One written over the agent's own key is taken as its own lease, not as a peer: with six
 * such keys inside that range (the 150-lease burst began at 10.5.100.0), a test waited in vain
 * for its "peer" in roughly one run in ten.
 */

/** A fresh prefix with the config stored; returns the flags that select it. */
async function network(config: string | null = CONFIG): Promise<{ prefix: string; admin: (args: string[], stdin?: string) => ReturnType<typeof runWeft> }> {
  const prefix = `/t${++prefixN}/network`;
  const admin = (args: string[], stdin?: string) => runWeft([`--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefix}`, ...args], { stdin });
  if (config) {
    const r = await admin(["config", "set", "-"], config);
    if (r.code !== 0) throw new Error(r.stderr);
  }
  return { prefix, admin };
}

let runtime: Runtime = "binary";

async function agent(prefix: string, ip: string, opts: { name?: string; env?: Record<string, string>; extra?: string[] } = {}) {
  const a = await AgentProcess.start({
    runtime,
    etcd: etcd.endpoint, subnetFile: join(dir, prefix.replaceAll("/", "_"), opts.name ?? ip, "subnet.env"),
    publicIP: ip, extraArgs: [`--etcd-prefix=${prefix}`, ...(opts.extra ?? [])], env: opts.env,
  });
  agents.push(a);
  return a;
}

const subnetOf = async (a: AgentProcess) => (await a.status()).lease.subnet as string;
const peerSubnets = async (a: AgentProcess) => ((await a.status()).peers as { subnet: string }[]).map((p) => p.subnet).sort();

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weft-cp-"));
  etcd = await EtcdServer.start();
});

afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  await etcd?.destroy();
  rmSync(dir, { recursive: true, force: true });
});

/** The suite, with the agent as the compiled binary (32 agents) or under Deno (8: Deno starts slower). */
for (const [rt, many] of [["binary", 32], ["deno", 8]] as const) describe(`control plane against a real etcd (agent: ${rt})`, () => {
  beforeAll(() => { runtime = rt; });

  test(`${many} agents started at once get ${many} distinct subnets, and see each other`, async () => {
    const { prefix, admin } = await network();
    const started = await Promise.all(Array.from({ length: many }, (_, i) => agent(prefix, `127.0.1.${i + 1}`)));
    await Promise.all(started.map((a) => a.ready(60_000)));
    const subnets = await Promise.all(started.map(subnetOf));
    expect(new Set(subnets).size).toBe(many);
    const listed = JSON.parse((await admin(["leases", "list", "--json"])).stdout) as { subnet: string; publicIP: string }[];
    expect(listed.map((l) => l.subnet).sort()).toEqual([...subnets].sort());
    // Each subnet.env matches its lease.
    for (const [i, a] of started.entries()) {
      const env = readFileSync(join(dir, prefix.replaceAll("/", "_"), `127.0.1.${i + 1}`, "subnet.env"), "utf8");
      expect(env).toBe(`FLANNEL_NETWORK=10.5.0.0/16\nFLANNEL_SUBNET=${subnets[i]!.replace(/\.0\/24$/, ".1/24")}\nFLANNEL_MTU=65536\nFLANNEL_IPMASQ=false\n`);
    }
    await waitFor(async () => (await peerSubnets(started[0]!)).length === many - 1, "all peers", 20_000);
    await Promise.all(started.map((a) => a.stop()));
    expect(started.map((a) => a.exitCode)).toEqual(started.map(() => 0));
  }, 120_000);

  test("a restart reuses the subnet: by public IP, else from the previous subnet.env", async () => {
    const { prefix, admin } = await network();
    const a = await (await agent(prefix, "127.0.2.1")).ready();
    const first = await subnetOf(a);
    expect(await a.stop()).toBe(0);
    expect(a.log).toContain("Exiting cleanly...");
    const again = await (await agent(prefix, "127.0.2.1")).ready();
    expect(await subnetOf(again)).toBe(first);
    await again.stop();
    // A new public IP with the same subnet file: the previous subnet, once its lease is gone.
    expect((await admin(["leases", "release", first])).code).toBe(0);
    const moved = await (await agent(prefix, "127.0.2.99", { name: "127.0.2.1" })).ready();
    expect(await subnetOf(moved)).toBe(first);
    await moved.stop();
  }, 60_000);

  test("reusing its lease never revokes an etcd lease that holds other keys", async () => {
    // weft revokes the lease it replaces (flanneld leaks it: compat §12.15), but only when that
    // lease holds nothing else: one another writer shared with other keys would take them along.
    const { prefix } = await network();
    const shared = etcd.client().lease(3600, { autoKeepAlive: false });
    await shared.put(`${prefix}/subnets/10.5.120.0-24`).value(`{"PublicIP":"127.0.2.50","PublicIPv6":null}`);
    await shared.put(`${prefix}/elsewhere`).value("held by the same etcd lease");
    const a = await (await agent(prefix, "127.0.2.50")).ready();
    expect(await subnetOf(a)).toBe("10.5.120.0/24"); // reused by public IP, under a lease of its own
    expect(await etcd.client().get(`${prefix}/elsewhere`).string()).toBe("held by the same etcd lease");
    await a.stop();
    await shared.revoke();
  }, 30_000);

  test("a reservation is used lease-less and never renewed", async () => {
    const { prefix, admin } = await network();
    expect((await admin(["leases", "reserve", "10.5.77.0/24", "127.0.3.1"])).code).toBe(0);
    const a = await (await agent(prefix, "127.0.3.1")).ready();
    const s = await a.status();
    expect(s.lease.subnet).toBe("10.5.77.0/24");
    expect(s.lease.reservation).toBe(true);
    const listed = JSON.parse((await admin(["leases", "list", "--json"])).stdout);
    expect(listed).toEqual([expect.objectContaining({ subnet: "10.5.77.0/24", reservation: true, expiration: null, expired: false, backendType: "alloc" })]);
    await a.stop();
    // Reserving someone else's lease is refused, naming both.
    const other = await (await agent(prefix, "127.0.3.2")).ready();
    const r = await admin(["leases", "reserve", await subnetOf(other), "127.0.3.9"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is leased to 127\.0\.3\.2, not 127\.0\.3\.9/);
    await other.stop();
  }, 60_000);

  test("an expired lease frees the subnet and peers see it go", async () => {
    const { prefix, admin } = await network();
    const watcher = await (await agent(prefix, "127.0.4.1")).ready();
    const short = await (await agent(prefix, "127.0.4.2", { env: { WEFT_TEST_LEASE_TTL_SECONDS: "4" } })).ready();
    const gone = await subnetOf(short);
    await waitFor(async () => (await peerSubnets(watcher)).includes(gone), "peer seen");
    await short.stop("SIGKILL"); // no renewal from now on
    await waitFor(async () => !(await peerSubnets(watcher)).includes(gone), "peer gone after expiry", 20_000);
    const listed = JSON.parse((await admin(["leases", "list", "--json"])).stdout) as { subnet: string }[];
    expect(listed.map((l) => l.subnet)).not.toContain(gone);
    await watcher.stop();
  }, 60_000);

  test("a short-TTL agent renews its lease and keeps it", async () => {
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.4.9", { env: { WEFT_TEST_LEASE_TTL_SECONDS: "4" } })).ready();
    const first = await a.status();
    await Bun.sleep(6000);
    const later = await a.status();
    expect(later.lease.subnet).toBe(first.lease.subnet);
    expect(Date.parse(later.lease.expiration)).toBeGreaterThan(Date.parse(first.lease.expiration));
    expect(a.log).toContain("renewed lease");
    await a.stop();
  }, 30_000);

  test("150 leases put in one transaction are all seen in /status", async () => {
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.5.1")).ready();
    const puts = Array.from({ length: 150 }, (_, i) => ({
      request_put: {
        key: Buffer.from(`${prefix}/subnets/10.5.${101 + i}.0-24`),
        value: Buffer.from(`{"PublicIP":"127.0.6.${i + 1}","PublicIPv6":null}`),
      },
    }));
    await etcd.client().kv.txn({ compare: [], success: puts, failure: [] } as never);
    let seen = 0;
    await waitFor(async () => (seen = (await peerSubnets(a)).length) === 150, "150 peers").catch((e: Error) => {
      throw new Error(`${e.message} (saw ${seen})\n--- agent log ---\n${a.log.slice(-4000)}`);
    });
    const metrics = await (await a.get("/metrics"))!.text();
    expect(metrics).toMatch(/^weft_peers 150$/m);
    expect(metrics).toMatch(/^weft_watch_events_total 150$/m);
    await a.stop();
  }, 30_000);

  test("malformed leases written by others are logged once and skipped", async () => {
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.5.9")).ready();
    await etcd.client().put(`${prefix}/subnets/10.5.209.0-24`).value("{not json");
    await etcd.client().put(`${prefix}/subnets/nonsense`).value("{}");
    await etcd.client().put(`${prefix}/subnets/10.5.210.0-24`).value(`{"PublicIP":"127.0.7.1","PublicIPv6":null}`);
    await waitFor(async () => (await peerSubnets(a)).includes("10.5.210.0/24"), "good lease");
    expect(a.log.match(/ignoring malformed lease 10\.5\.209\.0-24/g)?.length).toBe(1);
    expect(a.log).toContain("ignoring malformed lease nonsense");
    expect(a.exitCode).toBeNull();
    await a.stop();
  }, 30_000);

  test("compaction while the agent was away: it re-lists and catches up", async () => {
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.8.1", { env: { WEFT_RESYNC_MS: "600000" } })).ready();
    await etcd.client().put(`${prefix}/subnets/10.5.220.0-24`).value(`{"PublicIP":"127.0.8.20","PublicIPv6":null}`);
    await waitFor(async () => (await peerSubnets(a)).includes("10.5.220.0/24"), "first peer");
    a.proc.kill("SIGSTOP");
    try {
      await etcd.stop(outageSignal(runtime));
      await etcd.restart(); // the agent's watch stream is gone
      await etcd.client().delete().key(`${prefix}/subnets/10.5.220.0-24`);
      await etcd.client().put(`${prefix}/subnets/10.5.221.0-24`).value(`{"PublicIP":"127.0.8.21","PublicIPv6":null}`);
      await etcd.compact();
    } finally {
      a.proc.kill("SIGCONT");
    }
    await waitFor(async () => {
      const p = await peerSubnets(a).catch(() => [] as string[]);
      return p.includes("10.5.221.0/24") && !p.includes("10.5.220.0/24");
    }, "catch-up after compaction", 30_000);
    expect(a.log).toMatch(/re-listing/);
    await a.stop();
  }, 60_000);

  test("etcd restarted 10 times in a row: every lease put after each restart is seen", async () => {
    // Short outages hit the watch in each phase of its reconnecting: while its stream is still
    // being torn down, in backoff, and while a new stream waits for etcd to listen again. Half
    // the puts come at once after the restart, half after the agent reported etcd healthy.
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.20.1")).ready();
    const downMs = [200, 500, 1000, 1500, 300, 700, 1200, 200, 900, 400];
    for (const [i, ms] of downMs.entries()) {
      await etcd.stop(outageSignal(runtime));
      await Bun.sleep(ms);
      await etcd.restart();
      if (i % 2 === 1) await waitFor(async () => (await a.status()).etcd.ok === true, `etcd reported up after restart ${i + 1}`, 15_000);
      const subnet = `10.5.${140 + i}.0/24`;
      await etcd.client().put(`${prefix}/subnets/${subnet.replace("/", "-")}`).value(`{"PublicIP":"127.0.20.${i + 2}","PublicIPv6":null}`);
      await waitFor(async () => (await peerSubnets(a)).includes(subnet), `${subnet}, put after restart ${i + 1} (${ms} ms down)`, 20_000)
        .catch((e: Error) => { throw new Error(`${e.message}\n--- agent log ---\n${a.log.slice(-4000)}`); });
    }
    expect((await peerSubnets(a)).length).toBe(downMs.length);
    expect(a.exitCode).toBeNull();
    await a.stop();
  }, 120_000);

  test("etcd down for 10 s: the agent keeps its lease and catches up", async () => {
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.9.1")).ready();
    const before = await a.status();
    await etcd.stop(outageSignal(runtime));
    await waitFor(async () => (await a.status()).etcd.ok === false, "etcd reported down", 9_000);
    await Bun.sleep(10_000);
    expect((await a.get("/healthz"))?.status).toBe(200);
    expect((await a.get("/readyz"))?.status).toBe(200);
    await etcd.restart();
    // Healthy again as soon as the watch is back, with no event needed.
    await waitFor(async () => (await a.status()).etcd.ok === true, "etcd reported up", 15_000);
    await etcd.client().put(`${prefix}/subnets/10.5.230.0-24`).value(`{"PublicIP":"127.0.9.30","PublicIPv6":null}`);
    await waitFor(async () => (await peerSubnets(a)).includes("10.5.230.0/24"), "event after the outage", 30_000);
    const after = await a.status();
    expect(after.lease.subnet).toBe(before.lease.subnet);
    expect(await etcd.client().get(`${prefix}/subnets/${before.lease.key}`).string()).toBe(`{"PublicIP":"127.0.9.1","PublicIPv6":null}`);
    expect(a.exitCode).toBeNull();
    await a.stop();
  }, 90_000);

  test("its own lease deleted: the agent takes the same subnet back", async () => {
    const { prefix, admin } = await network();
    const a = await (await agent(prefix, "127.0.10.1")).ready();
    const s = await subnetOf(a);
    expect((await admin(["leases", "release", s])).code).toBe(0);
    await waitFor(() => a.log.includes("re-acquired"), "re-acquire");
    const listed = JSON.parse((await admin(["leases", "list", "--json"])).stdout) as { subnet: string }[];
    expect(listed.map((l) => l.subnet)).toEqual([s]);
    await a.stop();
  }, 30_000);

  test("its own lease re-put by another writer: the expiry is adopted, its own attributes written back", async () => {
    // flanneld adopts only the expiry of such a re-put (compat §4) and its renewal restores its
    // attributes; a stranger's PublicIP kept in our lease would send every peer's traffic there.
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.11.1", { env: { WEFT_TEST_LEASE_TTL_SECONDS: "3600" } })).ready();
    const key = (await a.status()).lease.key as string;
    const etcdKey = `${prefix}/subnets/${key}`;
    const ours = `{"PublicIP":"127.0.11.1","PublicIPv6":null}`;
    const renewedBefore = (a.log.match(/renewed lease/g) ?? []).length;
    const short = etcd.client().lease(6, { autoKeepAlive: false });
    await short.put(`${prefix}/elsewhere`).value("held by the same etcd lease");
    await short.put(etcdKey).value(`{"PublicIP":"127.0.11.99","PublicIPv6":null}`);
    await waitFor(() => a.log.includes(`lease ${key} was re-put by another writer`), "re-put noticed");
    expect(a.log).toMatch(/127\.0\.11\.99.*keeps its own.*127\.0\.11\.1/);
    expect((await a.status()).lease.publicIP).toBe("127.0.11.1");
    // Its expiry is now the re-put's (6 s), not its own hour (it would renew in 20 min): renewed
    // at once, with its own attributes, before that short lease runs out; the key never went away.
    await waitFor(() => (a.log.match(/renewed lease/g) ?? []).length > renewedBefore, "renewal after the re-put", 15_000);
    expect(await etcd.client().get(etcdKey).string()).toBe(ours);
    expect(a.log).not.toMatch(/has been revoked/);
    // The renewal revoked only its own old lease, never the writer's, which holds another key.
    expect(await etcd.client().get(`${prefix}/elsewhere`).string()).toBe("held by the same etcd lease");
    // A re-put without a lease makes it a reservation, which it then holds lease-less.
    await etcd.client().put(etcdKey).value(ours);
    await waitFor(async () => (await a.status()).lease.reservation === true, "reservation adopted");
    expect(a.exitCode).toBeNull();
    await a.stop();
  }, 60_000);

  test("an invalid config is rejected: exit 1, the field named, nothing written", async () => {
    const { prefix, admin } = await network("");
    const bad = `{"Network":"10.5.0.0/16","SubnetLen":31}`;
    const r = await admin(["config", "set", "-"], bad);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("SubnetLen 31 must be at most 30");
    await etcd.client().put(`${prefix}/config`).value(bad); // as another tool might
    const a = await agent(prefix, "127.0.11.1");
    expect(await a.exited).toBe(1);
    expect(a.log).toContain("invalid network config: SubnetLen 31 must be at most 30 (SubnetLen must be less than /31)");
    expect(existsSync(join(dir, prefix.replaceAll("/", "_"), "127.0.11.1", "subnet.env"))).toBe(false);
  }, 30_000);

  test("a missing config is waited for, then used", async () => {
    const { prefix, admin } = await network("");
    const a = await agent(prefix, "127.0.12.1");
    await waitFor(() => a.log.includes("flannel config not found in etcd store"), "the wait log line");
    expect((await a.get("/readyz"))?.status).toBe(503);
    expect(await (await a.get("/readyz"))!.text()).toBe("flanneld is not ready yet");
    await admin(["config", "set", "-"], CONFIG);
    await a.ready();
    expect((await admin(["config", "get"])).stdout).toBe(`${CONFIG}\n`);
    await a.stop();
  }, 30_000);

  test("status server over HTTP: healthz, readyz, status, metrics", async () => {
    const { prefix } = await network();
    const a = await (await agent(prefix, "127.0.13.1")).ready();
    expect(await (await a.get("/healthz"))!.text()).toBe("flanneld is running");
    expect(await (await a.get("/readyz"))!.text()).toBe("flanneld is ready");
    const s = await a.status();
    expect(s).toMatchObject({ network: "10.5.0.0/16", backend: "alloc", lease: { publicIP: "127.0.13.1" }, peers: [] });
    expect(Date.parse(s.lease.expiration)).toBeGreaterThan(Date.now() + 23 * 3600_000);
    const m = await (await a.get("/metrics"))!.text();
    expect(m).toMatch(/^weft_lease_expiration_timestamp_seconds \d{10}$/m);
    expect(m).toContain("# TYPE weft_watch_reconnects_total counter");
    await a.stop();
  }, 30_000);
});

describe("command line", () => {
  test("--version prints to stderr and exits 0; --help prints usage", async () => {
    const v = await runWeft(["--version"]);
    expect([v.code, v.stdout, v.stderr.trim()]).toEqual([0, "", expect.stringMatching(/^v\d+\.\d+\.\d+$/)]);
    const h = await runWeft(["-h"]);
    expect(h.code).toBe(0);
    expect(h.stdout).toContain("-etcd-endpoints string");
  });
  test("`deno task agent` (deno.json) runs the same agent under Deno", async () => {
    const p = Bun.spawnSync([join(import.meta.dir, "..", "..", "node_modules", ".bin", "deno"), "task", "agent", "--version"], {
      cwd: join(import.meta.dir, "..", ".."), env: { ...process.env, NO_COLOR: "1" },
    });
    expect(p.exitCode).toBe(0);
    expect(p.stderr.toString()).toMatch(/^v\d+\.\d+\.\d+$/m);
  }, 60_000);

  test("bad flags exit 1 naming the flag and the range", async () => {
    const r = await runWeft(["--subnet-lease-renew-margin=0"]);
    expect(r.code).toBe(1);
    expect(r.stderr).toContain("must be a whole number from 1 to 1439");
    const u = await runWeft(["-bogus"]);
    expect([u.code, u.stderr.trim()]).toEqual([1, "flag provided but not defined: -bogus (see --help)"]);
  });
  test("every admin subcommand takes the agent's flags after it, as --flag value and --flag=value", async () => {
    const prefix = `/t${++prefixN}/network`;
    for (const form of ["separate", "joined"] as const) {
      const flags = form === "separate"
        ? ["--etcd-endpoints", etcd.endpoint, "--etcd-prefix", prefix]
        : [`--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${prefix}`];
      const run = (args: string[], stdin?: string) => runWeft([...args, ...flags], { stdin });
      const set = await run(["config", "set", "-"], `{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan"}}`);
      expect([form, set.code, set.stderr]).toEqual([form, 0, expect.stringContaining("network config stored")]);
      expect(JSON.parse((await run(["config", "get"])).stdout).Network).toBe("10.6.0.0/16");
      expect((await run(["leases", "reserve", "10.6.9.0/24", "192.0.2.9"])).code).toBe(0);
      const listed = await run(["leases", "list", "--json"]);
      expect(JSON.parse(listed.stdout)).toEqual([expect.objectContaining({ subnet: "10.6.9.0/24", backendType: null, expiration: null, reservation: true })]);
      expect((await run(["leases", "list"])).stdout).toMatch(/^10\.6\.9\.0\/24 +192\.0\.2\.9 +- +never \(reservation\)$/m);
      expect((await run(["leases", "release", "10.6.9.0/24"])).code).toBe(0);
    }
  }, 60_000);

  test("config set refuses what the agent or its backend would refuse, naming the key and value", async () => {
    const { admin } = await network(null);
    for (const [config, says] of [
      [`{"Network":"10.6.0.0/16","Backend":{"Type":"ipip"}}`, `backend type "ipip"`],
      [`{"Network":"10.6.0.0/16","Backend":{"Type":"wireguard","Mode":"Auto"}}`, `Backend.Mode "Auto" must be one of "separate", "auto", "ipv4", "ipv6"`],
      [`{"Network":"10.6.0.0/16","Backend":{"Type":"vxlan","VNI":"x"}}`, `Backend.VNI "x" must be a whole number`],
      [`{"Network":"10.6.0.0/16","Backend":{"Type":"udp","Port":99999}}`, "Backend.Port 99999 must be an integer port 1..65535"],
    ] as const) {
      const r = await admin(["config", "set", "-"], config);
      expect([r.code, r.stderr]).toEqual([1, expect.stringContaining(says)]);
    }
    expect((await admin(["config", "get"])).code).toBe(1); // nothing was stored
    const missing = await admin(["config", "set", "/nonexistent/net-conf.json"]);
    expect([missing.code, missing.stderr.trim()]).toEqual([1, expect.stringMatching(/^cannot read the network config file \/nonexistent\/net-conf\.json: no such file/)]);
  }, 30_000);

  test("the etcd password is never logged (flanneld logs it)", async () => {
    const { prefix } = await network();
    const a = await agent(prefix, "127.0.14.1", { extra: ["--etcd-username=weft", "--etcd-password=hunter2"] });
    await waitFor(() => a.log.includes("CLI flags config"), "the flags log line");
    await Bun.sleep(500); // let it log its etcd errors too (auth is off on this server)
    await a.stop("SIGKILL");
    expect(a.log).toContain('"etcd-password":"<redacted>"');
    expect(a.log).not.toContain("hunter2");
  }, 30_000);
});
