/**
 * @module Kube-mode figures (issue #14): the agent's memory idle with 3 peers in kube mode and in
 * etcd mode (same run, same machine), in kube mode with 1000 Nodes, and the time from a Node's
 * annotation patch to its route on a peer (median and p99 of 50). Prints figures, asserts nothing.
 *
 *   bun bench/kube.ts [--runtime binary|bun|deno] [--nodes 1000] [--patches 50] [--client-node DIR]
 *                     [--runs 3] [--idle 20] [--only rss] [--modes kube,etcd] [--exe PATH]
 *
 * Setup (tests/support/netns.ts): 4 hosts as network namespaces, vxlan, agents as `dist/weft`;
 * kube mode against the test API server (tests/support/kube_api_server.ts, in this process,
 * reached on the underlay), etcd mode against a real etcd. RSS is VmRSS of /proc/PID/status of
 * one agent (the first host's), idle. "Patch → route": the bench patches the
 * flannel annotations onto a Node that has a podCIDR but no agent (as an agent's first patch
 * does) and times from the patch's commit in the API server to the route's netlink event on a
 * peer (tests/support/netlink_watch.ts). 1000 Nodes: one host-gw host (kernel routes, no
 * neighbours), Nodes created in one burst with their annotations.
 *
 * RSS is measured `--runs N` times (default 3: a fresh cluster each time, the median reported)
 * `--idle S` seconds (default 20) after every host routes its 3 peers, and split as
 * /proc/PID/status splits it: RssFile (pages of the executable and other mapped files, shared
 * through the page cache with every process mapping the same file) and RssAnon (this process's
 * heap, JIT code, stacks). `--only rss` measures just that (in the `--modes` given), `--exe PATH` runs
 * the agents from another executable than dist/weft (to compare builds). The floor under the
 * figures (also with `--only floor`): two executables built as dist/weft is (`bun build
 * --compile`, the same JIT policy as tools/build.ts), idle as long: `setInterval(() => {}, 1e9)`
 * alone, and one that uses only the runtime features kube mode uses and none of weft's code
 * (node:fs, an HTTPS fetch with a private CA listing Nodes and holding a watch open, a node:net
 * listener, a node:dgram socket, bun:ffi, a child process).
 *
 * `--client-node DIR`: also measure a process that imports `@kubernetes/client-node` from DIR's
 * node_modules (not a dependency of weft) and lists + watches Nodes, against one doing the same
 * with weft's client (src/kube/client.ts); each process's VmRSS after 2 s.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Cluster, type Host, type Runtime, rssKiB, startNetlinkWatch, waitFor, wallMs } from "../tests/support/netns.ts";
import { KubeApiServer } from "../tests/support/kube_api_server.ts";
import { figure, fmt, median, percentile, printTable } from "./lib/figures.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1]! : dflt; };
const runtime = opt("--runtime", "binary") as Runtime;
const NODES = Number(opt("--nodes", "1000"));
const PATCHES = Number(opt("--patches", "50"));
const clientNodeDir = opt("--client-node", "");
const RUNS = Number(opt("--runs", "3"));
const IDLE_S = Number(opt("--idle", "20"));
const only = opt("--only", "");
const exe = opt("--exe", "");
const modes = opt("--modes", "kube,etcd").split(",");
const P = "flannel.alpha.coreos.com/";
/** As tools/build.ts builds dist/weft (its JIT_POLICY). */
const JIT_POLICY = 100;
// The agents run `sh -c 'exec EXE "$@"'` in place of dist/weft: the same pid (sh execs), another build.
const agentWrap = exe ? ["sh", "-c", `shift; exec ${JSON.stringify(exe)} "$@"`, "sh"] : undefined;

/** Of /proc/PID/status, KiB: VmRSS and its parts RssAnon, RssFile, RssShmem. */
function rssStatus(pid: number): { rss: number; anon: number; file: number; shmem: number } {
  const t = readFileSync(`/proc/${pid}/status`, "utf8");
  const kib = (k: string) => {
    const m = new RegExp(`^${k}:\\s+(\\d+) kB`, "m").exec(t);
    if (!m) throw new Error(`no ${k} in /proc/${pid}/status`);
    return Number(m[1]);
  };
  return { rss: kib("VmRSS"), anon: kib("RssAnon"), file: kib("RssFile"), shmem: kib("RssShmem") };
}

/** The first host's agent's RSS, `IDLE_S` s after every host routes its 3 peers. */
async function idleRss(c: Cluster): Promise<ReturnType<typeof rssStatus>> {
  await waitFor(() => c.hosts.every((h) => c.peerRoutes(h).length === 3), 20_000, "3 peer routes on every host");
  await Bun.sleep(IDLE_S * 1000);
  return rssStatus(c.hosts[0]!.agent!.pid!);
}

const rows: string[][] = [["figure", "value"]];
const MiB = (kib: number) => `${fmt(kib / 1024)} MiB`;

/**
 * Idle RSS in `mode`, median of `RUNS` fresh clusters (each part's median on its own); `during`
 * runs on the first cluster after its measurement (the patch → route figures).
 */
async function rssFigures(mode: "kube" | "etcd", during?: (c: Cluster) => Promise<void>): Promise<void> {
  const samples: ReturnType<typeof rssStatus>[] = [];
  for (let i = 0; i < RUNS; i++) {
    const c = await Cluster.create({ hosts: 4, backend: "vxlan", runtime, containersPerHost: 0, kube: mode === "kube", agentWrap });
    try {
      samples.push(await idleRss(c));
      if (i === 0 && during) await during(c);
    } finally {
      await c.destroy();
    }
  }
  const med = (k: keyof ReturnType<typeof rssStatus>) => median(samples.map((s) => s[k]));
  rows.push([`agent RSS, ${mode} mode, idle ${IDLE_S} s, 3 peers (${runtime}${exe ? ` ${exe}` : ""}), median of ${RUNS}`, MiB(med("rss"))]);
  rows.push(["  of which RssFile (the executable's pages) / RssAnon (heap, JIT)", `${MiB(med("file"))} / ${MiB(med("anon"))}`]);
  rows.push(["  VmRSS of each run", samples.map((s) => fmt(s.rss / 1024)).join(", ") + " MiB"]);
  figure("kube", `rss_idle_3_peers_${mode}`, med("rss") / 1024, "MiB");
  figure("kube", `rss_file_idle_3_peers_${mode}`, med("file") / 1024, "MiB");
  figure("kube", `rss_anon_idle_3_peers_${mode}`, med("anon") / 1024, "MiB");
}

// 1. kube mode: idle RSS with 3 peers, then (first cluster) patch → route latency on a peer.
if (modes.includes("kube") && only !== "floor") await rssFigures("kube", only === "rss" ? undefined : async (c) => {
  const latencies = await patchToRoute(c, c.hosts[0]!);
  rows.push([`Node annotation patch -> route on a peer, median of ${latencies.length}`, `${fmt(median(latencies))} ms`]);
  rows.push([`Node annotation patch -> route on a peer, p99 of ${latencies.length}`, `${fmt(percentile(latencies, 99))} ms`]);
  figure("kube", "patch_to_route_median", median(latencies), "ms");
  figure("kube", "patch_to_route_p99", percentile(latencies, 99), "ms");
});

// 2. etcd mode, same shape, same run.
if (modes.includes("etcd") && only !== "floor") await rssFigures("etcd");

// 2b. The floor under those figures: Bun itself, and Bun using what kube mode uses (no weft code).
if (only === "rss" || only === "floor") await floors();

// 3. kube mode with 1000 Nodes (host-gw: one kernel route each).
if (only === "") {
  const big = await Cluster.create({ hosts: 1, backend: "host-gw", network: "10.0.0.0/8", subnetLen: 24, runtime, containersPerHost: 0, kube: true, agentWrap });
  try {
    const h = big.hosts[0]!;
    const started = wallMs();
    for (let i = 0; i < NODES; i++) {
      big.api.addNode(`n${i}`, { podCIDRs: [`10.${100 + (i >> 8)}.${i & 255}.0/24`], annotations: managed(`192.168.77.${100 + (i % 100)}`, "host-gw") });
    }
    await waitFor(() => big.peerRoutes(h).length >= NODES, 60_000, `${NODES} routes`, 50);
    const allMs = wallMs() - started;
    await Bun.sleep(3000);
    const rssBig = rssKiB(h.agent!.pid!);
    rows.push([`agent RSS, kube mode, ${NODES} Nodes, host-gw`, `${fmt(rssBig / 1024)} MiB`]);
    rows.push([`${NODES} Nodes created -> all routed`, `${fmt(allMs)} ms`]);
    figure("kube", "rss_1000_nodes", rssBig / 1024, "MiB");
  } finally {
    await big.destroy();
  }
}

// 4. The client choice: @kubernetes/client-node against weft's client (optional).
if (clientNodeDir && only === "") {
  const [ours, official] = await clientRss(clientNodeDir);
  rows.push(["a process that lists + watches Nodes: weft's client (src/kube)", `${fmt(ours / 1024)} MiB`]);
  rows.push(["the same with @kubernetes/client-node", `${fmt(official / 1024)} MiB`]);
  figure("kube", "client_rss_weft", ours / 1024, "MiB");
  figure("kube", "client_rss_client_node", official / 1024, "MiB");
}

console.log(`kube mode, vxlan, 4 hosts, agents ${runtime}`);
printTable(rows);

function managed(publicIP: string, type: string, mac = "0a:58:00:00:00:01"): Record<string, string> {
  return {
    [`${P}kube-subnet-manager`]: "true", [`${P}backend-type`]: type, [`${P}public-ip`]: publicIP,
    [`${P}backend-data`]: type === "vxlan" ? `{"VNI":1,"VtepMAC":"${mac}"}` : "null",
  };
}

/** Patches flannel's annotations onto `PATCHES` fresh Nodes in turn; ms from commit to route on `peer`. */
async function patchToRoute(c: Cluster, peer: Host): Promise<number[]> {
  const watch = await startNetlinkWatch(peer.ns);
  const out: number[] = [];
  try {
    for (let i = 0; i < PATCHES; i++) {
      const name = `bench${i}`;
      const cidr = `10.244.${150 + i}.0/24`;
      c.api.addNode(name, { podCIDRs: [cidr] });
      await Bun.sleep(20);
      let committed = 0;
      const unsubscribe = c.api.store.subscribe((e) => {
        if (!committed && e.type === "MODIFIED" && (e.object.metadata as { name: string }).name === name) committed = wallMs();
      });
      const mac = `0a:58:0a:f4:${(150 + i).toString(16).padStart(2, "0")}:01`;
      c.api.patchNode(name, { metadata: { annotations: managed(`192.168.77.${150 + i}`, "vxlan", mac) } }, { subresource: "status" });
      unsubscribe();
      const routed = await watch.until((e) => e.k === "route" && e.a === "new" && e.dst === cidr, 5000);
      out.push(routed.t - committed);
      c.api.deleteNode(name);
    }
  } finally {
    await watch.stop();
  }
  return out;
}

/** VmRSS (KiB) of two processes listing + watching Nodes: weft's client, then client-node. */
async function clientRss(dir: string): Promise<[number, number]> {
  const api = await KubeApiServer.start({ nodes: ["h1", "h2", "h3"] });
  const tmp = mkdtempSync(join(tmpdir(), "weft-client-rss-"));
  try {
    const kubeconfig = join(tmp, "kubeconfig");
    api.writeKubeconfig(kubeconfig);
    // client-node under Bun ignores the kubeconfig's TLS settings (its fetch drops the
    // https.Agent: SELF_SIGNED_CERT_IN_CHAIN even with insecure-skip-tls-verify), so its probe
    // runs with NODE_TLS_REJECT_UNAUTHORIZED=0: it cannot talk to a private CA under Bun at all.
    const insecure = join(tmp, "kubeconfig-insecure");
    writeFileSync(insecure, JSON.stringify({
      apiVersion: "v1", kind: "Config", "current-context": "c",
      clusters: [{ name: "k", cluster: { server: api.url, "insecure-skip-tls-verify": true } }],
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }], users: [{ name: "u", user: { token: api.adminToken } }],
    }));
    const rssLine = "console.log(/VmRSS:\\s+(\\d+)/.exec(require('fs').readFileSync('/proc/self/status','utf8'))[1]);";
    const oursScript = join(tmp, "ours.ts");
    writeFileSync(oursScript, `
      import { KubeClient } from ${JSON.stringify(join(import.meta.dir, "..", "src", "kube", "client.ts"))};
      import { resolveKubeClientConfig } from ${JSON.stringify(join(import.meta.dir, "..", "src", "kube", "kubeconfig.ts"))};
      const c = new KubeClient(resolveKubeClientConfig({ apiUrl: "", kubeconfigFile: ${JSON.stringify(kubeconfig)}, env: {} }));
      const list = await c.listNodes();
      const ac = new AbortController();
      c.watchNodes({ resourceVersion: list.metadata.resourceVersion }, async () => {}, ac.signal).catch(() => {});
      await Bun.sleep(2000); Bun.gc(true); ${rssLine} process.exit(0);`);
    const theirsScript = join(dir, "weft_rss_probe.ts");
    writeFileSync(theirsScript, `
      const k8s = await import("@kubernetes/client-node");
      const kc = new k8s.KubeConfig(); kc.loadFromFile(${JSON.stringify(insecure)});
      const api = kc.makeApiClient(k8s.CoreV1Api);
      const list = await api.listNode();
      const w = new k8s.Watch(kc);
      await w.watch("/api/v1/nodes", { resourceVersion: list.metadata?.resourceVersion }, () => {}, () => {});
      await Bun.sleep(2000); Bun.gc(true); ${rssLine} process.exit(0);`);
    const run = (script: string, cwd: string, env: Record<string, string> = {}) => new Promise<number>((resolve, reject) => {
      const p = spawn(process.execPath, [script], { cwd, stdio: ["ignore", "pipe", "inherit"], env: { ...process.env, ...env } });
      let out = "";
      p.stdout!.on("data", (d) => (out += d));
      p.on("close", (code) => (code === 0 ? resolve(Number(out.trim().split("\n").at(-1))) : reject(new Error(`${script} exited ${code}`))));
    });
    const ours = await run(oursScript, tmp);
    const theirs = await run(theirsScript, dir, { NODE_TLS_REJECT_UNAUTHORIZED: "0" });
    rmSync(theirsScript, { force: true });
    return [ours, theirs];
  } finally {
    await api.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}

/** RSS of the floor executables (see the module comment), median of `RUNS`, into `rows`. */
async function floors(): Promise<void> {
  const tmp = mkdtempSync(join(tmpdir(), "weft-rss-floor-"));
  const api = await KubeApiServer.start({ nodes: ["h1", "h2", "h3"] });
  try {
    const programs: [string, string][] = [
      ["Bun alone: setInterval(() => {}, 1e9)", "setInterval(() => {}, 1e9);"],
      ["Bun using kube mode's runtime features, no weft code", `
        import { readFileSync } from "node:fs";
        import { createServer } from "node:net";
        import { createSocket } from "node:dgram";
        import { spawnSync } from "node:child_process";
        import { dlopen, FFIType } from "bun:ffi";
        readFileSync("/proc/self/status", "utf8");
        createServer(() => {}).listen(0, "127.0.0.1");
        createSocket("udp4").on("message", () => {}).bind(0, "127.0.0.1");
        dlopen("libc.so.6", { getpid: { args: [], returns: FFIType.i32 } }).symbols.getpid();
        spawnSync("true");
        const init = { headers: { authorization: "Bearer " + process.env.TOKEN }, tls: { ca: process.env.CA } } as RequestInit;
        await (await fetch(process.env.URL + "/api/v1/nodes", init)).text();
        const watch = await fetch(process.env.URL + "/api/v1/nodes?watch=1", init);
        (async () => { for await (const _ of watch.body!) {} })();
        setInterval(() => {}, 1e9);`],
    ];
    for (const [i, [label, source]] of programs.entries()) {
      const src = join(tmp, `floor${i}.ts`);
      writeFileSync(src, source);
      const out = join(tmp, `floor${i}`);
      const built = await Bun.build({ entrypoints: [src], compile: { outfile: out, jitPolicy: JIT_POLICY } } as Parameters<typeof Bun.build>[0]);
      if (!built.success) throw new Error(`bench: building ${src} failed: ${built.logs.join("\n")}`);
      const samples: ReturnType<typeof rssStatus>[] = [];
      for (let r = 0; r < RUNS; r++) {
        const p = spawn(out, [], { stdio: "ignore", env: { ...process.env, URL: api.url, TOKEN: api.adminToken, CA: api.caCert } });
        try {
          await Bun.sleep(IDLE_S * 1000);
          if (p.exitCode !== null) throw new Error(`bench: ${out} exited ${p.exitCode}`);
          samples.push(rssStatus(p.pid!));
        } finally {
          p.kill("SIGKILL");
        }
      }
      const med = (k: keyof ReturnType<typeof rssStatus>) => median(samples.map((s) => s[k]));
      rows.push([`floor: ${label}, idle ${IDLE_S} s, median of ${RUNS}`, MiB(med("rss"))]);
      rows.push(["  of which RssFile / RssAnon", `${MiB(med("file"))} / ${MiB(med("anon"))}`]);
      figure("kube", `rss_floor_${i === 0 ? "bun" : "bun_kube_features"}`, med("rss") / 1024, "MiB");
    }
  } finally {
    await api.stop();
    rmSync(tmp, { recursive: true, force: true });
  }
}
