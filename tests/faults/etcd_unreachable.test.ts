/**
 * etcd unreachable: the agent (dist/weft) must exit on SIGTERM without waiting for the etcd calls
 * in flight (it took 12.2 s), and the admin commands must say in one line which endpoint failed
 * and how, within a bounded time. "Hung" is an etcd stopped with SIGSTOP: the kernel still
 * accepts connections, nothing answers — the worst case, a call waits for its full deadline.
 * "Down" is an endpoint where nothing listens: connections are refused. One etcd, continued
 * after each case. Exit times are printed; the bound asserted (3 s) is generous to stay non-flaky.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, runWeft, waitFor } from "../support/agent.ts";
import { EtcdServer, freePort } from "../support/etcd.ts";
import { EtcdRegistry } from "../../src/registry/etcd.ts";

let etcd: EtcdServer;
let dir: string;
const agents: AgentProcess[] = [];
const PREFIX = "/down/network";
const CONFIG = `{"Network":"10.9.0.0/16","Backend":{"Type":"alloc"}}`;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "weft-down-"));
  etcd = await EtcdServer.start();
  await etcd.client().put(`${PREFIX}/config`).value(CONFIG);
});

afterAll(async () => {
  resume();
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  await etcd?.destroy();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const hang = () => process.kill(etcd.pid!, "SIGSTOP");
const resume = () => { if (etcd?.pid) process.kill(etcd.pid, "SIGCONT"); };

async function agent(name: string, ip: string, env?: Record<string, string>): Promise<AgentProcess> {
  const a = await AgentProcess.start({ etcd: etcd.endpoint, subnetFile: join(dir, name, "subnet.env"), publicIP: ip, extraArgs: [`--etcd-prefix=${PREFIX}`], env });
  agents.push(a);
  return a;
}

/** SIGTERM, and the time until the process has exited, ms. */
async function timedStop(a: AgentProcess): Promise<number> {
  const t = performance.now();
  const code = await a.stop("SIGTERM");
  const ms = performance.now() - t;
  expect(code).toBe(0);
  return ms;
}

describe("etcd unreachable", () => {
  test("SIGTERM while the agent's first etcd read hangs: it exits at once", async () => {
    hang();
    try {
      const a = await agent("first-read", "127.0.9.1");
      // The status server is up before the config is read: from here the read is in flight.
      await waitFor(async () => (await a.get("/healthz"))?.status === 200, "/healthz");
      await Bun.sleep(300);
      const ms = await timedStop(a);
      console.log(`exit after SIGTERM, etcd hung during the first read: ${ms.toFixed(0)} ms`);
      expect(a.log).toContain("Exiting cleanly");
      expect(a.log).not.toMatch(/UNAVAILABLE|DEADLINE_EXCEEDED|circuit breaker/);
      expect(a.log).not.toMatch(/^[WE].*abandoned/m); // shutting down is not an etcd failure
      expect(ms).toBeLessThan(3000);
    } finally {
      resume();
    }
  }, 30_000);

  test("SIGTERM while a lease renewal hangs: it exits at once", async () => {
    // A 6 s lease is renewed every 2 s: with etcd hung, a renewal is in flight within 2 s.
    const a = await (await agent("renewal", "127.0.9.2", { WEFT_TEST_LEASE_TTL_SECONDS: "6" })).ready();
    await waitFor(() => a.log.includes("renewed lease"), "a first renewal");
    hang();
    try {
      await Bun.sleep(2500);
      const ms = await timedStop(a);
      console.log(`exit after SIGTERM, etcd hung during a renewal and the watch: ${ms.toFixed(0)} ms`);
      expect(a.log).not.toMatch(/^[WE].*abandoned/m);
      expect(ms).toBeLessThan(3000);
    } finally {
      resume();
    }
  }, 30_000);

  test("an endpoint that keeps failing rests, and the error still says why; the others serve meanwhile", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    const alone = new EtcdRegistry({ endpoints: [down], prefix: PREFIX });
    const both = new EtcdRegistry({ endpoints: [down, etcd.endpoint], prefix: PREFIX });
    try {
      // etcd3's circuit breaker opens after 3 failures: calls 4 to 6 are refused without trying.
      const errors: string[] = [];
      for (let i = 0; i < 6; i++) errors.push(await alone.getConfig().then(() => "answered", (e: Error) => e.message));
      expect(new Set(errors)).toEqual(new Set([
        `etcd at ${down} is unreachable: connection refused (is etcd running there, on that port? check --etcd-endpoints)`,
      ]));
      for (let i = 0; i < 10; i++) expect(await both.getConfig()).toBe(CONFIG);
    } finally {
      await alone.close();
      await both.close();
    }
  });

  test("admin commands: one line naming the endpoint and the cause, exit 1", async () => {
    const down = `http://127.0.0.1:${await freePort()}`;
    hang();
    try {
      const t = performance.now();
      const [list, get, hungGet] = await Promise.all([
        runWeft([`--etcd-endpoints=${down}`, "leases", "list"]),
        runWeft([`--etcd-endpoints=${down}`, "config", "get"]),
        runWeft([`--etcd-endpoints=${etcd.endpoint}`, `--etcd-prefix=${PREFIX}`, "config", "get"]),
      ]);
      console.log(`admin commands against a down and a hung etcd, together: ${(performance.now() - t).toFixed(0)} ms`);
      const refused = `etcd at ${down} is unreachable: connection refused (is etcd running there, on that port? check --etcd-endpoints)\n`;
      expect({ code: list.code, stderr: list.stderr }).toEqual({ code: 1, stderr: refused });
      expect({ code: get.code, stderr: get.stderr }).toEqual({ code: 1, stderr: refused });
      expect({ code: hungGet.code, stderr: hungGet.stderr }).toEqual({
        code: 1,
        stderr: `etcd at ${etcd.endpoint} did not answer reading ${PREFIX}/config within 5 s ` +
          "(etcd stopped or overloaded, a firewall dropping packets, or a partition; check --etcd-endpoints)\n",
      });
    } finally {
      resume();
    }
  }, 60_000);
});
