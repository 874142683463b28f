/**
 * @module Runs the benches one after another (each `bench/*.ts` but this file, as its own
 * process: they create namespaces and must not overlap on a 2-core machine), passes their output
 * through, and ends with a summary of every `FIGURE` line and each bench's status and time.
 *
 *   bun bench/run.ts                 every bench
 *   bun bench/run.ts kernel_paths scale   only these (file names without .ts)
 */
import { spawn } from "node:child_process";
import { readdirSync } from "node:fs";
import { join } from "node:path";

const dir = import.meta.dir;
const wanted = process.argv.slice(2);
const all = readdirSync(dir).filter((f) => f.endsWith(".ts") && f !== "run.ts").map((f) => f.slice(0, -3)).sort();
const unknown = wanted.filter((w) => !all.includes(w));
if (unknown.length) {
  console.error(`bench/run.ts: no bench ${unknown.join(", ")}; benches: ${all.join(", ")}`);
  process.exit(2);
}
const names = wanted.length ? wanted : all;

const summary: string[] = [];
const figures: string[] = [];
let failed = 0;
for (const name of names) {
  console.log(`\n=== ${name} ===`);
  const started = performance.now();
  const child = spawn(process.execPath, [join(dir, `${name}.ts`)], { stdio: ["ignore", "pipe", "inherit"] });
  let rest = "";
  child.stdout.on("data", (d: Buffer) => {
    process.stdout.write(d);
    const lines = (rest + d).split("\n");
    rest = lines.pop()!;
    for (const l of lines) if (l.startsWith("FIGURE ")) figures.push(l.slice(7));
  });
  const code: number = await new Promise((r) => child.on("close", (c) => r(c ?? 1)));
  if (code !== 0) failed++;
  summary.push(`${name.padEnd(16)} ${code === 0 ? "ok    " : `exit ${code}`} ${((performance.now() - started) / 1000).toFixed(1)} s`);
}

console.log("\n=== summary ===");
for (const f of figures) console.log(f);
console.log("");
for (const s of summary) console.log(s);
process.exit(failed ? 1 : 0);
