/**
 * @module RTM_NEWLINK / RTM_DELLINK / RTM_GETLINK messages (struct ifinfomsg + IFLA_*): builders
 * for the link operations weft performs (create a VXLAN device, set up/MTU/MAC, delete, look up,
 * dump) and `parseLink`, which reads a link back, VXLAN parameters included, so an existing
 * device can be compared with the wanted one. Attribute order follows iproute2 6.1 so the bytes
 * equal what `ip link …` sends (tests/fixtures/netlink/link_*.json).
 */
import {
  type Attr, be16Attr, bytesAttr, flagAttr, nestedAttr, parseAttrs, readBe16, readString, readU32,
  readU8, stringAttr, u32Attr, u8Attr, zeroTerminatedAttr,
} from "./attr.ts";
import {
  AF_INET, AF_PACKET, AF_UNSPEC, IFF_LOWER_UP, IFF_UP, IFINFOMSG_LEN, IFLA_ADDRESS, IFLA_EXT_MASK,
  IFLA_IFNAME, IFLA_INFO_DATA, IFLA_INFO_KIND, IFLA_LINK, IFLA_LINKINFO, IFLA_MASTER, IFLA_MTU,
  IFLA_OPERSTATE, IFLA_VXLAN_GBP, IFLA_VXLAN_ID, IFLA_VXLAN_LEARNING, IFLA_VXLAN_LINK, IFLA_VXLAN_LOCAL,
  IFLA_VXLAN_LOCAL6, IFLA_VXLAN_PORT, NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST,
  RTEXT_FILTER_SKIP_STATS, RTEXT_FILTER_VF, RTM_DELLINK, RTM_GETLINK, RTM_NEWLINK,
} from "./constants.ts";
import { type NetlinkMessage, encodeMessage } from "./message.ts";
import { bytesToIp, bytesToMac, ipToBytes, macToBytes } from "./values.ts";

/** VXLAN parameters: the fields of `ip link add … type vxlan …`, and what a device reports. */
export interface VxlanInfo {
  /** VXLAN network identifier, 0..2^24-1. */
  readonly vni: number;
  /** IPv4 source address for the tunnel (`local`); give this or `local6`. */
  readonly local?: string;
  /** IPv6 source address for the tunnel (`local`). */
  readonly local6?: string;
  /** Interface index of the underlay device (`dev`). */
  readonly underlayIndex?: number;
  /** UDP destination port (`dstport`), e.g. 8472. */
  readonly port: number;
  /** Source-address learning; flannel turns it off (`nolearning`). */
  readonly learning: boolean;
  /** Group Based Policy extension (`gbp`). */
  readonly gbp: boolean;
}

/** What `linkAddVxlan` creates: `ip link add NAME [mtu M] [address MAC] type vxlan …`. */
export interface VxlanLinkSpec extends VxlanInfo {
  readonly name: string;
  readonly mtu?: number;
  /** Link-layer address (`address`), e.g. "0a:58:0a:f4:00:00". */
  readonly mac?: string;
}

/** A link as `ip -d link show` reports it. */
export interface Link {
  readonly index: number;
  readonly name: string;
  /** ARPHRD_* hardware type (1 = Ethernet). */
  readonly hwType: number;
  /** IFF_* flags. */
  readonly flags: number;
  /** Administratively up (IFF_UP). */
  readonly up: boolean;
  /** Carrier present (IFF_LOWER_UP). */
  readonly lowerUp: boolean;
  readonly mtu?: number;
  readonly mac?: string;
  /** IF_OPER_* (6 = up). */
  readonly operState?: number;
  /** IFLA_LINK: the peer or parent index (veth peer, vlan parent). */
  readonly parentIndex?: number;
  /** IFLA_MASTER: the bridge or VRF this link is enslaved to. */
  readonly masterIndex?: number;
  /** IFLA_INFO_KIND, e.g. "vxlan", "veth", "bridge". */
  readonly kind?: string;
  readonly vxlan?: VxlanInfo;
}

function ifinfomsg(family: number, index: number, flags = 0, change = 0): Uint8Array {
  const b = new Uint8Array(IFINFOMSG_LEN);
  const v = new DataView(b.buffer);
  b[0] = family;
  v.setInt32(4, index, true);
  v.setUint32(8, flags, true);
  v.setUint32(12, change, true);
  return b;
}

function checkIndex(what: string, index: number): void {
  if (!Number.isInteger(index) || index <= 0 || index > 0x7fffffff) {
    throw new RangeError(`${what} ${index} is not an interface index (a positive integer)`);
  }
}

function checkName(name: string): void {
  // IFNAMSIZ is 16 with the NUL; the kernel also refuses "/", ":" and whitespace.
  if (name.length === 0 || name.length > 15 || /[/:\s]/.test(name)) {
    throw new TypeError(`interface name ${JSON.stringify(name)} must be 1..15 characters without "/", ":" or spaces`);
  }
}

/**
 * Equivalent to: `ip link add NAME [mtu M] [address MAC] type vxlan id VNI local IP dev UNDERLAY
 * dstport PORT [nolearning] [gbp]` (NLM_F_CREATE|NLM_F_EXCL: fails with EEXIST if NAME exists).
 */
export function buildLinkAddVxlan(spec: VxlanLinkSpec): Uint8Array {
  checkName(spec.name);
  if (!Number.isInteger(spec.vni) || spec.vni < 0 || spec.vni > 0xffffff) {
    throw new RangeError(`vxlan vni ${spec.vni} must be an integer in 0..16777215`);
  }
  if (spec.local !== undefined && spec.local6 !== undefined) {
    throw new TypeError(`vxlan ${spec.name}: give local (IPv4) or local6 (IPv6), not both`);
  }
  const data: Attr[] = [];
  if (spec.underlayIndex !== undefined) {
    checkIndex("vxlan underlayIndex", spec.underlayIndex);
    data.push(u32Attr(IFLA_VXLAN_LINK, spec.underlayIndex));
  }
  if (spec.gbp) data.push(flagAttr(IFLA_VXLAN_GBP));
  data.push(u32Attr(IFLA_VXLAN_ID, spec.vni));
  if (spec.local !== undefined) {
    const ip = ipToBytes(spec.local, "vxlan local");
    if (ip.family !== AF_INET) throw new TypeError(`vxlan local ${JSON.stringify(spec.local)} must be IPv4 (use local6 for IPv6)`);
    data.push(bytesAttr(IFLA_VXLAN_LOCAL, ip.bytes));
  }
  if (spec.local6 !== undefined) {
    const ip = ipToBytes(spec.local6, "vxlan local6");
    if (ip.family === AF_INET) throw new TypeError(`vxlan local6 ${JSON.stringify(spec.local6)} must be IPv6`);
    data.push(bytesAttr(IFLA_VXLAN_LOCAL6, ip.bytes));
  }
  data.push(u8Attr(IFLA_VXLAN_LEARNING, spec.learning ? 1 : 0));
  data.push(be16Attr(IFLA_VXLAN_PORT, spec.port));

  const attrs: Attr[] = [];
  if (spec.mtu !== undefined) attrs.push(u32Attr(IFLA_MTU, spec.mtu));
  if (spec.mac !== undefined) attrs.push(bytesAttr(IFLA_ADDRESS, macToBytes(spec.mac, "vxlan mac")));
  attrs.push(zeroTerminatedAttr(IFLA_IFNAME, spec.name));
  attrs.push(nestedAttr(IFLA_LINKINFO, [stringAttr(IFLA_INFO_KIND, "vxlan"), nestedAttr(IFLA_INFO_DATA, data)]));
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK | NLM_F_EXCL | NLM_F_CREATE, ifinfomsg(AF_UNSPEC, 0), attrs);
}

/** Equivalent to: `ip link show NAME` (the lookup iproute2 does to resolve a name). Reply: one RTM_NEWLINK. */
export function buildLinkGetByName(name: string): Uint8Array {
  checkName(name);
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST, ifinfomsg(AF_UNSPEC, 0), [
    u32Attr(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS),
    zeroTerminatedAttr(IFLA_IFNAME, name),
  ]);
}

/** Equivalent to: `ip link show dev INDEX`. Reply: one RTM_NEWLINK. */
export function buildLinkGetByIndex(index: number): Uint8Array {
  checkIndex("link index", index);
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST, ifinfomsg(AF_UNSPEC, index), [
    u32Attr(IFLA_EXT_MASK, RTEXT_FILTER_VF | RTEXT_FILTER_SKIP_STATS),
  ]);
}

/** Equivalent to: `ip link show` (a dump of every link). */
export function buildLinkDump(): Uint8Array {
  return encodeMessage(RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, ifinfomsg(AF_PACKET, 0), [u32Attr(IFLA_EXT_MASK, RTEXT_FILTER_VF)]);
}

/** Equivalent to: `ip link set dev INDEX up` (or `down`). */
export function buildLinkSetUp(index: number, up = true): Uint8Array {
  checkIndex("link index", index);
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(AF_UNSPEC, index, up ? IFF_UP : 0, IFF_UP));
}

/** Equivalent to: `ip link set dev INDEX mtu MTU`. */
export function buildLinkSetMtu(index: number, mtu: number): Uint8Array {
  checkIndex("link index", index);
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(AF_UNSPEC, index), [u32Attr(IFLA_MTU, mtu)]);
}

/** Equivalent to: `ip link set dev INDEX address MAC`. */
export function buildLinkSetAddress(index: number, mac: string): Uint8Array {
  checkIndex("link index", index);
  return encodeMessage(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(AF_UNSPEC, index), [
    bytesAttr(IFLA_ADDRESS, macToBytes(mac, "link address")),
  ]);
}

/** Equivalent to: `ip link del dev INDEX`. */
export function buildLinkDel(index: number): Uint8Array {
  checkIndex("link index", index);
  return encodeMessage(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, ifinfomsg(AF_UNSPEC, index));
}

function parseVxlan(data: Uint8Array): VxlanInfo {
  const a = parseAttrs(data);
  const get = (t: number) => a.get(t);
  const local = get(IFLA_VXLAN_LOCAL);
  const local6 = get(IFLA_VXLAN_LOCAL6);
  const link = get(IFLA_VXLAN_LINK);
  const learning = get(IFLA_VXLAN_LEARNING);
  return {
    vni: readU32(get(IFLA_VXLAN_ID) ?? new Uint8Array(4)),
    ...(local ? { local: bytesToIp(local) } : {}),
    ...(local6 ? { local6: bytesToIp(local6) } : {}),
    ...(link && readU32(link) !== 0 ? { underlayIndex: readU32(link) } : {}),
    port: readBe16(get(IFLA_VXLAN_PORT) ?? new Uint8Array(2)),
    learning: learning ? readU8(learning) !== 0 : true,
    gbp: a.has(IFLA_VXLAN_GBP),
  };
}

/** Reads an RTM_NEWLINK message (a reply to a get or dump, or a monitor event). */
export function parseLink(msg: NetlinkMessage): Link {
  const p = msg.payload;
  if (p.length < IFINFOMSG_LEN) throw new RangeError(`netlink: link message of ${p.length} bytes is shorter than ifinfomsg (16)`);
  const v = new DataView(p.buffer, p.byteOffset, p.length);
  const flags = v.getUint32(8, true);
  const a = parseAttrs(p, IFINFOMSG_LEN);
  const mtu = a.get(IFLA_MTU);
  const mac = a.get(IFLA_ADDRESS);
  const oper = a.get(IFLA_OPERSTATE);
  const parent = a.get(IFLA_LINK);
  const master = a.get(IFLA_MASTER);
  let kind: string | undefined;
  let vxlan: VxlanInfo | undefined;
  const info = a.get(IFLA_LINKINFO);
  if (info) {
    const i = parseAttrs(info);
    const k = i.get(IFLA_INFO_KIND);
    if (k) kind = readString(k);
    const data = i.get(IFLA_INFO_DATA);
    if (kind === "vxlan" && data) vxlan = parseVxlan(data);
  }
  return {
    index: v.getInt32(4, true),
    name: readString(a.get(IFLA_IFNAME) ?? new Uint8Array(0)),
    hwType: v.getUint16(2, true),
    flags,
    up: (flags & IFF_UP) !== 0,
    lowerUp: (flags & IFF_LOWER_UP) !== 0,
    ...(mtu ? { mtu: readU32(mtu) } : {}),
    ...(mac && mac.length > 0 ? { mac: bytesToMac(mac) } : {}),
    ...(oper ? { operState: readU8(oper) } : {}),
    ...(parent ? { parentIndex: readU32(parent) } : {}),
    ...(master ? { masterIndex: readU32(master) } : {}),
    ...(kind !== undefined ? { kind } : {}),
    ...(vxlan ? { vxlan } : {}),
  };
}
