/**
 * @module The namespace harness itself (tests/support/ns.ts, netns.ts): cleanupStale() removes only
 * what crashed runs left (owner pid dead) and never a live run's namespaces; the probes report
 * losses rather than hanging.
 */
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ping } from "../support/netns.ts";
import { addNetns, cleanupStale, delNetns, nsSh, sh, uniqueName } from "../support/ns.ts";

const made: string[] = [];
afterAll(() => {
  for (const ns of made) delNetns(ns);
});

function deadPid(): number {
  const r = spawnSync("true");
  return r.pid!;
}

test("cleanupStale() removes namespaces and temp dirs of dead owners only", () => {
  const dead = `wf-${deadPid().toString(36)}-zz${Math.random().toString(36).slice(2, 4)}`;
  const alive = `wf-${process.pid.toString(36)}-zz${Math.random().toString(36).slice(2, 4)}`;
  for (const ns of [`${dead}-h1`, `${alive}-h1`]) { sh(["ip", "netns", "add", ns]); made.push(ns); }
  const deadDir = join(tmpdir(), `${dead}-x`);
  mkdirSync(deadDir);
  try {
    // Another run's Cluster.create() may clean the dead one first: check the outcome, not who did it.
    const removed = cleanupStale();
    expect(removed).not.toContain(`${alive}-h1`);
    const left = sh(["ip", "netns", "list"]);
    expect(left).not.toContain(`${dead}-h1`);
    expect(left).toContain(`${alive}-h1`);
    expect(existsSync(deadDir)).toBe(false);
  } finally {
    rmSync(deadDir, { recursive: true, force: true });
  }
});

test("ping() counts replies and losses (loopback answers, an unrouted address does not)", async () => {
  const ns = addNetns(uniqueName("ping"));
  made.push(ns);
  const r = await ping(ns, ["127.0.0.1", "10.255.255.1"], { count: 2, intervalMs: 20, timeoutMs: 200 });
  expect(r.get("127.0.0.1")).toMatchObject({ sent: 2, received: 2 });
  expect(r.get("10.255.255.1")).toMatchObject({ sent: 2, received: 0 });
});

test("ping --stagger: the targets' echoes take turns across the interval, each round starting one later", () => {
  const ns = addNetns(uniqueName("ping"));
  made.push(ns);
  const probe = (stagger: boolean) => {
    const out = nsSh(ns, [process.execPath, join(import.meta.dir, "..", "support", "ns_probe.ts"), "ping", "--count", "6", "--interval", "40",
      ...(stagger ? ["--stagger"] : []), "127.0.0.1", "127.0.0.2"]);
    const sends = out.trim().split("\n").map((l) => JSON.parse(l) as { ip: string; rtt: number; t: number })
      .map((e) => ({ ip: e.ip, at: e.t - e.rtt })).sort((a, b) => a.at - b.at);
    const gaps = sends.slice(1).map((s, i) => s.at - sends[i]!.at).sort((a, b) => a - b);
    return { order: sends.map((s) => s.ip), medianGapMs: gaps[Math.floor(gaps.length / 2)]! };
  };
  const staggered = probe(true);
  // Rounds alternate which target leads, so neither always follows the other.
  const a = "127.0.0.1", b = "127.0.0.2";
  expect(staggered.order).toEqual([a, b, b, a, a, b, b, a, a, b, b, a]);
  expect(staggered.medianGapMs).toBeGreaterThan(10); // 20 ms apart, one target at a time
  expect(probe(false).medianGapMs).toBeLessThan(10); // both targets at each 40 ms tick
});
