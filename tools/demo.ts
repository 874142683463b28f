/**
 * @module `npm run demo`: three hosts as network namespaces on one underlay bridge, a real etcd,
 * `dist/weft` on each host, two containers per host; prints the hosts, each agent's status page
 * (reachable from this machine through a forwarder on 127.0.0.1: nothing is added to the root
 * namespace) and a connectivity matrix (ICMP echo between every pair of containers), refreshed
 * until Ctrl-C, which removes every namespace, process and file it made.
 *
 *   bun tools/demo.ts [--backend vxlan|host-gw|wireguard] [--kube] [--keep] [--once]
 *     --kube   kube mode: no etcd; the test Kubernetes API server (tests/support/kube_api_server.ts)
 *              with one Node per host, agents run --kube-subnet-mgr; prints a kubeconfig for kubectl
 *     --keep   set everything up, print the hosts and status pages, wait for Ctrl-C (no matrix)
 *     --once   print the matrix once, clean up and exit (exit 1 if a pair cannot reach the other)
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { Cluster, type Container, ROOT, cleanupStale, ping } from "../tests/support/netns.ts";
import { forwardIntoNetns, type NetnsForward } from "./netns_forward.ts";

const args = process.argv.slice(2);
const backendArg = args.includes("--backend") ? args[args.indexOf("--backend") + 1] : "vxlan";
if (backendArg !== "vxlan" && backendArg !== "host-gw" && backendArg !== "wireguard") {
  console.error(`demo: --backend ${JSON.stringify(backendArg)} is not supported; use vxlan, host-gw or wireguard`);
  process.exit(2);
}
const backend = backendArg;
const keep = args.includes("--keep");
const kube = args.includes("--kube");
const once = args.includes("--once");
const tty = process.stdout.isTTY === true;
const paint = (code: string) => (s: string) => (tty ? `\x1b[${code}m${s}\x1b[0m` : s);
const bold = paint("1"), dim = paint("2"), green = paint("32"), red = paint("31"), cyan = paint("36");

if (process.getuid?.() !== 0) {
  console.error("demo: needs root (it creates network namespaces)");
  process.exit(1);
}
if (!existsSync(join(ROOT, "dist", "weft"))) {
  console.error("demo: dist/weft is missing; build it first (npm run demo does: bun tools/build.ts)");
  process.exit(1);
}

process.on("SIGINT", () => console.log(`\n${dim(`Ctrl-C: removing the demo's namespaces, agents and ${kube ? "API server" : "etcd"}…`)}`));
const stale = cleanupStale();
if (stale.length) console.log(dim(`removed ${stale.length} leftovers of earlier runs`));

console.log(`${bold("weft demo")}: 3 hosts, ${backend} backend, 2 containers per host${kube ? ", kube mode" : ""}`);
console.log(dim(`starting ${kube ? "the Kubernetes API server" : "etcd"} and the agents in network namespaces…`));
const started = Date.now();
const c = await Cluster.create({ hosts: 3, backend, containersPerHost: 2, kube });
const forwards: NetnsForward[] = [];
try {
  for (const [i, h] of c.hosts.entries()) {
    forwards.push(await forwardIntoNetns(h.ns, h.ip, 8471, 18081 + i).catch(() => forwardIntoNetns(h.ns, h.ip, 8471)));
  }
  const seconds = ((Date.now() - started) / 1000).toFixed(1);
  if (kube) {
    const kubeconfig = join(c.dir, "admin.kubeconfig");
    c.api.writeKubeconfig(kubeconfig);
    console.log(dim(`ready in ${seconds} s; Kubernetes API ${c.api.url} (agents: https://${Cluster.KUBE_API.host}:${Cluster.KUBE_API.port} in namespace ${c.underlay})`));
    console.log(dim(`  kubectl --kubeconfig ${kubeconfig} get nodes -o wide\n`));
  } else {
    console.log(dim(`ready in ${seconds} s; etcd ${c.etcd.endpoint} in namespace ${c.underlay}\n`));
  }

  const rows = [["host", "namespace", "underlay IP", "subnet", "containers", "status page"]];
  for (const [i, h] of c.hosts.entries()) {
    rows.push([h.name, h.ns, h.ip, h.subnet, h.containers.map((x) => x.ip).join(" "), `${forwards[i]!.url}/`]);
  }
  printRows(rows, (r, i) => (i === 0 ? bold(r) : r));
  console.log(dim(`\n  /status (JSON), /metrics, /healthz, /readyz on each; try: ip netns exec ${c.hosts[0]!.ns} ip route`));

  if (keep) {
    console.log(`\n${bold("running")}; Ctrl-C stops and removes everything`);
    await new Promise(() => {});
  }
  for (;;) {
    const ok = await matrix();
    if (once) {
      await teardown();
      process.exit(ok ? 0 : 1);
    }
    console.log(dim("\n  refreshing every 5 s; Ctrl-C stops and removes everything"));
    await Bun.sleep(5000);
    if (tty) process.stdout.write(`\x1b[${c.containers.length + 6}A\x1b[J`);
  }
} catch (e) {
  console.error(red(`demo failed: ${(e as Error).message}`));
  for (const h of c.hosts) if (h.log) console.error(dim(`--- ${h.name} agent log (tail) ---\n${h.log.split("\n").slice(-15).join("\n")}`));
  await teardown();
  process.exit(1);
}

async function teardown(): Promise<void> {
  for (const f of forwards) await f.close();
  await c.destroy();
}

/** Pings every container pair (3 echoes) and prints the matrix; true when every pair answered. */
async function matrix(): Promise<boolean> {
  const all = c.containers;
  const label = (x: Container) => `${x.host.name}/${x.ip.split(".").at(-1)}`;
  const results = await Promise.all(all.map((from) => ping(from.ns, all.filter((t) => t !== from).map((t) => t.ip), { count: 3, intervalMs: 20, timeoutMs: 500 })));
  let ok = true;
  const rows = [["from \\ to", ...all.map(label)]];
  for (const [i, from] of all.entries()) {
    rows.push([label(from), ...all.map((to) => {
      if (to === from) return "·";
      const r = results[i]!.get(to.ip)!;
      if (r.received === 0) { ok = false; return "✗"; }
      const best = Math.min(...r.rtts);
      return `✓ ${best.toFixed(2)}`;
    })]);
  }
  console.log(`\n${bold("connectivity")} ${dim("(ICMP echo, best of 3 round-trip times in ms; host/container)")}`);
  printRows(rows, (cell, i, col) => (i === 0 || col === 0 ? cyan(cell) : cell.startsWith("✓") ? green(cell) : cell === "✗" ? red(cell) : dim(cell)));
  const pairs = all.length * (all.length - 1);
  console.log(ok ? green(`  all ${pairs} pairs reach each other`) : red("  some pairs cannot reach each other"));
  return ok;
}

/** Prints aligned columns; `style(cell, row, col)` colours after padding. */
function printRows(rows: string[][], style: (cell: string, row: number, col: number) => string): void {
  const widths = rows[0]!.map((_, col) => Math.max(...rows.map((r) => r[col]!.length)));
  for (const [i, r] of rows.entries()) {
    console.log(`  ${r.map((cell, col) => style(col === 0 ? cell.padEnd(widths[col]!) : cell.padStart(widths[col]!), i, col)).join("  ")}`);
  }
}
