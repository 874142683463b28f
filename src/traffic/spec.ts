/**
 * @module The engine-neutral description of flanneld's firewall rules (compat §7): which rule sets
 * a host needs (masquerade and forward, per address family), derived from the network config and
 * the lease. The iptables and nftables renderings both start from these values, and each engine
 * implements `RuleEngine` to install, check and remove them.
 */
import type { NetworkConfig } from "../config/network.ts";
import {
  type IPv4Net, type IPv6Net, containsV4Net, containsV6Net, formatIPv4Net, formatIPv6Net, parseIPv4Net, parseIPv6Net,
} from "../net/ip.ts";
import type { SubnetEnv } from "../subnet_env.ts";

export type Family = 4 | 6;

/** `--ip-masq`'s rules for one family: `cluster` = Network, `pod` = our lease (CIDR text). */
export interface MasqSpec {
  readonly kind: "masq";
  readonly family: Family;
  readonly cluster: string;
  readonly pod: string;
  /** Emit `--random-fully` / `fully-random` (supported and not disabled). */
  readonly randomFully: boolean;
}

/** `--iptables-forward-rules`' rules for one family: accept to and from Network. */
export interface ForwardSpec {
  readonly kind: "forward";
  readonly family: Family;
  readonly network: string;
}

export type RuleSpec = MasqSpec | ForwardSpec;

/** What the kernel holds for one rule set: "ok", or why it must be rebuilt. */
export type RuleState = { ok: true } | { ok: false; reason: string };

/** An applier: iptables-restore or nft. Every method may throw an Error naming the tool. */
export interface RuleEngine {
  readonly name: "iptables" | "nftables";
  /** Writes the rule sets, each chain rewritten whole and in flanneld's order. */
  install(specs: readonly RuleSpec[]): Promise<void>;
  /** Reads the kernel state once per table and says, per spec, whether it is intact. */
  check(specs: readonly RuleSpec[]): Promise<RuleState[]>;
  /** Deletes what the given (previous) rule sets installed, where still present. */
  remove(specs: readonly RuleSpec[]): Promise<void>;
  /** Deletes every flannel chain/table of this engine (the "engine not in use" at start-up). */
  removeAll(): Promise<void>;
}

/** The two subnets a rule set is built from; undefined members are skipped. */
export interface FamilyNets {
  network?: IPv4Net;
  subnet?: IPv4Net;
  ipv6Network?: IPv6Net;
  ipv6Subnet?: IPv6Net;
}

/**
 * The rule sets a host needs, in flanneld's install order: masquerade (v4, v6) before forward
 * (v4, v6). A family contributes masquerade rules only when both its network and subnet are known.
 */
export function ruleSpecs(
  nets: FamilyNets, opts: { ipMasq: boolean; forwardRules: boolean; randomFully: boolean },
): RuleSpec[] {
  const out: RuleSpec[] = [];
  const v4 = nets.network && formatIPv4Net(nets.network);
  const v6 = nets.ipv6Network && formatIPv6Net(nets.ipv6Network);
  if (opts.ipMasq) {
    if (v4 && nets.subnet) out.push({ kind: "masq", family: 4, cluster: v4, pod: formatIPv4Net(nets.subnet), randomFully: opts.randomFully });
    if (v6 && nets.ipv6Subnet) out.push({ kind: "masq", family: 6, cluster: v6, pod: formatIPv6Net(nets.ipv6Subnet), randomFully: opts.randomFully });
  }
  if (opts.forwardRules) {
    if (v4) out.push({ kind: "forward", family: 4, network: v4 });
    if (v6) out.push({ kind: "forward", family: 6, network: v6 });
  }
  return out;
}

/** The networks and lease of the running config, as `ruleSpecs` takes them. */
export function currentNets(config: NetworkConfig, lease: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net }): FamilyNets {
  return {
    network: config.enableIPv4 ? config.network : undefined,
    subnet: config.enableIPv4 ? lease.subnet : undefined,
    ipv6Network: config.enableIPv6 ? config.ipv6Network : undefined,
    ipv6Subnet: config.enableIPv6 ? lease.ipv6Subnet : undefined,
  };
}

/** A short name for logs: `masq v4 10.42.0.0/16 10.42.5.0/24`. */
export function describeSpec(s: RuleSpec): string {
  return s.kind === "masq" ? `masq v${s.family} ${s.cluster} ${s.pod}` : `forward v${s.family} ${s.network}`;
}

/**
 * The subnets of a previous subnet.env, for families whose Network or lease changed since
 * (flanneld recycles those rules at start-up; unchanged families keep theirs). FLANNEL_SUBNET is
 * masked to its network; a comma list in FLANNEL_NETWORK (v0.21–v0.22) gives the entry that holds
 * the subnet. Values that do not parse are skipped.
 */
export function changedPreviousNets(previous: SubnetEnv | undefined, current: FamilyNets): FamilyNets {
  const v4 = changedFamily(previous?.network, previous?.subnet, current.network, current.subnet, parseIPv4Net, containsV4Net);
  const v6 = changedFamily(previous?.ipv6Network, previous?.ipv6Subnet, current.ipv6Network, current.ipv6Subnet, parseIPv6Net, containsV6Net);
  return { ...(v4 && { network: v4.network, subnet: v4.subnet }), ...(v6 && { ipv6Network: v6.network, ipv6Subnet: v6.subnet }) };
}

/** One family of `changedPreviousNets`: the previous pair when it parses and differs. */
function changedFamily<N extends IPv4Net | IPv6Net>(
  prevNetwork: string | undefined, prevSubnet: string | undefined, network: N | undefined, subnet: N | undefined,
  parse: (s: string) => N, contains: (outer: N, inner: N) => boolean,
): { network: N; subnet: N } | undefined {
  if (!network || !subnet || !prevNetwork || !prevSubnet) return undefined;
  const attempt = (s: string): N | undefined => { try { return parse(s.trim()); } catch { return undefined; } };
  const old = attempt(prevSubnet);
  const nets = prevNetwork.split(",").map(attempt);
  const oldNet = nets.find((n) => n && old && contains(n, old)) ?? nets[0];
  if (!old || !oldNet || (sameNet(oldNet, network) && sameNet(old, subnet))) return undefined;
  return { network: oldNet, subnet: old };
}

function sameNet(a: IPv4Net | IPv6Net, b: IPv4Net | IPv6Net): boolean {
  return a.ip === b.ip && a.len === b.len;
}
