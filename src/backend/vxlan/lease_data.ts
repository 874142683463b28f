/**
 * @module What a vxlan lease carries and what a vxlan peer needs in the kernel. BackendData is
 * `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}` (VNI first, MAC lowercase, compat §2.3), and
 * BackendV6Data the same for the IPv6 device flannel-v6.<VNI>; readers also accept flannel ≤
 * v0.13's `{"VtepMAC":…}` without a VNI. `vxlanPeerEntries`/`vxlanPeerEntries6` are the pure
 * per-peer rule of compat §6.1 for each family: neighbour + FDB + onlink route, or only a direct
 * route.
 */
import { getCI, isObject } from "../../config/json_ci.ts";
import { type Lease, showValue } from "../../lease/lease.ts";
import { formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net } from "../../net/ip.ts";
import type { DataPathState } from "../route_plan.ts";

/** The BackendData of a vxlan lease. */
export interface VxlanLeaseData {
  /** Absent in leases of flannel ≤ v0.13. */
  readonly vni?: number;
  /** Lowercase, colon-separated. */
  readonly vtepMAC: string;
}

const MAC_RE = /^[0-9a-f]{2}(:[0-9a-f]{2}){5}$/;

/** True for a MAC usable as a VTEP address: six colon-separated bytes, unicast, not all zero. */
export function isUnicastMac(mac: string): boolean {
  return MAC_RE.test(mac) && (parseInt(mac.slice(0, 2), 16) & 1) === 0 && mac !== "00:00:00:00:00:00";
}

/** BackendData as flanneld writes it: `{"VNI":N,"VtepMAC":"xx:…"}`. */
export function encodeVxlanLeaseData(vni: number, vtepMAC: string): { VNI: number; VtepMAC: string } {
  return { VNI: vni, VtepMAC: vtepMAC.toLowerCase() };
}

/**
 * Reads a peer's BackendData (keys case-insensitive). Returns why it is unusable as a string,
 * never throws: one bad lease must not stop the others.
 */
export function parseVxlanLeaseData(data: unknown, field: "BackendData" | "BackendV6Data" = "BackendData"): VxlanLeaseData | string {
  if (!isObject(data)) return `${field} ${data === undefined ? "(none)" : showValue(data)} is not an object with a VtepMAC`;
  const mac = getCI(data, "VtepMAC");
  if (typeof mac !== "string") return `${field}.VtepMAC ${mac === undefined ? "(missing)" : showValue(mac)} must be a MAC address string`;
  const lower = mac.toLowerCase();
  if (!isUnicastMac(lower)) return `${field}.VtepMAC ${showValue(mac)} is not a unicast MAC address (xx:xx:xx:xx:xx:xx)`;
  const vni = getCI(data, "VNI");
  if (vni === undefined || vni === null) return { vtepMAC: lower };
  if (typeof vni !== "number" || !Number.isInteger(vni) || vni < 0 || vni > 0xffffff) {
    return `${field}.VNI ${showValue(vni)} must be a whole number from 0 to 16777215`;
  }
  return { vni, vtepMAC: lower };
}

/** Where a peer's entries go (one family). */
export interface VxlanPeerContext {
  /** Index of flannel.N (flannel-v6.N for IPv6). */
  readonly dev: number;
  /** Index of the external interface (direct routes). */
  readonly iface: number;
  /** DirectRouting is on and the peer's PublicIP (PublicIPv6) is on our L2 (no gateway, out of `iface`). */
  readonly direct: boolean;
}

/**
 * The kernel entries one vxlan peer needs (compat §6.1), or why the lease is skipped:
 * - `ip neigh replace <net addr> lladdr <VtepMAC> dev flannel.N nud permanent`
 * - `bridge fdb replace <VtepMAC> dev flannel.N dst <PublicIP> self permanent`
 * - `ip route replace <subnet> via <net addr> dev flannel.N onlink`
 * or with a direct peer only `ip route replace <subnet> via <PublicIP> dev <iface>`.
 * The lease must already be checked for type, subnet and PublicIP (PeerSync does).
 */
export function vxlanPeerEntries(lease: Lease, ctx: VxlanPeerContext): DataPathState | string {
  const subnet = lease.subnet;
  if (!subnet) return "no IPv4 subnet";
  const dst = formatIPv4Net(subnet);
  const publicIP = formatIPv4(lease.attrs.publicIP);
  const data = parseVxlanLeaseData(lease.attrs.backendData);
  if (typeof data === "string") return `skipping vxlan lease ${dst} (PublicIP ${publicIP}): ${data}`;
  return entries(ctx, dst, formatIPv4(subnet.ip), publicIP, data.vtepMAC);
}

/** Neighbour + FDB entry + onlink route (or the direct route) of one family, from its addresses as text. */
function entries(ctx: VxlanPeerContext, dst: string, netAddr: string, publicAddr: string, mac: string): DataPathState {
  if (ctx.direct) return { routes: [{ dst, gw: publicAddr, dev: ctx.iface }], neighs: [], fdbs: [] };
  return {
    neighs: [{ dev: ctx.dev, ip: netAddr, mac }],
    fdbs: [{ dev: ctx.dev, mac, dst: publicAddr }],
    routes: [{ dst, gw: netAddr, dev: ctx.dev, onlink: true }],
  };
}

/**
 * The IPv6 entries one vxlan peer needs on flannel-v6.N (compat §6.1 "v6: the same"), or why
 * they are skipped:
 * - `ip -6 neigh replace <v6 net addr> lladdr <V6 VtepMAC> dev flannel-v6.N nud permanent`
 * - `bridge fdb replace <V6 VtepMAC> dev flannel-v6.N dst <PublicIPv6> self permanent`
 * - `ip -6 route replace <v6 subnet> via <v6 net addr> dev flannel-v6.N onlink`
 * or with a direct peer only `ip -6 route replace <v6 subnet> via <PublicIPv6> dev <iface>`.
 * The lease must already be checked for type, IPv6 subnet and PublicIPv6 (PeerSync does).
 */
export function vxlanPeerEntries6(lease: Lease, ctx: VxlanPeerContext): DataPathState | string {
  const subnet = lease.ipv6Subnet;
  if (!subnet) return "no IPv6 subnet";
  const dst = formatIPv6Net(subnet);
  if (lease.attrs.publicIPv6 === undefined) return `skipping vxlan lease ${dst}: it has no PublicIPv6`;
  const publicIPv6 = formatIPv6(lease.attrs.publicIPv6);
  const data = parseVxlanLeaseData(lease.attrs.backendV6Data, "BackendV6Data");
  if (typeof data === "string") return `skipping vxlan lease ${dst} (PublicIPv6 ${publicIPv6}): ${data}`;
  return entries(ctx, dst, formatIPv6(subnet.ip), publicIPv6, data.vtepMAC);
}
