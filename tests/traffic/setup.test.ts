/**
 * setupTrafficRules' start-up sequence against a stand-in tool runner (no firewall is touched):
 * which tools run in which order, what is fatal and what is retried. The kernel results of the
 * same flows are checked in traffic_netns.test.ts.
 */
import { describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { silentLogger } from "../../src/log.ts";
import { parseIPv4Net } from "../../src/net/ip.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { type TrafficOptions, setupTrafficRules } from "../../src/traffic/index.ts";
import type { ToolResult } from "../../src/traffic/tools.ts";

/** A runner that records argv and answers from `answer` (default: exit 0, no output). */
function fakeRunner(answer: (argv: readonly string[], stdin?: string) => Partial<ToolResult> | undefined = () => undefined) {
  const calls: string[] = [];
  const run = async (argv: readonly string[], stdin?: string): Promise<ToolResult> => {
    calls.push(argv.join(" "));
    if (argv[1] === "--version") return { code: 0, stdout: `${argv[0]} v1.8.9 (nf_tables)\n`, stderr: "", ...answer(argv, stdin) };
    return { code: 0, stdout: "", stderr: "", ...answer(argv, stdin) };
  };
  return { calls, run };
}

function withBridgeDir<T>(f: (dir: string) => Promise<T>): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), "weft-traffic-br-"));
  writeFileSync(join(dir, "bridge-nf-call-iptables"), "1\n");
  return f(dir).finally(() => rmSync(dir, { recursive: true, force: true }));
}

function options(overrides: Partial<TrafficOptions>): TrafficOptions {
  return {
    config: parseNetworkConfig('{"Network":"10.42.0.0/16"}'),
    lease: { subnet: parseIPv4Net("10.42.5.0/24") },
    ipMasq: true, forwardRules: true, randomFullyDisabled: false, resyncSeconds: 5,
    log: silentLogger, metrics: new Metrics(), signal: new AbortController().signal,
    ...overrides,
  };
}

describe("setupTrafficRules()", () => {
  test("iptables mode: probe, remove the nft tables, then masquerade before forward", async () => {
    await withBridgeDir(async (dir) => {
      const { calls, run } = fakeRunner((argv) => argv.join(" ") === "nft list tables" ? { stdout: "table ip flannel-ipv4\n" } : undefined);
      const m = await setupTrafficRules(options({ runTool: run, bridgeSysctlDir: dir }));
      expect(calls).toEqual([
        "iptables --version",
        "nft list tables",
        "nft -f -",
        "iptables-save -t nat",
        "iptables-restore --noflush --wait",
        "iptables-save -t filter",
        "iptables-restore --noflush --wait",
      ]);
      expect(m.describe()).toMatchObject({ engine: "iptables", randomFully: true, rules: ["masq v4 10.42.0.0/16 10.42.5.0/24", "forward v4 10.42.0.0/16"] });
    });
  });

  test("iptables < 1.6.2: no --wait, no --random-fully", async () => {
    await withBridgeDir(async (dir) => {
      const inputs: string[] = [];
      const { calls, run } = fakeRunner((argv, stdin) => {
        if (argv[1] === "--version") return { stdout: "iptables v1.6.1\n" };
        if (stdin && argv[0] === "iptables-restore") inputs.push(stdin);
        return undefined;
      });
      const m = await setupTrafficRules(options({ runTool: run, bridgeSysctlDir: dir, forwardRules: false }));
      expect(calls).toContain("iptables-restore --noflush");
      expect(inputs[0]).toContain("-j MASQUERADE\n");
      expect(inputs[0]).not.toContain("--random-fully");
      expect(m.describe().randomFully).toBe(false);
    });
  });

  test("a missing br_netfilter sysctl is fatal before any tool runs", async () => {
    const { calls, run } = fakeRunner();
    await expect(setupTrafficRules(options({ runTool: run, bridgeSysctlDir: "/nonexistent" })))
      .rejects.toThrow("Failed to check br_netfilter: stat /nonexistent/bridge-nf-call-iptables: no such file or directory");
    expect(calls).toEqual([]);
  });

  test("nftables mode: no br_netfilter check; the iptables chains are removed; missing iptables is fine", async () => {
    const { calls, run } = fakeRunner((argv) => (argv[0]!.startsWith("ip") ? { code: 127, stderr: "not found" } : undefined));
    const m = await setupTrafficRules(options({ runTool: run, bridgeSysctlDir: "/nonexistent", config: parseNetworkConfig('{"Network":"10.42.0.0/16","EnableNFTables":true}') }));
    expect(calls).toEqual(["nft -c -f -", "iptables --version", "iptables-save -t nat", "nft -f -", "nft -f -"]);
    expect(m.describe()).toMatchObject({ engine: "nftables", randomFully: true });
  });

  test("a failed masquerade install is fatal; a failed forward install is logged and retried", async () => {
    await withBridgeDir(async (dir) => {
      const failing = (table: string) => fakeRunner((argv, stdin) =>
        argv[0] === "iptables-restore" && stdin?.startsWith(`*${table}`) ? { code: 2, stderr: "iptables-restore: line 2 failed" } : undefined);
      await expect(setupTrafficRules(options({ runTool: failing("nat").run, bridgeSysctlDir: dir })))
        .rejects.toThrow(/^cannot install the masquerade rules: iptables-restore --noflush --wait exited 2: iptables-restore: line 2 failed/);
      const metrics = new Metrics();
      const m = await setupTrafficRules(options({ runTool: failing("filter").run, bridgeSysctlDir: dir, metrics }));
      expect(metrics.errors.get("iptables")).toBe(1);
      expect(m.describe().rules).toEqual(["masq v4 10.42.0.0/16 10.42.5.0/24", "forward v4 10.42.0.0/16"]);
    });
  });

  test("neither --ip-masq nor forward rules: only the other engine is cleaned, run() returns at once", async () => {
    await withBridgeDir(async (dir) => {
      const { calls, run } = fakeRunner();
      const m = await setupTrafficRules(options({ runTool: run, bridgeSysctlDir: dir, ipMasq: false, forwardRules: false }));
      expect(calls).toEqual(["nft list tables"]);
      await m.run();
    });
  });
});
