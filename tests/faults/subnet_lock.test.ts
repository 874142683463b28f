/**
 * @module Two agents on one subnet file, as processes: the second (under Deno) exits 1 naming
 * the first's pid and command; after the first is killed with SIGKILL the lock is free at once
 * (no stale lock) and a new agent starts. No etcd is needed: the lock is taken before the agent
 * contacts it (the endpoint is a closed port, so the agents just keep retrying).
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AgentProcess, waitFor } from "../support/agent.ts";
import { freePort } from "../support/etcd.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-lock2-"));
const agents: AgentProcess[] = [];
afterAll(async () => {
  await Promise.all(agents.map((a) => a.stop("SIGKILL")));
  rmSync(dir, { recursive: true, force: true });
});

test("a second agent with the same subnet file exits 1 naming the first; after kill -9 of the first a new one starts", async () => {
  const subnetFile = join(dir, "subnet.env");
  const etcd = `http://127.0.0.1:${await freePort()}`; // nothing listens: agents wait for etcd
  const start = (runtime: "binary" | "deno") => {
    const a = AgentProcess.start({ etcd, subnetFile, runtime, extraArgs: ["--etcd-password=s3cret"] });
    return a.then((p) => (agents.push(p), p));
  };
  const first = await start("binary");
  await waitFor(() => first.log.includes("Status server listening"), "the first agent to start", 20_000);

  const second = await start("deno");
  expect(await second.exited).toBe(1);
  expect(second.log).toContain(`another agent is running with subnet file ${subnetFile}: pid ${first.proc.pid} (weft --etcd-endpoints=${etcd}`);
  expect(second.log).toContain("--etcd-password=***");
  expect(second.log).not.toContain("s3cret");
  expect(first.exitCode).toBeNull();

  await first.stop("SIGKILL");
  const third = await start("binary");
  await waitFor(() => third.log.includes("Status server listening") || third.exitCode !== null, "the third agent to start", 20_000);
  expect(third.exitCode).toBeNull();
  expect(third.log).not.toContain("another agent is running");
}, 60_000);
