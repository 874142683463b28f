/**
 * @module The kernel operations weft performs, each a few lines over NetlinkSocket whose doc
 * gives the `ip`/`bridge` command it equals. `dev` is an interface index or name (a name costs
 * one extra lookup). For many changes at once, build requests with the `…Request` functions
 * (numeric `dev` only: building does no I/O) and send them with `nl.batch(requests)`.
 *
 * @example
 * const nl = NetlinkSocket.open(await loadSys());
 * const link = linkAddVxlan(nl, { name: "flannel.1", vni: 1, local: "10.0.0.1", underlayIndex: 2,
 *   port: 8472, learning: false, gbp: false, mtu: 1450 });
 * addrReplace(nl, link.index, "10.244.0.0/32");
 * linkSetUp(nl, link.index);
 * const errors = nl.batch(peers.map((p) => routeReplaceRequest({ dst: p.subnet, gw: p.gw, dev: link.index, onlink: true })));
 */
import { type Addr, buildAddr, buildAddrDump, parseAddr } from "./addr.ts";
import { AF_BRIDGE, AF_INET, AF_INET6, AF_UNSPEC, RT_TABLE_MAIN, RTM_F_CLONED } from "./constants.ts";
import { NetlinkError } from "./error.ts";
import {
  type Link, type VxlanLinkSpec, buildLinkAddVxlan, buildLinkDel, buildLinkDump, buildLinkGetByIndex,
  buildLinkGetByName, buildLinkSetAddress, buildLinkSetMtu, buildLinkSetUp, parseLink,
} from "./link.ts";
import { type FdbEntry, type FdbSpec, type Neigh, type NeighSpec, buildFdb, buildFdbDump, buildNeigh, buildNeighDump, parseFdb, parseNeigh } from "./neigh.ts";
import { type Route, type RouteSpec, buildRoute, buildRouteDump, buildRouteGet, parseRoute } from "./route.ts";
import type { NetlinkRequest, NetlinkSocket } from "./socket.ts";

const ENODEV_ERRNO = 19;

/** An interface index or name. */
export type Dev = number | string;

/** The index of `dev`; a name is looked up (NetlinkError ENODEV naming `op` if it does not exist). */
export function devIndex(nl: NetlinkSocket, dev: Dev, op: string): number {
  if (typeof dev === "number") return dev;
  const link = linkByName(nl, dev);
  if (!link) throw new NetlinkError(ENODEV_ERRNO, op, `dev ${dev} (no such interface)`);
  return link.index;
}

// ------------------------------------------------------------ links

/** Equivalent to: `ip -d link show NAME`; undefined when there is no such link. */
export function linkByName(nl: NetlinkSocket, name: string): Link | undefined {
  return orUndefinedIfNoDev(() => nl.get({ msg: buildLinkGetByName(name), op: "linkByName", summary: name }, parseLink));
}

/** Equivalent to: `ip -d link show dev INDEX`; undefined when there is no such link. */
export function linkByIndex(nl: NetlinkSocket, index: number): Link | undefined {
  return orUndefinedIfNoDev(() => nl.get({ msg: buildLinkGetByIndex(index), op: "linkByIndex", summary: `index ${index}` }, parseLink));
}

function orUndefinedIfNoDev<T>(f: () => T): T | undefined {
  try {
    return f();
  } catch (e) {
    if (e instanceof NetlinkError && e.errno === ENODEV_ERRNO) return undefined;
    throw e;
  }
}

/** Equivalent to: `ip -d link show`. */
export function linkList(nl: NetlinkSocket): Link[] {
  return nl.dump({ msg: buildLinkDump(), op: "linkList", summary: "all links" }, parseLink);
}

/**
 * Equivalent to: `ip link add NAME [mtu M] [address MAC] type vxlan id VNI local IP dev UNDERLAY
 * dstport PORT nolearning [gbp]`. Fails with EEXIST if NAME exists. Returns the new link.
 */
export function linkAddVxlan(nl: NetlinkSocket, spec: VxlanLinkSpec): Link {
  const summary = [
    spec.name, "type vxlan id", spec.vni, spec.local ?? spec.local6 ? `local ${spec.local ?? spec.local6}` : "",
    spec.underlayIndex !== undefined ? `dev ${spec.underlayIndex}` : "", "dstport", spec.port,
    spec.learning ? "" : "nolearning", spec.gbp ? "gbp" : "",
  ].filter((x) => x !== "").join(" ");
  nl.ack({ msg: buildLinkAddVxlan(spec), op: "linkAddVxlan", summary });
  const link = linkByName(nl, spec.name);
  if (!link) throw new NetlinkError(ENODEV_ERRNO, "linkAddVxlan", `${summary} (created, then gone)`);
  return link;
}

/** Equivalent to: `ip link set DEV up`. */
export function linkSetUp(nl: NetlinkSocket, dev: Dev): void {
  nl.ack({ msg: buildLinkSetUp(devIndex(nl, dev, "linkSetUp")), op: "linkSetUp", summary: `dev ${dev} up` });
}

/** Equivalent to: `ip link set DEV down`. */
export function linkSetDown(nl: NetlinkSocket, dev: Dev): void {
  nl.ack({ msg: buildLinkSetUp(devIndex(nl, dev, "linkSetDown"), false), op: "linkSetDown", summary: `dev ${dev} down` });
}

/** Equivalent to: `ip link set DEV mtu MTU`. */
export function linkSetMtu(nl: NetlinkSocket, dev: Dev, mtu: number): void {
  nl.ack({ msg: buildLinkSetMtu(devIndex(nl, dev, "linkSetMtu"), mtu), op: "linkSetMtu", summary: `dev ${dev} mtu ${mtu}` });
}

/** Equivalent to: `ip link set DEV address MAC`. */
export function linkSetAddress(nl: NetlinkSocket, dev: Dev, mac: string): void {
  nl.ack({ msg: buildLinkSetAddress(devIndex(nl, dev, "linkSetAddress"), mac), op: "linkSetAddress", summary: `dev ${dev} address ${mac}` });
}

/** Equivalent to: `ip link del DEV`. */
export function linkDel(nl: NetlinkSocket, dev: Dev): void {
  nl.ack({ msg: buildLinkDel(devIndex(nl, dev, "linkDel")), op: "linkDel", summary: `dev ${dev}` });
}

// ------------------------------------------------------------ addresses

function addrOp(nl: NetlinkSocket, op: "add" | "replace" | "del", name: string, dev: Dev, cidr: string, nodad = false): void {
  const index = devIndex(nl, dev, name);
  nl.ack({ msg: buildAddr(op, { index, cidr, ...(nodad ? { nodad } : {}) }), op: name, summary: `${cidr} dev ${dev}${nodad ? " nodad" : ""}` });
}

/** Equivalent to: `ip addr add CIDR dev DEV [nodad]` (EEXIST if present). */
export function addrAdd(nl: NetlinkSocket, dev: Dev, cidr: string, opts: { nodad?: boolean } = {}): void {
  addrOp(nl, "add", "addrAdd", dev, cidr, opts.nodad);
}

/** Equivalent to: `ip addr replace CIDR dev DEV`. */
export function addrReplace(nl: NetlinkSocket, dev: Dev, cidr: string): void {
  addrOp(nl, "replace", "addrReplace", dev, cidr);
}

/** Equivalent to: `ip addr del CIDR dev DEV`. */
export function addrDel(nl: NetlinkSocket, dev: Dev, cidr: string): void {
  addrOp(nl, "del", "addrDel", dev, cidr);
}

/** Equivalent to: `ip [-4|-6] addr show [dev DEV]`. */
export function addrList(nl: NetlinkSocket, filter: { dev?: Dev; family?: 4 | 6 } = {}): Addr[] {
  const index = filter.dev === undefined ? 0 : devIndex(nl, filter.dev, "addrList");
  const family = filter.family === 4 ? AF_INET : filter.family === 6 ? AF_INET6 : AF_UNSPEC;
  return nl.dump({ msg: buildAddrDump(family, index), op: "addrList", summary: index ? `dev ${filter.dev}` : "all" }, (m) => {
    const a = parseAddr(m);
    return (index && a.index !== index) || (family && a.family !== family) ? undefined : a;
  });
}

// ------------------------------------------------------------ routes

/** A route with `dev` as index or name, for the one-shot operations. */
export type RouteArgs = Omit<RouteSpec, "dev"> & { readonly dev?: Dev };

function routeSummary(s: RouteArgs): string {
  return [
    s.type && s.type !== "unicast" ? s.type : "", s.dst, s.gw !== undefined ? `via ${s.gw}` : "",
    s.dev !== undefined ? `dev ${s.dev}` : "", s.onlink ? "onlink" : "", s.scope ? `scope ${s.scope}` : "",
    s.table !== undefined ? `table ${s.table}` : "", s.priority !== undefined ? `metric ${s.priority}` : "",
  ].filter(Boolean).join(" ");
}

/** Request for `ip route replace …` (for `nl.batch`). */
export function routeReplaceRequest(spec: RouteSpec): NetlinkRequest {
  return { msg: buildRoute("replace", spec), op: "routeReplace", summary: routeSummary(spec) };
}

/** Request for `ip route del …` (for `nl.batch`). */
export function routeDelRequest(spec: RouteSpec): NetlinkRequest {
  return { msg: buildRoute("del", spec), op: "routeDel", summary: routeSummary(spec) };
}

function withDev<T extends { readonly dev?: Dev }>(nl: NetlinkSocket, args: T, op: string): T & { dev?: number } {
  return args.dev === undefined ? args as T & { dev?: number } : { ...args, dev: devIndex(nl, args.dev, op) };
}

/** Equivalent to: `ip route replace [TYPE] DST [via GW] [dev DEV] [onlink] [scope S] [table T] [metric P]`. */
export function routeReplace(nl: NetlinkSocket, args: RouteArgs): void {
  const req = routeReplaceRequest(withDev(nl, args, "routeReplace"));
  nl.ack({ ...req, summary: routeSummary(args) });
}

/** Equivalent to: `ip route del DST [via GW] [dev DEV] [table T] …` (ESRCH if absent). */
export function routeDel(nl: NetlinkSocket, args: RouteArgs): void {
  const req = routeDelRequest(withDev(nl, args, "routeDel"));
  nl.ack({ ...req, summary: routeSummary(args) });
}

/**
 * Equivalent to: `ip [-6] route show [table T] [dev DEV]` (default table main, IPv4). Cached
 * clones (RTM_F_CLONED) are left out, as `ip route show` does.
 */
export function routeList(nl: NetlinkSocket, filter: { family?: 4 | 6; table?: number; dev?: Dev } = {}): Route[] {
  const table = filter.table ?? RT_TABLE_MAIN;
  const dev = filter.dev === undefined ? undefined : devIndex(nl, filter.dev, "routeList");
  const summary = `${filter.family === 6 ? "-6 " : ""}table ${table}${dev !== undefined ? ` dev ${filter.dev}` : ""}`;
  return nl.dump({ msg: buildRouteDump(filter.family ?? 4, table), op: "routeList", summary }, (m) => {
    const r = parseRoute(m);
    if (r.table !== table || (r.flags & RTM_F_CLONED) || (dev !== undefined && r.dev !== dev)) return undefined;
    return r;
  });
}

/**
 * Equivalent to: `ip route get ADDR`: the route the kernel would use, with its device (`dev`),
 * source (`src`) and gateway (`gw`, absent when ADDR is on-link). Throws NetlinkError
 * (ENETUNREACH) when nothing routes there.
 */
export function routeGet(nl: NetlinkSocket, addr: string): Route {
  return nl.get({ msg: buildRouteGet(addr), op: "routeGet", summary: addr }, parseRoute);
}

// ------------------------------------------------------------ neighbours

export type NeighArgs = Omit<NeighSpec, "index"> & { readonly dev: Dev };

function neighSummary(s: NeighArgs | NeighSpec, dev: Dev): string {
  return `${s.ip}${s.mac ? ` lladdr ${s.mac}` : ""} dev ${dev}${s.permanent === false ? "" : " nud permanent"}`;
}

/** Request for `ip neigh replace IP lladdr MAC dev INDEX nud permanent` (for `nl.batch`). */
export function neighReplaceRequest(spec: NeighSpec): NetlinkRequest {
  return { msg: buildNeigh("replace", spec), op: "neighReplace", summary: neighSummary(spec, spec.index) };
}

/** Request for `ip neigh del IP dev INDEX` (for `nl.batch`). */
export function neighDelRequest(spec: NeighSpec): NetlinkRequest {
  return { msg: buildNeigh("del", spec), op: "neighDel", summary: `${spec.ip} dev ${spec.index}` };
}

/** Equivalent to: `ip neigh replace IP lladdr MAC dev DEV nud permanent`. */
export function neighReplace(nl: NetlinkSocket, args: NeighArgs): void {
  const req = neighReplaceRequest({ ...args, index: devIndex(nl, args.dev, "neighReplace") });
  nl.ack({ ...req, summary: neighSummary(args, args.dev) });
}

/** Equivalent to: `ip neigh del IP dev DEV` (ENOENT if absent). */
export function neighDel(nl: NetlinkSocket, args: NeighArgs): void {
  const req = neighDelRequest({ ...args, index: devIndex(nl, args.dev, "neighDel") });
  nl.ack({ ...req, summary: `${args.ip} dev ${args.dev}` });
}

/** Equivalent to: `ip [-4|-6] neigh show dev DEV`. */
export function neighList(nl: NetlinkSocket, dev: Dev, family?: 4 | 6): Neigh[] {
  const index = devIndex(nl, dev, "neighList");
  const fam = family === 4 ? AF_INET : family === 6 ? AF_INET6 : AF_UNSPEC;
  return nl.dump({ msg: buildNeighDump(fam, index), op: "neighList", summary: `dev ${dev}` }, (m) => {
    const n = parseNeigh(m);
    return n.index !== index || n.family === AF_BRIDGE || (fam && n.family !== fam) ? undefined : n;
  });
}

// ------------------------------------------------------------ bridge FDB

export type FdbArgs = Omit<FdbSpec, "index"> & { readonly dev: Dev };

function fdbSummary(s: FdbArgs | FdbSpec, dev: Dev): string {
  return `${s.mac} dev ${dev}${s.dst ? ` dst ${s.dst}` : ""}${s.self === false ? "" : " self"}${s.permanent === false ? "" : " permanent"}`;
}

/** Request for `bridge fdb replace MAC dev INDEX dst IP self permanent` (for `nl.batch`). */
export function fdbReplaceRequest(spec: FdbSpec): NetlinkRequest {
  return { msg: buildFdb("replace", spec), op: "fdbReplace", summary: fdbSummary(spec, spec.index) };
}

/** Request for `bridge fdb del MAC dev INDEX dst IP self` (for `nl.batch`). */
export function fdbDelRequest(spec: FdbSpec): NetlinkRequest {
  return { msg: buildFdb("del", spec), op: "fdbDel", summary: fdbSummary(spec, spec.index) };
}

/** Equivalent to: `bridge fdb replace MAC dev DEV dst IP self permanent`. */
export function fdbReplace(nl: NetlinkSocket, args: FdbArgs): void {
  const req = fdbReplaceRequest({ ...args, index: devIndex(nl, args.dev, "fdbReplace") });
  nl.ack({ ...req, summary: fdbSummary(args, args.dev) });
}

/** Equivalent to: `bridge fdb del MAC dev DEV dst IP self` (ENOENT if absent). */
export function fdbDel(nl: NetlinkSocket, args: FdbArgs): void {
  const req = fdbDelRequest({ ...args, index: devIndex(nl, args.dev, "fdbDel") });
  nl.ack({ ...req, summary: fdbSummary(args, args.dev) });
}

/** Equivalent to: `bridge fdb show dev DEV`. */
export function fdbList(nl: NetlinkSocket, dev: Dev): FdbEntry[] {
  const index = devIndex(nl, dev, "fdbList");
  return nl.dump({ msg: buildFdbDump(index), op: "fdbList", summary: `dev ${dev}` }, (m) => {
    const e = parseFdb(m);
    return e.index !== index || m.payload[0] !== AF_BRIDGE ? undefined : e;
  });
}
