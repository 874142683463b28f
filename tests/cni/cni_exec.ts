/**
 * @module Invoking weft's `flannel` CNI plugin as a container runtime does: a CNI bin dir holding
 * `flannel` (weft) beside Debian's reference plugins (bridge, host-local, loopback, portmap from
 * /usr/lib/cni), and one exec per command inside the "host" namespace with the CNI_* variables
 * and the netconf on stdin.
 */
import { chmodSync, existsSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { nsExec, type Run } from "../support/ns.ts";

const REFERENCE_PLUGINS_DIR = "/usr/lib/cni";
const REFERENCE_PLUGINS = ["bridge", "host-local", "loopback", "portmap"];
const RUN_PLUGIN = join(import.meta.dir, "run_plugin.ts");

/**
 * Fills `dir` (existing, empty) as a CNI_PATH: `flannel` runs weft — `exe` when given (e.g. the
 * compiled dist/weft, symlinked), else a shell wrapper running tests/cni/run_plugin.ts with this
 * bun — and the reference plugins are symlinked.
 */
export function makeCniBinDir(dir: string, exe?: string): string {
  const flannel = join(dir, "flannel");
  if (exe) {
    symlinkSync(exe, flannel);
  } else {
    writeFileSync(flannel, `#!/bin/sh\nexec ${process.execPath} ${RUN_PLUGIN}\n`);
    chmodSync(flannel, 0o755);
  }
  for (const p of REFERENCE_PLUGINS) {
    const src = join(REFERENCE_PLUGINS_DIR, p);
    if (existsSync(src)) symlinkSync(src, join(dir, p));
  }
  return dir;
}

/** One plugin call: the command, the container and the config. */
export interface CniCall {
  /** The namespace the plugin runs in (the "host"). */
  hostNs: string;
  binDir: string;
  command: "ADD" | "DEL" | "CHECK" | "VERSION" | string;
  containerId?: string;
  /** CNI_NETNS, e.g. `/var/run/netns/<container ns>`. */
  netns?: string;
  ifName?: string;
  config: object | string;
  /** Extra or replacement variables; a value of "" removes the variable. */
  env?: Record<string, string>;
  /** Plugin to run instead of `<binDir>/flannel`. */
  plugin?: string;
}

/** The outcome, with stdout parsed when it is JSON. */
export interface CniReply extends Run {
  json?: any;
}

/** Runs `ip netns exec <hostNs> <binDir>/flannel` with the CNI_* variables and config. */
export function cniExec(call: CniCall): CniReply {
  const env: Record<string, string> = {
    PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin",
    CNI_COMMAND: call.command,
    CNI_CONTAINERID: call.containerId ?? "",
    CNI_NETNS: call.netns ?? "",
    CNI_IFNAME: call.ifName ?? "eth0",
    CNI_PATH: call.binDir,
  };
  for (const [k, v] of Object.entries(call.env ?? {})) env[k] = v;
  for (const k of Object.keys(env)) if (env[k] === "") delete env[k];
  const stdin = typeof call.config === "string" ? call.config : JSON.stringify(call.config);
  const r = nsExec(call.hostNs, [call.plugin ?? join(call.binDir, "flannel")], { env, stdin });
  let json: unknown;
  try {
    json = r.stdout.trim() ? JSON.parse(r.stdout) : undefined;
  } catch { /* not JSON: the test will say so */ }
  return { ...r, json };
}
