/**
 * @module The vxlan Backend object (compat §2.2): `VNI` (1), `Port` (0 = 8472), `MTU` (the
 * underlay MTU to assume; 0 = the interface's), `GBP`, `Learning`, `DirectRouting` (false), keys
 * case-insensitive as Go reads them. weft adds `DisableTxChecksumOffload` (false; compat §13),
 * which flanneld ignores as an unknown key, so one config serves both.
 */
import { getCI } from "../../config/json_ci.ts";

/** The VXLAN port Linux uses when none is given (flannel's default), not IANA's 4789. */
export const DEFAULT_VXLAN_PORT = 8472;
/** Outer Ethernet + IPv4 + UDP + VXLAN headers. */
export const VXLAN_OVERHEAD_V4 = 50;
/** Outer Ethernet + IPv6 + UDP + VXLAN headers (flanneld wrongly uses 50 here: compat §12.9). */
export const VXLAN_OVERHEAD_V6 = 70;

export interface VxlanConfig {
  readonly vni: number;
  /** UDP port, 8472 when the config says 0 or nothing. */
  readonly port: number;
  /** Underlay MTU override; 0 means the external interface's MTU. */
  readonly mtu: number;
  readonly gbp: boolean;
  readonly learning: boolean;
  readonly directRouting: boolean;
  /** Turn off tx checksum offload on the device (`ethtool -K flannel.N tx-checksum-ip-generic off`). */
  readonly disableTxChecksumOffload: boolean;
}

function uint(obj: Record<string, unknown>, key: string, dflt: number, max: number): number {
  const v = getCI(obj, key);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    throw new RangeError(`invalid vxlan backend config: Backend.${key} ${JSON.stringify(v)} must be a whole number from 0 to ${max}`);
  }
  return v;
}

function bool(obj: Record<string, unknown>, key: string): boolean {
  const v = getCI(obj, key);
  if (v === undefined || v === null) return false;
  if (typeof v !== "boolean") throw new TypeError(`invalid vxlan backend config: Backend.${key} ${JSON.stringify(v)} must be true or false`);
  return v;
}

/**
 * Reads the Backend object of a vxlan network. Throws naming the key, value and allowed range.
 *
 * @example
 * parseVxlanConfig({ Type: "vxlan", vni: 4096, DirectRouting: true })
 * // → { vni: 4096, port: 8472, mtu: 0, gbp: false, learning: false, directRouting: true, … }
 */
export function parseVxlanConfig(backend: Record<string, unknown>): VxlanConfig {
  const port = uint(backend, "Port", 0, 65535);
  return {
    vni: uint(backend, "VNI", 1, 0xffffff),
    port: port === 0 ? DEFAULT_VXLAN_PORT : port,
    mtu: uint(backend, "MTU", 0, 65535),
    gbp: bool(backend, "GBP"),
    learning: bool(backend, "Learning"),
    directRouting: bool(backend, "DirectRouting"),
    disableTxChecksumOffload: bool(backend, "DisableTxChecksumOffload"),
  };
}

/**
 * A device's MTU: the underlay MTU minus 50 for flannel.N over IPv4 (compat §6.8), minus 70 for
 * flannel-v6.N over IPv6 (§12.9). FLANNEL_MTU is the smallest of the devices made.
 */
export function vxlanDeviceMtu(cfg: VxlanConfig, ifaceMtu: number, ifaceName: string, family: 4 | 6 = 4): number {
  const underlay = cfg.mtu || ifaceMtu;
  if (underlay === 0) throw new Error(`interface ${ifaceName} reports MTU 0: cannot size the vxlan device (set Backend.MTU)`);
  const overhead = family === 4 ? VXLAN_OVERHEAD_V4 : VXLAN_OVERHEAD_V6;
  const mtu = underlay - overhead;
  // The inner packets of flannel.N are IPv4 (68 minimum); flannel-v6.N carries IPv6 (1280).
  const min = family === 4 ? 68 : 1280;
  if (mtu < min) {
    throw new RangeError(`vxlan device MTU would be ${mtu} (underlay ${underlay} - ${overhead}); ${family === 4 ? "IPv4" : "IPv6"} needs at least ${min}`);
  }
  return mtu;
}
