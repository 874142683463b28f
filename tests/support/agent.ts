/**
 * @module Runs weft agents as real processes for tests: the compiled `dist/weft` (default), the
 * sources under Bun, or under Deno. Each agent gets its own subnet file and status port; logs are
 * kept for failure messages; every process is killed at exit.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { freePort } from "./etcd.ts";

export const ROOT = join(import.meta.dir, "..", "..");
export type Runtime = "binary" | "bun" | "deno";

const live = new Set<ChildProcess>();
process.on("exit", () => { for (const p of live) p.kill("SIGKILL"); });

/** The command that runs weft with `args` under `runtime`. */
export function weftCommand(runtime: Runtime, args: string[]): string[] {
  switch (runtime) {
    case "binary": {
      const bin = join(ROOT, "dist", "weft");
      if (!existsSync(bin)) throw new Error(`${bin} is missing: run 'bun tools/build.ts' first`);
      return [bin, ...args];
    }
    case "bun": return [process.execPath, join(ROOT, "src", "main.ts"), ...args];
    case "deno": return [join(ROOT, "node_modules", ".bin", "deno"), "run", "-A", "--quiet", join(ROOT, "src", "main.ts"), ...args];
  }
}

/** Runs a weft command to completion (admin subcommands). */
export async function runWeft(args: string[], opts: { stdin?: string; runtime?: Runtime; env?: Record<string, string> } = {}) {
  const [cmd, ...argv] = weftCommand(opts.runtime ?? "binary", args);
  const p = spawn(cmd!, argv, { stdio: ["pipe", "pipe", "pipe"], env: { ...process.env, ...opts.env } });
  let stdout = "", stderr = "";
  p.stdout!.on("data", (d) => (stdout += d));
  p.stderr!.on("data", (d) => (stderr += d));
  p.stdin!.end(opts.stdin ?? "");
  const code: number = await new Promise((r) => p.on("close", (c) => r(c ?? -1)));
  return { code, stdout, stderr };
}

export interface AgentOptions {
  etcd: string;
  subnetFile: string;
  publicIP?: string;
  iface?: string;
  runtime?: Runtime;
  extraArgs?: string[];
  env?: Record<string, string>;
  /** Wrap the command (e.g. ["ip", "netns", "exec", ns]). */
  wrap?: string[];
  healthzIP?: string;
}

export class AgentProcess {
  log = "";
  exitCode: number | null = null;
  readonly exited: Promise<number>;
  private constructor(readonly proc: ChildProcess, readonly port: number, readonly host: string) {
    proc.stdout!.on("data", (d) => (this.log += d));
    proc.stderr!.on("data", (d) => (this.log += d));
    this.exited = new Promise((r) => proc.on("exit", (c, sig) => { live.delete(proc); this.exitCode = c ?? (sig ? 128 : -1); r(this.exitCode); }));
  }

  static async start(o: AgentOptions): Promise<AgentProcess> {
    const port = await freePort();
    const host = o.healthzIP ?? "127.0.0.1";
    const args = [
      `--etcd-endpoints=${o.etcd}`, `--subnet-file=${o.subnetFile}`, `--healthz-ip=${host}`, `--healthz-port=${port}`,
      ...(o.iface === "" ? [] : [`--iface=${o.iface ?? "lo"}`]),
      // Outside a test namespace the agent must not touch the root namespace's firewall.
      ...(o.wrap ? [] : ["--iptables-forward-rules=false"]), ...(o.publicIP ? [`--public-ip=${o.publicIP}`] : []), ...(o.extraArgs ?? []),
    ];
    const [cmd, ...argv] = [...(o.wrap ?? []), ...weftCommand(o.runtime ?? "binary", args)];
    const proc = spawn(cmd!, argv, { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, ...o.env } });
    live.add(proc);
    return new AgentProcess(proc, port, host);
  }

  get url(): string {
    return `http://${this.host}:${this.port}`;
  }

  async get(path: string): Promise<Response | undefined> {
    try {
      return await fetch(this.url + path, { signal: AbortSignal.timeout(2000) });
    } catch {
      return undefined;
    }
  }

  async status(): Promise<any> {
    const r = await this.get("/status");
    if (!r || !r.ok) throw new Error(`no /status from agent: ${r?.status}\n${this.log}`);
    return r.json();
  }

  /** Waits for /readyz to answer 200. */
  async ready(timeoutMs = 20_000): Promise<this> {
    const end = Date.now() + timeoutMs;
    while (Date.now() < end) {
      if (this.exitCode !== null) throw new Error(`agent exited with ${this.exitCode} before ready:\n${this.log}`);
      if ((await this.get("/readyz"))?.status === 200) return this;
      await Bun.sleep(50);
    }
    throw new Error(`agent not ready after ${timeoutMs} ms:\n${this.log}`);
  }

  async stop(signal: NodeJS.Signals = "SIGTERM"): Promise<number> {
    if (this.exitCode === null) this.proc.kill(signal);
    return this.exited;
  }
}

/** Polls `f` until it returns a truthy value. */
export async function waitFor<T>(f: () => T | Promise<T>, what: string, timeoutMs = 10_000, everyMs = 25): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await f();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await Bun.sleep(everyMs);
  }
}
