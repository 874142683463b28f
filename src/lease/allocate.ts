/**
 * @module Subnet allocation policy (compat §3, steps 2–4), pure: given the config, the leases in
 * etcd, our public address and the subnet we had before, decide what to do. The lease manager
 * carries the decision out against a registry.
 */
import type { NetworkConfig } from "../config/network.ts";
import {
  type IPv4Net, type IPv6Net, formatIPv4Net, overlapsV4, overlapsV6,
} from "../net/ip.ts";
import type { Lease } from "./lease.ts";
import { LeaseAcquireError } from "../subnet/types.ts";

/** What to do to get a lease. */
export type Allocation =
  /** Re-put this existing lease (ours, by public IP, or a reservation for us) with our attrs. */
  | { kind: "reuse"; lease: Lease; stale: Lease[] }
  /** Create a lease for this subnet (after deleting `stale`: our incompatible old leases). */
  | { kind: "create"; subnet?: IPv4Net; ipv6Subnet?: IPv6Net; stale: Lease[] };

/** No free subnet is left in the network. */
export class NetworkFullError extends LeaseAcquireError {
  constructor(cfg: NetworkConfig, held: number) {
    const net = cfg.network ? formatIPv4Net(cfg.network) : "(none)";
    super(`out of subnets: network ${net} has room for ${held} /${cfg.subnetLen} subnets and all are leased`);
    this.name = "NetworkFullError";
  }
}

/** Whether a lease's subnets fit the config (compat §3 step 2: min ≤ addr ≤ max, same length). */
export function isCompatible(cfg: NetworkConfig, l: Pick<Lease, "subnet" | "ipv6Subnet">): boolean {
  if (cfg.enableIPv4) {
    const s = l.subnet;
    if (!s || s.len !== cfg.subnetLen || s.ip < cfg.subnetMin || s.ip > cfg.subnetMax) return false;
  } else if (l.subnet) {
    return false;
  }
  if (cfg.enableIPv6) {
    const s = l.ipv6Subnet;
    if (!s || s.len !== cfg.ipv6SubnetLen || s.ip < cfg.ipv6SubnetMin || s.ip > cfg.ipv6SubnetMax) return false;
  } else if (l.ipv6Subnet) {
    return false;
  }
  return true;
}

export interface AllocateInput {
  cfg: NetworkConfig;
  leases: readonly Lease[];
  publicIP: number;
  publicIPv6?: bigint;
  /** From the previous subnet.env (masked), if any. */
  previous?: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net };
  /** Random integer in [0, n). */
  random?: (n: number) => number;
  /** Candidates to skip (subnets that just lost a create race). */
  exclude?: ReadonlySet<string>;
}

const FREE_CANDIDATES = 100;

/** Decides which lease to take. Throws NetworkFullError when nothing is free. */
export function allocateSubnet(input: AllocateInput): Allocation {
  const { cfg, leases } = input;
  const random = input.random ?? ((n: number) => Math.floor(Math.random() * n));

  // 1. The lease of our public IP (v6 when v4 is off, §12.7). Incompatible ones are dropped.
  const mine = (l: Lease) =>
    cfg.enableIPv4 ? l.attrs.publicIP === input.publicIP : l.attrs.publicIPv6 === input.publicIPv6;
  const own = leases.find(mine); // flannel looks at the first lease of our IP only
  if (own && isCompatible(cfg, own)) return { kind: "reuse", lease: own, stale: [] };
  const stale = own ? [own] : [];
  const held = leases.filter((l) => !stale.includes(l));
  const freeV4 = (s: IPv4Net) => !held.some((l) => l.subnet && overlapsV4(l.subnet, s));
  const freeV6 = (s: IPv6Net) => !held.some((l) => l.ipv6Subnet && overlapsV6(l.ipv6Subnet, s));
  const excluded = (s: IPv4Net | undefined) => s !== undefined && input.exclude?.has(formatIPv4Net(s)) === true;

  // 2. The subnet we had before, if it still fits and nobody holds it.
  const prev = input.previous;
  if (prev && isCompatible(cfg, prev) && !excluded(prev.subnet) &&
      (!prev.subnet || freeV4(prev.subnet)) && (!prev.ipv6Subnet || freeV6(prev.ipv6Subnet))) {
    return { kind: "create", subnet: prev.subnet, ipv6Subnet: prev.ipv6Subnet, stale };
  }

  // 3. A random pick among the first free subnets.
  let subnet: IPv4Net | undefined;
  if (cfg.enableIPv4 && cfg.network) {
    const size = 2 ** (32 - cfg.subnetLen);
    const free: IPv4Net[] = [];
    // Leases of our length are looked up by address; other lengths (a changed config) by overlap.
    const sameLen = new Set<number>();
    const otherLen: IPv4Net[] = [];
    for (const l of held) if (l.subnet) l.subnet.len === cfg.subnetLen ? sameLen.add(l.subnet.ip) : otherLen.push(l.subnet);
    for (let ip = cfg.subnetMin; ip <= cfg.subnetMax && free.length < FREE_CANDIDATES; ip += size) {
      const s = { ip, len: cfg.subnetLen };
      if (!sameLen.has(ip) && !otherLen.some((o) => overlapsV4(o, s)) && !excluded(s)) free.push(s);
    }
    if (free.length === 0) throw new NetworkFullError(cfg, (cfg.subnetMax - cfg.subnetMin) / size + 1);
    subnet = free[random(free.length)];
  }
  let ipv6Subnet: IPv6Net | undefined;
  if (cfg.enableIPv6 && cfg.ipv6Network) {
    const size = 1n << BigInt(128 - cfg.ipv6SubnetLen);
    const free: IPv6Net[] = [];
    for (let ip = cfg.ipv6SubnetMin; ip <= cfg.ipv6SubnetMax && free.length < FREE_CANDIDATES; ip += size) {
      const s = { ip, len: cfg.ipv6SubnetLen };
      if (freeV6(s)) free.push(s);
    }
    if (free.length === 0) throw new NetworkFullError(cfg, Number((cfg.ipv6SubnetMax - cfg.ipv6SubnetMin) / size + 1n));
    ipv6Subnet = free[random(free.length)];
  }
  return { kind: "create", subnet, ipv6Subnet, stale };
}
