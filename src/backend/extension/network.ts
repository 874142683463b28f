/**
 * @module The extension network: PreStartupCommand at creation (its output is advertised),
 * PostStartupCommand once the lease is held, and per peer SubnetAddCommand/SubnetRemoveCommand,
 * retried until they succeed (see index.ts for the design).
 *
 * Flow of a peer change:
 * 1. `apply(events)`/`reconcile(peers)` update `#peers` (what should be added) and `#removals`
 *    (what should be removed), pure bookkeeping;
 * 2. `#flush()` runs the pending removals, then the pending adds, one command at a time;
 *    successes update the bookkeeping, failures stay pending for the next flush;
 * 3. the periodic check calls `#flush()` again while anything is pending.
 */
import type { NetworkConfig } from "../../config/network.ts";
import { type Lease, type LeaseEvent, leaseBackendType, leaseKey, sameAttrs } from "../../lease/lease.ts";
import { formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net } from "../../net/ip.ts";
import { startCheckLoop } from "../check_loop.ts";
import type { BackendContext, Network } from "../types.ts";
import { type ExtensionConfig, parseExtensionConfig } from "./config.ts";
import { runShell, type ShellResult } from "./shell.ts";

const DEFAULT_CHECK_MS = 10_000;

interface PeerEntry {
  lease: Lease;
  /** SubnetAddCommand succeeded for this lease. */
  added: boolean;
}

interface Removal {
  lease: Lease;
  /** Retry until it succeeds (its add had succeeded), else try once. */
  retry: boolean;
}

/** The variables a peer's command gets: SUBNET and PUBLIC_IP, and the IPv6 ones when present. */
export function peerEnv(lease: Lease): Record<string, string> {
  const env: Record<string, string> = {
    SUBNET: lease.subnet ? formatIPv4Net(lease.subnet) : "",
    PUBLIC_IP: formatIPv4(lease.attrs.publicIP),
  };
  if (lease.ipv6Subnet) env.IPV6SUBNET = formatIPv6Net(lease.ipv6Subnet);
  if (lease.attrs.publicIPv6 !== undefined) env.PUBLIC_IPV6 = formatIPv6(lease.attrs.publicIPv6);
  return env;
}

/** The variables PostStartupCommand gets (flanneld's names). */
export function postStartupEnv(config: NetworkConfig, lease: Lease): Record<string, string> {
  return {
    NETWORK: config.network ? formatIPv4Net(config.network) : "",
    SUBNET: lease.subnet ? formatIPv4Net(lease.subnet) : "",
    IPV6SUBNET: lease.ipv6Subnet ? formatIPv6Net(lease.ipv6Subnet) : "",
    PUBLIC_IP: formatIPv4(lease.attrs.publicIP),
    PUBLIC_IPV6: lease.attrs.publicIPv6 !== undefined ? formatIPv6(lease.attrs.publicIPv6) : "",
  };
}

/** A peer's BackendData as its commands read it on stdin (flanneld: a JSON string). */
export function peerStdin(lease: Lease): string | Error {
  const d = lease.attrs.backendData;
  if (d === undefined || d === null) return "";
  if (typeof d !== "string") return new Error(`its BackendData ${JSON.stringify(d).slice(0, 80)} is not a JSON string`);
  return d;
}

export class ExtensionNetwork implements Network {
  readonly leaseAttrs: { backendType: string; backendData?: string };
  readonly mtu: number;
  readonly #peers = new Map<string, PeerEntry>();
  readonly #removals = new Map<string, Removal>();
  /** Failures already logged (key + command + outcome), so a retried failure is logged once. */
  readonly #logged = new Set<string>();
  /** Commands run one at a time: each flush waits for the one before. */
  #busy: Promise<void> = Promise.resolve();

  private constructor(private readonly ctx: BackendContext, private readonly cfg: ExtensionConfig, backendData: string | undefined) {
    this.mtu = ctx.extIface.mtu;
    this.leaseAttrs = backendData === undefined ? { backendType: "extension" } : { backendType: "extension", backendData };
  }

  /** Reads the config and runs PreStartupCommand; its failure is fatal, as in flanneld. */
  static async create(ctx: BackendContext): Promise<ExtensionNetwork> {
    if (ctx.extIface.mtu === 0) throw new Error(`interface ${ctx.extIface.name} reports MTU 0`);
    const cfg = parseExtensionConfig(ctx.config.backend);
    let data: string | undefined;
    if (cfg.preStartup) {
      const r = await runShell(cfg.preStartup, {});
      if (!r.ok) throw new Error(`extension: PreStartupCommand failed (${r.status}): ${cfg.preStartup}\noutput: ${r.output}`);
      ctx.log.info(`extension: ran PreStartupCommand; output: ${r.output}`);
      data = r.output;
    } else {
      ctx.log.info("extension: no PreStartupCommand configured - skipping");
    }
    return new ExtensionNetwork(ctx, cfg, data);
  }

  async start(lease: Lease): Promise<void> {
    const { cfg, ctx } = this;
    if (cfg.postStartup) {
      const r = await runShell(cfg.postStartup, postStartupEnv(ctx.config, lease));
      if (!r.ok) throw new Error(`extension: PostStartupCommand failed (${r.status}): ${cfg.postStartup}\noutput: ${r.output}`);
      ctx.log.info(`extension: ran PostStartupCommand; output: ${r.output}`);
    }
    startCheckLoop({
      signal: ctx.signal, log: ctx.log, intervalMs: ctx.checkIntervalMs ?? DEFAULT_CHECK_MS, what: "extension retry",
      tick: () => { if (this.#pending()) void this.#flush(); },
    });
  }

  async reconcile(peers: ReadonlyMap<string, Lease>): Promise<void> {
    for (const [key, entry] of this.#peers) {
      if (!peers.has(key)) this.#remove(key, entry);
    }
    for (const lease of peers.values()) this.#add(lease);
    await this.#flush();
  }

  async apply(events: readonly LeaseEvent[]): Promise<void> {
    for (const e of events) {
      if (e.type === "added") {
        this.#add(e.lease);
      } else {
        const key = leaseKey(e.lease);
        const entry = this.#peers.get(key);
        if (entry) this.#remove(key, entry);
      }
    }
    await this.#flush();
  }

  async describe(): Promise<Record<string, unknown>> {
    const pending = [...this.#peers].filter(([, e]) => !e.added).map(([k]) => k);
    return {
      type: "extension", mtu: this.mtu, peers: this.#peers.size,
      pendingAdds: pending, pendingRemovals: [...this.#removals.keys()],
    };
  }

  async close(): Promise<void> {
    await this.#busy;
  }

  #add(lease: Lease): void {
    const key = leaseKey(lease);
    if (leaseBackendType(lease.attrs) !== "extension") {
      this.#once(`${key}\0type`, () => this.ctx.log.warn(`extension: ignoring peer ${key}: its BackendType is ${JSON.stringify(leaseBackendType(lease.attrs) || "udp/alloc")}, not "extension"`));
      return;
    }
    const old = this.#peers.get(key);
    if (old && old.added && sameAttrs(old.lease.attrs, lease.attrs)) return; // nothing new
    this.#peers.set(key, { lease, added: false });
  }

  #remove(key: string, entry: PeerEntry): void {
    this.#peers.delete(key);
    this.#removals.set(key, { lease: entry.lease, retry: entry.added });
  }

  #pending(): boolean {
    return this.#removals.size > 0 || [...this.#peers.values()].some((e) => !e.added);
  }

  #flush(): Promise<void> {
    this.#busy = this.#busy.then(() => this.#runPending());
    return this.#busy;
  }

  async #runPending(): Promise<void> {
    const { cfg } = this;
    for (const [key, removal] of [...this.#removals]) {
      if (this.ctx.signal.aborted) return;
      const ok = cfg.subnetRemove ? await this.#run("SubnetRemoveCommand", cfg.subnetRemove, key, removal.lease) : true;
      if (ok || !removal.retry) this.#removals.delete(key);
    }
    for (const [key, entry] of [...this.#peers]) {
      if (this.ctx.signal.aborted) return;
      if (entry.added) continue;
      const ok = cfg.subnetAdd ? await this.#run("SubnetAddCommand", cfg.subnetAdd, key, entry.lease) : true;
      if (ok && this.#peers.get(key) === entry) entry.added = true;
    }
  }

  /** Runs one peer command; logs a success, and each distinct failure once. */
  async #run(what: string, command: string, key: string, lease: Lease): Promise<boolean> {
    const { log, metrics } = this.ctx;
    const stdin = peerStdin(lease);
    if (stdin instanceof Error) {
      this.#once(`${key}\0${what}\0data`, () => log.error(`extension: not running ${what} for peer ${key}: ${stdin.message}`));
      metrics.error("extension_command");
      return false;
    }
    const r: ShellResult = await runShell(command, peerEnv(lease), stdin);
    if (r.ok) {
      log.info(`extension: ran ${what} for peer ${key} (${formatIPv4(lease.attrs.publicIP)}); output: ${r.output}`);
      for (const id of [...this.#logged]) if (id.startsWith(`${key}\0${what}\0`)) this.#logged.delete(id);
      return true;
    }
    metrics.error("extension_command");
    this.#once(`${key}\0${what}\0${r.status}\0${r.output}`, () =>
      log.error(`extension: ${what} for peer ${key} failed (${r.status}); will retry at the next change or check: ${command}\noutput: ${r.output}`));
    return false;
  }

  #once(id: string, say: () => void): void {
    if (this.#logged.has(id)) return;
    if (this.#logged.size >= 4096) this.#logged.clear(); // bounded; at worst a failure is logged again
    this.#logged.add(id);
    say();
  }
}
