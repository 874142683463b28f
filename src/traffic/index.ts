/**
 * @module flanneld's masquerade and forward rules (compat §7, §12.10, §12.11): installed at
 * start-up, kept in place by a resync loop, left in place at shutdown.
 *
 * API (what the agent calls):
 *
 *   const traffic = await setupTrafficRules({ config, lease, ipMasq, forwardRules,
 *     randomFullyDisabled, resyncSeconds, previous, log, metrics, signal });
 *   // … write subnet.env, become ready …
 *   await traffic.run();          // resync loop; resolves when `signal` aborts; never throws
 *   traffic.describe();           // JSON for /status
 *
 * Start-up order (§9): call it after the lease is held and before subnet.env is written, with
 * `previous` = the subnet.env read before this start overwrites it. It always runs (also without
 * `--ip-masq` and forward rules), because it also removes the engine not in use and, in iptables
 * mode, checks br_netfilter. It throws — fatal, exit 1, like flanneld — when br_netfilter is
 * missing in iptables mode, a needed tool is missing, or the masquerade rules cannot be installed.
 * A failure to install the forward rules is logged, counted and retried by `run()`.
 *
 * What it does, in order:
 *  1. iptables mode: `/proc/sys/net/bridge/bridge-nf-call-iptables` (and `-ip6tables` with IPv6)
 *     must exist.
 *  2. Probe: iptables mode reads `iptables --version` (≥ 1.6.2: `--wait` and `--random-fully`,
 *     as flannel decides); nftables mode runs a check-only `nft -c` transaction with
 *     `masquerade fully-random`, as flannel does. `randomFullyDisabled` turns it off either way.
 *  3. Remove the engine not in use: the `flannel-ipv4`/`flannel-ipv6` nft tables in iptables mode;
 *     in nftables mode nat FLANNEL-POSTRTG and filter FLANNEL-FWD with their jumps (§12.11).
 *  4. If Network or the lease changed since `previous`, delete the previous masquerade rules.
 *  5. Install masquerade rules (v4, v6), then forward rules (v4, v6): see iptables_rules.ts and
 *     nft_rules.ts for the exact text.
 * `--ip-blackhole-route` is not handled here: a blackhole route for the lease must not replace
 * the bridge's connected route of the same prefix, which needs flanneld's exact route attributes.
 */
import { accessSync } from "node:fs";
import type { NetworkConfig } from "../config/network.ts";
import type { Logger } from "../log.ts";
import type { IPv4Net, IPv6Net } from "../net/ip.ts";
import type { Metrics } from "../status/metrics.ts";
import type { SubnetEnv } from "../subnet_env.ts";
import { IptablesEngine, probeIptables } from "./iptables_engine.ts";
import { TrafficManager } from "./manager.ts";
import { NftEngine, probeNftRandomFully } from "./nft_engine.ts";
import { type Family, type RuleEngine, changedPreviousNets, currentNets, describeSpec, ruleSpecs } from "./spec.ts";
import { ToolError, type ToolRunner, runTool } from "./tools.ts";

export { TrafficManager, type TrafficDescription } from "./manager.ts";

export interface TrafficOptions {
  config: NetworkConfig;
  /** Our lease (network addresses, e.g. 10.42.5.0/24). */
  lease: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net };
  /** `--ip-masq`. */
  ipMasq: boolean;
  /** `--iptables-forward-rules` (flanneld's default: true). */
  forwardRules: boolean;
  /** `--ip-masq-fully-random-disable`. */
  randomFullyDisabled: boolean;
  /** `--iptables-resync` (flanneld's default: 5). Fractions are allowed (tests). */
  resyncSeconds: number;
  /** The subnet.env of the previous run, read before it is rewritten. */
  previous?: SubnetEnv;
  log: Logger;
  metrics: Metrics;
  /** Stops `run()`. Rules stay in place. */
  signal: AbortSignal;
  /** Test seam: runs the userspace tools (default: spawn them). */
  runTool?: ToolRunner;
  /** Test seam: where br_netfilter's sysctls live (default `/proc/sys/net/bridge`). */
  bridgeSysctlDir?: string;
}

/**
 * Installs flanneld's rules for this host and returns the manager that keeps them (steps above).
 * Throws an Error naming the cause when start-up must fail.
 */
export async function setupTrafficRules(opts: TrafficOptions): Promise<TrafficManager> {
  const { config, log } = opts;
  const run = opts.runTool ?? runTool;
  const families = ([4, 6] as const).filter((f) => (f === 4 ? config.enableIPv4 : config.enableIPv6));
  const nets = currentNets(config, opts.lease);
  const wanted = { ipMasq: opts.ipMasq, forwardRules: opts.forwardRules };
  const needed = ruleSpecs(nets, { ...wanted, randomFully: false }).length > 0;

  let engine: RuleEngine;
  let other: () => Promise<RuleEngine>;
  let supported = false;
  if (config.enableNFTables) {
    log.info("Starting flannel in nftables mode...");
    engine = new NftEngine(run);
    if (needed && opts.ipMasq) supported = await probeNftRandomFully(run);
    other = async () => new IptablesEngine(run, (await probeIptables(run, 4).catch(() => undefined))?.wait ?? false);
  } else {
    log.info("Starting flannel in iptables mode...");
    checkBrNetfilter(opts.bridgeSysctlDir ?? "/proc/sys/net/bridge", families);
    let wait = true;
    supported = true;
    if (needed) {
      for (const f of families) {
        const p = await probeIptables(run, f);
        wait &&= p.wait;
        supported &&= p.randomFully;
      }
    }
    engine = new IptablesEngine(run, wait);
    other = async () => new NftEngine(run);
  }
  const randomFully = supported && !opts.randomFullyDisabled;
  if (needed && opts.ipMasq && !supported) log.warn(`${engine.name}: --random-fully is not supported here; masquerading without it`);

  await removeOtherEngine(other, log);

  const specs = ruleSpecs(nets, { ...wanted, randomFully });
  if (opts.ipMasq) {
    const old = changedPreviousNets(opts.previous, nets);
    const oldSpecs = ruleSpecs(old, { ipMasq: true, forwardRules: false, randomFully });
    if (oldSpecs.length > 0) {
      log.info(`Current network or subnet is not equal to previous one, trying to recycle old ${engine.name} rules (${oldSpecs.map(describeSpec).join("; ")})`);
      await engine.remove(oldSpecs).catch((e) => { throw new Error(`cannot delete the previous masquerade rules: ${(e as Error).message}`); });
    }
  }

  const masq = specs.filter((s) => s.kind === "masq");
  const forward = specs.filter((s) => s.kind === "forward");
  if (masq.length > 0) {
    log.info(`Setting up masking rules (${engine.name}, ${masq.map(describeSpec).join("; ")}${randomFully ? ", random-fully" : ""})`);
    await engine.install(masq).catch((e) => { throw new Error(`cannot install the masquerade rules: ${(e as Error).message}`); });
  }
  if (forward.length > 0) {
    log.info(`Setting up forward rules (${engine.name}, ${forward.map(describeSpec).join("; ")})`);
    await engine.install(forward).catch((e) => {
      opts.metrics.error(engine.name);
      log.error(`cannot install the forward rules (retried every ${opts.resyncSeconds} s): ${(e as Error).message}`);
    });
  }
  return new TrafficManager(engine, specs, { resyncSeconds: opts.resyncSeconds, randomFully, log, metrics: opts.metrics, signal: opts.signal });
}

/**
 * flanneld's br_netfilter check in iptables mode: without the module, bridged pod traffic
 * bypasses iptables. Throws an Error with flanneld's text and the fix.
 */
export function checkBrNetfilter(dir: string, families: readonly Family[]): void {
  for (const f of families) {
    const path = `${dir}/bridge-nf-call-${f === 4 ? "iptables" : "ip6tables"}`;
    try {
      accessSync(path);
    } catch {
      throw new Error(
        `Failed to check br_netfilter: stat ${path}: no such file or directory ` +
          `(load the br_netfilter kernel module: 'modprobe br_netfilter', or set "EnableNFTables": true in the network config)`,
      );
    }
  }
}

/** Step 3. Not fatal: a missing tool means there is nothing of that engine to remove. */
async function removeOtherEngine(other: () => Promise<RuleEngine>, log: Logger): Promise<void> {
  let engine: RuleEngine | undefined;
  try {
    engine = await other();
    await engine.removeAll();
  } catch (e) {
    if (e instanceof ToolError && e.code === 127) log.debug(1, `not removing ${engine?.name ?? "the other engine's"} rules: ${e.message}`);
    else log.warn(`cannot remove the ${engine?.name ?? "other engine's"} rules not in use: ${(e as Error).message}`);
  }
}
