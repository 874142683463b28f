/**
 * @module The cluster network config stored at `<prefix>/config` (compat §2.1): parsed with
 * Go's rules (case-insensitive keys, unknown keys ignored) and validated with flannel's
 * (SubnetLen/SubnetMin/SubnetMax defaults, /28 minimum, SubnetLen alignment, IPv6 likewise,
 * Backend.Type defaulting to udp). Errors name the field, the value and the rule.
 */
import {
  type IPv4Net, type IPv6Net, formatIPv4, formatIPv6, maskV4, maskV6, parseIPv4Net, parseIPv6Net,
  tryParseIPv4, tryParseIPv6,
} from "../net/ip.ts";
import { getCI, isObject } from "./json_ci.ts";

/** The validated network config, defaults filled in. */
export interface NetworkConfig {
  enableIPv4: boolean;
  enableIPv6: boolean;
  enableNFTables: boolean;
  /** Present when enableIPv4. */
  network?: IPv4Net;
  subnetLen: number;
  subnetMin: number;
  subnetMax: number;
  /** Present when enableIPv6. */
  ipv6Network?: IPv6Net;
  ipv6SubnetLen: number;
  ipv6SubnetMin: bigint;
  ipv6SubnetMax: bigint;
  /** Backend.Type, lower-cased; `udp` when Backend is absent. */
  backendType: string;
  /** The Backend object as given (type-specific keys are read by the backend). */
  backend: Record<string, unknown>;
}

/** An invalid network config; `field` names the offending key. */
export class NetworkConfigError extends Error {
  constructor(readonly field: string, message: string) {
    super(`invalid network config: ${message}`);
    this.name = "NetworkConfigError";
  }
}

const fail = (field: string, msg: string): never => {
  throw new NetworkConfigError(field, msg);
};

function boolField(obj: Record<string, unknown>, key: string, dflt: boolean): boolean {
  const v = getCI(obj, key);
  if (v === undefined || v === null) return dflt;
  if (typeof v !== "boolean") fail(key, `${key} ${JSON.stringify(v)} must be true or false`);
  return v as boolean;
}

function uintField(obj: Record<string, unknown>, key: string, max: number): number {
  const v = getCI(obj, key);
  if (v === undefined || v === null) return 0;
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
    fail(key, `${key} ${JSON.stringify(v)} must be a whole number from 0 to ${max}`);
  }
  return v as number;
}

function stringField(obj: Record<string, unknown>, key: string): string | undefined {
  const v = getCI(obj, key);
  if (v === undefined || v === null || v === "") return undefined;
  if (typeof v !== "string") fail(key, `${key} ${JSON.stringify(v)} must be a string`);
  return v as string;
}

/** Parses and validates the JSON text of a network config. Throws NetworkConfigError. */
export function parseNetworkConfig(text: string): NetworkConfig {
  let obj: unknown;
  try {
    obj = JSON.parse(text);
  } catch (e) {
    return fail("(json)", `not valid JSON: ${(e as Error).message}`);
  }
  if (!isObject(obj)) return fail("(json)", `expected a JSON object, got ${JSON.stringify(obj)?.slice(0, 40)}`);

  const enableIPv4 = boolField(obj, "EnableIPv4", true);
  const enableIPv6 = boolField(obj, "EnableIPv6", false);
  const enableNFTables = boolField(obj, "EnableNFTables", false);
  if (!enableIPv4 && !enableIPv6) fail("EnableIPv4", "EnableIPv4 and EnableIPv6 are both false: enable at least one");

  const cfg: NetworkConfig = {
    enableIPv4, enableIPv6, enableNFTables,
    subnetLen: 0, subnetMin: 0, subnetMax: 0,
    ipv6SubnetLen: 0, ipv6SubnetMin: 0n, ipv6SubnetMax: 0n,
    backendType: "udp", backend: {},
  };

  if (enableIPv4) validateV4(obj, cfg);
  if (enableIPv6) validateV6(obj, cfg);

  const backend = getCI(obj, "Backend");
  if (backend !== undefined && backend !== null) {
    if (!isObject(backend)) fail("Backend", `Backend ${JSON.stringify(backend)} must be an object with a Type`);
    const b = backend as Record<string, unknown>;
    const type = getCI(b, "Type");
    if (typeof type !== "string" || type === "") {
      fail("Backend.Type", `Backend.Type ${JSON.stringify(type)} must name a backend (vxlan, host-gw, udp, alloc, ...)`);
    }
    cfg.backendType = (type as string).toLowerCase();
    cfg.backend = b;
  }
  return cfg;
}

function validateV4(obj: Record<string, unknown>, cfg: NetworkConfig): void {
  const text = stringField(obj, "Network");
  if (text === undefined) fail("Network", "Network is missing: please define a correct Network parameter in the flannel config (e.g. \"10.244.0.0/16\")");
  let network: IPv4Net;
  try {
    network = parseIPv4Net(text!, "Network");
  } catch (e) {
    return fail("Network", `${(e as Error).message}: please define a correct Network parameter in the flannel config`);
  }
  let subnetLen = uintField(obj, "SubnetLen", 32);
  if (subnetLen > 0) {
    if (subnetLen > 30) fail("SubnetLen", `SubnetLen ${subnetLen} must be at most 30 (SubnetLen must be less than /31)`);
    if (subnetLen < network.len + 2) {
      fail("SubnetLen", `SubnetLen ${subnetLen} must be at least ${network.len + 2} for Network ${text}: network must be able to accommodate at least four subnets`);
    }
  } else if (network.len > 28) {
    fail("Network", `Network ${text} is too small: the minimum useful network prefix is /28`);
  } else {
    subnetLen = network.len <= 22 ? 24 : network.len + 2;
  }
  const size = 2 ** (32 - subnetLen);
  const last = network.ip + 2 ** (32 - network.len); // one past the network
  const bound = (key: string, dflt: number): number => {
    const s = stringField(obj, key);
    if (s === undefined) return dflt;
    const ip = tryParseIPv4(s);
    if (ip === undefined) fail(key, `${key} ${JSON.stringify(s)} is not a valid IPv4 address`);
    if (ip! < network.ip || ip! >= last) fail(key, `${key} ${s} is not in the range of the Network ${text}`);
    if (((ip! & maskV4(subnetLen)) >>> 0) !== ip) {
      fail(key, `${key} ${s} is not on a SubnetLen boundary (/${subnetLen}): use ${formatIPv4((ip! & maskV4(subnetLen)) >>> 0)}`);
    }
    return ip!;
  };
  cfg.network = network;
  cfg.subnetLen = subnetLen;
  cfg.subnetMin = bound("SubnetMin", network.ip + size); // the first subnet is skipped
  cfg.subnetMax = bound("SubnetMax", last - size);
  if (cfg.subnetMin > cfg.subnetMax) {
    fail("SubnetMin", `SubnetMin ${formatIPv4(cfg.subnetMin)} is above SubnetMax ${formatIPv4(cfg.subnetMax)}`);
  }
}

function validateV6(obj: Record<string, unknown>, cfg: NetworkConfig): void {
  const text = stringField(obj, "IPv6Network");
  if (text === undefined) fail("IPv6Network", "IPv6Network is missing: please define a correct IPv6Network parameter in the flannel config (e.g. \"fc00::/48\")");
  let network: IPv6Net;
  try {
    network = parseIPv6Net(text!, "IPv6Network");
  } catch (e) {
    return fail("IPv6Network", (e as Error).message);
  }
  let len = uintField(obj, "IPv6SubnetLen", 128);
  if (len > 0) {
    if (len > 126) fail("IPv6SubnetLen", `IPv6SubnetLen ${len} must be at most 126 (IPv6SubnetLen must be less than /127)`);
    if (len < network.len + 2) {
      fail("IPv6SubnetLen", `IPv6SubnetLen ${len} must be at least ${network.len + 2} for IPv6Network ${text}: network must be able to accommodate at least four subnets`);
    }
  } else if (network.len > 124) {
    fail("IPv6Network", `IPv6Network ${text} is too small: the minimum useful network prefix is /124`);
  } else {
    len = network.len <= 62 ? 64 : network.len + 2;
  }
  const size = 1n << BigInt(128 - len);
  const last = network.ip + (1n << BigInt(128 - network.len));
  const bound = (key: string, dflt: bigint): bigint => {
    const s = stringField(obj, key);
    if (s === undefined) return dflt;
    const ip = tryParseIPv6(s);
    if (ip === undefined) fail(key, `${key} ${JSON.stringify(s)} is not a valid IPv6 address`);
    if (ip! < network.ip || ip! >= last) fail(key, `${key} ${s} is not in the range of the IPv6Network ${text}`);
    if ((ip! & maskV6(len)) !== ip) {
      fail(key, `${key} ${s} is not on an IPv6SubnetLen boundary (/${len}): use ${formatIPv6(ip! & maskV6(len))}`);
    }
    return ip!;
  };
  cfg.ipv6Network = network;
  cfg.ipv6SubnetLen = len;
  cfg.ipv6SubnetMin = bound("IPv6SubnetMin", network.ip + size);
  cfg.ipv6SubnetMax = bound("IPv6SubnetMax", last - size);
  if (cfg.ipv6SubnetMin > cfg.ipv6SubnetMax) {
    fail("IPv6SubnetMin", `IPv6SubnetMin ${formatIPv6(cfg.ipv6SubnetMin)} is above IPv6SubnetMax ${formatIPv6(cfg.ipv6SubnetMax)}`);
  }
}

/** Number of subnets the config can hand out (v4), for "network full" errors and status. */
export function subnetCapacity(cfg: NetworkConfig): number {
  return cfg.network ? (cfg.subnetMax - cfg.subnetMin) / 2 ** (32 - cfg.subnetLen) + 1 : 0;
}
