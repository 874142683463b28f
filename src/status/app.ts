/**
 * @module The status server (Hono): `/healthz` and `/readyz` with flanneld's texts (GET and HEAD
 * only, 405 otherwise, where flanneld answers any method: every probe uses GET), `/status` as JSON, `/metrics` in Prometheus text. The app reads an `AgentView` and
 * owns no state, so it is tested with `app.request()` and served by any runtime.
 */
import { Hono } from "hono";
import type { NetworkConfig } from "../config/network.ts";
import { type Lease, leaseBackendType, leaseKey } from "../lease/lease.ts";
import type { OwnLease } from "../lease/manager.ts";
import type { Flag, Refusal } from "../lease/admission.ts";
import type { WatchHealth } from "../lease/watch_health.ts";
import { formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net } from "../net/ip.ts";
import { addDashboard } from "./dashboard/index.ts";
import type { Metrics } from "./metrics.ts";

/** What the status server can see of the agent. */
export interface AgentView {
  readonly ready: boolean;
  readonly lease?: OwnLease;
  readonly config?: NetworkConfig;
  readonly backendType?: string;
  readonly publicIP?: string;
  readonly peers: ReadonlyMap<string, Lease>;
  /** Whether `peers` reflects a first full listing (false right after start). */
  readonly peersSynced?: boolean;
  /** Peer leases refused by admission (not programmed), by key, with the reason. */
  readonly refusedLeases?: ReadonlyMap<string, Refusal>;
  /** Peer leases programmed but flagged (a duplicate PublicIP), by key, with the reason. */
  readonly flaggedLeases?: ReadonlyMap<string, Flag>;
  /** Last etcd error, cleared on success; shown by the dashboard. */
  readonly etcdError?: string;
  /** Where the leases come from: "etcd" (default) or "kube" (the Kubernetes API); `etcdError` is its error. */
  readonly sourceKind?: string;
  /** The lease watch's health (absent: no watch; not healthy without an error: not started yet). */
  readonly watchHealth?: WatchHealth;
  readonly metrics: Metrics;
  /** Seconds left on a peer's etcd lease (cached by the agent), or undefined when unknown. */
  peerExpiration?(lease: Lease): number | null | undefined;
  /** Overlay health probes (src/health/prober.ts), when on. */
  readonly health?: { peerJSON(l: Lease): unknown; summary(): Record<string, unknown> };
  /** The data path as the backend describes it. */
  dataPath?(): Promise<Record<string, unknown>>;
}

/** udp and alloc leases carry no BackendType: name the network's own type for them. */
function typeOf(l: Lease, networkType: string | undefined): string {
  return leaseBackendType(l.attrs) || (networkType === "alloc" ? "alloc" : "udp");
}

function leaseJSON(l: Lease, expiration: number | null | undefined, networkType: string | undefined) {
  return {
    key: leaseKey(l),
    subnet: l.subnet ? formatIPv4Net(l.subnet) : null,
    ipv6Subnet: l.ipv6Subnet ? formatIPv6Net(l.ipv6Subnet) : null,
    publicIP: formatIPv4(l.attrs.publicIP),
    publicIPv6: l.attrs.publicIPv6 !== undefined ? formatIPv6(l.attrs.publicIPv6) : null,
    backendType: typeOf(l, networkType),
    backendData: l.attrs.backendData ?? null,
    backendV6Data: l.attrs.backendV6Data ?? null,
    expiration: expiration === undefined ? null : expiration === null ? "never" : new Date(expiration).toISOString(),
  };
}

/** Refused or flagged leases for `/status`, by key: the lease, the reason, the message, since when. */
function findingsJSON(found: ReadonlyMap<string, Refusal | Flag>, networkType: string | undefined) {
  return [...found.values()].sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0)).map((r) => ({
    ...leaseJSON(r.lease, undefined, networkType), reason: r.reason, message: r.message,
    conflictsWith: r.conflictsWith ?? null, since: new Date(r.since).toISOString(),
  }));
}

/**
 * etcd as this host sees it: `ok` only while the last call succeeded and the lease watch is not
 * lost (once established, it must stay on a member with a leader, else the peers may be stale);
 * before the watch starts (waiting for the config, acquiring the lease) the last call decides.
 */
function etcdJSON(view: AgentView) {
  const w = view.watchHealth?.state;
  const iso = (ms: number | undefined) => (ms === undefined ? null : new Date(ms).toISOString());
  const age = view.watchHealth?.lastResponseAgeSeconds(Date.now());
  return {
    ok: !view.etcdError && (w === undefined || w.healthy || w.error === undefined),
    error: view.etcdError ?? w?.error ?? null,
    watch: w ? {
      healthy: w.healthy,
      since: iso(w.since),
      error: w.error ?? null,
      endpoint: w.endpoint ?? null,
      lastEvent: iso(w.lastEventAt),
      lastProgress: iso(w.lastProgressAt),
      lastResponseAgeSeconds: age === undefined ? null : Math.round(age * 10) / 10,
    } : null,
  };
}

/** Builds the app. `extra` lets the dashboard add its routes to the same app. */
export function createStatusApp(view: AgentView): Hono {
  const app = new Hono();
  // Hono answers HEAD with the GET route, without the body.
  app.get("/healthz", (c) => c.text("flanneld is running"));
  app.get("/readyz", (c) => (view.ready ? c.text("flanneld is ready") : c.text("flanneld is not ready yet", 503)));
  for (const path of ["/healthz", "/readyz"]) {
    app.all(path, (c) => c.text(`method ${c.req.method} is not allowed on ${path}: use GET or HEAD\n`, 405, { allow: "GET, HEAD" }));
  }
  app.get("/status", async (c) => {
    const lease = view.lease;
    const cfg = view.config;
    const refused = view.refusedLeases ?? new Map<string, Refusal>();
    // By IPv4 subnet, then IPv6 subnet (an IPv6-only network has only the latter).
    const peers = [...view.peers.values()]
      .filter((l) => !refused.has(leaseKey(l)))
      .sort((a, b) => (a.subnet?.ip ?? 0) - (b.subnet?.ip ?? 0) || Number((a.ipv6Subnet?.ip ?? 0n) > (b.ipv6Subnet?.ip ?? 0n)) - Number((a.ipv6Subnet?.ip ?? 0n) < (b.ipv6Subnet?.ip ?? 0n)))
      .map((l) => ({ ...leaseJSON(l, view.peerExpiration?.(l), view.backendType), health: view.health?.peerJSON(l) ?? null }));
    return c.json({
      ready: view.ready,
      lease: lease ? { ...leaseJSON(lease, lease.expiration, view.backendType), reservation: lease.expiration === null } : null,
      network: cfg?.network ? formatIPv4Net(cfg.network) : null,
      ipv6Network: cfg?.ipv6Network ? formatIPv6Net(cfg.ipv6Network) : null,
      subnetLen: cfg?.network ? cfg.subnetLen : null,
      ipv6SubnetLen: cfg?.ipv6Network ? cfg.ipv6SubnetLen : null,
      backend: view.backendType ?? cfg?.backendType ?? null,
      publicIP: view.publicIP ?? null,
      publicIPv6: lease?.attrs.publicIPv6 !== undefined ? formatIPv6(lease.attrs.publicIPv6) : null,
      etcd: etcdJSON(view),
      source: view.sourceKind ?? "etcd",
      peersSynced: view.peersSynced ?? true,
      peers,
      health: view.health?.summary() ?? null,
      refusedLeases: findingsJSON(refused, view.backendType),
      flaggedLeases: findingsJSON(view.flaggedLeases ?? new Map(), view.backendType),
      dataPath: view.dataPath ? await view.dataPath().catch((e) => ({ error: String(e) })) : null,
    });
  });
  app.get("/metrics", (c) => c.text(view.metrics.render(), 200, { "content-type": "text/plain; version=0.0.4; charset=utf-8" }));
  addDashboard(app);
  return app;
}
