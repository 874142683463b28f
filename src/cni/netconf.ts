/**
 * @module The flannel CNI plugin's network configuration (flannel-io/cni-plugin `NetConf`):
 * the standard CNI keys plus `subnetFile`, `dataDir`, `delegate`, `ipam` and `runtimeConfig`.
 * Parsed the way Go's encoding/json fills that struct: key names match case-insensitively
 * (an exact match wins), `null` leaves the default, unknown keys are kept only in `raw`, and a
 * value of the wrong type is an error naming the key (code 7, invalid network config).
 */
import { CniCode, CniError } from "./errors.ts";

/** Where flanneld writes subnet.env unless the netconf says otherwise. */
export const DEFAULT_SUBNET_FILE = "/run/flannel/subnet.env";
/** Where the rendered delegate configs are kept, one file per container ID. */
export const DEFAULT_DATA_DIR = "/var/lib/cni/flannel";

export type JsonObject = Record<string, unknown>;

/** The parsed netconf. Object-valued keys are undefined when absent or null. */
export interface FlannelNetConf {
  /** `""` when absent (CNI then means 0.1.0; flannel copies it only when set). */
  cniVersion: string;
  name: string;
  type: string;
  subnetFile: string;
  dataDir: string;
  delegate?: JsonObject;
  ipam?: JsonObject;
  runtimeConfig?: JsonObject;
  prevResult?: JsonObject;
  /** The whole decoded document. */
  raw: JsonObject;
}

/**
 * Looks a struct field up the way encoding/json does: the exact key if present, else the last
 * key that matches ignoring case. Returns undefined for absent and for `null`.
 */
export function goField(obj: JsonObject, key: string): unknown {
  if (Object.hasOwn(obj, key)) return obj[key] ?? undefined;
  const lower = key.toLowerCase();
  let found: unknown;
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) found = obj[k];
  return found ?? undefined;
}

export function isJsonObject(v: unknown): v is JsonObject {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A value for an error message: its kind and at most 100 characters of its JSON. */
function describe(v: unknown): string {
  const text = JSON.stringify(v) ?? String(v);
  return `${Array.isArray(v) ? "array" : typeof v} ${text.length > 100 ? `${text.slice(0, 100)}…` : text}`;
}

/**
 * Go's encoding/json refuses documents nested deeper than this ("exceeded max depth"); weft
 * checks it before parsing, so no later walk over the document (field lookups, re-marshalling
 * the delegate config) can exhaust the stack on a hostile 200 000-deep config.
 */
export const MAX_JSON_DEPTH = 10000;

/**
 * Whether `text` nests objects and arrays deeper than `limit` (brackets inside strings do not
 * count). Linear, and stops at the first level past the limit.
 */
export function nestsDeeperThan(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c) i++; // backslash: skip the escaped character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) {
      inString = true;
    } else if (c === 0x7b || c === 0x5b) {
      if (++depth > limit) return true;
    } else if (c === 0x7d || c === 0x5d) {
      depth--;
    }
  }
  return false;
}

function invalid(key: string, want: string, got: unknown): CniError {
  return new CniError(CniCode.invalidNetworkConfig,
    `invalid flannel netconf: "${key}" must be ${want}, got ${describe(got)}`);
}

function stringField(obj: JsonObject, key: string, fallback: string): string {
  const v = goField(obj, key);
  if (v === undefined) return fallback;
  if (typeof v !== "string") throw invalid(key, "a string", v);
  return v;
}

function objectField(obj: JsonObject, key: string): JsonObject | undefined {
  const v = goField(obj, key);
  if (v === undefined) return undefined;
  if (!isJsonObject(v)) throw invalid(key, "an object", v);
  return v;
}

/**
 * Decodes a JSON document that must be an object, or throws code 6 (decoding failure) with
 * `context: <reason>`, e.g. `error unmarshall network config: JSON Parse error: ...`.
 */
export function decodeJsonObject(text: string, context: string): JsonObject {
  if (nestsDeeperThan(text, MAX_JSON_DEPTH)) {
    throw new CniError(CniCode.decodingFailure, `${context}: exceeded max depth (JSON nested deeper than ${MAX_JSON_DEPTH} levels)`);
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (e) {
    throw new CniError(CniCode.decodingFailure, `${context}: ${(e as Error).message}`);
  }
  if (!isJsonObject(doc)) throw new CniError(CniCode.decodingFailure, `${context}: expected a JSON object, got ${describe(doc)}`);
  return doc;
}

/**
 * Parses the flannel plugin's netconf (what the runtime writes on the plugin's stdin).
 *
 * @example
 * const n = parseFlannelNetConf('{"name":"cbr0","type":"flannel","delegate":{"isDefaultGateway":true}}');
 * n.subnetFile === "/run/flannel/subnet.env"; n.delegate?.isDefaultGateway === true;
 */
export function parseFlannelNetConf(text: string): FlannelNetConf {
  const raw = decodeJsonObject(text, "failed to load netconf");
  const capabilities = objectField(raw, "capabilities");
  for (const [k, v] of Object.entries(capabilities ?? {})) {
    if (typeof v !== "boolean") throw invalid(`capabilities.${k}`, "a boolean", v);
  }
  objectField(raw, "dns");
  return {
    cniVersion: stringField(raw, "cniVersion", ""),
    name: stringField(raw, "name", ""),
    type: stringField(raw, "type", ""),
    subnetFile: stringField(raw, "subnetFile", DEFAULT_SUBNET_FILE),
    dataDir: stringField(raw, "dataDir", DEFAULT_DATA_DIR),
    delegate: objectField(raw, "delegate"),
    ipam: objectField(raw, "ipam"),
    runtimeConfig: objectField(raw, "runtimeConfig"),
    prevResult: objectField(raw, "prevResult"),
    raw,
  };
}
