/**
 * @module Runs a tool at the file-descriptor limit, for fd_limit.test.ts (started under `ulimit
 * -n 64`, by Bun or Deno): uses up every descriptor, runs `true` through runToolOk (which must
 * fail with a ToolError, not a TypeError), frees the descriptors and runs it again (the retry
 * works). Prints one JSON line.
 */
import { closeSync, openSync } from "node:fs";
import { runTool, runToolOk } from "../../src/traffic/tools.ts";

const fds: number[] = [];
try {
  for (;;) fds.push(openSync("/dev/null", "r"));
} catch { /* EMFILE: every descriptor is in use */ }
let atLimit: { name: string; message: string } | undefined;
try {
  await runToolOk(runTool, ["true"]);
} catch (e) {
  atLimit = { name: (e as Error).name, message: (e as Error).message };
}
for (const fd of fds) closeSync(fd);
const retry = await runTool(["true"]);
console.log(JSON.stringify({ atLimit, retry: retry.code }));
process.exit(0);
