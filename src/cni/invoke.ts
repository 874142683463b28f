/**
 * @module Running a delegate CNI plugin the way libcni's `invoke.Delegate*` does: find the
 * binary by name in `CNI_PATH`, run it with the caller's environment and `CNI_COMMAND`
 * replaced, the config on stdin; retry while the binary is being written ("text file busy");
 * a non-zero exit yields the plugin's own error JSON (code, msg, details) unchanged, so the
 * runtime sees the delegate's diagnosis.
 */
import { spawn } from "node:child_process";
import { statSync } from "node:fs";
import { join } from "node:path";
import { CniCode, CniError } from "./errors.ts";
import { decodeJsonObject, isJsonObject, type JsonObject } from "./netconf.ts";

export type Env = Record<string, string | undefined>;

/** What a plugin printed and how it exited. */
export interface PluginRun {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * libcni `FindInPath`: the first regular file named `plugin` in the `:`-separated `cniPath`.
 * Throws (code 999) naming the plugin and the directories searched.
 */
export function findPlugin(plugin: string, cniPath: string): string {
  if (plugin === "") throw new CniError(CniCode.internal, "no plugin name provided");
  if (plugin.includes("/")) throw new CniError(CniCode.internal, `invalid plugin name: ${plugin}`);
  const dirs = cniPath === "" ? [] : cniPath.split(":");
  if (dirs.length === 0) throw new CniError(CniCode.internal, "no paths provided");
  for (const dir of dirs) {
    const full = join(dir, plugin);
    try {
      if (statSync(full).isFile()) return full;
    } catch { /* not here: next directory */ }
  }
  throw new CniError(CniCode.internal, `failed to find plugin "${plugin}" in path [${dirs.join(" ")}]`);
}

function runOnce(path: string, env: Env, stdin: string): Promise<PluginRun> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, [], { env: env as NodeJS.ProcessEnv, stdio: ["pipe", "pipe", "pipe"] });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on("data", (b: Buffer) => out.push(b));
    child.stderr.on("data", (b: Buffer) => err.push(b));
    child.on("error", reject);
    child.stdin.on("error", () => { /* the plugin may exit without reading stdin */ });
    child.on("close", (code, signal) => resolve({
      code: code ?? (signal ? 128 : 1),
      stdout: Buffer.concat(out).toString("utf8"),
      stderr: Buffer.concat(err).toString("utf8"),
    }));
    child.stdin.end(stdin);
  });
}

/**
 * Runs the plugin at `path` with `stdin`, retrying up to 5 times, one second apart, while the
 * kernel says "text file busy" (the binary is being replaced, as during a DaemonSet install).
 */
export async function execPlugin(path: string, env: Env, stdin: string): Promise<PluginRun> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await runOnce(path, env, stdin);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === "ETXTBSY" && attempt < 5) {
        await new Promise((r) => setTimeout(r, 1000));
        continue;
      }
      throw new CniError(CniCode.internal, `netplugin failed: cannot run ${path}: ${(e as Error).message}`);
    }
  }
}

/** libcni `pluginErr`: the CNI error a failed plugin run stands for. */
export function pluginError(run: PluginRun): CniError {
  if (run.stdout.length === 0) {
    if (run.stderr.length === 0) return new CniError(CniCode.internal, `netplugin failed with no error message: exit status ${run.code}`);
    return new CniError(CniCode.internal, `netplugin failed: ${JSON.stringify(run.stderr)}: exit status ${run.code}`);
  }
  try {
    const e = JSON.parse(run.stdout);
    if (!isJsonObject(e)) throw new Error("not an object");
    const code = typeof e.code === "number" ? e.code : 0;
    return new CniError(code, typeof e.msg === "string" ? e.msg : "", typeof e.details === "string" ? e.details : "");
  } catch (err) {
    return new CniError(CniCode.internal,
      `netplugin failed but error parsing its diagnostic message ${JSON.stringify(run.stdout)}: ${(err as Error).message}`);
  }
}

/** What a delegate call produced: its result text (ADD only) and anything it wrote to stderr. */
export interface DelegateOutcome {
  result?: string;
  stderr: string;
}

/**
 * Runs delegate plugin `type` for `command` (ADD, DEL, CHECK, GC or STATUS) with `config` on stdin and the
 * caller's env (`CNI_COMMAND` replaced). For ADD, returns the result JSON as the delegate
 * printed it, with `cniVersion` filled in from the config when the delegate left it out
 * (libcni `fixupResultVersion`). Throws the delegate's own error on failure.
 *
 * Equivalent to libcni `invoke.DelegateAdd/DelegateDel/DelegateCheck`.
 */
export async function delegate(command: "ADD" | "DEL" | "CHECK" | "GC" | "STATUS", type: string, config: string, env: Env): Promise<DelegateOutcome> {
  const failed = (e: unknown) => {
    const err = CniError.from(e);
    return new CniError(err.code, `failed to delegate ${command.toLowerCase()}: ${err.message}`, err.details);
  };
  let path: string, run: PluginRun;
  try {
    path = findPlugin(type, env.CNI_PATH ?? "");
    const childEnv: Env = {};
    for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
    childEnv.CNI_COMMAND = command;
    run = await execPlugin(path, childEnv, config);
  } catch (e) {
    throw failed(e);
  }
  if (run.code !== 0) throw pluginError(run); // the delegate's own error, unwrapped
  if (command !== "ADD") return { stderr: run.stderr };

  let result: JsonObject;
  try {
    result = decodeJsonObject(run.stdout, `failed to unmarshal raw result of ${path}`);
  } catch (e) {
    throw failed(e);
  }
  if (typeof result.cniVersion === "string" && result.cniVersion !== "") return { result: run.stdout, stderr: run.stderr };
  const version = (JSON.parse(config) as { cniVersion?: unknown }).cniVersion;
  const { cniVersion: _, ...rest } = result;
  const fixed = { cniVersion: typeof version === "string" && version !== "" ? version : "0.1.0", ...rest };
  return { result: JSON.stringify(fixed, null, 4), stderr: run.stderr };
}

/**
 * The CNI versions delegate plugin `type` supports (its VERSION answer), so a 1.1.0 command (GC,
 * STATUS) is forwarded only to a delegate that knows it: Debian's plugins 1.1.x stop at 1.0.0
 * and would refuse it. Throws (code 999) when the plugin is not installed or answers nonsense.
 */
export async function delegateVersions(type: string, env: Env): Promise<string[]> {
  const path = findPlugin(type, env.CNI_PATH ?? "");
  const childEnv: Env = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) childEnv[k] = v;
  childEnv.CNI_COMMAND = "VERSION";
  const run = await execPlugin(path, childEnv, '{"cniVersion":"1.1.0"}');
  if (run.code !== 0) throw pluginError(run);
  const answer = decodeJsonObject(run.stdout, `cannot decode the VERSION answer of ${path}`);
  const versions = answer.supportedVersions;
  if (!Array.isArray(versions) || !versions.every((v) => typeof v === "string")) {
    throw new CniError(CniCode.decodingFailure, `the VERSION answer of ${path} has no supportedVersions list`);
  }
  return versions as string[];
}
