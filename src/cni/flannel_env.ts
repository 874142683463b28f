/**
 * @module subnet.env as the flannel CNI plugin reads it (compat §10, cni-plugin
 * `loadFlannelSubnetEnv`): networks are comma lists (duplicates dropped), subnets are masked
 * to their network address (`10.1.17.1/24` → `10.1.17.0/24`), `FLANNEL_IPMASQ` is true only
 * when exactly `true`, and a file lacking a network, a subnet, the MTU or the masq flag is
 * rejected naming what is missing. Errors read like the Go plugin's so logs stay familiar.
 */
import { readFileSync } from "node:fs";
import { parseSubnetEnv } from "../subnet_env.ts";
import { errnoText } from "./errors.ts";
import { formatIPv4Net, formatIPv6Net, parseIPv4Net, parseIPv6Net, tryParseIPv4 } from "../net/ip.ts";

/** What the plugin needs from subnet.env; CIDRs in canonical text, subnets masked. */
export interface FlannelEnv {
  networks: string[];
  subnet?: string;
  ipv6Networks: string[];
  ipv6Subnet?: string;
  mtu: number;
  ipMasq: boolean;
}

/** Why loading failed: the file is absent (flanneld not ready yet) or its content is bad. */
export class FlannelEnvError extends Error {
  constructor(message: string, readonly missingFile: boolean) {
    super(message);
    this.name = "FlannelEnvError";
  }
}

/** Go's `net.ParseCIDR` returning the masked network as `IPNet.String()` prints it. */
function parseCidr(text: string): string {
  try {
    const addr = text.slice(0, text.indexOf("/"));
    return tryParseIPv4(addr) !== undefined ? formatIPv4Net(parseIPv4Net(text)) : formatIPv6Net(parseIPv6Net(text));
  } catch {
    throw new FlannelEnvError(`invalid CIDR address: ${text}`, false);
  }
}

function parseCidrList(text: string): string[] {
  const out: string[] = [];
  for (const item of text.split(",")) {
    const net = parseCidr(item);
    if (!out.includes(net)) out.push(net);
  }
  return out;
}

/** Go's `strconv.ParseUint(s, 10, 32)` with its error text. */
function parseMtu(text: string): number {
  if (!/^\d+$/.test(text)) throw new FlannelEnvError(`strconv.ParseUint: parsing ${JSON.stringify(text)}: invalid syntax`, false);
  const n = Number(text);
  if (n > 0xffffffff) throw new FlannelEnvError(`strconv.ParseUint: parsing ${JSON.stringify(text)}: value out of range`, false);
  return n;
}

/**
 * Interprets subnet.env text; `path` only names the file in errors.
 *
 * @example
 * parseFlannelEnv("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.17.1/24\nFLANNEL_MTU=1472\nFLANNEL_IPMASQ=true\n", "x")
 * // { networks: ["10.1.0.0/16"], subnet: "10.1.17.0/24", ipv6Networks: [], mtu: 1472, ipMasq: true }
 */
export function parseFlannelEnv(text: string, path: string): FlannelEnv {
  const { raw } = parseSubnetEnv(text);
  const networks = raw.FLANNEL_NETWORK !== undefined ? parseCidrList(raw.FLANNEL_NETWORK) : [];
  const ipv6Networks = raw.FLANNEL_IPV6_NETWORK !== undefined ? parseCidrList(raw.FLANNEL_IPV6_NETWORK) : [];
  const subnet = raw.FLANNEL_SUBNET !== undefined ? parseCidr(raw.FLANNEL_SUBNET) : undefined;
  const ipv6Subnet = raw.FLANNEL_IPV6_SUBNET !== undefined ? parseCidr(raw.FLANNEL_IPV6_SUBNET) : undefined;
  const mtu = raw.FLANNEL_MTU !== undefined ? parseMtu(raw.FLANNEL_MTU) : undefined;
  const ipMasq = raw.FLANNEL_IPMASQ !== undefined ? raw.FLANNEL_IPMASQ === "true" : undefined;

  const missing: string[] = [];
  if (networks.length === 0 && ipv6Networks.length === 0) missing.push("FLANNEL_NETWORK", "FLANNEL_IPV6_NETWORK");
  if (subnet === undefined && ipv6Subnet === undefined) missing.push("FLANNEL_SUBNET", "FLANNEL_IPV6_SUBNET");
  if (mtu === undefined) missing.push("FLANNEL_MTU");
  if (ipMasq === undefined) missing.push("FLANNEL_IPMASQ");
  if (missing.length > 0) throw new FlannelEnvError(`${path} is missing ${missing.join(", ")}`, false);
  return { networks, subnet, ipv6Networks, ipv6Subnet, mtu: mtu!, ipMasq: ipMasq! };
}

/**
 * Reads and interprets `path`. A missing file throws with `missingFile` set and Go's text,
 * `open /run/flannel/subnet.env: no such file or directory`.
 */
export function loadFlannelEnv(path: string): FlannelEnv {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? "";
    const op = code === "EISDIR" ? "read" : "open";
    throw new FlannelEnvError(`${op} ${path}: ${errnoText(e)}`, code === "ENOENT");
  }
  return parseFlannelEnv(text, path);
}
