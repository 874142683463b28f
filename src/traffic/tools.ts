/**
 * @module Running the firewall's userspace tools (`iptables-restore`, `iptables-save`, `nft`), as
 * flanneld does, and reading their versions. The runner is a plain function so engines can be
 * driven by a stand-in; the real one spawns without a shell and never throws for a non-zero exit.
 */
import { spawn } from "node:child_process";

/** How a tool exited and what it printed. `code` 127: the tool was not found. */
export interface ToolResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `argv` (no shell), feeding `stdin`; resolves when it exits. */
export type ToolRunner = (argv: readonly string[], stdin?: string) => Promise<ToolResult>;

/**
 * The real runner: `node:child_process` spawn (Bun and Deno both provide it). A tool that cannot
 * be started resolves with code 127 (not found) or 126 (anything else: at the descriptor limit
 * Bun and Deno return a child without pipes and report EMFILE by an 'error' event afterwards).
 */
export const runTool: ToolRunner = (argv, stdin) =>
  new Promise((resolve) => {
    let child: ReturnType<typeof spawn>;
    try {
      child = spawn(argv[0]!, argv.slice(1), { stdio: ["pipe", "pipe", "pipe"] });
    } catch (e) {
      return resolve({ code: 126, stdout: "", stderr: `${argv[0]}: cannot start: ${(e as Error).message}` });
    }
    let stdout = "";
    let stderr = "";
    child.on("error", (e: NodeJS.ErrnoException) => {
      const hint = e.code === "EMFILE" || e.code === "ENFILE" ? " (the agent is out of file descriptors)" : "";
      resolve({ code: e.code === "ENOENT" ? 127 : 126, stdout, stderr: `${argv[0]}: cannot start: ${e.message}${hint}` });
    });
    if (!child.stdout || !child.stderr || !child.stdin) return; // not started: 'error' follows
    child.stdout.setEncoding("utf8").on("data", (d: string) => { stdout += d; });
    child.stderr.setEncoding("utf8").on("data", (d: string) => { stderr += d; });
    child.on("close", (code, sig) => resolve({ code: code ?? (sig ? 128 : 1), stdout, stderr }));
    child.stdin.on("error", () => { /* the tool exited before reading: its exit code tells */ });
    child.stdin.end(stdin ?? "");
  });

/** A tool exited non-zero; `code` 127 means it is not installed. */
export class ToolError extends Error {
  constructor(readonly argv: readonly string[], readonly code: number, readonly stderr: string, stdin?: string) {
    const hint = code === 127 ? ` (is ${argv[0]} installed and in PATH?)` : "";
    super(`${argv.join(" ")} exited ${code}${hint}: ${stderr.trim()}${stdin ? `\ninput was:\n${stdin}` : ""}`);
    this.name = "ToolError";
  }
}

/** Runs `argv` and returns stdout; throws a ToolError with the command, exit code and stderr. */
export async function runToolOk(run: ToolRunner, argv: readonly string[], stdin?: string): Promise<string> {
  const r = await run(argv, stdin);
  if (r.code !== 0) throw new ToolError(argv, r.code, r.stderr || r.stdout, stdin);
  return r.stdout;
}

/** `v1.8.9` in `iptables v1.8.9 (nf_tables)` as [1, 8, 9]; undefined when there is none. */
export function parseIptablesVersion(text: string): [number, number, number] | undefined {
  const m = /v(\d+)\.(\d+)\.(\d+)/.exec(text);
  return m ? [Number(m[1]), Number(m[2]), Number(m[3])] : undefined;
}

/**
 * What an iptables version supports, as flannel and go-iptables decide it: both `--wait` for
 * iptables-restore and `--random-fully` arrived in 1.6.2.
 */
export function iptablesFeatures(v: readonly [number, number, number]): { wait: boolean; randomFully: boolean } {
  const [a, b, c] = v;
  const atLeast162 = a > 1 || (a === 1 && (b > 6 || (b === 6 && c >= 2)));
  return { wait: atLeast162, randomFully: atLeast162 };
}
