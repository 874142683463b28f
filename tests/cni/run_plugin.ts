/**
 * @module Test entry point: runs `runCniPlugin` as a real CNI plugin process (env + stdin in,
 * result/error JSON out, exit code), so tests can install it as `flannel` in a CNI bin dir
 * (see `makeCniBinDir` in cni_exec.ts) until the compiled `dist/weft` takes its place.
 *
 *   CNI_COMMAND=ADD ... bun tests/cni/run_plugin.ts < netconf.json
 */
import { readFileSync } from "node:fs";
import { runCniPlugin } from "../../src/cni/plugin.ts";

const stdin = process.env.CNI_COMMAND === "VERSION" || !process.env.CNI_COMMAND ? "" : readFileSync(0, "utf8");
const r = await runCniPlugin(process.env, stdin);
if (r.stdout) process.stdout.write(r.stdout);
if (r.stderr) process.stderr.write(r.stderr);
process.exitCode = r.code;
