/**
 * @module GET / as Deno serves it (`deno eval` over the status app), for tests that check the
 * page Deno builds: its script is Deno's transpilation of client.ts, not Bun's. Cached per run.
 */
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
let cached: { headers: Record<string, string>; html: string } | undefined;

/** The dashboard's response headers and HTML under Deno. */
export function denoDashboardPage(): { headers: Record<string, string>; html: string } {
  if (cached) return cached;
  const script = `import { createStatusApp } from "./src/status/app.ts";
    const r = await createStatusApp({ ready: false, peers: new Map(), metrics: { render: () => "" } }).request("/");
    console.log(JSON.stringify({ headers: Object.fromEntries(r.headers), html: await r.text() }));`;
  const run = spawnSync(join(ROOT, "node_modules", ".bin", "deno"), ["eval", script], { cwd: ROOT, encoding: "utf8" });
  if (run.status !== 0) throw new Error(`deno eval of the status app exited ${run.status}: ${run.stderr}`);
  cached = JSON.parse(run.stdout) as { headers: Record<string, string>; html: string };
  return cached;
}
