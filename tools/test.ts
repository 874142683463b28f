/**
 * @module Runs every test suite with `bun test` (unit, integration against a real etcd, and the
 * network-namespace suites; tests that need another runtime spawn it themselves) and ends with
 * one line `N passed, N failed` for CI.
 *
 *   bun tools/test.ts [bun test args...]     e.g. `bun tools/test.ts tests/unit`
 *
 * The whole suite (no arguments) runs as two `bun test` processes side by side, the test files
 * dealt out by their measured run time: most of the time is spent waiting on real processes
 * (etcd, agents, the kernel), so two shards take about half the wall time on two cores. Every
 * test makes its own namespaces, ports and temp dirs, so the shards cannot interfere.
 * `WEFT_TEST_SHARDS=1` runs one process. The files in SOLO run after the shards, alone: they keep
 * both cores busy with encryption (a 100 MiB transfer, iperf-like bursts) and, run beside the
 * fault suites, starved their timing (a watch to move in seconds, a probe answered in 200 ms).
 */
import { spawn } from "node:child_process";
import { readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";

const root = join(import.meta.dir, "..");
const args = process.argv.slice(2);

/** Seconds each slow file took in a run of the whole suite (others count as 2). */
const SECONDS: Record<string, number> = {
  "tests/integration/control_plane.test.ts": 150, "tests/faults/etcd_cluster.test.ts": 95,
  "tests/multihost/vxlan.test.ts": 55, "tests/multihost/host_gw.test.ts": 55, "tests/udp/udp_cluster.test.ts": 50,
  "tests/multihost/health.test.ts": 70, "tests/kube/cluster_vxlan.test.ts": 35, "tests/faults/hostile_leases.test.ts": 40,
  "tests/dashboard/browser.test.ts": 30, "tests/multihost/health_backends.test.ts": 30, "tests/faults/etcd_silent.test.ts": 26,
  "tests/multihost/ipv6.test.ts": 25, "tests/faults/status_abuse.test.ts": 20, "tests/multihost/vxlan_deno.test.ts": 20,
  "tests/core/fuzz.test.ts": 14, "tests/kube/cluster_hostgw.test.ts": 14, "tests/udp/udp_dual_stack.test.ts": 14,
  "tests/faults/etcd_unreachable.test.ts": 12, "tests/dashboard/mesh.test.ts": 12, "tests/core/ipv6.test.ts": 10,
  "tests/multihost/extension.test.ts": 10, "tests/backend/vxlan_kernel.test.ts": 9, "tests/udp/udp_sender.test.ts": 9,
  "tests/wireguard/backend_interop.test.ts": 40, "tests/wireguard/backend_cluster.test.ts": 30,
  "tests/wireguard/wireguard_go_support.test.ts": 25, "tests/wireguard/handshake_interop.test.ts": 10,
};

/** Files that saturate the CPUs: run after the shards, by themselves. */
const SOLO = new Set(["tests/wireguard/backend_interop.test.ts", "tests/wireguard/backend_cluster.test.ts"]);

function testFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) return testFiles(p);
    return name.endsWith(".test.ts") ? [relative(root, p)] : [];
  });
}

/** The files dealt into `n` shards, longest first, each to the shard with the least so far. */
function shards(files: string[], n: number): string[][] {
  const out = Array.from({ length: n }, () => ({ files: [] as string[], seconds: 0 }));
  for (const f of [...files].sort((a, b) => (SECONDS[b] ?? 2) - (SECONDS[a] ?? 2) || a.localeCompare(b))) {
    const s = out.reduce((m, x) => (x.seconds < m.seconds ? x : m));
    s.files.push(f);
    s.seconds += SECONDS[f] ?? 2;
  }
  return out.map((s) => s.files.sort()).filter((s) => s.length > 0);
}

/** Runs one `bun test` over `targets`; its report goes to stdout, prefixed when there are several. */
function runBunTest(targets: string[], prefix: string): Promise<{ code: number; passed: number; failed: number }> {
  const child = spawn(process.execPath, ["test", "--timeout", "120000", ...targets], {
    cwd: root, stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, FORCE_COLOR: "0" },
  });
  // bun test writes its report, summary included, to stderr: pass it to stdout (so the closing
  // line comes last in one stream), a line at a time, and keep the tail.
  let tail = "";
  let partial = "";
  const take = (chunk: Buffer) => {
    const text = partial + chunk.toString();
    const lines = text.split("\n");
    partial = lines.pop()!;
    for (const l of lines) process.stdout.write(`${prefix}${l}\n`);
    tail = (tail + chunk.toString()).slice(-4096);
  };
  child.stdout.on("data", take);
  child.stderr.on("data", take);
  return new Promise((resolve) => child.on("close", (c) => {
    if (partial) process.stdout.write(`${prefix}${partial}\n`);
    const count = (word: string) => Number(tail.match(new RegExp(`^\\s*(\\d+) ${word}$`, "m"))?.[1] ?? 0);
    const code = c ?? 1;
    let failed = count("fail");
    if (code !== 0 && failed === 0) failed = 1; // a crash or load error is a failure too
    resolve({ code, passed: count("pass"), failed });
  }));
}

const n = args.length ? 1 : Math.max(1, Number(process.env.WEFT_TEST_SHARDS ?? 2) || 1);
const all = args.length ? [] : testFiles(join(root, "tests"));
const solo = n > 1 ? all.filter((f) => SOLO.has(f)) : [];
const groups = args.length ? [args] : shards(all.filter((f) => !solo.includes(f)), n);
const results = await Promise.all(groups.map((g, i) => runBunTest(g, groups.length > 1 ? `[${i + 1}] ` : "")));
if (solo.length > 0) results.push(await runBunTest(solo, "[solo] "));
const passed = results.reduce((s, r) => s + r.passed, 0);
const failed = results.reduce((s, r) => s + r.failed, 0);
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || results.some((r) => r.code !== 0) ? 1 : 0);
