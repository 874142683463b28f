/**
 * @module Overlay health on real faults (vxlan, three hosts in namespaces, one cluster shared by
 * the cases, each repaired before the next): the fault is made, h1's probes must name the peer and
 * the cause in /status, /metrics and the log, and all must return to healthy once it is repaired.
 * Detection times are printed (not asserted: they depend on the machine's load).
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { weftCommand } from "../support/agent.ts";
import { Cluster, STATUS_PORT, exec, ip, ping, waitFor, wallMs } from "../support/netns.ts";
import { parsePrometheus } from "../support/prometheus.ts";

const INTERVAL_MS = 400;
let c: Cluster;
beforeAll(async () => {
  c = await Cluster.create({
    hosts: 3,
    // Fast probes; the backend's own route check slow, so a deleted route stays deleted until repaired.
    agentEnv: { WEFT_HEALTH_INTERVAL_MS: String(INTERVAL_MS), WEFT_ROUTE_CHECK_MS: "600000" },
    // No forward rules, so a FORWARD policy DROP stays a fault until repaired.
    agentArgs: ["--iptables-forward-rules=false"],
  });
}, 90_000);
afterAll(async () => { await c?.destroy(); });

type H = Cluster["hosts"][number];
const detected: string[] = [];
afterAll(() => { if (detected.length) console.log(`detection times (probe interval ${INTERVAL_MS} ms):\n  ${detected.join("\n  ")}`); });

async function health(from: H, to: H): Promise<any> {
  const st = await c.status(from);
  return st.peers.find((p: any) => p.subnet === to.subnet)?.health;
}

async function metric(from: H, name: string, to: H): Promise<number | undefined> {
  const m = parsePrometheus(await (await c.fetch(from, "/metrics")).text());
  expect(m.problems).toEqual([]);
  return m.families.get(name)?.samples.find((s) => s.labels.peer === to.subnet)?.value;
}

/** Waits until `pred` holds for h1's view of `to`; returns the ms it took. */
async function until(from: H, to: H, what: string, pred: (h: any) => boolean, timeoutMs = 20_000): Promise<number> {
  const t0 = wallMs();
  await waitFor(async () => { const h = await health(from, to); return h && pred(h); }, timeoutMs, `${from.name} sees ${to.name} ${what}`, 100)
    .catch(async (e) => { throw new Error(`${(e as Error).message}: ${JSON.stringify(await health(from, to))}\n${from.log.slice(-3000)}`); });
  return wallMs() - t0;
}

/** `weft doctor --json` on `h` with its agent's flags: exit status and the findings that are not ok. */
function doctor(h: H): { code: number; problems: { id: string; severity: string; title: string; evidence: string[] }[] } {
  const r = exec(h.ns, weftCommand("binary", [
    "doctor", "--json", `--etcd-endpoints=${c.etcd.endpoint}`, `--subnet-file=${h.subnetFile}`,
    `--healthz-ip=${h.ip}`, `--healthz-port=${STATUS_PORT}`, "--iptables-forward-rules=false",
  ]));
  if (!r.stdout) throw new Error(`weft doctor on ${h.name} printed nothing (exit ${r.code}): ${r.stderr}`);
  const out = JSON.parse(r.stdout) as { ok: boolean; findings: any[] };
  expect(out.ok).toBe(r.code === 0);
  return { code: r.code, problems: out.findings.filter((f) => f.severity === "error" || f.severity === "warn") };
}

/** Doctor's view from `h` is healthy again (retried: the agents repair and re-probe on their own time). */
async function doctorHealthy(h: H): Promise<void> {
  let last: ReturnType<typeof doctor> | undefined;
  await waitFor(() => (last = doctor(h)).code === 0, 20_000, `weft doctor on ${h.name} to find nothing`, 300)
    .catch((e) => { throw new Error(`${(e as Error).message}: ${JSON.stringify(last?.problems)}`); });
}

async function allHealthy(): Promise<void> {
  for (const a of c.hosts) for (const b of c.hosts) if (a !== b) await until(a, b, "up with MTU ok", (h) => h.state === "up" && h.mtuOk === true);
}

test("every peer is reachable through the overlay, with RTT and the full-size check, in /status and /metrics", async () => {
  const [h1, h2] = c.hosts as [H, H];
  await allHealthy();
  const h = await health(h1, h2);
  expect(h.overlayAddr).toBe(h2.subnet.split("/")[0]);
  expect(h.rttMs.p50).toBeGreaterThan(0);
  expect(await metric(h1, "weft_peer_up", h2)).toBe(1);
  expect(await metric(h1, "weft_peer_mtu_ok", h2)).toBe(1);
  expect(await metric(h1, "weft_peer_rtt_seconds", h2)).toBeGreaterThan(0);
  const st = await c.status(h1);
  expect(st.health).toMatchObject({ port: 8473, up: 2, down: 0, unknown: 0 });
  expect(doctor(h1)).toEqual({ code: 0, problems: [] });
  // The whole-cluster matrix, from the summaries every agent publishes in etcd.
  await waitFor(async () => JSON.stringify((await c.status(h1)).health.matrix?.rows) === JSON.stringify(["-uu", "u-u", "uu-"]), 20_000, "h1's matrix all reachable", 200);
  expect((await c.status(h1)).health.matrix.hosts).toEqual(c.hosts.map((h) => h.subnet).sort((a, b) => Number(a.split(".")[2]) - Number(b.split(".")[2])));
  const keys = c.weft(["leases", "list", "--json"]);
  expect(keys).not.toContain("health"); // never among the subnets flanneld reads
}, 60_000);

test("vxlan's UDP 8472 dropped on one host's underlay: down, the cause names the blocked port; back up when repaired", async () => {
  const [h1, , h3] = c.hosts as [H, H, H];
  const rule = ["INPUT", "-i", "eth0", "-p", "udp", "--dport", "8472", "-j", "DROP"];
  exec(h3.ns, ["iptables", "-w", "-I", ...rule]);
  try {
    const ms = await until(h1, h3, "down", (h) => h.state === "down" && /UDP 8472/.test(h.cause ?? ""));
    detected.push(`UDP 8472 dropped: ${Math.round(ms)} ms`);
    expect(await metric(h1, "weft_peer_up", h3)).toBe(0);
    expect(await metric(h1, "weft_peer_probe_failures_total", h3)).toBeGreaterThanOrEqual(3);
    expect(h1.log).toContain(`peer ${h3.subnet} (${h3.ip}) unreachable through the overlay`);
    const d = doctor(h1);
    expect(d.code).toBe(1);
    expect(d.problems.find((p) => p.id === "peers-unreachable")?.evidence.join("\n")).toContain(`${h3.subnet} (${h3.ip})`);
    expect(d.problems.find((p) => p.id === "peers-unreachable")?.evidence.join("\n")).toContain("UDP 8472");
    // Every host's view in h1's matrix: nobody reaches h3 (and h3, whose replies are dropped too, reaches nobody).
    const col = async () => { const m = (await c.status(h1)).health.matrix; const j = m.hosts.indexOf(h3.subnet); return m.rows.map((r: string) => r[j]).join(""); };
    await waitFor(async () => (await col()).replace("-", "") === "dd", 20_000, "h1's matrix: column h3 unreachable", 200);
  } finally {
    exec(h3.ns, ["iptables", "-w", "-D", ...rule]);
  }
  await until(h1, h3, "up again", (h) => h.state === "up");
  expect(await metric(h1, "weft_peer_up", h3)).toBe(1);
  expect(h1.log).toContain(`peer ${h3.subnet} (${h3.ip}) reachable again`);
  await doctorHealthy(h1);
}, 60_000);

test("a peer's route deleted by hand: the cause is the missing route; back up when it is put back", async () => {
  const [h1, h2] = c.hosts as [H, H];
  const via = h2.subnet.split("/")[0]!;
  ip(h1.ns, "route", "del", h2.subnet);
  try {
    const ms = await until(h1, h2, "down for want of a route", (h) => h.state === "down" && /no route to .* through the overlay/.test(h.cause ?? ""));
    detected.push(`route deleted: ${Math.round(ms)} ms`);
    const d = doctor(h1);
    expect(d.code).toBe(1);
    expect(d.problems.find((p) => p.id === "data-path-missing")?.evidence).toEqual([`route ${h2.subnet} via ${via} dev flannel.1 onlink`]);
  } finally {
    ip(h1.ns, "route", "replace", h2.subnet, "via", via, "dev", "flannel.1", "onlink");
  }
  await until(h1, h2, "up again", (h) => h.state === "up");
  await doctorHealthy(h1);
}, 60_000);

test("an MTU black hole (one host's underlay MTU lowered): small probes and pings pass, full-size ones fail; ok when repaired", async () => {
  const [h1, , h3] = c.hosts as [H, H, H];
  ip(h3.ns, "link", "set", "eth0", "mtu", "1400");
  try {
    const ms = await until(h1, h3, "MTU failed", (h) => h.mtuOk === false);
    detected.push(`MTU black hole: ${Math.round(ms)} ms`);
    const h = await health(h1, h3);
    expect(h.state).toBe("up"); // small probes still pass
    expect(await metric(h1, "weft_peer_mtu_ok", h3)).toBe(0);
    expect(h1.log).toContain(`full-size probes (1450 bytes, DF) to ${h3.subnet} are lost while small ones pass`);
    const r = await ping(h1.containers[0]!.ns, h3.containers[0]!.ip, { count: 3, intervalMs: 50 });
    expect(r.get(h3.containers[0]!.ip)?.received).toBe(3);
    const d = doctor(h1);
    expect(d.code).toBe(1);
    expect(d.problems.find((p) => p.id === "peers-mtu")?.evidence).toEqual([`${h3.subnet} (${h3.ip})`]);
  } finally {
    ip(h3.ns, "link", "set", "eth0", "mtu", "1500");
  }
  await until(h1, h3, "MTU ok again", (h) => h.mtuOk === true);
  await doctorHealthy(h1);
}, 60_000);

test("a peer's agent stopped (data path still up) is told from a host gone", async () => {
  const [h1, h2] = c.hosts as [H, H];
  await c.killAgent(h2); // SIGKILL: flannel.1, routes and the lease stay
  try {
    const ms = await until(h1, h2, "down, agent stopped", (h) => h.state === "down" && /answers ICMP through the overlay .* but no weft agent answers/.test(h.cause ?? ""));
    detected.push(`agent stopped: ${Math.round(ms)} ms`);
    expect(doctor(h1).problems.find((p) => p.id === "peers-unreachable")?.evidence.join("\n")).toContain("no weft agent answers");
  } finally {
    await c.startAgent(h2);
  }
  await until(h1, h2, "up again", (h) => h.state === "up");
  // The host gone: its underlay link down (the lease stays in etcd until it expires).
  ip(c.underlay, "link", "set", h2.name, "down");
  try {
    const ms = await until(h1, h2, "down, host gone", (h) => h.state === "down" && /(unreachable on the underlay|nothing answers on the underlay)/.test(h.cause ?? ""));
    detected.push(`host gone: ${Math.round(ms)} ms`);
  } finally {
    ip(c.underlay, "link", "set", h2.name, "up");
  }
  await until(h1, h2, "up again", (h) => h.state === "up", 30_000);
  await doctorHealthy(h1);
}, 90_000);

test("FORWARD policy DROP without forward rules: pods cannot cross, doctor names the chain (probes end at the host and pass)", async () => {
  const [h1, , h3] = c.hosts as [H, H, H];
  // From a healthy h3: the last test took h2's link down, and h3 may still be re-checking the
  // path MTU to it (a full-size probe every sixth), which doctor would report too.
  await doctorHealthy(h3);
  exec(h3.ns, ["iptables", "-w", "-P", "FORWARD", "DROP"]);
  try {
    const r = await ping(h1.containers[0]!.ns, h3.containers[0]!.ip, { count: 2, intervalMs: 50, timeoutMs: 500 });
    expect(r.get(h3.containers[0]!.ip)?.received).toBe(0);
    const d = doctor(h3);
    expect(d.code).toBe(1);
    expect(d.problems.map((p) => p.id)).toEqual(["forward"]);
    expect(d.problems[0]!.title).toContain("the FORWARD chain drops by default and no rule accepts the cluster network 10.244.0.0/16");
  } finally {
    exec(h3.ns, ["iptables", "-w", "-P", "FORWARD", "ACCEPT"]);
  }
  await doctorHealthy(h3);
}, 60_000);

test("a lease with a duplicate PublicIP: doctor names both leases; fine once the stale one is released", async () => {
  const [h1, h2] = c.hosts as [H, H];
  c.weft(["leases", "reserve", "10.244.250.0/24", h2.ip]);
  try {
    const d = doctor(h1);
    expect(d.code).toBe(1);
    expect(d.problems.find((p) => p.id === "duplicate-public-ip")?.evidence).toEqual([`${h2.ip}: ${[h2.subnet, "10.244.250.0/24"].sort((a, b) => Number(a.split(".")[2]) - Number(b.split(".")[2])) /* by address */.map((s) => s.replace("/", "-")).join(", ")}`]);
  } finally {
    c.weft(["leases", "release", "10.244.250.0/24"]);
  }
  await doctorHealthy(h1);
}, 60_000);
