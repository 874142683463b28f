/**
 * @module Leases as flannel stores them (compat §2, §2.3): the subnet key `10.5.34.0-24`
 * (dual stack: `10.5.34.0-24&fc00:0:0:22::-64`) and the value, compact JSON with flannel's fixed
 * field order. Encoding is byte-exact with flanneld; decoding accepts everything flanneld writes
 * and rejects anything else with an error naming the key and the problem.
 */
import {
  type IPv4Net, type IPv6Net, formatIPv4, formatIPv6, maskV4, maskV6, tryParseIPv4, tryParseIPv6,
} from "../net/ip.ts";
import { getCI, isObject } from "../config/json_ci.ts";

/** What a host advertises with its subnet (flannel's LeaseAttrs). */
export interface LeaseAttrs {
  /** IPv4 public address; 0 is written as "0.0.0.0" (v6-only hosts). */
  publicIP: number;
  publicIPv6?: bigint;
  /** Omitted for udp and alloc, as flanneld does. */
  backendType?: string;
  /** Raw JSON values (already parsed); omitted when undefined. */
  backendData?: unknown;
  backendV6Data?: unknown;
}

/** A subnet lease: which subnet(s), who holds it, until when. */
export interface Lease {
  /** The IPv4 subnet; absent for an IPv6-only lease (key `0.0.0.0-0&…`). */
  subnet?: IPv4Net;
  ipv6Subnet?: IPv6Net;
  attrs: LeaseAttrs;
  /** Expiry as epoch ms; null for a reservation (a key without an etcd lease); 0 when not known. */
  expiration: number | null;
  /** The etcd lease ID ("0" for reservations), when read from etcd. */
  etcdLease?: string;
  /**
   * An ordering of when the lease was first created: the etcd create revision; the Kubernetes
   * manager may fill it from the Node's creation. The older lease wins a conflict (admission.ts).
   */
  created?: bigint;
}

/** A change in the set of peer leases. */
export interface LeaseEvent {
  type: "added" | "removed";
  lease: Lease;
}

// ---------------------------------------------------------------- keys

/** flannel's key regex (end-anchored, two unescaped dots kept as flannel has them). */
const KEY_RE = /(\d+\.\d+.\d+.\d+)-(\d+)(?:&([a-f\d:]+)-(\d+))?$/;

/** The key suffix of a lease, e.g. `10.5.34.0-24` or `10.5.34.0-24&fc00:0:0:22::-64`. */
export function subnetKey(subnet: IPv4Net | undefined, ipv6Subnet?: IPv6Net): string {
  const v4 = subnet ? `${formatIPv4(subnet.ip)}-${subnet.len}` : "0.0.0.0-0";
  return ipv6Subnet ? `${v4}&${formatIPv6(ipv6Subnet.ip)}-${ipv6Subnet.len}` : v4;
}

/** Parses a key (full etcd key or suffix); undefined when flannel would skip it. */
export function parseSubnetKey(key: string): { subnet?: IPv4Net; ipv6Subnet?: IPv6Net } | undefined {
  const m = KEY_RE.exec(key);
  if (!m) return undefined;
  const ip = tryParseIPv4(m[1]!);
  const len = Number(m[2]);
  if (ip === undefined || len > 32 || ((ip & maskV4(len)) >>> 0) !== ip) return undefined;
  const out: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net } = {};
  if (!(ip === 0 && len === 0)) out.subnet = { ip, len };
  if (m[3] !== undefined) {
    const ip6 = tryParseIPv6(m[3]);
    const len6 = Number(m[4]);
    if (ip6 === undefined || len6 > 128 || (ip6 & maskV6(len6)) !== ip6) return undefined;
    out.ipv6Subnet = { ip: ip6, len: len6 };
  }
  if (!out.subnet && !out.ipv6Subnet) return undefined;
  return out;
}

/** The key suffix of a lease. */
export function leaseKey(lease: Pick<Lease, "subnet" | "ipv6Subnet">): string {
  return subnetKey(lease.subnet, lease.ipv6Subnet);
}

// ---------------------------------------------------------------- values

/** JSON text as Go's encoding/json writes it: compact, with <, >, &, U+2028/9 escaped. */
function goJSON(v: unknown): string {
  return JSON.stringify(v).replace(/[<>&\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}

/** Encodes lease attributes exactly as flanneld does (field order fixed). */
export function encodeLeaseAttrs(a: LeaseAttrs): string {
  let s = `{"PublicIP":${goJSON(formatIPv4(a.publicIP))},"PublicIPv6":${a.publicIPv6 === undefined ? "null" : goJSON(formatIPv6(a.publicIPv6))}`;
  if (a.backendType) s += `,"BackendType":${goJSON(a.backendType)}`;
  if (a.backendData !== undefined && a.backendData !== null) s += `,"BackendData":${goJSON(a.backendData)}`;
  if (a.backendV6Data !== undefined && a.backendV6Data !== null) s += `,"BackendV6Data":${goJSON(a.backendV6Data)}`;
  return `${s}}`;
}

/**
 * A value from a peer's lease as JSON text for a message, cut to `max` characters: anyone may
 * write a lease, and a 1 MB value must not become a 1 MB log line (or stay in memory as one).
 */
export function showValue(v: unknown, max = 80): string {
  const text = JSON.stringify(v) ?? String(v);
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

/** A lease value that flannel could not have written; `key` names the etcd key. */
export class LeaseValueError extends Error {
  constructor(readonly key: string, message: string) {
    super(`lease ${key}: ${message}`);
    this.name = "LeaseValueError";
  }
}

/** Decodes a lease value written by flanneld or weft. Throws LeaseValueError. */
export function decodeLeaseAttrs(key: string, text: string): LeaseAttrs {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    throw new LeaseValueError(key, `value is not JSON (${(e as Error).message}): ${text.slice(0, 80)}`);
  }
  if (!isObject(obj)) throw new LeaseValueError(key, `value must be a JSON object, got ${text.slice(0, 80)}`);
  const out: LeaseAttrs = { publicIP: 0 };
  const pub = getCI(obj, "PublicIP");
  if (pub !== undefined && pub !== null) {
    const ip = typeof pub === "string" ? tryParseIPv4(pub) : undefined;
    if (ip === undefined) throw new LeaseValueError(key, `PublicIP ${showValue(pub)} is not an IPv4 address`);
    out.publicIP = ip;
  }
  const pub6 = getCI(obj, "PublicIPv6");
  if (pub6 !== undefined && pub6 !== null) {
    const ip = typeof pub6 === "string" ? tryParseIPv6(pub6) : undefined;
    if (ip === undefined) throw new LeaseValueError(key, `PublicIPv6 ${showValue(pub6)} is not an IPv6 address`);
    out.publicIPv6 = ip;
  }
  const type = getCI(obj, "BackendType");
  if (type !== undefined && type !== null) {
    if (typeof type !== "string") throw new LeaseValueError(key, `BackendType ${showValue(type)} must be a string`);
    if (type !== "") out.backendType = type;
  }
  const data = getCI(obj, "BackendData");
  if (data !== undefined && data !== null) out.backendData = data;
  const data6 = getCI(obj, "BackendV6Data");
  if (data6 !== undefined && data6 !== null) out.backendV6Data = data6;
  return out;
}

/** The backend type a lease advertises; "" for udp and alloc, which flanneld leaves out. */
export function leaseBackendType(attrs: LeaseAttrs): string {
  return attrs.backendType ?? "";
}

/** True when two leases advertise the same thing (used to turn re-puts into update events). */
export function sameAttrs(a: LeaseAttrs, b: LeaseAttrs): boolean {
  return encodeLeaseAttrs(a) === encodeLeaseAttrs(b);
}
