/**
 * @module The subnet manager contract (flannel's `subnet.Manager`): where this host's lease and
 * its peers' leases come from. Two implementations: etcd (`etcd.ts`, lease policy over a
 * `Registry`) and Kubernetes (`kube.ts`: the Node's `spec.podCIDR(s)`, advertised through Node
 * annotations). The agent, the backends, subnet.env, the status server and the CNI plugin see
 * leases only, never where they came from.
 *
 * Lifecycle, driven by the agent (one linear flow):
 *   1. `networkConfig(signal)`  — waits while the config is missing or the store unreachable;
 *   2. `storedPublicIP()`       — a public IP the store overrides (kube annotations), if any;
 *   3. `storedLease(ext)`       — what this host advertised before (VTEP MACs kept across restarts);
 *   4. `acquireLease(req, signal)` — our lease, retried while the store fails; a final refusal
 *      throws `LeaseAcquireError`;
 *   5. `run(sink, signal)`      — keeps our lease (etcd: renewal, taking it back when deleted;
 *      kube: NetworkUnavailable) and feeds the peers to `sink` (one snapshot, then events) until
 *      the signal aborts; rejects with `LeaseLostError` when our lease is gone for good;
 *   6. `close()`.
 */
import type { NetworkConfig } from "../config/network.ts";
import type { Lease, LeaseAttrs, LeaseEvent } from "../lease/lease.ts";
import type { WatchHealth } from "../lease/watch_health.ts";
import type { IPv4Net, IPv6Net } from "../net/ip.ts";

/** The lease this host holds. */
export interface OwnLease extends Lease {
  /** Its key, e.g. `10.5.34.0-24` (the etcd key suffix; in kube mode the same form, for display). */
  key: string;
}

/** Where the backend's peers go: the first full view, then every change in order. */
export interface PeerSink {
  snapshot(peers: ReadonlyMap<string, Lease>): Promise<void>;
  events(events: readonly LeaseEvent[], peers: ReadonlyMap<string, Lease>): Promise<void>;
}

/** What the agent asks for when it acquires its lease. */
export interface AcquireRequest {
  config: NetworkConfig;
  /** What to advertise: public IP(s) and the backend's type and data. */
  attrs: LeaseAttrs;
  /** The subnet(s) of the previous subnet.env, masked (flannel reuses them when free). */
  previous?: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net };
}

/** Whether the lease source answers, for /status, /metrics and the dashboard. */
export interface SourceHealth {
  /** "etcd" or "kube". */
  readonly kind: string;
  /** The last error in a user's words (what failed, where, why), cleared on success. */
  readonly error?: string;
  /** The peer watch's health (etcd: src/lease/watch_health.ts), when the source keeps one. */
  readonly watch?: WatchHealth;
}

export interface SubnetManager {
  /** "etcd" or "kube": what `weft leases`/`weft config` and the logs call it. */
  readonly kind: "etcd" | "kube";
  /** The network config; waits (logging once per change) while it is missing or unreachable.
   * Resolves undefined when `signal` aborts; throws `NetworkConfigError` for an invalid one. */
  networkConfig(signal: AbortSignal): Promise<NetworkConfig | undefined>;
  /** Public IPs the store overrides for this host (kube: `node-public-ip(v6)`), else empty. */
  storedPublicIP(): Promise<{ publicIP?: number; publicIPv6?: bigint }>;
  /** The lease this host advertised before (same public IP / own Node), if any. Never throws. */
  storedLease(ext: { publicIP: number; publicIPv6?: bigint }): Promise<Lease | undefined>;
  /** Our lease; waits while the store fails. Undefined when `signal` aborts. */
  acquireLease(req: AcquireRequest, signal: AbortSignal): Promise<OwnLease | undefined>;
  /** Keeps our lease and feeds the peers to `sink` until `signal` aborts. */
  run(sink: PeerSink, signal: AbortSignal): Promise<void>;
  /** Our lease as it is now (renewals and re-puts change it). */
  readonly lease?: OwnLease;
  /** The peers as last seen (our own excluded). */
  readonly peers: ReadonlyMap<string, Lease>;
  /** True once the first full listing of the peers was delivered. */
  readonly peersSynced: boolean;
  readonly health: SourceHealth;
  /** Expiry of a peer's lease (epoch ms), null for none, undefined while unknown. */
  peerExpiration(lease: Lease): number | null | undefined;
  close(): Promise<void>;
  /**
   * Optional (overlay health): publishes this host's compact health summary where the other
   * agents read it (etcd: `<prefix>/health/<our key>`, expiring after `ttlSeconds`). Kube mode
   * leaves it out: a Node annotation updated every few seconds would wake every Node watcher.
   */
  publishHealth?(summary: string, ttlSeconds: number): Promise<void>;
  /** Optional: every host's published summary, by lease key. */
  clusterHealth?(): Promise<Map<string, string>>;
}

/** The lease cannot be had, and retrying will not change that (network full, permission, podCIDR). */
export class LeaseAcquireError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LeaseAcquireError";
  }
}

/** Our lease was removed and could not be taken back: the agent exits non-zero (§12.12). */
export class LeaseLostError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "LeaseLostError";
  }
}
