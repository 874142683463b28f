/**
 * @module The firewall tools at the file-descriptor limit (under Bun and Deno, in a child process
 * with `ulimit -n 64`): a tool that cannot start is a ToolError naming the tool and EMFILE (the
 * resync logs it and tries again at its next tick), never an internal TypeError; once
 * descriptors are free again the same call works.
 */
import { expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { join } from "node:path";

const ROOT = join(import.meta.dir, "..", "..");
const SCRIPT = join(ROOT, "tests", "traffic", "fd_limit_script.ts");
const DENO = join(ROOT, "node_modules", ".bin", "deno");

for (const [runtime, cmd] of [["bun", `'${process.execPath}' '${SCRIPT}'`], ["deno", `'${DENO}' run -A --quiet '${SCRIPT}'`]] as const) {
  test(`${runtime}: runToolOk() at the descriptor limit throws a ToolError naming the tool and EMFILE, and works once descriptors are free`, () => {
    const r = spawnSync("sh", ["-c", `ulimit -n 64 && exec ${cmd}`], { encoding: "utf8", timeout: 60_000 });
    const line = r.stdout.trim().split("\n").find((l) => l.startsWith("{"));
    if (!line) throw new Error(`no result from the script (exit ${r.status}):\n${r.stdout}\n${r.stderr}`);
    const out = JSON.parse(line) as { atLimit?: { name: string; message: string }; retry: number };
    expect(out.atLimit?.name).toBe("ToolError");
    expect(out.atLimit?.message).toMatch(/^true exited 126: true: cannot start: .*(EMFILE|Too many open files).*\(the agent is out of file descriptors\)$/);
    expect(out.retry).toBe(0);
  }, 60_000);
}
