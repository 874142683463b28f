/**
 * @module The etcd subnet manager: lease policy (src/lease/manager.ts) over a `Registry`, and
 * this host's own-lease lifecycle, which flanneld spreads over main.go: wait for the config
 * (retried every second), acquire (retried while etcd fails; final refusals are typed), renew
 * before expiry, follow re-puts of our key, take the key back when it is deleted, and watch the
 * peers (src/lease/watch.ts).
 */
import { type NetworkConfig, parseNetworkConfig } from "../config/network.ts";
import { type Lease, decodeLeaseAttrs, encodeLeaseAttrs } from "../lease/lease.ts";
import { LEASE_TTL_SECONDS, acquireLease, recordsToLeases, renewLeaseLoop, sleep } from "../lease/manager.ts";
import { LeaseWatcher } from "../lease/watch.ts";
import { WatchHealth } from "../lease/watch_health.ts";
import type { Logger } from "../log.ts";
import { EtcdPermissionError } from "../registry/etcd_errors.ts";
import type { Registry, SubnetRecord } from "../registry/types.ts";
import type { Metrics } from "../status/metrics.ts";
import {
  type AcquireRequest, LeaseAcquireError, LeaseLostError, type OwnLease, type PeerSink, type SourceHealth, type SubnetManager,
} from "./types.ts";

export interface EtcdManagerOptions {
  registry: Registry;
  log: Logger;
  metrics: Metrics;
  /** --subnet-lease-renew-margin, minutes. */
  renewMarginMinutes: number;
  /** Test-only: a short lease TTL (seconds) instead of flannel's 24 h. */
  leaseTTLSeconds?: number;
  /** Re-list interval of the lease watch, ms. */
  resyncMs?: number;
  /** Config wait: retry interval, ms (flannel: 1 s). */
  configRetryMs?: number;
}

export class EtcdSubnetManager implements SubnetManager {
  readonly kind = "etcd";
  lease?: OwnLease;
  #error?: string;
  #watcher?: LeaseWatcher;
  #peerTTL = new Map<string, number | null>(); // etcd lease id -> expiry ms
  /** Fires "change" when a re-put of our key changed the lease under the renewal loop. */
  readonly #leaseChanged = new EventTarget();
  /** Set when our lease is gone for good; `run()` rejects with it. */
  #lost?: LeaseLostError;
  readonly #lostSignal = new AbortController();

  constructor(readonly opts: EtcdManagerOptions) {}

  /** The peer watch's health, for /status, /metrics and the dashboard. */
  readonly watchHealth = new WatchHealth();

  get health(): SourceHealth {
    return { kind: "etcd", error: this.#error, watch: this.watchHealth };
  }

  get peers(): ReadonlyMap<string, Lease> {
    return this.#watcher?.peers ?? new Map();
  }

  get peersSynced(): boolean {
    return this.#watcher?.synced ?? false;
  }

  get #ttl(): number {
    return this.opts.leaseTTLSeconds ?? LEASE_TTL_SECONDS;
  }

  #setLease(l: OwnLease): void {
    this.lease = l;
    this.opts.metrics.leaseExpirationSeconds = l.expiration === null ? 0 : Math.floor(l.expiration / 1000);
  }

  #failed(e: unknown): string {
    this.#error = (e as Error).message ?? String(e);
    this.opts.metrics.error("etcd");
    return this.#error;
  }

  /** Reads `<prefix>/config`, waiting while it is absent or etcd is unreachable. */
  async networkConfig(signal: AbortSignal): Promise<NetworkConfig | undefined> {
    const { registry, log } = this.opts;
    const retry = this.opts.configRetryMs ?? 1000;
    let said = "";
    while (!signal.aborted) {
      let text: string | undefined;
      let ok = false;
      try {
        text = await registry.getConfig();
        this.#error = undefined;
        ok = true;
      } catch (e) {
        if (signal.aborted) break; // the registry abandoned the read: shutting down
        const msg = `cannot read the network config from etcd (retrying every ${retry} ms): ${this.#failed(e)}`;
        if (msg !== said) log.warn((said = msg));
      }
      if (text !== undefined) return parseNetworkConfig(text); // invalid: throws, exit 1
      if (ok && said !== "missing") {
        log.warn("flannel config not found in etcd store. Did you create your config using etcdv3 API? (waiting for it)");
        said = "missing";
      }
      await sleep(retry, signal);
    }
    return undefined;
  }

  /** etcd mode has no public IP override: the flags and the interface decide. */
  storedPublicIP(): Promise<{ publicIP?: number; publicIPv6?: bigint }> {
    return Promise.resolve({});
  }

  /** Our lease from before a restart (same public IP), so a backend can keep e.g. its VTEP MAC. */
  async storedLease(ext: { publicIP: number; publicIPv6?: bigint }): Promise<Lease | undefined> {
    try {
      const { records } = await this.opts.registry.listSubnets();
      return recordsToLeases(records, () => {}).find((l) =>
        ext.publicIP ? l.attrs.publicIP === ext.publicIP : l.attrs.publicIPv6 === ext.publicIPv6);
    } catch {
      return undefined; // acquisition will report etcd trouble
    }
  }

  /**
   * acquireLease(), retried while etcd fails (1 s doubling to 30 s) so a flaky store delays the
   * start instead of ending it. A LeaseAcquireError (network full, attempts used up) is final.
   */
  async acquireLease(req: AcquireRequest, signal: AbortSignal): Promise<OwnLease | undefined> {
    const { registry, log } = this.opts;
    for (let wait = 1000; !signal.aborted; wait = Math.min(wait * 2, 30_000)) {
      try {
        const lease = await acquireLease({ registry, log, ttlSeconds: this.#ttl, ...req });
        this.#error = undefined;
        this.#setLease(lease);
        return lease;
      } catch (e) {
        if (signal.aborted) break; // the registry abandoned the call: shutting down
        if (e instanceof LeaseAcquireError || e instanceof EtcdPermissionError) throw e;
        log.warn(`failed to acquire a lease (retrying in ${wait / 1000} s): ${this.#failed(e)}`);
        await sleep(wait, signal);
      }
    }
    return undefined;
  }

  /** Watches the peers, renews our lease and follows our key until `signal` aborts. */
  async run(sink: PeerSink, signal: AbortSignal): Promise<void> {
    const lease = this.lease;
    if (!lease) throw new Error("EtcdSubnetManager.run() before acquireLease()");
    const { registry, log, metrics } = this.opts;
    const stop = AbortSignal.any([signal, this.#lostSignal.signal]);
    this.#watcher = new LeaseWatcher({
      registry, ownKey: lease.key, log, metrics, signal: stop, resyncMs: this.opts.resyncMs, health: this.watchHealth,
      onSnapshot: (peers) => {
        for (const l of peers.values()) this.peerExpiration(l); // fetched now, so /status knows them at once
        return sink.snapshot(peers);
      },
      onEvents: (events, peers) => {
        for (const e of events) if (e.type === "added") this.peerExpiration(e.lease);
        return sink.events(events, peers);
      },
      onOwnLease: (record) => this.#ownLeaseChanged(record),
      onHealth: (error) => { this.#error = error; },
    });
    await Promise.all([
      this.#watcher.run(),
      renewLeaseLoop({
        registry, current: () => this.lease!, marginMs: this.opts.renewMarginMinutes * 60_000,
        ttlSeconds: this.#ttl, log, metrics, signal: stop,
        retryMs: this.opts.leaseTTLSeconds ? 1000 : 60_000,
        onRenewed: (l) => this.#setLease(l),
        changed: this.#leaseChanged,
      }),
    ]);
    if (this.#lost) throw this.#lost;
  }

  peerExpiration(l: Lease): number | null | undefined {
    const id = l.etcdLease;
    if (id === undefined || id === "0") return null;
    const known = this.#peerTTL.get(id);
    if (known === undefined) {
      // One entry per etcd lease seen: renewals replace leases, so forget old ones now and then.
      if (this.#peerTTL.size > 2 * this.peers.size + 64) this.#peerTTL.clear();
      this.#peerTTL.set(id, null);
      this.opts.registry.leaseTimeToLive(id)
        .then((ttl) => this.#peerTTL.set(id, ttl >= 0 ? Date.now() + ttl * 1000 : null))
        .catch(() => this.#peerTTL.delete(id));
      return undefined;
    }
    return known ?? undefined;
  }

  close(): Promise<void> {
    return this.opts.registry.close();
  }

  /**
   * Our key changed under us. A re-put (ours, or an admin's) gives the lease a new expiry, or
   * makes it a reservation (lease 0), and we adopt that, as flanneld does (compat §4).
   * We keep our own attributes: a re-put that advertises others (another public IP, another
   * VTEP) is logged, and our next renewal writes ours back (adopting them would make every
   * renewal re-advertise a stranger's address). A delete or expiry is answered by taking the same
   * subnet back, else `run()` ends with LeaseLostError so the agent exits non-zero and a
   * supervisor restarts it (flanneld exits 0 and stays down: §12.12).
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
        const shown = theirs.length <= 200 ? theirs : `${theirs.slice(0, 200)}… (${theirs.length} characters)`;
        log.warn(`lease ${lease.key} was re-put by another writer with ${shown}; this host keeps its own ${ours} ` +
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
    let why: string;
    try {
      const created = lease.expiration === null
        ? await registry.putSubnet(lease.key, encodeLeaseAttrs(lease.attrs), 0)
        : await registry.createSubnet(lease.key, encodeLeaseAttrs(lease.attrs), this.#ttl);
      if (created) {
        this.#setLease({ ...lease, etcdLease: created.lease, expiration: lease.expiration === null ? null : Date.now() + this.#ttl * 1000 });
        log.info(`Lease ${lease.key} re-acquired`);
        return;
      }
      why = `Lease has been revoked and ${lease.key} is now held by another host. Shutting down daemon.`;
    } catch (e) {
      why = `Lease has been revoked and could not be re-acquired (${(e as Error).message}). Shutting down daemon.`;
    }
    this.#lost = new LeaseLostError(why);
    this.#lostSignal.abort();
  }

  #healthLease?: string;

  async publishHealth(summary: string, ttlSeconds: number): Promise<void> {
    const { registry } = this.opts;
    if (!this.lease || !registry.putHealth) return;
    this.#healthLease = (await registry.putHealth(this.lease.key, summary, ttlSeconds, this.#healthLease)).lease;
  }

  async clusterHealth(): Promise<Map<string, string>> {
    return (await this.opts.registry.listHealth?.()) ?? new Map();
  }
}
