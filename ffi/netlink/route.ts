/**
 * @module RTM_NEWROUTE / RTM_DELROUTE / RTM_GETROUTE messages (struct rtmsg + RTA_*): builders for
 * replacing and deleting routes (gateway, device, onlink, scope, table, metric, blackhole …),
 * dumping a table, a single-destination lookup (`ip route get`), and `parseRoute`. Header
 * defaults and attribute order follow iproute2 6.1, so bytes equal what `ip route …` sends
 * (tests/fixtures/netlink/route_*.json).
 */
import { type Attr, bytesAttr, parseAttrs, readU32, u32Attr } from "./attr.ts";
import {
  AF_INET, AF_INET6, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, RTA_DST,
  RTA_GATEWAY, RTA_OIF, RTA_PREFSRC, RTA_PRIORITY, RTA_TABLE, RTM_DELROUTE, RTM_F_LOOKUP_TABLE, RTM_GETROUTE,
  RTM_NEWROUTE, RTMSG_LEN, RT_SCOPE_HOST, RT_SCOPE_LINK, RT_SCOPE_NOWHERE, RT_SCOPE_UNIVERSE, RT_TABLE_MAIN,
  RT_TABLE_UNSPEC, RTN_BLACKHOLE, RTN_BROADCAST, RTN_LOCAL, RTN_PROHIBIT, RTN_UNICAST, RTN_UNREACHABLE, RTN_UNSPEC,
  RTNH_F_ONLINK, RTPROT_BOOT, RTPROT_UNSPEC,
} from "./constants.ts";
import { type NetlinkMessage, encodeMessage } from "./message.ts";
import { bytesToIp, familyName, ipToBytes, prefixToBytes } from "./values.ts";

export type RouteScope = "universe" | "link" | "host" | "nowhere";
export type RouteType = "unicast" | "local" | "broadcast" | "blackhole" | "unreachable" | "prohibit";

const SCOPES: Record<RouteScope, number> = {
  universe: RT_SCOPE_UNIVERSE, link: RT_SCOPE_LINK, host: RT_SCOPE_HOST, nowhere: RT_SCOPE_NOWHERE,
};
const TYPES: Record<RouteType, number> = {
  unicast: RTN_UNICAST, local: RTN_LOCAL, broadcast: RTN_BROADCAST, blackhole: RTN_BLACKHOLE,
  unreachable: RTN_UNREACHABLE, prohibit: RTN_PROHIBIT,
};

/** A route as `ip route replace` takes it. */
export interface RouteSpec {
  /** "10.244.1.0/24", "fd10::/64", or "default" (then give `family`, unless `gw` says it). */
  readonly dst: string;
  /** Next hop (`via`). */
  readonly gw?: string;
  /** Output interface index (`dev`). */
  readonly dev?: number;
  /** Gateway need not be on a connected subnet (`onlink`). */
  readonly onlink?: boolean;
  /** Default: "link" for a gateway-less unicast route, "universe" otherwise (as iproute2). */
  readonly scope?: RouteScope;
  /** Routing table id (`table`); default main (254). */
  readonly table?: number;
  /** Default "unicast". */
  readonly type?: RouteType;
  /** Metric (`metric`/`priority`). */
  readonly priority?: number;
  /** Preferred source address (`src`). */
  readonly src?: string;
  /** Routing protocol number (`proto`); default 3, boot, as iproute2. */
  readonly protocol?: number;
  /** 4 or 6; only needed for dst "default" without a gateway. */
  readonly family?: 4 | 6;
}

/** A route as `ip route show` reports it. */
export interface Route {
  readonly family: number;
  /** "10.244.1.0/24", or "default" for a zero-length prefix. */
  readonly dst: string;
  readonly dstLen: number;
  readonly gw?: string;
  readonly dev?: number;
  readonly src?: string;
  readonly priority?: number;
  readonly table: number;
  readonly protocol: number;
  readonly scope: number;
  /** RTN_* type; `typeName` gives it as text. */
  readonly type: number;
  readonly typeName: string;
  /** rtm_flags (RTNH_F_ONLINK, RTM_F_CLONED …). */
  readonly flags: number;
  readonly onlink: boolean;
}

export type RouteOp = "add" | "replace" | "del";

const OP_FLAGS: Record<RouteOp, [number, number]> = {
  add: [RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL],
  replace: [RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE],
  del: [RTM_DELROUTE, NLM_F_REQUEST | NLM_F_ACK],
};

interface RtmsgFields {
  family: number; dstLen: number; table: number; protocol: number; scope: number; type: number; flags: number;
}

function rtmsg(f: RtmsgFields): Uint8Array {
  const b = new Uint8Array(RTMSG_LEN);
  b[0] = f.family; b[1] = f.dstLen; b[4] = f.table; b[5] = f.protocol; b[6] = f.scope; b[7] = f.type;
  new DataView(b.buffer).setUint32(8, f.flags, true);
  return b;
}

/** The table id for the header: < 256 fits, larger ids go in RTA_TABLE with RT_TABLE_UNSPEC here. */
function tableFields(table: number): { header: number; attr?: Attr } {
  if (!Number.isInteger(table) || table < 0 || table > 0xffffffff) {
    throw new RangeError(`route table ${table} must be an integer in 0..4294967295`);
  }
  return table < 256 ? { header: table } : { header: RT_TABLE_UNSPEC, attr: u32Attr(RTA_TABLE, table) };
}

/**
 * Equivalent to: `ip route add|replace|del [TYPE] DST [via GW] [dev DEV] [onlink] [scope S]
 * [table T] [metric P] [src SRC] [proto N]`. For `del` only the fields given are matched, as
 * `ip route del` does (protocol unspecified, scope nowhere = any).
 */
export function buildRoute(op: RouteOp, spec: RouteSpec): Uint8Array {
  const [msgType, msgFlags] = OP_FLAGS[op];
  const gw = spec.gw !== undefined ? ipToBytes(spec.gw, "route gateway") : undefined;
  let family: number;
  let dst: { bytes: Uint8Array; len: number } | undefined;
  if (spec.dst === "default") {
    family = gw?.family ?? (spec.family === 6 ? AF_INET6 : spec.family === 4 ? AF_INET : 0);
    if (!family) throw new TypeError(`route "default" without a gateway needs family 4 or 6`);
  } else {
    const p = prefixToBytes(spec.dst, "route destination");
    family = p.family;
    dst = p;
  }
  if (gw && gw.family !== family) {
    throw new TypeError(`route ${spec.dst}: gateway ${spec.gw} is ${familyName(gw.family)} but the destination is ${familyName(family)}`);
  }
  const type = spec.type !== undefined ? TYPES[spec.type] : op === "del" ? RTN_UNSPEC : RTN_UNICAST;
  if (type === undefined) throw new TypeError(`route type ${JSON.stringify(spec.type)} is not one of ${Object.keys(TYPES).join(", ")}`);
  let scope: number;
  if (spec.scope !== undefined) {
    scope = SCOPES[spec.scope];
    if (scope === undefined) throw new TypeError(`route scope ${JSON.stringify(spec.scope)} is not one of ${Object.keys(SCOPES).join(", ")}`);
  } else if (family === AF_INET6) scope = RT_SCOPE_UNIVERSE; // iproute2: IPv6 routes have no scope, a delete included
  else if (op === "del") scope = RT_SCOPE_NOWHERE;
  else if (type === RTN_LOCAL) scope = RT_SCOPE_HOST;
  else if (type === RTN_BROADCAST) scope = RT_SCOPE_LINK;
  else if (type === RTN_UNICAST && !gw) scope = RT_SCOPE_LINK;
  else scope = RT_SCOPE_UNIVERSE;
  const table = tableFields(spec.table ?? RT_TABLE_MAIN);

  const attrs: Attr[] = [];
  if (dst) attrs.push(bytesAttr(RTA_DST, dst.bytes));
  if (gw) attrs.push(bytesAttr(RTA_GATEWAY, gw.bytes));
  if (spec.priority !== undefined) attrs.push(u32Attr(RTA_PRIORITY, spec.priority));
  if (spec.src !== undefined) attrs.push(bytesAttr(RTA_PREFSRC, ipToBytes(spec.src, "route src").bytes));
  if (spec.dev !== undefined) attrs.push(u32Attr(RTA_OIF, spec.dev));
  if (table.attr) attrs.push(table.attr);
  return encodeMessage(msgType, msgFlags, rtmsg({
    family, dstLen: dst?.len ?? 0, table: table.header,
    protocol: spec.protocol ?? (op === "del" ? RTPROT_UNSPEC : RTPROT_BOOT),
    scope, type, flags: spec.onlink ? RTNH_F_ONLINK : 0,
  }), attrs);
}

/**
 * Equivalent to: `ip route get ADDR`: asks the kernel which route it would use. Reply: one
 * RTM_NEWROUTE with the chosen gateway, device and source (no ack). iproute2 asks IPv4 lookups
 * for the FIB's table (RTM_F_LOOKUP_TABLE), IPv6 ones without flags.
 */
export function buildRouteGet(addr: string): Uint8Array {
  const ip = ipToBytes(addr, "route get address");
  return encodeMessage(RTM_GETROUTE, NLM_F_REQUEST, rtmsg({
    family: ip.family, dstLen: ip.bytes.length * 8, table: 0, protocol: 0, scope: 0, type: 0,
    flags: ip.family === AF_INET6 ? 0 : RTM_F_LOOKUP_TABLE,
  }), [bytesAttr(RTA_DST, ip.bytes)]);
}

/**
 * Equivalent to: `ip [-6] route show table T`: dumps routes of `family` (4 or 6). Outside strict
 * mode the kernel dumps every table whatever RTA_TABLE says; callers filter the reply.
 */
export function buildRouteDump(family: 4 | 6, table = RT_TABLE_MAIN): Uint8Array {
  return encodeMessage(RTM_GETROUTE, NLM_F_REQUEST | NLM_F_DUMP, rtmsg({
    family: family === 6 ? AF_INET6 : AF_INET, dstLen: 0, table: 0, protocol: 0, scope: 0, type: 0, flags: 0,
  }), [u32Attr(RTA_TABLE, table)]);
}

const TYPE_NAMES = new Map<number, string>(Object.entries(TYPES).map(([k, v]) => [v, k]));

/** Reads an RTM_NEWROUTE / RTM_DELROUTE message. */
export function parseRoute(msg: NetlinkMessage): Route {
  const p = msg.payload;
  if (p.length < RTMSG_LEN) throw new RangeError(`netlink: route message of ${p.length} bytes is shorter than rtmsg (12)`);
  const flags = new DataView(p.buffer, p.byteOffset, p.length).getUint32(8, true);
  const a = parseAttrs(p, RTMSG_LEN);
  const dst = a.get(RTA_DST);
  const gw = a.get(RTA_GATEWAY);
  const oif = a.get(RTA_OIF);
  const src = a.get(RTA_PREFSRC);
  const prio = a.get(RTA_PRIORITY);
  const tableAttr = a.get(RTA_TABLE);
  const dstLen = p[1]!;
  const type = p[7]!;
  return {
    family: p[0]!,
    dst: dst ? `${bytesToIp(dst)}/${dstLen}` : "default",
    dstLen,
    ...(gw ? { gw: bytesToIp(gw) } : {}),
    ...(oif ? { dev: readU32(oif) } : {}),
    ...(src ? { src: bytesToIp(src) } : {}),
    ...(prio ? { priority: readU32(prio) } : {}),
    table: tableAttr ? readU32(tableAttr) : p[4]!,
    protocol: p[5]!,
    scope: p[6]!,
    type,
    typeName: TYPE_NAMES.get(type) ?? `type ${type}`,
    flags,
    onlink: (flags & RTNH_F_ONLINK) !== 0,
  };
}
