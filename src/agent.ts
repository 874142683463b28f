/**
 * @module The agent, one linear flow (compat §9 start-up order): status server → network config
 * (waited for) → interface → backend network → lease → subnet.env (ready) → peer watch and lease
 * renewal until the signal aborts → one shutdown path. Everything long-running takes the one
 * AbortSignal and is awaited on the way out.
 */
import { type NetworkConfig, NetworkConfigError, parseNetworkConfig } from "./config/network.ts";
import { getBackend } from "./backend/registry.ts";
import type { Network } from "./backend/types.ts";
import { type Lease, type LeaseAttrs, decodeLeaseAttrs, encodeLeaseAttrs } from "./lease/lease.ts";
import { NetworkFullError } from "./lease/allocate.ts";
import { LEASE_TTL_SECONDS, type OwnLease, acquireLease, recordsToLeases, renewLeaseLoop, sleep } from "./lease/manager.ts";
import { LeaseWatcher } from "./lease/watch.ts";
import { WatchHealth } from "./lease/watch_health.ts";
import type { Logger } from "./log.ts";
import { describeInterface, type ExternalInterface, type HostNetwork, type IfaceOptions, selectInterface } from "./net/iface.ts";
import { type IPv4Net, type IPv6Net, formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net, parseIPv4Net, parseIPv6Net } from "./net/ip.ts";
import type { Registry, SubnetRecord } from "./registry/types.ts";
import { type AgentView, createStatusApp } from "./status/app.ts";
import { Metrics } from "./status/metrics.ts";
import { type RunningServer, serve } from "./status/serve.ts";
import { readSubnetEnv, type SubnetEnv, writeSubnetEnv } from "./subnet_env.ts";
import type { TrafficManager } from "./traffic/index.ts";
import { sdNotify } from "./sd_notify.ts";

export interface AgentOptions {
  registry: Registry;
  log: Logger;
  iface: Omit<IfaceOptions, "enableIPv4" | "enableIPv6">;
  /** Snapshot of the host's interfaces and routes (injectable for tests). */
  hostNetwork: () => HostNetwork | Promise<HostNetwork>;
  subnetFile: string;
  renewMarginMinutes: number;
  ipMasq: boolean;
  /** --iptables-forward-rules, --ip-masq-fully-random-disable, --iptables-resync (seconds). */
  forwardRules: boolean;
  randomFullyDisabled: boolean;
  iptablesResyncSeconds: number;
  healthzIP: string;
  healthzPort: number;
  /** Test-only: a short lease TTL (seconds) instead of flannel's 24 h. */
  leaseTTLSeconds?: number;
  /** Re-list interval of the lease watch, ms. */
  resyncMs?: number;
  /** Backends' periodic kernel check, ms (default 10 s; tests shorten it). */
  checkIntervalMs?: number;
  /** Config wait: retry interval, ms (flannel: 1 s). */
  configRetryMs?: number;
  /** Extra routes on the status app (the dashboard). */
  extendApp?: (app: ReturnType<typeof createStatusApp>, view: AgentView) => void;
}

/** Why the agent stopped: 0 on a clean shutdown, 1 on a fatal error. */
export type ExitCode = 0 | 1;

export class Agent implements AgentView {
  ready = false;
  lease?: OwnLease;
  config?: NetworkConfig;
  backendType?: string;
  publicIP?: string;
  etcdError?: string;
  readonly metrics = new Metrics();
  readonly watchHealth = new WatchHealth();
  extIface?: ExternalInterface;
  network?: Network;
  traffic?: TrafficManager;
  server?: RunningServer;
  #watcher?: LeaseWatcher;
  #peerTTL = new Map<string, number | null>(); // etcd lease id -> expiry ms
  #exitCode: ExitCode = 0;
  readonly #stop = new AbortController();
  /** Fires "change" when a re-put of our key changed the lease under the renewal loop. */
  readonly #leaseChanged = new EventTarget();

  constructor(readonly opts: AgentOptions) {}

  get peers(): ReadonlyMap<string, Lease> {
    return this.#watcher?.peers ?? new Map();
  }

  get peersSynced(): boolean {
    return this.#watcher?.synced ?? false;
  }

  /** Stops the agent (as SIGTERM does). */
  stop(code: ExitCode = 0): void {
    if (code !== 0) this.#exitCode = code;
    this.#stop.abort();
  }

  get signal(): AbortSignal {
    return this.#stop.signal;
  }

  peerExpiration(l: Lease): number | null | undefined {
    if (l.etcdLease === undefined || l.etcdLease === "0") return null;
    const known = this.#peerTTL.get(l.etcdLease);
    if (known === undefined) {
      this.#peerTTL.set(l.etcdLease, null);
      this.opts.registry.leaseTimeToLive(l.etcdLease)
        .then((ttl) => this.#peerTTL.set(l.etcdLease!, ttl >= 0 ? Date.now() + ttl * 1000 : null))
        .catch(() => this.#peerTTL.delete(l.etcdLease!));
      return undefined;
    }
    return known ?? undefined;
  }

  async dataPath(): Promise<Record<string, unknown>> {
    const path = (await this.network?.describe?.()) ?? {};
    return this.traffic ? { ...path, rules: this.traffic.describe() } : path;
  }

  /** Runs until stopped or a fatal error. Resolves with the exit code; never throws. */
  async run(): Promise<ExitCode> {
    const { log } = this.opts;
    const signal = this.#stop.signal;
    try {
      await this.#startServer();
      const config = await this.#waitForConfig();
      if (!config) return this.#exitCode;
      this.config = config;
      this.backendType = config.backendType;

      const host = await this.opts.hostNetwork();
      const ext = selectInterface(host, { ...this.opts.iface, enableIPv4: config.enableIPv4, enableIPv6: config.enableIPv6 });
      this.extIface = ext;
      this.publicIP = formatIPv4(ext.extAddr);
      log.info(`Using interface ${describeInterface(ext)}`);

      const previousEnv = this.#readPreviousEnv();
      const previous = this.#previousSubnets(config, previousEnv);
      const backend = await getBackend(config.backendType);
      const previousLease = await this.#previousLease(ext);
      const network = await backend.createNetwork({ config, extIface: ext, log, metrics: this.metrics, signal, previousLease, checkIntervalMs: this.opts.checkIntervalMs });
      this.network = network;

      const attrs: LeaseAttrs = { publicIP: ext.extAddr, publicIPv6: ext.extAddr6, ...network.leaseAttrs };
      const lease = await this.#acquire({ registry: this.opts.registry, config, attrs, previous, log, ttlSeconds: this.#ttl });
      if (!lease) return this.#exitCode;
      this.#setLease(lease);
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
      await this.#writeSubnetEnv(config, lease, network.mtu);
      this.ready = true;
      await sdNotify("READY=1").catch((e) => log.warn(`sd_notify READY=1 failed: ${(e as Error).message}`));
      log.info(`Lease ${lease.key} held (${lease.expiration === null ? "reservation" : `until ${new Date(lease.expiration).toISOString()}`}); subnet file ${this.opts.subnetFile} written`);

      this.#watcher = new LeaseWatcher({
        registry: this.opts.registry, ownKey: lease.key, log, metrics: this.metrics, signal,
        resyncMs: this.opts.resyncMs, health: this.watchHealth,
        onSnapshot: (peers) => network.reconcile(peers),
        onEvents: (events) => network.apply(events),
        onOwnLease: (record) => this.#ownLeaseChanged(record),
        onHealth: (error) => { this.etcdError = error; },
      });
      await Promise.all([
        this.#watcher.run(),
        this.traffic?.run(),
        renewLeaseLoop({
          registry: this.opts.registry, current: () => this.lease!, marginMs: this.opts.renewMarginMinutes * 60_000,
          ttlSeconds: this.#ttl, log, metrics: this.metrics, signal,
          retryMs: this.opts.leaseTTLSeconds ? 1000 : 60_000,
          onRenewed: (l) => this.#setLease(l),
          changed: this.#leaseChanged,
        }),
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

  get #ttl(): number {
    return this.opts.leaseTTLSeconds ?? LEASE_TTL_SECONDS;
  }

  #setLease(l: OwnLease): void {
    this.lease = l;
    this.metrics.leaseExpirationSeconds = l.expiration === null ? 0 : Math.floor(l.expiration / 1000);
  }

  async #startServer(): Promise<void> {
    if (this.opts.healthzPort <= 0) return;
    const app = createStatusApp(this);
    this.opts.extendApp?.(app, this);
    this.server = await serve(app.fetch, this.opts.healthzIP, this.opts.healthzPort);
    this.opts.log.info(`Status server listening on http://${this.opts.healthzIP}:${this.server.port}/`);
  }

  /** Reads `<prefix>/config`, waiting while it is absent or etcd is unreachable. */
  async #waitForConfig(): Promise<NetworkConfig | undefined> {
    const { registry, log } = this.opts;
    const retry = this.opts.configRetryMs ?? 1000;
    let said = "";
    while (!this.#stop.signal.aborted) {
      let text: string | undefined;
      try {
        text = await registry.getConfig();
        this.etcdError = undefined;
      } catch (e) {
        this.etcdError = (e as Error).message;
        this.metrics.error("etcd");
        const msg = `cannot read the network config from etcd (retrying every ${retry} ms): ${this.etcdError}`;
        if (msg !== said) log.warn((said = msg));
      }
      if (text !== undefined) return parseNetworkConfig(text); // invalid: throws, exit 1
      if (this.etcdError === undefined && said !== "missing") {
        log.warn("flannel config not found in etcd store. Did you create your config using etcdv3 API? (waiting for it)");
        said = "missing";
      }
      await sleep(retry, this.#stop.signal);
    }
    return undefined;
  }

  /**
   * acquireLease(), retried while etcd fails (1 s doubling to 30 s) so a flaky store delays the
   * start instead of ending it. A full network or a bad lease policy outcome is final.
   */
  async #acquire(opts: Parameters<typeof acquireLease>[0]): Promise<OwnLease | undefined> {
    for (let wait = 1000; !this.#stop.signal.aborted; wait = Math.min(wait * 2, 30_000)) {
      try {
        const lease = await acquireLease(opts);
        this.etcdError = undefined;
        return lease;
      } catch (e) {
        if (e instanceof NetworkFullError || /max retries reached/.test((e as Error).message)) throw e;
        this.etcdError = (e as Error).message;
        this.metrics.error("etcd");
        this.opts.log.warn(`failed to acquire a lease (retrying in ${wait / 1000} s): ${this.etcdError}`);
        await sleep(wait, this.#stop.signal);
      }
    }
    return undefined;
  }

  /** Our lease from before a restart (same public IP), so a backend can keep e.g. its VTEP MAC. */
  async #previousLease(ext: ExternalInterface): Promise<Lease | undefined> {
    try {
      const { records } = await this.opts.registry.listSubnets();
      return recordsToLeases(records, () => {}).find((l) =>
        ext.extAddr ? l.attrs.publicIP === ext.extAddr : l.attrs.publicIPv6 === ext.extAddr6);
    } catch {
      return undefined; // acquisition will report etcd trouble
    }
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

  /**
   * Our key changed under us. A re-put (ours, or an admin's) gives the lease a new expiry, or
   * makes it a reservation (lease 0), and we adopt that, as flanneld does (compat §4).
   * We keep our own attributes: a re-put that advertises others (another public IP, another
   * VTEP) is logged, and our next renewal writes ours back (adopting them would make every
   * renewal re-advertise a stranger's address). A delete or expiry is answered by taking the same
   * subnet back, else by a non-zero exit so a supervisor restarts us (flanneld exits 0 and stays
   * down: §12.12).
   */
  async #ownLeaseChanged(record: SubnetRecord | undefined): Promise<void> {
    const lease = this.lease;
    if (!lease) return;
    const { log, registry } = this.opts;
    if (record) {
      const ours = encodeLeaseAttrs(lease.attrs);
      let theirs: string;
      try {
        theirs = encodeLeaseAttrs(decodeLeaseAttrs(record.key, record.value));
      } catch (e) {
        theirs = `an unreadable value (${(e as Error).message})`;
      }
      if (theirs !== ours) {
        log.warn(`lease ${lease.key} was re-put by another writer with ${theirs}; this host keeps its own ${ours} ` +
          `and writes it back at its next renewal`);
      }
      if (record.lease === lease.etcdLease) return;
      let expiration: number | null = null;
      if (record.lease !== "0") {
        const ttl = await registry.leaseTimeToLive(record.lease).catch(() => -1);
        expiration = ttl >= 0 ? Date.now() + ttl * 1000 : lease.expiration;
      }
      if (this.lease !== lease) return; // renewed or re-acquired meanwhile
      // The renewal revokes this lease once the key is off it, unless it still holds other keys
      // (Registry.putSubnet): a lease another writer granted may.
      this.#setLease({ ...lease, etcdLease: record.lease, expiration });
      this.#leaseChanged.dispatchEvent(new Event("change"));
      return;
    }
    log.warn(`Lease ${lease.key} has been revoked; taking it back`);
    try {
      const created = lease.expiration === null
        ? await registry.putSubnet(lease.key, encodeLeaseAttrs(lease.attrs), 0)
        : await registry.createSubnet(lease.key, encodeLeaseAttrs(lease.attrs), this.#ttl);
      if (created) {
        this.#setLease({ ...lease, etcdLease: created.lease, expiration: lease.expiration === null ? null : Date.now() + this.#ttl * 1000 });
        log.info(`Lease ${lease.key} re-acquired`);
        return;
      }
      log.error(`Lease has been revoked and ${lease.key} is now held by another host. Shutting down daemon.`);
    } catch (e) {
      log.error(`Lease has been revoked and could not be re-acquired (${(e as Error).message}). Shutting down daemon.`);
    }
    this.stop(1);
  }

  async #shutdown(): Promise<void> {
    this.#stop.abort();
    this.ready = false;
    await this.network?.close().catch((e) => this.opts.log.warn(`closing the backend: ${e}`));
    await this.server?.close().catch(() => {});
    await this.opts.registry.close().catch(() => {});
    if (this.#exitCode === 0) this.opts.log.info("Exiting cleanly...");
  }
}
