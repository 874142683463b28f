/**
 * @module Test helper: throwaway network namespaces and scripts run inside them under Bun or
 * Deno (`ip netns exec <ns> bun|deno run --allow-all <script>`), for the ffi kernel tests.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";

export type Runtime = "bun" | "deno";

const DENO = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));
const BUN = fileURLToPath(new URL("../../node_modules/.bin/bun", import.meta.url));

/** Whether this process may create namespaces (the kernel tests skip otherwise). */
export const isRoot = process.getuid?.() === 0;

/** Creates `weft-<area>-<pid>-<random>` with loopback up and returns its name. */
export function createNetns(area: string): string {
  const ns = `weft-${area}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
  execFileSync("ip", ["netns", "add", ns]);
  execFileSync("ip", ["-n", ns, "link", "set", "lo", "up"]);
  return ns;
}

/** Deletes a namespace made by createNetns (and with it every device inside). */
export function deleteNetns(ns: string): void {
  spawnSync("ip", ["netns", "delete", ns]);
}

/**
 * Runs `script` inside `ns` under `runtime` and returns the JSON object it printed last; throws
 * with its output when it fails.
 */
export function runInNetns(ns: string, runtime: Runtime, script: string, timeoutMs = 60_000): Record<string, any> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const cmd = runtime === "bun" ? [BUN, path] : [DENO, "run", "--allow-all", "--unstable-ffi", path];
  const r = spawnSync("ip", ["netns", "exec", ns, ...cmd], { encoding: "utf8", timeout: timeoutMs });
  if (r.status !== 0) {
    throw new Error(`${runtime} ${script} in ${ns} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
  }
  const last = r.stdout.trim().split("\n").at(-1) ?? "";
  return JSON.parse(last);
}
