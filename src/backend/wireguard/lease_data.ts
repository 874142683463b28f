/**
 * @module What a wireguard lease carries (compat §2.3): BackendData (and BackendV6Data)
 * `{"PublicKey":"<base64>","Port":51820}`, PublicKey first. flanneld v0.20 wrote only the
 * PublicKey and used its own ListenPort for every peer; v0.21 and later add Port and read it,
 * falling back to their own port when it is 0 or absent. weft writes both fields, which v0.20
 * readers ignore, and reads both forms the same way.
 */
import { getCI, isObject } from "../../config/json_ci.ts";
import { formatKey, parseKey } from "./wg_key.ts";

/** A peer's BackendData, read. */
export interface WireguardLeaseData {
  readonly publicKey: Uint8Array;
  /** The peer's listen port, or undefined when its lease does not say (flanneld ≤ v0.20). */
  readonly port?: number;
}

/** BackendData as flanneld ≥ v0.21 writes it: `{"PublicKey":"…","Port":N}`. */
export function encodeWireguardLeaseData(publicKey: Uint8Array, port: number): { PublicKey: string; Port: number } {
  return { PublicKey: formatKey(publicKey), Port: port };
}

/**
 * Reads a peer's BackendData (keys case-insensitive). Returns why it is unusable as a string,
 * never throws: one bad lease must not stop the others.
 */
export function parseWireguardLeaseData(data: unknown): WireguardLeaseData | string {
  if (!isObject(data)) return `BackendData ${JSON.stringify(data) ?? "(none)"} is not an object with a PublicKey`;
  const key = getCI(data, "PublicKey");
  if (typeof key !== "string") return `BackendData.PublicKey ${JSON.stringify(key) ?? "(missing)"} must be a base64 WireGuard key`;
  let publicKey: Uint8Array;
  try {
    publicKey = parseKey(key, "BackendData.PublicKey");
  } catch (e) {
    return (e as Error).message;
  }
  const port = getCI(data, "Port");
  if (port === undefined || port === null || port === 0) return { publicKey };
  if (typeof port !== "number" || !Number.isInteger(port) || port < 0 || port > 65535) {
    return `BackendData.Port ${JSON.stringify(port)} must be a whole number from 0 to 65535`;
  }
  return { publicKey, port };
}

/** The UDP port to reach a peer on: its lease's Port, else our own listen port (as flanneld). */
export function peerPort(data: WireguardLeaseData, ownListenPort: number): number {
  return data.port ?? ownListenPort;
}
