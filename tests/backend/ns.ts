/**
 * @module Test helper for the backend kernel tests: a throwaway namespace with an underlay veth
 * (veth0 192.168.0.1/16 ↔ veth1), `ip`/`bridge` JSON views of it, a running `ip monitor`, and
 * backend_ns_script.ts run inside it under Bun.
 */
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import type { ScriptInput } from "./backend_ns_script.ts";

const SCRIPT = join(import.meta.dir, "backend_ns_script.ts");
const DENO = join(import.meta.dir, "../../node_modules/.bin/deno");

export const isRoot = process.getuid?.() === 0 && spawnSync("ip", ["-V"]).status === 0;

/** Runs a command (argv), throwing with its stderr when it fails. */
export function sh(args: string[]): string {
  const r = spawnSync(args[0]!, args.slice(1), { encoding: "utf8", timeout: 60_000 });
  if (r.status !== 0) throw new Error(`${args.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

export class TestNetns {
  readonly name: string;

  constructor(area: string) {
    this.name = `weft-${area}-${process.pid}-${Math.random().toString(36).slice(2, 8)}`;
    sh(["ip", "netns", "add", this.name]);
    try {
      for (const cmd of [
        "link set lo up", "link add veth0 type veth peer name veth1", "addr add 192.168.0.1/16 dev veth0",
        "link set veth0 up", "link set veth1 up", "route add 10.99.0.0/16 via 192.168.0.254",
      ]) this.ip(cmd);
    } catch (e) {
      this.delete();
      throw e;
    }
  }

  /** `ip -n NS <cmd>` (space-separated). */
  ip(cmd: string): string {
    return sh(["ip", "-n", this.name, ...cmd.split(" ")]);
  }

  /** `ip netns exec NS <cmd>` (space-separated). */
  exec(cmd: string): string {
    return sh(["ip", "netns", "exec", this.name, ...cmd.split(" ")]);
  }

  /** JSON of `ip -j …` / `bridge -j …` run in the namespace. */
  json(cmd: string): any {
    const text = this.exec(cmd).trim();
    return text ? JSON.parse(text) : [];
  }

  /** Runs backend_ns_script.ts inside with `input` (under Bun, or Deno); returns its JSON. */
  run(input: ScriptInput, runtime: "bun" | "deno" = "bun", timeoutMs = 60_000): any {
    const cmd = runtime === "bun" ? [process.execPath] : [DENO, "run", "--allow-all", "--unstable-ffi"];
    const r = spawnSync("ip", ["netns", "exec", this.name, ...cmd, SCRIPT, JSON.stringify(input)], { encoding: "utf8", timeout: timeoutMs });
    if (r.status !== 0) throw new Error(`backend_ns_script in ${this.name} failed (${r.status ?? r.signal}):\n${r.stdout}\n${r.stderr}`);
    return JSON.parse(r.stdout.trim().split("\n").at(-1)!);
  }

  /**
   * Starts `ip monitor OBJECTS…` in the namespace; `stop()` returns the lines it printed, minus
   * the kernel's own IPv6 link-local autoconfiguration (fe80::/ff02:: routes and neighbours,
   * which appear when DAD completes on a device made a moment earlier: not weft's doing).
   */
  async monitor(objects: string[]): Promise<{ stop(): Promise<string[]> }> {
    const child: ChildProcess = spawn("ip", ["-n", this.name, "monitor", ...objects], { stdio: ["ignore", "pipe", "ignore"] });
    let text = "";
    child.stdout!.on("data", (d) => { text += d; });
    await new Promise((r) => setTimeout(r, 300));
    return {
      async stop() {
        await new Promise((r) => setTimeout(r, 300));
        child.kill();
        await new Promise((r) => child.once("exit", r));
        return text.split("\n").filter((l) => l.trim() !== "" && !/\b(fe80|ff0[0-9a-f]):/.test(l));
      },
    };
  }

  delete(): void {
    spawnSync("ip", ["netns", "delete", this.name]);
  }
}
