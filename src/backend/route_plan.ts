/**
 * @module Pure reconcile planning for the route backends (style point 3, Tailscale's router):
 * desired kernel state in, actual kernel state in, `{ add, del }` out. The code that touches the
 * kernel (peer_sync.ts) only applies plans, so restarts change nothing that is already right
 * (no route flaps) and state left by vanished peers is removed (compat §12.5).
 *
 * Three tables, each keyed as the kernel keys it:
 * - routes by destination and metric (main table: one route per dst/tos/metric; a replace of the
 *   same key moves it to the new gateway or device, so a changed route is only added, never
 *   deleted);
 * - neighbours by device and IP (a replace changes the MAC in place);
 * - FDB entries by device, MAC and remote VTEP (a VXLAN MAC may have several remotes; a replace
 *   changes only the first, so extra remotes are deleted one by one).
 *
 * What may be deleted is decided here too: only routes and neighbours strictly inside the
 * cluster Network and outside our own subnet. The caller passes only entries on its own devices
 * (the VXLAN device, or gateway routes on the external interface).
 */
import {
  type IPv4Net, type IPv6Net, containsV4Net, containsV6Net, overlapsV4, overlapsV6, tryParseIPv4, tryParseIPv6,
} from "../net/ip.ts";

/** `ip route replace DST [via GW] dev DEV [onlink] [metric M]` (main table, unicast). */
export interface RouteItem {
  /** "10.244.1.0/24". */
  readonly dst: string;
  readonly gw?: string;
  /** Interface index. */
  readonly dev: number;
  readonly onlink?: boolean;
  /** Default 0. */
  readonly metric?: number;
}

/** `ip neigh replace IP lladdr MAC dev DEV nud permanent`. */
export interface NeighItem {
  readonly dev: number;
  readonly ip: string;
  /** Lowercase, colon-separated. */
  readonly mac: string;
  /** Actual entries only: false for entries the kernel resolved itself (never deleted). Default true. */
  readonly permanent?: boolean;
}

/** `bridge fdb replace MAC dev DEV dst DST self permanent`. */
export interface FdbItem {
  readonly dev: number;
  readonly mac: string;
  /** Remote VTEP address. */
  readonly dst: string;
}

/** Kernel state a backend manages, as three lists. */
export interface DataPathState {
  readonly routes: readonly RouteItem[];
  readonly neighs: readonly NeighItem[];
  readonly fdbs: readonly FdbItem[];
}

/** What to change: `add` entries are replaced (created or corrected), `del` entries deleted. */
export interface Plan {
  readonly add: DataPathState;
  readonly del: DataPathState;
}

/** Which actual entries are ours to delete. */
export interface PlanScope {
  /** The cluster Network (IPv4). */
  readonly network?: IPv4Net;
  /** Our own lease's subnet: never deleted. */
  readonly own?: IPv4Net;
  readonly network6?: IPv6Net;
  readonly own6?: IPv6Net;
}

export const EMPTY_STATE: DataPathState = Object.freeze({ routes: [], neighs: [], fdbs: [] });

/** Key of a route: the main table holds one route per destination and metric. */
export function routeKey(r: RouteItem): string {
  return `${r.dst} ${r.metric ?? 0}`;
}

export function neighKey(n: NeighItem): string {
  return `${n.dev} ${n.ip}`;
}

export function fdbKey(f: FdbItem): string {
  return `${f.dev} ${f.mac.toLowerCase()} ${f.dst}`;
}

function sameRoute(a: RouteItem, b: RouteItem): boolean {
  return a.dst === b.dst && a.gw === b.gw && a.dev === b.dev && !!a.onlink === !!b.onlink && (a.metric ?? 0) === (b.metric ?? 0);
}

function sameNeigh(want: NeighItem, have: NeighItem): boolean {
  return have.permanent !== false && want.mac.toLowerCase() === have.mac.toLowerCase();
}

/**
 * True when `prefix` ("a.b.c.d/len", "x::/len" or a bare address) lies strictly inside the
 * Network of its family and does not overlap our own subnet: the only places weft deletes.
 */
export function isOwnedPrefix(prefix: string, scope: PlanScope): boolean {
  const slash = prefix.indexOf("/");
  const addr = slash < 0 ? prefix : prefix.slice(0, slash);
  const v4 = tryParseIPv4(addr);
  if (v4 !== undefined) {
    const net: IPv4Net = { ip: v4, len: slash < 0 ? 32 : Number(prefix.slice(slash + 1)) };
    if (!scope.network || !(net.len > scope.network.len && containsV4Net(scope.network, net))) return false;
    return !(scope.own && overlapsV4(scope.own, net));
  }
  const v6 = tryParseIPv6(addr);
  if (v6 === undefined) return false;
  const net: IPv6Net = { ip: v6, len: slash < 0 ? 128 : Number(prefix.slice(slash + 1)) };
  if (!scope.network6 || !(net.len > scope.network6.len && containsV6Net(scope.network6, net))) return false;
  return !(scope.own6 && overlapsV6(scope.own6, net));
}

/** One table's plan: desired entries missing or wrong in `actual`, and owned actual entries nobody wants. */
function planTable<T>(
  desired: readonly T[], actual: readonly T[], key: (x: T) => string, same: (want: T, have: T) => boolean,
  deletable: (x: T) => boolean,
): { add: T[]; del: T[] } {
  const have = new Map<string, T>();
  for (const a of actual) have.set(key(a), a);
  const want = new Map<string, T>();
  for (const d of desired) want.set(key(d), d);
  const add: T[] = [];
  for (const [k, d] of want) {
    const a = have.get(k);
    if (a === undefined || !same(d, a)) add.push(d);
  }
  const del: T[] = [];
  for (const [k, a] of have) if (!want.has(k) && deletable(a)) del.push(a);
  return { add, del };
}

/** Routes: add what is missing or differs (same key → replaced in place), delete owned strays. */
export function planRoutes(desired: readonly RouteItem[], actual: readonly RouteItem[], scope: PlanScope): { add: RouteItem[]; del: RouteItem[] } {
  return planTable(desired, actual, routeKey, sameRoute, (r) => isOwnedPrefix(r.dst, scope));
}

/** Neighbours: permanent entries only count as right; kernel-resolved ones are never deleted. */
export function planNeighs(desired: readonly NeighItem[], actual: readonly NeighItem[], scope: PlanScope): { add: NeighItem[]; del: NeighItem[] } {
  return planTable(desired, actual, neighKey, sameNeigh, (n) => n.permanent !== false && isOwnedPrefix(n.ip, scope));
}

/** FDB entries: every (MAC, remote) pair not wanted is deleted (the caller passes only its device's). */
export function planFdbs(desired: readonly FdbItem[], actual: readonly FdbItem[]): { add: FdbItem[]; del: FdbItem[] } {
  return planTable(desired, actual, fdbKey, () => true, (f) => f.mac !== "00:00:00:00:00:00");
}

/**
 * The whole plan. Apply `add` before `del` (neighbours, FDB, routes; then routes, FDB,
 * neighbours): traffic never loses a path that is only being changed.
 *
 * @example
 * planDataPath({ routes: [r1], neighs: [], fdbs: [] }, { routes: [r1, stale], neighs: [], fdbs: [] }, scope)
 * // → { add: { routes: [] … }, del: { routes: [stale] … } }
 */
export function planDataPath(desired: DataPathState, actual: DataPathState, scope: PlanScope): Plan {
  const routes = planRoutes(desired.routes, actual.routes, scope);
  const neighs = planNeighs(desired.neighs, actual.neighs, scope);
  const fdbs = planFdbs(desired.fdbs, actual.fdbs);
  return {
    add: { routes: routes.add, neighs: neighs.add, fdbs: fdbs.add },
    del: { routes: routes.del, neighs: neighs.del, fdbs: fdbs.del },
  };
}

/** Only the additions of a plan (the periodic check re-adds what went missing, deletes nothing). */
export function additionsOnly(p: Plan): Plan {
  return { add: p.add, del: EMPTY_STATE };
}

export function stateSize(s: DataPathState): number {
  return s.routes.length + s.neighs.length + s.fdbs.length;
}

export function isEmptyPlan(p: Plan): boolean {
  return stateSize(p.add) === 0 && stateSize(p.del) === 0;
}

/** Concatenates states (later entries of the same key win when planned). */
export function mergeStates(states: Iterable<DataPathState>): DataPathState {
  const routes: RouteItem[] = [];
  const neighs: NeighItem[] = [];
  const fdbs: FdbItem[] = [];
  for (const s of states) {
    routes.push(...s.routes);
    neighs.push(...s.neighs);
    fdbs.push(...s.fdbs);
  }
  return { routes, neighs, fdbs };
}
