/**
 * @module The two contracts that carry the agent (flannel's pkg/backend/common.go): a Backend
 * is registered by name and turns the network config into a Network; a Network says what to
 * advertise in our lease and the device MTU, then programs the data path for the peers.
 *
 * Lifecycle, driven by main: `createNetwork()` (devices exist, MTU known) → lease acquired →
 * `start(lease)` → `reconcile(peers)` once after the first snapshot (removes what no lease
 * explains, §12.5) → `apply(events)` for every change → `close()` at shutdown.
 */
import type { NetworkConfig } from "../config/network.ts";
import type { Lease, LeaseAttrs, LeaseEvent } from "../lease/lease.ts";
import type { Logger } from "../log.ts";
import type { ExternalInterface } from "../net/iface.ts";
import type { Metrics } from "../status/metrics.ts";

export interface BackendContext {
  config: NetworkConfig;
  extIface: ExternalInterface;
  log: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** The lease this host held before, from etcd or subnet.env (e.g. to keep the VTEP MAC). */
  previousLease?: Lease;
  /** Period of the backends' kernel-state check (missing routes re-added), ms; default 10 000. */
  checkIntervalMs?: number;
}

/** A live data path for one network. */
export interface Network {
  /** BackendType/BackendData(V6) to advertise; PublicIP(v6) are filled in by main. */
  readonly leaseAttrs: Omit<LeaseAttrs, "publicIP" | "publicIPv6">;
  /** The device MTU, written to subnet.env as FLANNEL_MTU. */
  readonly mtu: number;
  /** The devices this data path sends through, whose counters `/metrics` exports. */
  readonly devices?: readonly string[];
  /** Our lease is held: configure what depends on it (device addresses, routes). */
  start(lease: Lease): Promise<void>;
  /** The first full view of the peers: program them and remove stale kernel state. */
  reconcile(peers: ReadonlyMap<string, Lease>): Promise<void>;
  /** Apply peer changes in order. Must not throw for one bad peer: log and count instead. */
  apply(events: readonly LeaseEvent[]): Promise<void>;
  /** What the dashboard shows about this host's data path (routes, counters). */
  describe?(): Promise<Record<string, unknown>>;
  /** Stop background work; leave kernel state in place (restarts cause no downtime). */
  close(): Promise<void>;
}

export interface Backend {
  /** The `Backend.Type` it serves, lower-case. */
  readonly type: string;
  createNetwork(ctx: BackendContext): Promise<Network>;
}
