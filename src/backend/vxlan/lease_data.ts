/**
 * @module What a vxlan lease carries and what a vxlan peer needs in the kernel. BackendData is
 * `{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}` (VNI first, MAC lowercase, compat §2.3); readers
 * also accept flannel ≤ v0.13's `{"VtepMAC":…}` without a VNI. `vxlanPeerEntries` is the pure
 * per-peer rule of compat §6.1: neighbour + FDB + onlink route, or only a direct route.
 */
import { getCI, isObject } from "../../config/json_ci.ts";
import { type Lease, showValue } from "../../lease/lease.ts";
import { formatIPv4, formatIPv4Net } from "../../net/ip.ts";
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
export function parseVxlanLeaseData(data: unknown): VxlanLeaseData | string {
  if (!isObject(data)) return `BackendData ${data === undefined ? "(none)" : showValue(data)} is not an object with a VtepMAC`;
  const mac = getCI(data, "VtepMAC");
  if (typeof mac !== "string") return `BackendData.VtepMAC ${mac === undefined ? "(missing)" : showValue(mac)} must be a MAC address string`;
  const lower = mac.toLowerCase();
  if (!isUnicastMac(lower)) return `BackendData.VtepMAC ${showValue(mac)} is not a unicast MAC address (xx:xx:xx:xx:xx:xx)`;
  const vni = getCI(data, "VNI");
  if (vni === undefined || vni === null) return { vtepMAC: lower };
  if (typeof vni !== "number" || !Number.isInteger(vni) || vni < 0 || vni > 0xffffff) {
    return `BackendData.VNI ${showValue(vni)} must be a whole number from 0 to 16777215`;
  }
  return { vni, vtepMAC: lower };
}

/** Where a peer's entries go. */
export interface VxlanPeerContext {
  /** Index of flannel.N. */
  readonly dev: number;
  /** Index of the external interface (direct routes). */
  readonly iface: number;
  /** DirectRouting is on and the peer's PublicIP is on our L2 (no gateway, out of `iface`). */
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
  if (ctx.direct) return { routes: [{ dst, gw: publicIP, dev: ctx.iface }], neighs: [], fdbs: [] };
  const netAddr = formatIPv4(subnet.ip);
  return {
    neighs: [{ dev: ctx.dev, ip: netAddr, mac: data.vtepMAC }],
    fdbs: [{ dev: ctx.dev, mac: data.vtepMAC, dst: publicIP }],
    routes: [{ dst, gw: netAddr, dev: ctx.dev, onlink: true }],
  };
}
