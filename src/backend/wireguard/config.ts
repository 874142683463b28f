/**
 * @module The wireguard Backend object (compat §2.2; flannel's backend/wireguard): `ListenPort`
 * (51820), `ListenPortV6` (51821), `PSK` (none), `PersistentKeepaliveInterval` (0 = off, in
 * seconds), `Mode` (`separate`, `auto`, `ipv4`, `ipv6`; default separate), `MTU` (the underlay
 * MTU to assume; default the external interface's). Keys are case-insensitive as Go reads them;
 * values are not (`"Auto"` is no mode, as in flanneld).
 */
import { getCI } from "../../config/json_ci.ts";
import { parseKey } from "./wg_key.ts";

export const DEFAULT_LISTEN_PORT = 51820;
export const DEFAULT_LISTEN_PORT_V6 = 51821;
/** Outer IPv6 (40) + UDP (8) + WireGuard (32) headers: flanneld takes 80 off the MTU for either family. */
export const WIREGUARD_OVERHEAD = 80;

/** How the address families map to devices: `separate` gives IPv6 its own flannel-wg-v6. */
export type WireguardMode = "separate" | "auto" | "ipv4" | "ipv6";
const MODES: readonly WireguardMode[] = ["separate", "auto", "ipv4", "ipv6"];

export interface WireguardConfig {
  readonly listenPort: number;
  readonly listenPortV6: number;
  /** 32 bytes, or null without a PSK. */
  readonly psk: Uint8Array | null;
  /** Seconds between keepalives to each peer; 0 = none. */
  readonly persistentKeepaliveInterval: number;
  readonly mode: WireguardMode;
  /** Underlay MTU override; 0 means the external interface's MTU. */
  readonly mtu: number;
}

function uint(obj: Record<string, unknown>, key: string, dflt: number, min: number, max: number, unit = ""): number {
  const v = getCI(obj, key);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new RangeError(`invalid wireguard backend config: Backend.${key} ${JSON.stringify(v)} must be a whole number from ${min} to ${max}${unit}`);
  }
  return v;
}

/**
 * Reads the Backend object of a wireguard network. Throws naming the key, value and what is
 * allowed.
 *
 * @example
 * parseWireguardConfig({ Type: "wireguard", PersistentKeepaliveInterval: 25, Mode: "auto" })
 * // → { listenPort: 51820, listenPortV6: 51821, psk: null, persistentKeepaliveInterval: 25, mode: "auto", mtu: 0 }
 */
export function parseWireguardConfig(backend: Record<string, unknown>): WireguardConfig {
  const mode = getCI(backend, "Mode") ?? "separate";
  if (typeof mode !== "string" || !MODES.includes(mode as WireguardMode)) {
    throw new TypeError(`invalid wireguard backend config: Backend.Mode ${JSON.stringify(mode)} must be one of ${MODES.map((m) => `"${m}"`).join(", ")}`);
  }
  const pskText = getCI(backend, "PSK") ?? "";
  if (typeof pskText !== "string") {
    throw new TypeError(`invalid wireguard backend config: Backend.PSK ${JSON.stringify(pskText)} must be a string (a key as 'wg genpsk' prints)`);
  }
  return {
    listenPort: uint(backend, "ListenPort", DEFAULT_LISTEN_PORT, 1, 65535),
    listenPortV6: uint(backend, "ListenPortV6", DEFAULT_LISTEN_PORT_V6, 1, 65535),
    psk: pskText === "" ? null : parseKey(pskText, "invalid wireguard backend config: Backend.PSK"),
    persistentKeepaliveInterval: uint(backend, "PersistentKeepaliveInterval", 0, 0, 65535, " (seconds; 0 = off)"),
    mode: mode as WireguardMode,
    mtu: uint(backend, "MTU", 0, 0, 65535),
  };
}

/** The device MTU (FLANNEL_MTU): underlay MTU minus 80 (compat §6.8). */
export function wireguardDeviceMtu(cfg: WireguardConfig, ifaceMtu: number, ifaceName: string): number {
  const underlay = cfg.mtu || ifaceMtu;
  if (underlay === 0) throw new Error(`interface ${ifaceName} reports MTU 0: cannot size the wireguard device (set Backend.MTU)`);
  const mtu = underlay - WIREGUARD_OVERHEAD;
  if (mtu < 68) throw new RangeError(`wireguard device MTU would be ${mtu} (underlay ${underlay} - ${WIREGUARD_OVERHEAD}); IPv4 needs at least 68`);
  return mtu;
}
