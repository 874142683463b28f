/**
 * @module Running an extension command as flanneld v0.20.2 does: `sh -c COMMAND` with extra
 * environment variables and a line on standard input, output = stdout and stderr combined,
 * trimmed. Bounded in time (a hung command must not stall the agent's peer handling) and never
 * throws: a failure is a result, with the exit status in words.
 */
import { spawn } from "node:child_process";

export interface ShellResult {
  /** True when the command exited 0. */
  ok: boolean;
  /** "exit status 2", "killed by SIGKILL after 60 s", "cannot run sh: …". */
  status: string;
  /** stdout and stderr combined, trimmed. */
  output: string;
}

/** Longest a command may run before it is killed. */
export const COMMAND_TIMEOUT_MS = 60_000;

/** Runs `sh -c command`; `stdin` is written followed by a newline (flanneld's runCmd). */
export function runShell(command: string, env: Record<string, string>, stdin = "", timeoutMs = COMMAND_TIMEOUT_MS): Promise<ShellResult> {
  return new Promise((resolve) => {
    let output = "";
    let child;
    try {
      child = spawn("sh", ["-c", command], { env: { ...process.env, ...env }, stdio: ["pipe", "pipe", "pipe"] });
    } catch (e) {
      resolve({ ok: false, status: `cannot run sh: ${(e as Error).message}`, output: "" });
      return;
    }
    const timer = setTimeout(() => child.kill("SIGKILL"), timeoutMs);
    const take = (d: Buffer) => { if (output.length < 65536) output += d.toString(); };
    child.stdout?.on("data", take);
    child.stderr?.on("data", take);
    child.on("error", (e) => {
      clearTimeout(timer);
      resolve({ ok: false, status: `cannot run sh: ${e.message}`, output: output.trim() });
    });
    child.on("close", (code, sig) => {
      clearTimeout(timer);
      const status = sig ? `killed by ${sig}${sig === "SIGKILL" ? ` (after ${timeoutMs / 1000} s, or by another process)` : ""}` : `exit status ${code}`;
      resolve({ ok: code === 0, status, output: output.trim() });
    });
    child.stdin?.on("error", () => { /* the command did not read its input: fine */ });
    child.stdin?.end(`${stdin}\n`);
  });
}
