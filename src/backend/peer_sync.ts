/**
 * @module PeerSync: the thin edge shared by the route backends (vxlan, host-gw). It keeps the
 * accepted peer leases, turns them into desired kernel entries through the backend's pure
 * `entriesFor`, plans against what is there (route_plan.ts) and applies the plan with one
 * batched netlink request list. It never replays: whatever is already right is not touched.
 *
 * Flow:
 * 1. `apply(events)` updates the peer set and plans against the last applied state (before the
 *    first reconcile, against the kernel, additions only: the view may be partial).
 * 2. `reconcile(peers)` replaces the peer set and plans against a kernel dump, deletions
 *    included (stale entries of peers that vanished while weft was down, §12.5).
 * 3. `check()` (every 10 s) re-adds what went missing from the kernel; `reprogram()` after a
 *    device was recreated (§12.13).
 * Failed requests are logged and counted, never thrown: the next check retries them.
 */
import {
  type NetlinkRequest, type NetlinkSocket, RTN_UNICAST, fdbDelRequest, fdbList, fdbReplaceRequest,
  neighDelRequest, neighList, neighReplaceRequest, routeDelRequest, routeList, routeReplaceRequest,
} from "../../ffi/netlink/index.ts";
import { type Lease, type LeaseEvent, leaseBackendType, leaseKey, showValue } from "../lease/lease.ts";
import type { Logger } from "../log.ts";
import { containsV4Net, containsV6Net, formatIPv4Net, formatIPv6Net, overlapsV4, overlapsV6 } from "../net/ip.ts";
import type { Metrics } from "../status/metrics.ts";
import {
  type DataPathState, type FdbItem, type NeighItem, type Plan, type PlanScope, type RouteItem,
  additionsOnly, fdbKey, mergeStates, neighKey, planDataPath, routeKey,
} from "./route_plan.ts";

const ENOENT = 2;
const ESRCH = 3;

export interface PeerSyncOptions {
  readonly nl: NetlinkSocket;
  readonly log: Logger;
  readonly metrics: Metrics;
  /** The BackendType this network serves; peer leases of another type are ignored (§6). */
  readonly backendType: string;
  /**
   * The cluster Network(s) and our subnet(s): what may be deleted, and which families this
   * network programs (IPv4 when `network` is set, IPv6 when `network6` is).
   */
  readonly scope: PlanScope;
  /** The kernel entries one peer needs, or why its lease is skipped. Called once per lease version. */
  entriesFor(lease: Lease): DataPathState | string;
  /** What the kernel has now on this backend's devices (routes, neighbours, FDB). */
  readActual(): DataPathState;
}

/** What one plan execution did. */
export interface SyncResult {
  readonly added: number;
  readonly deleted: number;
  readonly failed: number;
}

export class PeerSync {
  /** Accepted peer leases by key. */
  readonly peers = new Map<string, Lease>();
  readonly #entries = new Map<string, DataPathState>();
  /** Why a lease is skipped, by key, so each reason is logged once. */
  readonly #skipped = new Map<string, string>();
  /** What the kernel holds of ours, as far as we know; undefined: unknown, read it. */
  #applied: DataPathState | undefined;
  /** reconcile() ran: the peer set is complete, so strays may be deleted. */
  #synced = false;

  constructor(private readonly opts: PeerSyncOptions) {}

  /** The whole desired state for the accepted peers. */
  desired(): DataPathState {
    const states: DataPathState[] = [];
    for (const [key, lease] of this.peers) {
      let s = this.#entries.get(key);
      if (!s) {
        const r = this.opts.entriesFor(lease);
        if (typeof r === "string") {
          this.#skip(key, r, "malformed_lease");
          continue;
        }
        s = r;
        this.#entries.set(key, s);
      }
      states.push(s);
    }
    return mergeStates(states);
  }

  /** The first full view of the peers: program them and remove kernel state no lease explains. Never throws. */
  reconcile(peers: ReadonlyMap<string, Lease>): SyncResult {
    return this.#guard("reconciling peers", () => this.#reconcile(peers));
  }

  /** Applies peer changes in order. Never throws for a bad peer, a refused request or a netlink failure. */
  apply(events: readonly LeaseEvent[]): SyncResult {
    return this.#guard(`applying ${events.length} lease events`, () => this.#apply(events));
  }

  /** Re-adds desired entries missing from the kernel (deletes nothing). */
  check(): SyncResult {
    return this.#guard("checking kernel entries", () => {
      const desired = this.desired();
      const r = this.#execute(additionsOnly(planDataPath(desired, this.opts.readActual(), this.opts.scope)), desired);
      if (r.added || r.failed) this.opts.log.warn(`${this.opts.backendType}: ${r.added} missing kernel entries re-added${r.failed ? `, ${r.failed} failed` : ""}`);
      return r;
    });
  }

  /** Recomputes every peer's entries (a device index changed) and programs them against the kernel. */
  reprogram(): SyncResult {
    return this.#guard("re-programming peers", () => {
      this.#entries.clear();
      const desired = this.desired();
      const plan = planDataPath(desired, this.opts.readActual(), this.opts.scope);
      return this.#execute(this.#synced ? plan : additionsOnly(plan), desired);
    });
  }

  #guard(what: string, f: () => SyncResult): SyncResult {
    try {
      return f();
    } catch (e) {
      this.#applied = undefined; // unknown now: the next plan re-reads the kernel
      this.opts.metrics.error("netlink");
      this.opts.log.error(`${this.opts.backendType}: ${what} failed: ${(e as Error).message ?? e}`);
      return { added: 0, deleted: 0, failed: 1 };
    }
  }

  #reconcile(peers: ReadonlyMap<string, Lease>): SyncResult {
    this.peers.clear();
    this.#entries.clear();
    for (const lease of peers.values()) this.#admit(lease);
    const desired = this.desired();
    this.#synced = true; // the peer set is complete from now on, whatever the kernel says next
    const r = this.#execute(planDataPath(desired, this.opts.readActual(), this.opts.scope), desired);
    this.opts.log.info(`${this.opts.backendType}: reconciled ${this.peers.size} peers with the kernel (${r.added} entries added, ${r.deleted} stale removed${r.failed ? `, ${r.failed} failed` : ""})`);
    return r;
  }

  #apply(events: readonly LeaseEvent[]): SyncResult {
    let added = 0;
    let removed = 0;
    for (const e of events) {
      const key = leaseKey(e.lease);
      this.#entries.delete(key);
      if (e.type === "removed") {
        if (this.peers.delete(key)) removed++;
        this.#skipped.delete(key);
      } else if (this.#admit(e.lease)) added++;
      else this.peers.delete(key);
    }
    const desired = this.desired();
    const plan = planDataPath(desired, this.#applied ?? this.opts.readActual(), this.opts.scope);
    const r = this.#execute(this.#synced ? plan : additionsOnly(plan), desired);
    if (added || removed || r.added || r.deleted) {
      this.opts.log.info(`${this.opts.backendType}: ${added} peers added, ${removed} removed (${r.added} kernel entries added, ${r.deleted} deleted${r.failed ? `, ${r.failed} failed` : ""})`);
    }
    return r;
  }

  /**
   * Accepts a lease (true) or logs once why it is skipped. Per family this network programs, a
   * subnet the lease has must lie inside that Network, not overlap ours, and come with a public
   * address; a family the lease lacks is simply not programmed (a v4-only peer in a dual-stack
   * network), but a lease with no family of ours is skipped.
   */
  #admit(lease: Lease): boolean {
    const key = leaseKey(lease);
    const type = leaseBackendType(lease.attrs);
    const why = type !== this.opts.backendType
      ? `ignoring lease ${key}: its BackendType is ${showValue(type)} (udp/alloc leave it empty), this network is ${JSON.stringify(this.opts.backendType)}`
      : this.#invalid(lease, key);
    if (why) {
      this.#skip(key, why, type !== this.opts.backendType ? undefined : "malformed_lease");
      return false;
    }
    this.#skipped.delete(key);
    this.peers.set(key, lease);
    return true;
  }

  /** Why a lease of our type cannot be programmed, or undefined. */
  #invalid(lease: Lease, key: string): string | undefined {
    const { network, own, network6, own6 } = this.opts.scope;
    const v4 = network !== undefined && lease.subnet !== undefined;
    const v6 = network6 !== undefined && lease.ipv6Subnet !== undefined;
    if (!v4 && !v6) {
      const families = [network && "IPv4", network6 && "IPv6"].filter(Boolean).join(" or ");
      return `ignoring lease ${key}: it has no ${families} subnet, which this ${this.opts.backendType} network programs`;
    }
    if (v4) {
      const s = lease.subnet!;
      if (!containsV4Net(network!, s) || s.len <= network!.len) return `ignoring lease ${key}: subnet ${formatIPv4Net(s)} is not inside Network ${formatIPv4Net(network!)}`;
      if (own && overlapsV4(own, s)) return `ignoring lease ${key}: subnet ${formatIPv4Net(s)} overlaps our own ${formatIPv4Net(own)}`;
      if (lease.attrs.publicIP === 0) return `ignoring lease ${key}: PublicIP is 0.0.0.0`;
    }
    if (v6) {
      const s = lease.ipv6Subnet!;
      if (!containsV6Net(network6!, s) || s.len <= network6!.len) return `ignoring lease ${key}: IPv6 subnet ${formatIPv6Net(s)} is not inside IPv6Network ${formatIPv6Net(network6!)}`;
      if (own6 && overlapsV6(own6, s)) return `ignoring lease ${key}: IPv6 subnet ${formatIPv6Net(s)} overlaps our own ${formatIPv6Net(own6)}`;
      if (lease.attrs.publicIPv6 === undefined || lease.attrs.publicIPv6 === 0n) return `ignoring lease ${key}: it has an IPv6 subnet but no PublicIPv6`;
    }
    return undefined;
  }

  #skip(key: string, why: string, errorKind?: string): void {
    this.peers.delete(key);
    this.#entries.delete(key);
    if (this.#skipped.get(key) === why) return;
    this.#skipped.set(key, why);
    if (errorKind) {
      this.opts.metrics.error(errorKind);
      this.opts.log.warn(why);
    } else this.opts.log.info(why);
  }

  /**
   * Sends a plan as one batch (adds: neighbours, FDB, routes; then deletes: routes, FDB,
   * neighbours) and records what the kernel now holds: `desired` minus failed additions, plus
   * failed deletions. Deleting what is already gone counts as done.
   */
  #execute(plan: Plan, desired: DataPathState): SyncResult {
    const { add, del } = plan;
    const reqs: NetlinkRequest[] = [];
    for (const n of add.neighs) reqs.push(neighReplaceRequest({ index: n.dev, ip: n.ip, mac: n.mac, permanent: true }));
    for (const f of add.fdbs) reqs.push(fdbReplaceRequest({ index: f.dev, mac: f.mac, dst: f.dst, self: true, permanent: true }));
    for (const r of add.routes) reqs.push(routeReplaceRequest(routeSpec(r)));
    const nAdd = reqs.length;
    for (const r of del.routes) reqs.push(routeDelRequest(routeSpec(r)));
    for (const f of del.fdbs) reqs.push(fdbDelRequest({ index: f.dev, mac: f.mac, dst: f.dst, self: true }));
    for (const n of del.neighs) reqs.push(neighDelRequest({ index: n.dev, ip: n.ip }));
    if (reqs.length === 0) {
      this.#applied = desired;
      return { added: 0, deleted: 0, failed: 0 };
    }
    // A socket failure (timeout, overrun) throws: #guard then forgets #applied, so the next plan re-reads the kernel.
    const errors = this.opts.nl.batch(reqs);
    const failedAdd = new Set<string>();
    const failedDel: { routes: RouteItem[]; neighs: NeighItem[]; fdbs: FdbItem[] } = { routes: [], neighs: [], fdbs: [] };
    let failed = 0;
    let failedAdds = 0;
    errors.forEach((err, i) => {
      if (!err) return;
      const isDel = i >= nAdd;
      if (isDel && (err.errno === ENOENT || err.errno === ESRCH)) return;
      failed++;
      if (!isDel) failedAdds++;
      this.opts.metrics.error("netlink");
      this.opts.log.error(`${this.opts.backendType}: ${err.message}`);
      const item = itemAt(plan, i, nAdd);
      if (!isDel) failedAdd.add(item.key);
      else if (item.kind === "route") failedDel.routes.push(item.value as RouteItem);
      else if (item.kind === "fdb") failedDel.fdbs.push(item.value as FdbItem);
      else failedDel.neighs.push(item.value as NeighItem);
    });
    const keep = failedAdd.size === 0 ? desired : {
      routes: desired.routes.filter((r) => !failedAdd.has(`route ${routeKey(r)}`)),
      neighs: desired.neighs.filter((n) => !failedAdd.has(`neigh ${neighKey(n)}`)),
      fdbs: desired.fdbs.filter((f) => !failedAdd.has(`fdb ${fdbKey(f)}`)),
    };
    this.#applied = mergeStates([keep, failedDel]);
    return { added: nAdd - failedAdds, deleted: reqs.length - nAdd - (failed - failedAdds), failed };
  }
}

/** The plan entry behind request `i` of the batch `#execute` built. */
function itemAt(plan: Plan, i: number, nAdd: number): { kind: "route" | "neigh" | "fdb"; key: string; value: unknown } {
  const { add, del } = plan;
  if (i < nAdd) {
    if (i < add.neighs.length) return { kind: "neigh", key: `neigh ${neighKey(add.neighs[i]!)}`, value: add.neighs[i] };
    i -= add.neighs.length;
    if (i < add.fdbs.length) return { kind: "fdb", key: `fdb ${fdbKey(add.fdbs[i]!)}`, value: add.fdbs[i] };
    i -= add.fdbs.length;
    return { kind: "route", key: `route ${routeKey(add.routes[i]!)}`, value: add.routes[i] };
  }
  i -= nAdd;
  if (i < del.routes.length) return { kind: "route", key: `route ${routeKey(del.routes[i]!)}`, value: del.routes[i] };
  i -= del.routes.length;
  if (i < del.fdbs.length) return { kind: "fdb", key: `fdb ${fdbKey(del.fdbs[i]!)}`, value: del.fdbs[i] };
  i -= del.fdbs.length;
  return { kind: "neigh", key: `neigh ${neighKey(del.neighs[i]!)}`, value: del.neighs[i] };
}

function routeSpec(r: RouteItem) {
  return {
    dst: r.dst, dev: r.dev, ...(r.gw !== undefined ? { gw: r.gw } : {}), ...(r.onlink ? { onlink: true } : {}),
    ...(r.metric ? { priority: r.metric } : {}),
  };
}

/**
 * What the kernel holds on a backend's devices, for planning. Equivalent to `ip -4 route show
 * table main` (`ip -6` for family 6) filtered to unicast routes on `overlay` (any) and on
 * `underlay` (with a gateway only: its connected routes are not ours), plus `ip neigh show dev
 * OVERLAY` of that family and the permanent entries of `bridge fdb show dev OVERLAY`. Which of
 * these may be deleted is decided by the planner (inside Network, outside our subnet).
 *
 * IPv6 routes made without a metric get the kernel's default 1024: it is read back as no metric,
 * so a route weft made compares equal to the one it wants.
 */
export function readRouteState(nl: NetlinkSocket, devs: { overlay?: number; underlay: number }, family: 4 | 6 = 4): DataPathState {
  const routes: RouteItem[] = [];
  for (const r of routeList(nl, { family })) {
    if (r.type !== RTN_UNICAST || r.dev === undefined) continue;
    if (r.dev !== devs.overlay && !(r.dev === devs.underlay && r.gw !== undefined)) continue;
    const metric = family === 6 && r.priority === IP6_RT_PRIO_USER ? 0 : r.priority;
    routes.push({
      dst: r.dst, dev: r.dev, ...(r.gw !== undefined ? { gw: r.gw } : {}), ...(r.onlink ? { onlink: true } : {}),
      ...(metric ? { metric } : {}),
    });
  }
  const neighs: NeighItem[] = [];
  const fdbs: FdbItem[] = [];
  if (devs.overlay !== undefined) {
    for (const n of neighList(nl, devs.overlay, family)) {
      if (n.ip !== undefined) neighs.push({ dev: devs.overlay, ip: n.ip, mac: n.mac ?? "", permanent: n.permanent });
    }
    for (const f of fdbList(nl, devs.overlay)) {
      if (f.permanent && f.dst !== undefined) fdbs.push({ dev: devs.overlay, mac: f.mac, dst: f.dst });
    }
  }
  return { routes, neighs, fdbs };
}

/** The kernel's metric for an IPv6 route added without one (IP6_RT_PRIO_USER). */
const IP6_RT_PRIO_USER = 1024;
