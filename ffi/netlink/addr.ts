/**
 * @module RTM_NEWADDR / RTM_DELADDR / RTM_GETADDR messages (struct ifaddrmsg + IFA_*): builders
 * for adding, replacing and deleting an interface address and dumping addresses, and
 * `parseAddr`. Bytes equal what `ip addr …` sends (tests/fixtures/netlink/addr_*.json).
 */
import { bytesAttr, parseAttrs, readString, readU32 } from "./attr.ts";
import {
  AF_UNSPEC, IFA_ADDRESS, IFA_F_NODAD, IFA_FLAGS, IFA_LABEL, IFA_LOCAL, IFADDRMSG_LEN, NLM_F_ACK, NLM_F_CREATE,
  NLM_F_DUMP, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, RTM_DELADDR, RTM_GETADDR, RTM_NEWADDR,
} from "./constants.ts";
import { type NetlinkMessage, encodeMessage } from "./message.ts";
import { bytesToIp, prefixToBytes } from "./values.ts";

/** An address on an interface: `ip addr add CIDR dev INDEX`. */
export interface AddrSpec {
  readonly index: number;
  /** Address with prefix length, e.g. "10.244.0.0/32"; the host bits are kept. */
  readonly cidr: string;
  /** Skip duplicate address detection (IPv6 `nodad`). */
  readonly nodad?: boolean;
}

/** An address as `ip addr show` reports it. */
export interface Addr {
  readonly family: number;
  readonly index: number;
  /** "10.244.0.0/32": IFA_LOCAL (or IFA_ADDRESS) with the prefix length. */
  readonly cidr: string;
  readonly local?: string;
  /** IFA_ADDRESS: the peer on point-to-point links, else equal to local. */
  readonly address?: string;
  readonly prefixLen: number;
  readonly scope: number;
  /** IFA_F_* flags (IFA_FLAGS when present: it has the bits past 8). */
  readonly flags: number;
  readonly label?: string;
}

export type AddrOp = "add" | "replace" | "del";

const OP_FLAGS: Record<AddrOp, [number, number]> = {
  add: [RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL],
  replace: [RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_REPLACE],
  del: [RTM_DELADDR, NLM_F_REQUEST | NLM_F_ACK],
};

function ifaddrmsg(family: number, prefixLen: number, flags: number, scope: number, index: number): Uint8Array {
  const b = new Uint8Array(IFADDRMSG_LEN);
  b[0] = family; b[1] = prefixLen; b[2] = flags; b[3] = scope;
  new DataView(b.buffer).setUint32(4, index, true);
  return b;
}

/**
 * Equivalent to: `ip addr add|replace|del CIDR dev INDEX [nodad]`. The address goes in both
 * IFA_LOCAL and IFA_ADDRESS, as iproute2 sends it.
 */
export function buildAddr(op: AddrOp, spec: AddrSpec): Uint8Array {
  const [type, flags] = OP_FLAGS[op];
  const slash = spec.cidr.indexOf("/");
  if (slash < 0) throw new TypeError(`address ${JSON.stringify(spec.cidr)} needs a prefix length (e.g. 10.244.0.0/32)`);
  // Keep host bits: an interface address is a host inside its prefix.
  const host = prefixToBytes(spec.cidr.slice(0, slash), "address");
  const len = prefixToBytes(spec.cidr, "address").len;
  return encodeMessage(type, flags, ifaddrmsg(host.family, len, spec.nodad ? IFA_F_NODAD : 0, 0, spec.index), [
    bytesAttr(IFA_LOCAL, host.bytes),
    bytesAttr(IFA_ADDRESS, host.bytes),
  ]);
}

/**
 * Equivalent to: `ip addr show [dev INDEX]` (addresses of `family`, AF_UNSPEC for both). Current
 * kernels filter on the index; older ones ignore it, so callers filter the reply too.
 */
export function buildAddrDump(family = AF_UNSPEC, index = 0): Uint8Array {
  return encodeMessage(RTM_GETADDR, NLM_F_REQUEST | NLM_F_DUMP, ifaddrmsg(family, 0, 0, 0, index));
}

/** Reads an RTM_NEWADDR / RTM_DELADDR message. */
export function parseAddr(msg: NetlinkMessage): Addr {
  const p = msg.payload;
  if (p.length < IFADDRMSG_LEN) throw new RangeError(`netlink: address message of ${p.length} bytes is shorter than ifaddrmsg (8)`);
  const a = parseAttrs(p, IFADDRMSG_LEN);
  const local = a.get(IFA_LOCAL);
  const address = a.get(IFA_ADDRESS);
  const label = a.get(IFA_LABEL);
  const extFlags = a.get(IFA_FLAGS);
  const prefixLen = p[1]!;
  const shown = local ?? address;
  return {
    family: p[0]!,
    index: new DataView(p.buffer, p.byteOffset, p.length).getUint32(4, true),
    cidr: shown ? `${bytesToIp(shown)}/${prefixLen}` : `/${prefixLen}`,
    ...(local ? { local: bytesToIp(local) } : {}),
    ...(address ? { address: bytesToIp(address) } : {}),
    prefixLen,
    scope: p[3]!,
    flags: extFlags ? readU32(extFlags) : p[2]!,
    ...(label ? { label: readString(label) } : {}),
  };
}
