/**
 * @module The status server under abuse, on a real agent process (the compiled dist/weft, then
 * under Deno) with the host-gw backend in a namespace and a real etcd in the same namespace:
 * while 2000 slowloris connections and a 1000 MB POST hit its status port (tests/faults/
 * status_attack.ts, its own process), a peer lease put in etcd is still programmed as a kernel
 * route, the POST is answered 405 long before its body is sent, the agent's RSS stays bounded,
 * and /readyz answers a fresh connection once the abusers go. Prints the figures it measured.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, ROOT, type Runtime, runWeft, waitFor } from "../support/agent.ts";
import { EtcdServer } from "../support/etcd.ts";
import { addNetns, delNetns, ip, isRoot, uniqueName } from "../support/ns.ts";

const CONNS = 2000, POST_MB = 1000, ATTACK_SECONDS = 8;
const PREFIX = "/abuse/network";

function rssMiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, "utf8"));
  return m ? Number(m[1]) / 1024 : 0;
}

describe.skipIf(!isRoot)("status server abuse against a real agent", () => {
  const ns = uniqueName("abuse");
  let etcd: EtcdServer;
  let dir = "";
  let leaseN = 0;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `${ns}-`));
    addNetns(ns);
    ip(ns, "link", "add", "d0", "type", "veth", "peer", "name", "d1");
    ip(ns, "addr", "add", "192.168.77.1/24", "dev", "d0");
    for (const dev of ["d0", "d1"]) ip(ns, "link", "set", dev, "up");
    etcd = await EtcdServer.start({ netns: ns });
    const r = await runWeft([`--etcd-endpoints=${etcd.localEndpoint}`, `--etcd-prefix=${PREFIX}`, "config", "set", "-"],
      { stdin: `{"Network":"10.77.0.0/16","Backend":{"Type":"host-gw"}}` });
    if (r.code !== 0) throw new Error(r.stderr);
  });

  afterAll(async () => {
    await etcd?.destroy();
    delNetns(ns);
    rmSync(dir, { recursive: true, force: true });
  });

  /** Puts a host-gw peer lease; resolves with the ms until its route is in the kernel. */
  async function programmedMs(): Promise<number> {
    const n = 100 + ++leaseN;
    const subnet = `10.77.${n}.0/24`;
    const t0 = performance.now();
    await etcd.client().put(`${PREFIX}/subnets/10.77.${n}.0-24`)
      .value(`{"PublicIP":"192.168.77.${n}","PublicIPv6":null,"BackendType":"host-gw"}`);
    await waitFor(() => ip(ns, "route", "show", subnet).includes(`via 192.168.77.${n}`), `the route to ${subnet}`, 30_000);
    return performance.now() - t0;
  }

  for (const runtime of ["binary", "deno"] as Runtime[]) {
    test(`${runtime}: 2000 idle connections and a 1000 MB POST leave the agent working and its memory bounded`, async () => {
      const agent = await AgentProcess.start({
        runtime, etcd: etcd.endpoint, subnetFile: join(dir, runtime, "subnet.env"), iface: "d0",
        wrap: ["ip", "netns", "exec", ns], extraArgs: [`--etcd-prefix=${PREFIX}`, "--iptables-forward-rules=false"],
      });
      try {
        // Ready: the status server answers inside the namespace.
        await waitFor(async () => {
          if (agent.exitCode !== null) throw new Error(`agent exited ${agent.exitCode}:\n${agent.log}`);
          return (await curlStatus(ns, agent.port, "/readyz")) === 200;
        }, "/readyz 200", 60_000);
        const quiet = await programmedMs();
        const rssBefore = rssMiB(agent.proc.pid!);

        const attacker = spawn("ip", ["netns", "exec", ns, process.execPath, join(ROOT, "tests", "faults", "status_attack.ts"),
          String(agent.port), String(CONNS), String(POST_MB), String(ATTACK_SECONDS)], { stdio: ["ignore", "pipe", "inherit"] });
        let out = "";
        attacker.stdout!.on("data", (d) => (out += d));
        const done = new Promise<void>((r) => attacker.on("exit", () => r()));
        await waitFor(() => out.includes("started"), "the attack to start", 20_000);
        let rssMax = rssBefore;
        const sampler = setInterval(() => { rssMax = Math.max(rssMax, rssMiB(agent.proc.pid!)); }, 100);
        await Bun.sleep(1000); // the slowloris connections hold every slot by now
        const underAttack = await programmedMs();
        await done;
        clearInterval(sampler);
        const seen = JSON.parse(out.trim().split("\n").at(-1)!) as {
          opened: number; closedAtOnce: number; closedLater: number; post: { status: string; sentMB: number }; readyz: number;
        };
        const rssAfter = rssMiB(agent.proc.pid!);
        console.log(`[status abuse, ${runtime}] lease programmed in ${quiet.toFixed(0)} ms quiet, ${underAttack.toFixed(0)} ms under attack; ` +
          `connections opened ${seen.opened}, closed at once ${seen.closedAtOnce}, closed at the header timeout ${seen.closedLater}; ` +
          `POST answered "${seen.post.status}" after ${seen.post.sentMB} of ${POST_MB} MB; /readyz after: ${seen.readyz}; ` +
          `RSS ${rssBefore.toFixed(0)} MiB before, ${rssMax.toFixed(0)} MiB max, ${rssAfter.toFixed(0)} MiB after`);

        expect(agent.exitCode).toBeNull();
        expect(seen.post.status).toBe("HTTP/1.1 405 Method Not Allowed");
        expect(seen.post.sentMB).toBeLessThan(POST_MB);
        expect(seen.closedAtOnce).toBeGreaterThan(CONNS / 2); // past the limit, closed at once
        expect(seen.closedLater).toBeGreaterThan(0); // the held ones, after the header timeout
        expect(seen.readyz).toBe(200);
        // Bounded: the 1000 MB body is never kept (main before the fix: 3 GB).
        expect(rssMax - rssBefore).toBeLessThan(150);
      } finally {
        await agent.stop("SIGKILL");
      }
    }, 120_000);
  }
});

/** The HTTP status of `path` from inside `ns`, or 0 when nothing answered. */
async function curlStatus(ns: string, port: number, path: string): Promise<number> {
  const p = spawn("ip", ["netns", "exec", ns, "curl", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}", `http://127.0.0.1:${port}${path}`]);
  let out = "";
  p.stdout.on("data", (d) => (out += d));
  await new Promise((r) => p.on("exit", r));
  return Number(out) || 0;
}
