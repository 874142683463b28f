/**
 * @module Test helper for the backend kernel tests: a throwaway namespace with an underlay veth
 * (veth0 192.168.0.1/16 ↔ veth1; with `ipv6`, also 2001:db8::1/64, no DAD), `ip`/`bridge` JSON
 * views of it, a running `ip monitor`, and
 * backend_ns_script.ts run inside it under Bun. The namespace itself comes from
 * tests/support/ns.ts (unique name, removed at exit if a test does not).
 */
import { type ChildProcess, spawn } from "node:child_process";
import { join } from "node:path";
import { addNetns, delNetns, ip, nsExecJson, nsSh, uniqueName } from "../support/ns.ts";
import type { ScriptInput } from "./backend_ns_script.ts";

export { isRoot } from "../support/ns.ts";

const SCRIPT = join(import.meta.dir, "backend_ns_script.ts");
const DENO = join(import.meta.dir, "../../node_modules/.bin/deno");
const TIMEOUT_MS = 60_000;

export class TestNetns {
  readonly name: string;

  constructor(area: string, opts: { ipv6?: boolean } = {}) {
    this.name = addNetns(uniqueName(area));
    try {
      for (const cmd of [
        "link add veth0 type veth peer name veth1", "addr add 192.168.0.1/16 dev veth0",
        ...(opts.ipv6 ? ["addr add 2001:db8::1/64 dev veth0 nodad"] : []),
        "link set veth0 up", "link set veth1 up", "route add 10.99.0.0/16 via 192.168.0.254",
        ...(opts.ipv6 ? ["-6 route add 2001:db8:99::/48 via 2001:db8::fe"] : []),
      ]) this.ip(cmd);
    } catch (e) {
      this.delete();
      throw e;
    }
  }

  /** `ip -n NS <cmd>` (space-separated). */
  ip(cmd: string): string {
    return ip(this.name, ...cmd.split(" "));
  }

  /** `ip netns exec NS <cmd>` (space-separated). */
  exec(cmd: string): string {
    return nsSh(this.name, cmd.split(" "), { timeoutMs: TIMEOUT_MS });
  }

  /** JSON of `ip -j …` / `bridge -j …` run in the namespace. */
  json(cmd: string): any {
    const text = this.exec(cmd).trim();
    return text ? JSON.parse(text) : [];
  }

  /** Runs backend_ns_script.ts inside with `input` (under Bun, or Deno); returns its JSON. */
  run(input: ScriptInput, runtime: "bun" | "deno" = "bun", timeoutMs = TIMEOUT_MS): any {
    const cmd = runtime === "bun" ? [process.execPath] : [DENO, "run", "--allow-all", "--unstable-ffi"];
    return nsExecJson(this.name, [...cmd, SCRIPT, JSON.stringify(input)], { timeoutMs });
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

  /** Removes the namespace and everything in it (`ip netns del`); already gone is fine. */
  delete(): void {
    delNetns(this.name);
  }
}
