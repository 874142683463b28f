/**
 * @module Test helper: scripts run inside throwaway network namespaces under Bun or Deno
 * (`ip netns exec <ns> bun|deno run --allow-all <script>`), for the ffi kernel tests. The
 * namespaces themselves come from tests/support/ns.ts (unique name, removed at exit if a test
 * does not).
 */
import { fileURLToPath } from "node:url";
import { addNetns, nsExecJson, uniqueName } from "../support/ns.ts";

// deleteNetns(ns) is delNetns: it removes a namespace made by createNetns and every device inside.
export { delNetns as deleteNetns, isRoot } from "../support/ns.ts";

export type Runtime = "bun" | "deno";

const DENO = fileURLToPath(new URL("../../node_modules/.bin/deno", import.meta.url));
const BUN = fileURLToPath(new URL("../../node_modules/.bin/bun", import.meta.url));

/** Creates a namespace named `uniqueName(area)` with loopback up and returns its name. */
export function createNetns(area: string): string {
  return addNetns(uniqueName(area));
}

/**
 * Runs `script` (relative to this folder) inside `ns` under `runtime` and returns the JSON
 * object it printed last; throws with its output when it fails.
 */
export function runInNetns(ns: string, runtime: Runtime, script: string, timeoutMs = 60_000): Record<string, any> {
  const path = fileURLToPath(new URL(script, import.meta.url));
  const cmd = runtime === "bun" ? [BUN, path] : [DENO, "run", "--allow-all", "--unstable-ffi", path];
  return nsExecJson(ns, cmd, { timeoutMs });
}
