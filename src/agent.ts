/**
 * @module The agent, one linear flow (compat §9 start-up order): status server → network config
 * (waited for) → interface → backend network → lease → subnet.env (ready) → peers and our lease
 * kept until the signal aborts → one shutdown path. Where leases come from (etcd or Kubernetes)
 * is the subnet manager's business (src/subnet/types.ts); everything long-running takes the one
 * AbortSignal and is awaited on the way out.
 */
import { NetworkConfigError, type NetworkConfig } from "./config/network.ts";
import { deviceFamilies } from "./backend/device_counters.ts";
import { getBackend } from "./backend/registry.ts";
import type { Network } from "./backend/types.ts";
import type { OwnedNet } from "./blackhole.ts";
import type { Lease, LeaseAttrs } from "./lease/lease.ts";
import type { WatchHealth } from "./lease/watch_health.ts";
import { type Flag, type Refusal, admissionSelf } from "./lease/admission.ts";
import { PeerGate } from "./lease/peer_gate.ts";
import type { Logger } from "./log.ts";
import { describeInterface, type ExternalInterface, type HostNetwork, type IfaceOptions, selectInterface } from "./net/iface.ts";
import { type IPv4Net, type IPv6Net, formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net, parseIPv4Net, parseIPv6Net } from "./net/ip.ts";
import { type AgentView, createStatusApp } from "./status/app.ts";
import { Metrics } from "./status/metrics.ts";
import { type RunningServer, serve } from "./status/serve.ts";
import { readSubnetEnv, type SubnetEnv, writeSubnetEnv } from "./subnet_env.ts";
import type { OwnLease, SubnetManager } from "./subnet/types.ts";
import type { TrafficManager } from "./traffic/index.ts";
import { sdNotify } from "./sd_notify.ts";
import { sleep } from "./lease/manager.ts";
import { type HealthOptions, HealthProber } from "./health/prober.ts";

export interface AgentOptions {
  /** Where the leases come from (etcd or Kubernetes). The agent closes it on the way out. */
  manager: SubnetManager;
  log: Logger;
  /** The metrics the manager also counts into (one set per agent). */
  metrics?: Metrics;
  iface: Omit<IfaceOptions, "enableIPv4" | "enableIPv6">;
  /** Snapshot of the host's interfaces and routes (injectable for tests). */
  hostNetwork: () => HostNetwork | Promise<HostNetwork>;
  subnetFile: string;
  ipMasq: boolean;
  /** --iptables-forward-rules, --ip-masq-fully-random-disable, --iptables-resync (seconds). */
  forwardRules: boolean;
  randomFullyDisabled: boolean;
  iptablesResyncSeconds: number;
  /** --ip-blackhole-route: drop traffic for pod addresses nobody serves (src/blackhole.ts). */
  blackholeRoute?: boolean;
  healthzIP: string;
  healthzPort: number;
  /** Backends' periodic kernel check, ms (default 10 s; tests shorten it). */
  checkIntervalMs?: number;
  /** Overlay health probes (src/health/prober.ts); off when absent or port 0. */
  health?: HealthOptions;
  /** Extra routes on the status app (the dashboard). */
  extendApp?: (app: ReturnType<typeof createStatusApp>, view: AgentView) => void;
}

/** Why the agent stopped: 0 on a clean shutdown, 1 on a fatal error. */
export type ExitCode = 0 | 1;

export class Agent implements AgentView {
  ready = false;
  config?: NetworkConfig;
  backendType?: string;
  publicIP?: string;
  readonly metrics: Metrics;
  extIface?: ExternalInterface;
  network?: Network;
  traffic?: TrafficManager;
  server?: RunningServer;
  health?: HealthProber;
  #gate?: PeerGate;
  #exitCode: ExitCode = 0;
  readonly #stop = new AbortController();

  constructor(readonly opts: AgentOptions) {
    this.metrics = opts.metrics ?? new Metrics();
    this.metrics.register("weft_ready", { type: "gauge", help: "1 once the lease is held and subnet.env written (/readyz), else 0.", samples: () => [[{}, this.ready ? 1 : 0]] });
    this.metrics.register("weft_lease_info", {
      type: "gauge", help: "This host's lease (value 1), labelled by subnet(s), backend and where leases come from.",
      samples: () => {
        const l = this.lease;
        if (!l) return [];
        const subnet = l.subnet ? formatIPv4Net(l.subnet) : "";
        const ipv6_subnet = l.ipv6Subnet ? formatIPv6Net(l.ipv6Subnet) : "";
        return [[{ subnet, ipv6_subnet, backend: this.backendType ?? "", source: opts.manager.kind }, 1]];
      },
    });
  }

  get lease(): OwnLease | undefined {
    return this.opts.manager.lease;
  }

  get peers(): ReadonlyMap<string, Lease> {
    return this.opts.manager.peers;
  }

  get refusedLeases(): ReadonlyMap<string, Refusal> | undefined {
    return this.#gate?.refused;
  }

  get flaggedLeases(): ReadonlyMap<string, Flag> | undefined {
    return this.#gate?.flagged;
  }

  get peersSynced(): boolean {
    return this.opts.manager.peersSynced;
  }

  get etcdError(): string | undefined {
    return this.opts.manager.health.error;
  }

  get sourceKind(): string {
    return this.opts.manager.kind;
  }

  get watchHealth(): WatchHealth | undefined {
    return this.opts.manager.health.watch;
  }

  peerExpiration(l: Lease): number | null | undefined {
    return this.opts.manager.peerExpiration(l);
  }

  /** Stops the agent (as SIGTERM does). */
  stop(code: ExitCode = 0): void {
    if (code !== 0) this.#exitCode = code;
    this.#stop.abort();
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  async dataPath(): Promise<Record<string, unknown>> {
    const path = (await this.network?.describe?.()) ?? {};
    return this.traffic ? { ...path, rules: this.traffic.describe() } : path;
  }

  /** Runs until stopped or a fatal error. Resolves with the exit code; never throws. */
  async run(): Promise<ExitCode> {
    const { log, manager } = this.opts;
    const signal = this.#stop.signal;
    try {
      await this.#startServer();
      const config = await manager.networkConfig(signal);
      if (!config) return this.#exitCode;
      this.config = config;
      this.backendType = config.backendType;

      const host = await this.opts.hostNetwork();
      const stored = await manager.storedPublicIP();
      const ext = selectInterface(host, {
        ...this.opts.iface, enableIPv4: config.enableIPv4, enableIPv6: config.enableIPv6,
        ...(stored.publicIP !== undefined ? { publicIP: formatIPv4(stored.publicIP) } : {}),
        ...(stored.publicIPv6 !== undefined ? { publicIPv6: formatIPv6(stored.publicIPv6) } : {}),
      });
      this.extIface = ext;
      this.publicIP = formatIPv4(ext.extAddr);
      log.info(`Using interface ${describeInterface(ext)}`);

      const previousEnv = this.#readPreviousEnv();
      const backend = await getBackend(config.backendType);
      const previousLease = await manager.storedLease({ publicIP: ext.extAddr, publicIPv6: ext.extAddr6 });
      const network = await backend.createNetwork({ config, extIface: ext, log, metrics: this.metrics, signal, previousLease, checkIntervalMs: this.opts.checkIntervalMs });
      this.network = network;
      for (const [name, family] of deviceFamilies(() => network.devices ?? [])) this.metrics.register(name, family);

      const attrs: LeaseAttrs = { publicIP: ext.extAddr, publicIPv6: ext.extAddr6, ...network.leaseAttrs };
      const lease = await manager.acquireLease({ config, attrs, previous: this.#previousSubnets(config, previousEnv) }, signal);
      if (!lease) return this.#exitCode;
      await network.start(lease);
      // Masquerade and forward rules after the lease, before subnet.env (compat §9). With both
      // off, flanneld touches no firewall, and neither does weft.
      if (this.opts.ipMasq || this.opts.forwardRules) {
        const { setupTrafficRules } = await import("./traffic/index.ts");
        this.traffic = await setupTrafficRules({
          config, lease, ipMasq: this.opts.ipMasq, forwardRules: this.opts.forwardRules,
          randomFullyDisabled: this.opts.randomFullyDisabled, resyncSeconds: this.opts.iptablesResyncSeconds,
          previous: previousEnv, log, metrics: this.metrics, signal,
        });
      }
      if (this.opts.blackholeRoute) {
        const { startBlackholeRoutes } = await import("./blackhole.ts");
        await startBlackholeRoutes({
          config, lease, previousNetworks: this.#previousNetworks(previousEnv), resyncSeconds: this.opts.iptablesResyncSeconds, log, signal,
        });
      }
      await this.#writeSubnetEnv(config, lease, network.mtu);
      this.ready = true;
      await sdNotify("READY=1").catch((e) => log.warn(`sd_notify READY=1 failed: ${(e as Error).message}`));
      log.info(`Lease ${lease.key} held (${lease.expiration === null ? "no expiry" : `until ${new Date(lease.expiration).toISOString()}`}); subnet file ${this.opts.subnetFile} written`);

      const gate = (this.#gate = new PeerGate({ config, own: admissionSelf(lease, host), log, metrics: this.metrics }));
      if (this.opts.health) this.health = await HealthProber.start(this.opts.health, this, log, this.metrics, manager);
      await Promise.all([
        manager.run({ snapshot: (peers) => network.reconcile(gate.snapshot(peers)), events: (events) => network.apply(gate.apply(events)) }, signal),
        this.traffic?.run(),
      ]);
    } catch (e) {
      if (!signal.aborted || !(e instanceof Error && e.name === "AbortError")) {
        log.error(e instanceof NetworkConfigError ? e.message : `${(e as Error).message ?? e}`);
        this.#exitCode = 1;
      }
    } finally {
      await this.#shutdown();
    }
    return this.#exitCode;
  }

  async #startServer(): Promise<void> {
    if (this.opts.healthzPort <= 0) return;
    const app = createStatusApp(this);
    this.opts.extendApp?.(app, this);
    const server = (this.server = await serve(app.fetch, this.opts.healthzIP, this.opts.healthzPort));
    this.metrics.register("weft_status_connections", { type: "gauge", help: "Connections open to the status server.", samples: () => [[{}, server.stats().open]] });
    this.metrics.register("weft_status_connections_refused_total", {
      type: "counter", help: "Connections the status server closed at once because its connection limit was reached.",
      samples: () => [[{}, server.stats().refused]],
    });
    this.opts.log.info(`Status server listening on http://${this.opts.healthzIP}:${this.server.port}/`);
  }

  /** The subnet.env of the previous run, if readable. */
  #readPreviousEnv(): SubnetEnv | undefined {
    try {
      return readSubnetEnv(this.opts.subnetFile);
    } catch (e) {
      this.opts.log.warn(`${(e as Error).message}; not reusing the previous subnet`);
      return undefined;
    }
  }

  /** The subnets of the previous subnet.env, masked, one entry each (compat §3 step 3). */
  #previousSubnets(config: NetworkConfig, env: SubnetEnv | undefined): { subnet?: IPv4Net; ipv6Subnet?: IPv6Net } | undefined {
    if (!env) return undefined;
    const out: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net } = {};
    try {
      if (config.enableIPv4 && env.subnet) out.subnet = parseIPv4Net(env.subnet.split(",")[0]!, "FLANNEL_SUBNET");
      if (config.enableIPv6 && env.ipv6Subnet) out.ipv6Subnet = parseIPv6Net(env.ipv6Subnet.split(",")[0]!, "FLANNEL_IPV6_SUBNET");
    } catch (e) {
      this.opts.log.warn(`${this.opts.subnetFile}: ${(e as Error).message}; not reusing the previous subnet`);
      return undefined;
    }
    return out.subnet || out.ipv6Subnet ? out : undefined;
  }

  /** The cluster networks of the previous subnet.env (their stale blackholes are ours to remove). */
  #previousNetworks(env: SubnetEnv | undefined): OwnedNet[] {
    const out: OwnedNet[] = [];
    for (const n of env?.network?.split(",") ?? []) {
      try { out.push({ v4: parseIPv4Net(n.trim()) }); } catch { /* not ours to guess */ }
    }
    for (const n of env?.ipv6Network?.split(",") ?? []) {
      try { out.push({ v6: parseIPv6Net(n.trim()) }); } catch { /* not ours to guess */ }
    }
    return out;
  }

  /** Writes subnet.env; retried, then fatal (flanneld only warns and never gets ready: §12.14). */
  async #writeSubnetEnv(config: NetworkConfig, lease: OwnLease, mtu: number): Promise<void> {
    const env = {
      network: config.network ? formatIPv4Net(config.network) : undefined,
      subnet: lease.subnet ? `${formatIPv4(lease.subnet.ip + 1)}/${lease.subnet.len}` : undefined,
      ipv6Network: config.ipv6Network ? formatIPv6Net(config.ipv6Network) : undefined,
      ipv6Subnet: lease.ipv6Subnet ? `${formatIPv6(lease.ipv6Subnet.ip + 1n)}/${lease.ipv6Subnet.len}` : undefined,
      mtu,
      ipMasq: this.opts.ipMasq,
    };
    for (let attempt = 1; ; attempt++) {
      try {
        writeSubnetEnv(this.opts.subnetFile, env);
        return;
      } catch (e) {
        this.metrics.error("subnet_file");
        if (attempt >= 5) throw new Error(`cannot write subnet file ${this.opts.subnetFile}: ${(e as Error).message}`);
        this.opts.log.warn(`writing subnet file ${this.opts.subnetFile} failed (attempt ${attempt}/5): ${(e as Error).message}`);
        await sleep(200 * attempt, this.#stop.signal);
      }
    }
  }

  async #shutdown(): Promise<void> {
    this.#stop.abort();
    this.ready = false;
    await this.health?.close();
    await this.network?.close().catch((e) => this.opts.log.warn(`closing the backend: ${e}`));
    await this.server?.close().catch(() => {});
    await this.opts.manager.close().catch(() => {});
    if (this.#exitCode === 0) this.opts.log.info("Exiting cleanly...");
  }
}
