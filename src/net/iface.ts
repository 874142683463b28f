/**
 * @module Choosing the external interface and the public address (compat §8), in flannel's
 * order: each `--iface` (IP or name), each `--iface-regex` (all IPs first, then names),
 * `--iface-can-reach`, then the first default route's interface. The choice is a pure function
 * of a snapshot of the host's interfaces and routes; `readHostNetwork()` takes that snapshot
 * from /proc and /sys (read-only, no netlink needed).
 *
 * IPv6: `--iface-can-reach` takes an IPv6 address too and follows the IPv6 routes (flanneld looks
 * the address up but then takes the route's IPv6 source as the IPv4 address: flannel #2081);
 * `--iface-regex` matches the addresses of the network's first family (IPv6 in an IPv6-only
 * network); `--public-ipv6` is advertised as PublicIPv6 and, in an IPv6-only network without
 * interface options, selects the interface as `--public-ip` does.
 */
import { networkInterfaces } from "node:os";
import { readFileSync } from "node:fs";
import { formatIPv4, formatIPv6, maskV4, maskV6, tryParseIPv4, tryParseIPv6 } from "./ip.ts";

export interface HostAddress {
  family: 4 | 6;
  /** Text form. */
  address: string;
  prefixLen: number;
  linkLocal: boolean;
}

export interface HostInterface {
  name: string;
  index: number;
  mtu: number;
  up: boolean;
  addrs: HostAddress[];
}

export interface HostRoute4 { dst: number; len: number; gateway: number; dev: string; metric: number }

export interface HostRoute6 { dst: bigint; len: number; gateway: bigint; dev: string; metric: number }

export interface HostNetwork {
  interfaces: HostInterface[];
  /** The IPv4 main-table routes (for default route and `--iface-can-reach`). */
  routes4: HostRoute4[];
  /** The IPv6 routes (for `--iface-can-reach` with an IPv6 address). */
  routes6?: HostRoute6[];
  /** Device of the first IPv6 default route, if any. */
  defaultDev6?: string;
}

export interface IfaceOptions {
  iface: string[];
  ifaceRegex: string[];
  ifaceCanReach: string;
  publicIP: string;
  publicIPv6: string;
  enableIPv4: boolean;
  enableIPv6: boolean;
}

/** The chosen interface and addresses (flannel's ExternalInterface). */
export interface ExternalInterface {
  name: string;
  index: number;
  mtu: number;
  /** IPv4 address on the interface (0 when v4 is off). */
  ifaceAddr: number;
  /** The address advertised to peers: --public-ip, else ifaceAddr. */
  extAddr: number;
  ifaceAddr6?: bigint;
  extAddr6?: bigint;
}

export class InterfaceSelectionError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "InterfaceSelectionError";
  }
}

/** The preferred address of `family` on `i`: global before link-local, in listed order. */
function pickAddr(i: HostInterface, family: 4 | 6): HostAddress | undefined {
  const addrs = i.addrs.filter((a) => a.family === family);
  return addrs.find((a) => !a.linkLocal) ?? addrs[0];
}

function byIP(net: HostNetwork, ip: string): HostInterface | undefined {
  const v4 = tryParseIPv4(ip);
  const v6 = v4 === undefined ? tryParseIPv6(ip) : undefined;
  return net.interfaces.find((i) => i.addrs.some((a) =>
    v4 !== undefined ? a.family === 4 && tryParseIPv4(a.address) === v4 : v6 !== undefined && a.family === 6 && tryParseIPv6(a.address) === v6));
}

/** The route the kernel would take to `dst` (longest prefix, then lowest metric). */
export function lookupRoute4(routes: readonly HostRoute4[], dst: number): HostRoute4 | undefined {
  let best: HostRoute4 | undefined;
  for (const r of routes) {
    if (((dst & maskV4(r.len)) >>> 0) !== r.dst) continue;
    if (!best || r.len > best.len || (r.len === best.len && r.metric < best.metric)) best = r;
  }
  return best;
}

/** The IPv6 route the kernel would take to `dst` (longest prefix, then lowest metric). */
export function lookupRoute6(routes: readonly HostRoute6[], dst: bigint): HostRoute6 | undefined {
  let best: HostRoute6 | undefined;
  for (const r of routes) {
    if ((dst & maskV6(r.len)) !== r.dst) continue;
    if (!best || r.len > best.len || (r.len === best.len && r.metric < best.metric)) best = r;
  }
  return best;
}

/** Chooses the external interface. Throws InterfaceSelectionError with flannel's messages. */
export function selectInterface(net: HostNetwork, opts: IfaceOptions): ExternalInterface {
  let chosen: HostInterface | undefined;
  const family: 4 | 6 = opts.enableIPv4 ? 4 : 6;
  if (opts.iface.length > 0 || opts.ifaceRegex.length > 0) {
    for (const want of opts.iface) {
      chosen = tryParseIPv4(want) !== undefined || tryParseIPv6(want) !== undefined
        ? byIP(net, want) : net.interfaces.find((i) => i.name === want);
      if (chosen) break;
    }
    if (!chosen) {
      for (const text of opts.ifaceRegex) {
        let re: RegExp;
        try { re = new RegExp(text); } catch (e) {
          throw new InterfaceSelectionError(`invalid --iface-regex ${JSON.stringify(text)}: ${(e as Error).message}`);
        }
        chosen = net.interfaces.find((i) => i.addrs.some((a) => a.family === family && re.test(a.address)))
          ?? net.interfaces.find((i) => re.test(i.name));
        if (chosen) break;
      }
    }
    if (!chosen) {
      throw new InterfaceSelectionError(`Failed to find interface to use that matches the interfaces and/or regexes provided (iface ${JSON.stringify(opts.iface)}, iface-regex ${JSON.stringify(opts.ifaceRegex)})`);
    }
  } else if (opts.ifaceCanReach) {
    const dst = tryParseIPv4(opts.ifaceCanReach);
    const dst6 = dst === undefined ? tryParseIPv6(opts.ifaceCanReach) : undefined;
    if (dst === undefined && dst6 === undefined) {
      throw new InterfaceSelectionError(`invalid --iface-can-reach ${JSON.stringify(opts.ifaceCanReach)}: not an IPv4 or IPv6 address`);
    }
    const r = dst !== undefined ? lookupRoute4(net.routes4, dst) : lookupRoute6(net.routes6 ?? [], dst6!);
    chosen = r && net.interfaces.find((i) => i.name === r.dev);
    if (!chosen) throw new InterfaceSelectionError(`Failed to find interface to use that can reach ${opts.ifaceCanReach}: no route`);
  } else if (opts.publicIP || (!opts.enableIPv4 && opts.publicIPv6)) {
    // --public-ip without iface options also selects the interface, so it must be local.
    const ip = opts.publicIP || opts.publicIPv6;
    chosen = byIP(net, ip);
    if (!chosen) throw new InterfaceSelectionError(`Failed to find interface to use: --public-ip ${ip} is not an address of this host (behind NAT, add --iface)`);
  } else {
    const dev = opts.enableIPv4 ? lookupDefault(net) : net.defaultDev6;
    chosen = dev ? net.interfaces.find((i) => i.name === dev) : undefined;
    if (!chosen) throw new InterfaceSelectionError("Failed to get default interface: Unable to find default route");
    if (opts.enableIPv4 && opts.enableIPv6 && net.defaultDev6 && net.defaultDev6 !== dev) {
      throw new InterfaceSelectionError(`the IPv4 default route's interface ${dev} and the IPv6 one ${net.defaultDev6} differ: choose one with --iface`);
    }
  }
  if (chosen.mtu === 0) throw new InterfaceSelectionError(`failed to determine MTU for ${chosen.name} interface`);

  const out: ExternalInterface = { name: chosen.name, index: chosen.index, mtu: chosen.mtu, ifaceAddr: 0, extAddr: 0 };
  if (opts.enableIPv4) {
    const a = pickAddr(chosen, 4);
    if (!a) throw new InterfaceSelectionError(`failed to find IPv4 address for interface ${chosen.name}`);
    out.ifaceAddr = tryParseIPv4(a.address)!;
    out.extAddr = out.ifaceAddr;
    if (opts.publicIP) {
      const p = tryParseIPv4(opts.publicIP);
      if (p === undefined) throw new InterfaceSelectionError(`invalid --public-ip ${JSON.stringify(opts.publicIP)}: not an IPv4 address`);
      out.extAddr = p;
    }
  }
  if (opts.enableIPv6) {
    const a = pickAddr(chosen, 6);
    if (!a) throw new InterfaceSelectionError(`failed to find IPv6 address for interface ${chosen.name}`);
    out.ifaceAddr6 = tryParseIPv6(a.address)!;
    out.extAddr6 = out.ifaceAddr6;
    if (opts.publicIPv6) {
      const p = tryParseIPv6(opts.publicIPv6);
      if (p === undefined) throw new InterfaceSelectionError(`invalid --public-ipv6 ${JSON.stringify(opts.publicIPv6)}: not an IPv6 address`);
      out.extAddr6 = p;
    }
  }
  return out;
}

function lookupDefault(net: HostNetwork): string | undefined {
  return net.routes4.filter((r) => r.len === 0).sort((a, b) => a.metric - b.metric)[0]?.dev;
}

/** Describes the choice for the start-up log line. */
export function describeInterface(e: ExternalInterface): string {
  const v4 = e.ifaceAddr ? ` ${formatIPv4(e.ifaceAddr)}` : "";
  const v6 = e.ifaceAddr6 !== undefined ? ` ${formatIPv6(e.ifaceAddr6)}` : "";
  const pub = e.extAddr !== e.ifaceAddr ? `, public IP ${formatIPv4(e.extAddr)}` : "";
  return `${e.name} (index ${e.index}, MTU ${e.mtu},${v4}${v6}${pub})`;
}

// ---------------------------------------------------------------- reading the host

function readNum(path: string): number {
  try { return Number(readFileSync(path, "utf8").trim()); } catch { return 0; }
}

/** Parses /proc/net/route text (hex fields in host byte order: little-endian here). */
export function parseProcNetRoute(text: string): HostRoute4[] {
  const le = (h: string) => {
    const n = parseInt(h, 16) >>> 0;
    return (((n & 0xff) << 24) | (((n >>> 8) & 0xff) << 16) | (((n >>> 16) & 0xff) << 8) | (n >>> 24)) >>> 0;
  };
  const out: HostRoute4[] = [];
  for (const line of text.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    if (!/^[0-9A-Fa-f]{8}$/.test(f[1]!)) continue;
    out.push({ dev: f[0]!, dst: le(f[1]!), gateway: le(f[2]!), metric: Number(f[6]), len: popcount(le(f[7]!)) });
  }
  return out;
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n >>> 0; x; x &= x - 1) c++;
  return c;
}

/**
 * Parses /proc/net/ipv6_route text: dst, prefix length, source, source length, next hop (hex),
 * metric, refcount, use, flags (hex), device. Unreachable/prohibit routes (RTF_REJECT) are left
 * out: they reach nothing.
 */
export function parseProcNetIPv6Route(text: string): HostRoute6[] {
  const RTF_REJECT = 0x0200;
  const out: HostRoute6[] = [];
  for (const line of text.split("\n")) {
    const f = line.trim().split(/\s+/);
    if (f.length < 10 || !/^[0-9a-f]{32}$/i.test(f[0]!)) continue;
    if (parseInt(f[8]!, 16) & RTF_REJECT) continue;
    out.push({ dst: BigInt(`0x${f[0]}`), len: parseInt(f[1]!, 16), gateway: BigInt(`0x${f[4]}`), metric: parseInt(f[5]!, 16), dev: f[9]! });
  }
  return out;
}

/** A snapshot of this host's interfaces and routes, from the OS. */
export function readHostNetwork(): HostNetwork {
  const interfaces: HostInterface[] = [];
  for (const [name, addrs] of Object.entries(networkInterfaces())) {
    interfaces.push({
      name,
      index: readNum(`/sys/class/net/${name}/ifindex`),
      mtu: readNum(`/sys/class/net/${name}/mtu`),
      up: true,
      addrs: (addrs ?? []).map((a) => ({
        family: a.family === "IPv6" || (a.family as unknown) === 6 ? 6 : 4,
        address: a.address,
        prefixLen: Number(a.cidr?.split("/")[1] ?? 0),
        linkLocal: a.address.startsWith("fe80:") || a.address.startsWith("169.254."),
      })),
    });
  }
  interfaces.sort((a, b) => a.index - b.index);
  let routes4: HostRoute4[] = [];
  try { routes4 = parseProcNetRoute(readFileSync("/proc/net/route", "utf8")); } catch { /* no IPv4 */ }
  let defaultDev6: string | undefined;
  let routes6: HostRoute6[] = [];
  try {
    const text = readFileSync("/proc/net/ipv6_route", "utf8");
    routes6 = parseProcNetIPv6Route(text);
    for (const line of text.split("\n")) {
      const f = line.trim().split(/\s+/);
      if (f.length >= 10 && /^0+$/.test(f[0]!) && f[1] === "00" && f[9] !== "lo") { defaultDev6 = f[9]; break; }
    }
  } catch { /* no IPv6 */ }
  return { interfaces, routes4, routes6, defaultDev6 };
}
