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
import { addNetns, cleanupStale, delNetns, sh, uniqueName } from "../support/ns.ts";

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
