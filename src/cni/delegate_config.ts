/**
 * @module The delegate plugin's config, rendered from the flannel netconf and subnet.env exactly
 * as flannel-io/cni-plugin does (compat §10, `cmdAdd`/`doCmdAdd`/`getDelegateIPAM`), so the bytes
 * weft saves and sends are the Go plugin's bytes:
 *   1. the netconf's `runtimeConfig` is copied in; `name` is the netconf name; `type` defaults to
 *      `bridge`;
 *   2. only if absent: `ipMasq` = !FLANNEL_IPMASQ, `mtu` = FLANNEL_MTU, and for bridge
 *      `isGateway` = true;
 *   3. `cniVersion` is copied when the netconf has one;
 *   4. `ipam` = the netconf's ipam (or `{}`), `type` defaulting to `host-local`, `ranges` one
 *      range set per family from the subnets, `routes` the input routes then one per network.
 * Pure: no file or process access.
 */
import { CniCode, CniError } from "./errors.ts";
import type { FlannelEnv } from "./flannel_env.ts";
import { marshalGoJson } from "./go_json.ts";
import { isJsonObject, type FlannelNetConf, type JsonObject } from "./netconf.ts";
import { formatIPv4, formatIPv6, tryParseIPv4, tryParseIPv6 } from "../net/ip.ts";

/** The rendered delegate config: the object, its Go-marshalled bytes and the plugin to run. */
export interface DelegateConfig {
  config: JsonObject;
  bytes: string;
  type: string;
}

function configError(msg: string): CniError {
  return new CniError(CniCode.invalidNetworkConfig, msg);
}

/** A route address as Go's `net.IP.String()` prints it, or undefined when not an address. */
function formatAddress(text: string): string | undefined {
  const v4 = tryParseIPv4(text);
  if (v4 !== undefined) return formatIPv4(v4);
  const v6 = tryParseIPv6(text);
  return v6 === undefined ? undefined : formatIPv6(v6);
}

function intField(route: JsonObject, key: string, i: number): number | undefined {
  const v = route[key];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw configError(`failed to parse ipam.routes[${i}]: "${key}" must be an integer, got ${JSON.stringify(v)}`);
  }
  return v;
}

/**
 * One `ipam.routes` entry re-encoded as libcni's `types.Route` (a struct: dst, gw, mtu, advmss,
 * priority, table, scope; zero values omitted, unknown keys dropped), returned as a `Map` so
 * its keys keep struct order when marshalled.
 */
function normalizeRoute(route: unknown, i: number): Map<string, unknown> {
  if (!isJsonObject(route)) throw configError(`failed to parse ipam.routes[${i}]: expected an object, got ${JSON.stringify(route)}`);
  const dst = route.dst;
  const slash = typeof dst === "string" ? dst.indexOf("/") : -1;
  const dstAddr = slash > 0 ? formatAddress((dst as string).slice(0, slash)) : undefined;
  const dstLen = slash > 0 ? (dst as string).slice(slash + 1) : "";
  const maxLen = dstAddr?.includes(":") ? 128 : 32;
  if (dstAddr === undefined || !/^\d{1,3}$/.test(dstLen) || Number(dstLen) > maxLen) {
    throw configError(`failed to parse ipam.routes[${i}]: "dst" must be a CIDR like 10.96.0.0/12, got ${JSON.stringify(dst)}`);
  }
  let gw: string | undefined;
  if (route.gw !== undefined && route.gw !== null && route.gw !== "") {
    gw = typeof route.gw === "string" ? formatAddress(route.gw) : undefined;
    if (gw === undefined) throw configError(`failed to parse ipam.routes[${i}]: "gw" must be an IP address, got ${JSON.stringify(route.gw)}`);
  }
  const omitZero = (n: number | undefined) => (n === 0 ? undefined : n);
  return new Map<string, unknown>([
    ["dst", `${dstAddr}/${Number(dstLen)}`],
    ["gw", gw],
    ["mtu", omitZero(intField(route, "mtu", i))],
    ["advmss", omitZero(intField(route, "advmss", i))],
    ["priority", omitZero(intField(route, "priority", i))],
    ["table", intField(route, "table", i)],
    ["scope", intField(route, "scope", i)],
  ]);
}

/** `getDelegateIPAM`: the input ipam completed with flannel's ranges and routes. */
function delegateIpam(netconf: FlannelNetConf, env: FlannelEnv): JsonObject {
  const ipam: JsonObject = { ...(netconf.ipam ?? {}) };
  if (!Object.hasOwn(ipam, "type")) ipam.type = "host-local";
  const ranges: JsonObject[][] = [];
  if (env.subnet) ranges.push([{ subnet: env.subnet }]);
  if (env.ipv6Subnet) ranges.push([{ subnet: env.ipv6Subnet }]);
  ipam.ranges = ranges;

  const input = netconf.ipam?.routes;
  if (input !== undefined && input !== null && !Array.isArray(input)) {
    throw configError(`failed to parse ipam.routes: expected an array, got ${JSON.stringify(input)}`);
  }
  const routes: unknown[] = (input ?? []).map(normalizeRoute);
  for (const net of [...env.networks, ...env.ipv6Networks]) routes.push(new Map([["dst", net]]));
  ipam.routes = routes;
  return ipam;
}

/**
 * Renders the delegate config for ADD. Throws code 7 when the netconf's `delegate` sets `name`
 * or `ipam` (flannel sets those), has a non-string `type`, or `ipam.routes` is malformed.
 *
 * @example
 * // delegate {"hairpinMode":true,"isDefaultGateway":true}, subnet.env 10.244.0.0/16 10.244.1.1/24 1450 true:
 * renderDelegateConfig(netconf, env).bytes ===
 *   '{"cniVersion":"0.3.1","hairpinMode":true,"ipMasq":false,"ipam":{"ranges":[[{"subnet":"10.244.1.0/24"}]],' +
 *   '"routes":[{"dst":"10.244.0.0/16"}],"type":"host-local"},"isDefaultGateway":true,"isGateway":true,' +
 *   '"mtu":1450,"name":"cbr0","type":"bridge"}'
 */
export function renderDelegateConfig(netconf: FlannelNetConf, env: FlannelEnv): DelegateConfig {
  const input = netconf.delegate;
  if (input) {
    if (Object.hasOwn(input, "type") && typeof input.type !== "string") {
      throw configError(`'delegate' dictionary, if present, must have (string) 'type' field, got ${JSON.stringify(input.type)}`);
    }
    if (Object.hasOwn(input, "name")) throw configError("'delegate' dictionary must not have 'name' field, it'll be set by flannel");
    if (Object.hasOwn(input, "ipam")) throw configError("'delegate' dictionary must not have 'ipam' field, it'll be set by flannel");
  }
  const config: JsonObject = { ...(input ?? {}) };
  if (netconf.runtimeConfig) config.runtimeConfig = netconf.runtimeConfig;

  config.name = netconf.name;
  if (!Object.hasOwn(config, "type")) config.type = "bridge";
  if (!Object.hasOwn(config, "ipMasq")) config.ipMasq = !env.ipMasq;
  if (!Object.hasOwn(config, "mtu")) config.mtu = env.mtu;
  if (config.type === "bridge" && !Object.hasOwn(config, "isGateway")) config.isGateway = true;
  if (netconf.cniVersion !== "") config.cniVersion = netconf.cniVersion;
  config.ipam = delegateIpam(netconf, env);

  return { config, bytes: marshalGoJson(config), type: config.type as string };
}
