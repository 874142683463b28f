/**
 * @module Runs every test suite with `bun test` (unit, integration against a real etcd, and the
 * network-namespace suites; tests that need another runtime spawn it themselves) and ends with
 * one line `N passed, N failed` for CI.
 *
 *   bun tools/test.ts [bun test args...]     e.g. `bun tools/test.ts tests/unit`
 */
import { spawn } from "node:child_process";

const args = process.argv.slice(2);
const child = spawn(process.execPath, ["test", "--timeout", "120000", ...(args.length ? args : ["tests/"])], {
  stdio: ["ignore", "inherit", "pipe"],
  env: { ...process.env, FORCE_COLOR: "0" },
});

// bun test writes its report, summary included, to stderr: pass it to stdout (so the closing
// line below comes last in one stream) and keep the tail.
let tail = "";
child.stderr.on("data", (chunk: Buffer) => {
  process.stdout.write(chunk);
  tail = (tail + chunk.toString()).slice(-4096);
});

const code: number = await new Promise((resolve) => child.on("close", (c) => resolve(c ?? 1)));
const count = (word: string) => Number(tail.match(new RegExp(`^\\s*(\\d+) ${word}$`, "m"))?.[1] ?? 0);
const passed = count("pass");
let failed = count("fail");
if (code !== 0 && failed === 0) failed = 1; // a crash or load error is a failure too
console.log(`${passed} passed, ${failed} failed`);
process.exit(failed > 0 || code !== 0 ? 1 : 0);
