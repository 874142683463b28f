/**
 * @module RTM_NEWNEIGH / RTM_DELNEIGH / RTM_GETNEIGH messages (struct ndmsg + NDA_*) for both
 * tables weft programs: IPv4/IPv6 neighbours (ARP/NDP entries, `ip neigh`) and bridge forwarding
 * entries of a VXLAN device (AF_BRIDGE with NTF_SELF, `bridge fdb`), where NDA_DST is the remote
 * VTEP. Bytes equal what iproute2 sends (tests/fixtures/netlink/neigh_*.json, fdb_*.json).
 */
import { bytesAttr, parseAttrs, u32Attr } from "./attr.ts";
import {
  AF_BRIDGE, AF_UNSPEC, NDA_DST, NDA_IFINDEX, NDA_LLADDR, NDMSG_LEN, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP,
  NLM_F_REPLACE, NLM_F_REQUEST, NTF_SELF, NUD_NOARP, NUD_PERMANENT, NUD_REACHABLE, RTM_DELNEIGH, RTM_GETNEIGH,
  RTM_NEWNEIGH,
} from "./constants.ts";
import { type NetlinkMessage, encodeMessage } from "./message.ts";
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from "./values.ts";

/** `ip neigh replace IP lladdr MAC dev INDEX nud permanent`. */
export interface NeighSpec {
  readonly index: number;
  readonly ip: string;
  /** Needed for replace; ignored by delete. */
  readonly mac?: string;
  /** NUD_PERMANENT (else NUD_REACHABLE). Default true: flannel's entries are permanent. */
  readonly permanent?: boolean;
}

/** `bridge fdb replace MAC dev INDEX dst IP self permanent`. */
export interface FdbSpec {
  readonly index: number;
  readonly mac: string;
  /** Remote VTEP address (NDA_DST). */
  readonly dst?: string;
  /** The entry is the device's own (NTF_SELF), not its bridge master's. Default true. */
  readonly self?: boolean;
  /** Default true. */
  readonly permanent?: boolean;
}

/** A neighbour-table entry as `ip neigh show` / `bridge fdb show` report it. */
export interface Neigh {
  readonly family: number;
  readonly index: number;
  /** NUD_* state bits. */
  readonly state: number;
  /** NTF_* flags. */
  readonly flags: number;
  readonly permanent: boolean;
  /** NDA_LLADDR. */
  readonly mac?: string;
  /** NDA_DST: the neighbour's IP, or for an FDB entry the remote VTEP. */
  readonly ip?: string;
}

/** A forwarding entry of a VXLAN device as `bridge fdb show` reports it. */
export interface FdbEntry {
  readonly index: number;
  readonly mac: string;
  /** Remote VTEP (NDA_DST); absent on entries without one. */
  readonly dst?: string;
  /** NTF_SELF: the device's own entry. */
  readonly self: boolean;
  readonly permanent: boolean;
  readonly state: number;
  readonly flags: number;
}

export type NeighOp = "replace" | "del";

function ndmsg(family: number, index: number, state: number, flags: number): Uint8Array {
  const b = new Uint8Array(NDMSG_LEN);
  const v = new DataView(b.buffer);
  b[0] = family;
  v.setInt32(4, index, true);
  v.setUint16(8, state, true);
  b[10] = flags;
  return b;
}

function opFlags(op: NeighOp): [number, number] {
  return op === "replace"
    ? [RTM_NEWNEIGH, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE]
    : [RTM_DELNEIGH, NLM_F_REQUEST | NLM_F_ACK];
}

/** Equivalent to: `ip neigh replace IP lladdr MAC dev INDEX nud permanent` / `ip neigh del IP dev INDEX`. */
export function buildNeigh(op: NeighOp, spec: NeighSpec): Uint8Array {
  const [type, flags] = opFlags(op);
  const ip = ipToBytes(spec.ip, "neighbour ip");
  const attrs = [bytesAttr(NDA_DST, ip.bytes)];
  if (op === "replace") {
    if (spec.mac === undefined) throw new TypeError(`neighbour ${spec.ip}: replace needs mac (lladdr)`);
    attrs.push(bytesAttr(NDA_LLADDR, macToBytes(spec.mac, "neighbour mac")));
  }
  const state = op === "del" || spec.permanent !== false ? NUD_PERMANENT : NUD_REACHABLE;
  return encodeMessage(type, flags, ndmsg(ip.family, spec.index, state, 0), attrs);
}

/**
 * Equivalent to: `bridge fdb replace MAC dev INDEX dst IP self permanent` / `bridge fdb del MAC
 * dev INDEX dst IP self`. The state carries NUD_NOARP as bridge(8) sends it.
 */
export function buildFdb(op: NeighOp, spec: FdbSpec): Uint8Array {
  const [type, flags] = opFlags(op);
  const attrs = [bytesAttr(NDA_LLADDR, macToBytes(spec.mac, "fdb mac"))];
  if (spec.dst !== undefined) attrs.push(bytesAttr(NDA_DST, ipToBytes(spec.dst, "fdb dst").bytes));
  // bridge(8) sends NUD_NOARP|NUD_PERMANENT for a delete too.
  const state = NUD_NOARP | (op === "del" || spec.permanent !== false ? NUD_PERMANENT : 0);
  return encodeMessage(type, flags, ndmsg(AF_BRIDGE, spec.index, state, spec.self !== false ? NTF_SELF : 0), attrs);
}

/**
 * Equivalent to: `ip neigh show [dev INDEX]` (family AF_UNSPEC, AF_INET or AF_INET6). The kernel
 * filters on NDA_IFINDEX.
 */
export function buildNeighDump(family = AF_UNSPEC, index = 0): Uint8Array {
  return encodeMessage(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, ndmsg(family, 0, 0, 0),
    index ? [u32Attr(NDA_IFINDEX, index)] : []);
}

/**
 * Equivalent to: `bridge fdb show dev INDEX`. Older kernels ignore the index in this legacy
 * header form; callers filter the reply.
 */
export function buildFdbDump(index = 0): Uint8Array {
  return encodeMessage(RTM_GETNEIGH, NLM_F_REQUEST | NLM_F_DUMP, ndmsg(AF_BRIDGE, index, 0, 0));
}

/** Reads an RTM_NEWNEIGH / RTM_DELNEIGH message (neighbour or FDB entry). */
export function parseNeigh(msg: NetlinkMessage): Neigh {
  const p = msg.payload;
  if (p.length < NDMSG_LEN) throw new RangeError(`netlink: neighbour message of ${p.length} bytes is shorter than ndmsg (12)`);
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const a = parseAttrs(p, NDMSG_LEN);
  const mac = a.get(NDA_LLADDR);
  const dst = a.get(NDA_DST);
  const state = v.getUint16(8, true);
  return {
    family: p[0]!,
    index: v.getInt32(4, true),
    state,
    flags: p[10]!,
    permanent: (state & NUD_PERMANENT) !== 0,
    ...(mac && mac.length > 0 ? { mac: bytesToMac(mac) } : {}),
    ...(dst ? { ip: bytesToIp(dst) } : {}),
  };
}

/** Reads an AF_BRIDGE RTM_NEWNEIGH message as an FDB entry (NDA_DST is the remote VTEP). */
export function parseFdb(msg: NetlinkMessage): FdbEntry {
  const n = parseNeigh(msg);
  return {
    index: n.index, mac: n.mac ?? "", ...(n.ip !== undefined ? { dst: n.ip } : {}),
    self: (n.flags & NTF_SELF) !== 0, permanent: n.permanent, state: n.state, flags: n.flags,
  };
}
