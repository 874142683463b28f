/**
 * @module Peer lease admission, pure: which peer leases the data path may program. Anyone with
 * etcd write access (or a Node's annotations) can write a lease, and a backend programs what it is
 * given: a lease overlapping a working peer's subnet replaces that peer's neighbour entry, one
 * reusing a peer's VtepMAC re-points its FDB entry, one whose PublicIP is ours makes a VXLAN loop.
 * So every lease passes here between the subnet manager and the backend, and only what flannel's
 * allocator could have produced, and what displaces no working peer, goes through.
 *
 * Rules (a lease is refused with the first that applies; families are checked only when the
 * network config enables them):
 * 1. `prefix_length`: its subnet is not a /SubnetLen (/IPv6SubnetLen) — flannel allocates no other.
 * 2. `outside_network`: its subnet is not inside Network (IPv6Network). Alignment needs no rule:
 *    a key with host bits set is not a subnet key at all (lease.ts), and a /SubnetLen inside
 *    Network is aligned.
 * 3. `overlaps_own`: its subnet overlaps this host's own lease (ours always wins).
 * 4. `bad_public_ip`: its PublicIP (PublicIPv6) cannot be a host: unspecified, loopback,
 *    link-local, multicast, broadcast or reserved, the broadcast of one of our subnets, or an
 *    address inside the cluster network itself (encapsulated traffic would loop in the overlay).
 *    Loopback and link-local are accepted when our own PublicIP is one too (all hosts on one
 *    machine, as in tests and demos).
 * 5. `own_public_ip`: its PublicIP is one of this host's addresses (a VXLAN loop: 5 pings became
 *    315 packets).
 * 6. `duplicate_vtep_mac`: its VtepMAC (vxlan) is ours or an admitted peer's. The FDB maps a MAC
 *    to one PublicIP, so programming it would re-point that peer's traffic.
 * 7. `overlaps_peer`: its subnet overlaps an admitted peer's (as every admitted subnet is a
 *    /SubnetLen inside Network, this means the same subnet under another key, e.g. `10.0.68.0-24`
 *    beside `10.0.68.0-24&fc00::-64`).
 *
 * Flagged, not refused: `duplicate_public_ip`, a PublicIP (PublicIPv6) an admitted peer already
 * advertises (two hosts behind one NAT address: the Vagrant mistake of flannel #392). Each later
 * lease is reported once, and programmed all the same, as flanneld does, because here it displaces
 * nothing: vxlan keys the FDB by VtepMAC and neighbours and routes by subnet, host-gw keys routes
 * by subnet, so the older peer's entries stay as they are; only the later lease's own traffic
 * goes to the older host. The udp backend, whose core names a datagram's sender by its address,
 * holds the later one back itself (peer_table.ts).
 *
 * Who wins a conflict: a lease already admitted keeps its place (a later write never displaces a
 * working peer, even a re-put of an older key), and a working peer that changes is decided before
 * the leases that were refused or are new; among those, the older one by `Lease.created` (etcd
 * create revision; unknown counts as newest) wins, then the key order. A refused lease is admitted
 * as soon as the reason is gone (it is re-put valid, or the peer it conflicts with leaves).
 * A watch batch is decided incrementally: only the keys it touched, plus the refused leases when
 * it freed something.
 *
 * @example
 *   const adm = new PeerAdmission({ config, own: admissionSelf(ownLease, hostNetwork) });
 *   const { peers } = adm.snapshot(watcherPeers);      // reconcile the backend with `peers`
 *   const { events, refused } = adm.apply(leaseEvents); // apply `events`; log each of `refused` once
 */
import type { NetworkConfig } from "../config/network.ts";
import { getCI, isObject } from "../config/json_ci.ts";
import type { HostNetwork } from "../net/iface.ts";
import {
  type IPv4Net, type IPv6Net, containsV4, containsV4Net, containsV6Net, formatIPv4, formatIPv4Net, formatIPv6,
  formatIPv6Net, maskV4, overlapsV4, overlapsV6, tryParseIPv4, tryParseIPv6,
} from "../net/ip.ts";
import { type Lease, type LeaseEvent, leaseBackendType, leaseKey, sameAttrs } from "./lease.ts";

/** Every reason a lease is refused: the label values of `weft_peer_leases_refused`. */
export const REFUSAL_REASONS = [
  "prefix_length", "outside_network", "overlaps_own", "bad_public_ip", "own_public_ip",
  "duplicate_vtep_mac", "overlaps_peer",
] as const;
export type RefusalReason = (typeof REFUSAL_REASONS)[number];

/** Every reason an admitted lease is flagged: the label values of `weft_peer_leases_flagged`. */
export const FLAG_REASONS = ["duplicate_public_ip"] as const;
export type FlagReason = (typeof FLAG_REASONS)[number];

/** A refused lease. */
export interface Refusal {
  readonly key: string;
  readonly lease: Lease;
  readonly reason: RefusalReason;
  /** What is wrong, with the value and what is allowed, in a user's words. */
  readonly message: string;
  /** The admitted lease it conflicts with, for conflicts. */
  readonly conflictsWith?: string;
  /** Refused since (epoch ms) for this reason. */
  readonly since: number;
}

/** An admitted lease reported for something suspicious that displaces nothing (module doc). */
export interface Flag extends Omit<Refusal, "reason"> {
  readonly reason: FlagReason;
}

/** This host, as admission sees it. */
export interface AdmissionSelf {
  readonly subnet?: IPv4Net;
  readonly ipv6Subnet?: IPv6Net;
  /** The PublicIP(v6) this host advertises (0 / undefined: none). */
  readonly publicIP: number;
  readonly publicIPv6?: bigint;
  /** vxlan VTEP MACs of flannel.N and flannel-v6.N, lowercase. */
  readonly vtepMAC?: string;
  readonly vtepMACv6?: string;
  /** Every address of this host (the advertised public ones included). */
  readonly addresses: readonly number[];
  readonly addresses6: readonly bigint[];
  /** The broadcast addresses of this host's IPv4 subnets. */
  readonly broadcasts: readonly number[];
}

export interface AdmissionOptions {
  readonly config: Pick<NetworkConfig, "enableIPv4" | "enableIPv6" | "network" | "subnetLen" | "ipv6Network" | "ipv6SubnetLen">;
  readonly own: AdmissionSelf;
  /** Clock for `Refusal.since` (tests pin it). */
  readonly now?: () => number;
}

/** What one `snapshot()` or `apply()` changed in the refusals. */
export interface AdmissionChange {
  /** Leases refused now that were not, or refused now for another reason: log each once. */
  readonly refused: Refusal[];
  /** Leases admitted now that were refused before, with the refusal that ended. */
  readonly admitted: { readonly lease: Lease; readonly was: Refusal }[];
  /** Leases flagged now that were not, or for another reason: log each once. */
  readonly flagged: Flag[];
}

/** This host as admission sees it: our lease (subnets, PublicIPs, VtepMACs) and every host address. */
export function admissionSelf(own: Lease, host?: HostNetwork): AdmissionSelf {
  const addresses = new Set<number>();
  const addresses6 = new Set<bigint>();
  const broadcasts = new Set<number>();
  if (own.attrs.publicIP !== 0) addresses.add(own.attrs.publicIP);
  if (own.attrs.publicIPv6 !== undefined) addresses6.add(own.attrs.publicIPv6);
  for (const i of host?.interfaces ?? []) {
    for (const a of i.addrs) {
      if (a.family === 4) {
        const ip = tryParseIPv4(a.address);
        if (ip === undefined) continue;
        addresses.add(ip);
        if (a.prefixLen < 31) broadcasts.add((ip | ~maskV4(a.prefixLen)) >>> 0);
      } else {
        const ip = tryParseIPv6(a.address.replace(/%.*$/, ""));
        if (ip !== undefined) addresses6.add(ip);
      }
    }
  }
  return {
    subnet: own.subnet, ipv6Subnet: own.ipv6Subnet, publicIP: own.attrs.publicIP, publicIPv6: own.attrs.publicIPv6,
    vtepMAC: vtepMACOf(own, own.attrs.backendData), vtepMACv6: vtepMACOf(own, own.attrs.backendV6Data),
    addresses: [...addresses], addresses6: [...addresses6], broadcasts: [...broadcasts],
  };
}

/** The VtepMAC a vxlan lease advertises in `data` (lowercase), if any. */
function vtepMACOf(lease: Lease, data: unknown): string | undefined {
  if (leaseBackendType(lease.attrs) !== "vxlan" || !isObject(data)) return undefined;
  const mac = getCI(data, "VtepMAC");
  return typeof mac === "string" && mac.length <= 64 ? mac.toLowerCase() : undefined;
}

/** Why an IPv4 PublicIP cannot be a host's, or undefined. */
function badPublicIP(ip: number, cfg: AdmissionOptions["config"], own: AdmissionSelf): string | undefined {
  const in4 = (net: number, len: number) => containsV4({ ip: net, len }, ip);
  // Loopback and link-local are an underlay only when this host's own PublicIP is one too (every
  // host on one machine, as in a test or demo): then its peers' are as good as its own.
  const ours = (net: number, len: number) => own.publicIP !== 0 && containsV4({ ip: net, len }, own.publicIP);
  if (ip === 0) return "is unspecified (0.0.0.0)";
  if (ip === 0xffffffff) return "is the broadcast address";
  if (in4(0, 8)) return "is in 0.0.0.0/8 (\"this network\")";
  if (in4(0x7f000000, 8) && !ours(0x7f000000, 8)) return "is a loopback address (127.0.0.0/8)";
  if (in4(0xa9fe0000, 16) && !ours(0xa9fe0000, 16)) return "is a link-local address (169.254.0.0/16)";
  if (in4(0xe0000000, 4)) return "is a multicast address (224.0.0.0/4)";
  if (in4(0xf0000000, 4)) return "is a reserved address (240.0.0.0/4)";
  if (own.broadcasts.includes(ip)) return "is the broadcast address of one of this host's subnets";
  if (cfg.network && containsV4(cfg.network, ip)) return `is inside the cluster Network ${formatIPv4Net(cfg.network)} (an overlay address)`;
  return undefined;
}

/** Why an IPv6 PublicIPv6 cannot be a host's, or undefined. */
function badPublicIPv6(ip: bigint, cfg: AdmissionOptions["config"], own: AdmissionSelf): string | undefined {
  const in6 = (net: bigint, len: number) => containsV6Net({ ip: net, len }, { ip, len: 128 });
  const ours = (net: bigint, len: number) => own.publicIPv6 !== undefined && containsV6Net({ ip: net, len }, { ip: own.publicIPv6, len: 128 });
  if (ip === 0n) return "is unspecified (::)";
  if (ip === 1n) return "is the loopback address (::1)";
  if (in6(0xffn << 120n, 8)) return "is a multicast address (ff00::/8)";
  if (in6(0xfe80n << 112n, 10) && !ours(0xfe80n << 112n, 10)) return "is a link-local address (fe80::/10)";
  if (in6(0xffffn << 32n, 96)) return "is an IPv4-mapped address (::ffff:0:0/96)";
  if (cfg.ipv6Network && containsV6Net(cfg.ipv6Network, { ip, len: 128 })) {
    return `is inside the cluster IPv6Network ${formatIPv6Net(cfg.ipv6Network)} (an overlay address)`;
  }
  return undefined;
}

/**
 * What the admitted leases hold, so a conflict is one lookup. Every admitted subnet is a
 * /SubnetLen inside Network (rules 1–2), so two overlap only when they are equal: subnets are
 * held by network address.
 */
class Holdings {
  readonly subnets = new Map<number, string>();
  readonly subnets6 = new Map<bigint, string>();
  readonly macs = new Map<string, string>();
  readonly macs6 = new Map<string, string>();

  hold(f: Facts): void {
    this.#each(f, (m, v) => m.set(v, f.key));
  }

  /** Frees what `f` holds (what another key holds stays). */
  release(f: Facts): void {
    this.#each(f, (m, v) => { if (m.get(v) === f.key) m.delete(v); });
  }

  #each(f: Facts, op: (m: Map<unknown, string>, v: unknown) => void): void {
    if (f.subnet) op(this.subnets as Map<unknown, string>, f.subnet.ip);
    if (f.subnet6) op(this.subnets6 as Map<unknown, string>, f.subnet6.ip);
    if (f.mac !== undefined) op(this.macs as Map<unknown, string>, f.mac);
    if (f.mac6 !== undefined) op(this.macs6 as Map<unknown, string>, f.mac6);
  }
}

/** The facts about one lease that admission looks at, each only for an enabled family. */
interface Facts {
  readonly key: string;
  readonly subnet?: IPv4Net;
  readonly subnet6?: IPv6Net;
  readonly publicIP?: number;
  readonly publicIP6?: bigint;
  readonly mac?: string;
  readonly mac6?: string;
}

/** Older first: etcd create revision (unknown last), then key. */
function byAge(a: Lease, b: Lease): number {
  if (a.created !== b.created) {
    if (a.created === undefined) return 1;
    if (b.created === undefined) return -1;
    return a.created < b.created ? -1 : 1;
  }
  const ka = leaseKey(a), kb = leaseKey(b);
  return ka < kb ? -1 : ka > kb ? 1 : 0;
}

const firstHolder = (k: string) => `the admitted lease ${k}, which was there first`;

/** The ids under which admitted leases share PublicIPs (one per enabled family). */
function publicIPIds(f: Facts): string[] {
  const ids: string[] = [];
  if (f.publicIP !== undefined) ids.push(`4 ${f.publicIP}`);
  if (f.publicIP6 !== undefined) ids.push(`6 ${f.publicIP6}`);
  return ids;
}

/** The same lease version: an object passed again, or a renewal (new etcd lease, same attributes). */
function sameVersion(a: Lease, b: Lease): boolean {
  return a === b || sameAttrs(a.attrs, b.attrs);
}

export class PeerAdmission {
  /** Every peer lease the subnet manager reported, by key. */
  readonly #leases = new Map<string, Lease>();
  readonly #admitted = new Map<string, Lease>();
  /** The facts of each admitted lease, to release what it holds when it changes or goes. */
  readonly #admittedFacts = new Map<string, Facts>();
  readonly #refused = new Map<string, Refusal>();
  readonly #flagged = new Map<string, Flag>();
  readonly #held = new Holdings();
  /** Admitted keys by the PublicIP they advertise (`publicIPIds`), in the order admitted. */
  readonly #sharing = new Map<string, string[]>();
  /** Keys whose flag may have changed in this batch. */
  readonly #reflagKeys = new Set<string>();
  readonly #now: () => number;

  constructor(readonly opts: AdmissionOptions) {
    this.#now = opts.now ?? Date.now;
  }

  /** The admitted peer leases by key: what the backend programs. */
  get admitted(): ReadonlyMap<string, Lease> {
    return this.#admitted;
  }

  /** The refused peer leases by key, with the reason. */
  get refused(): ReadonlyMap<string, Refusal> {
    return this.#refused;
  }

  /** The admitted leases flagged (a duplicate PublicIP), by key. */
  get flagged(): ReadonlyMap<string, Flag> {
    return this.#flagged;
  }

  /** How many leases are refused now for each reason (every reason present, 0 when none). */
  counts(): Map<RefusalReason, number> {
    const out = new Map<RefusalReason, number>(REFUSAL_REASONS.map((r) => [r, 0]));
    for (const r of this.#refused.values()) out.set(r.reason, out.get(r.reason)! + 1);
    return out;
  }

  /** How many admitted leases are flagged now for each reason (every reason present). */
  flagCounts(): Map<FlagReason, number> {
    const out = new Map<FlagReason, number>(FLAG_REASONS.map((r) => [r, 0]));
    for (const f of this.#flagged.values()) out.set(f.reason, out.get(f.reason)! + 1);
    return out;
  }

  /**
   * A full view of the peer leases (the first listing, or a re-list): returns the admitted ones,
   * for the backend's reconcile. Leases admitted before and unchanged keep their place.
   */
  snapshot(peers: ReadonlyMap<string, Lease> | Iterable<Lease>): AdmissionChange & { peers: ReadonlyMap<string, Lease> } {
    const before = new Map(this.#admitted);
    this.#leases.clear();
    for (const l of (peers instanceof Map ? peers.values() : peers) as Iterable<Lease>) this.#leases.set(leaseKey(l), l);
    for (const key of before.keys()) this.#release(key);
    for (const key of this.#refused.keys()) if (!this.#leases.has(key)) this.#refused.delete(key);
    const kept: Lease[] = [];
    const changed: Lease[] = [];
    const rest: Lease[] = [];
    for (const [key, l] of this.#leases) {
      const was = before.get(key);
      (!was ? rest : sameVersion(was, l) ? kept : changed).push(l);
    }
    // Incumbents were admitted together: they hold their place without a check.
    for (const l of kept) this.#admit(this.#facts(l), l);
    const change = this.#evaluate([...changed.sort(byAge), ...rest.sort(byAge)]);
    return { ...change, flagged: this.#reflag(), peers: new Map(this.#admitted) }; // a copy: ours changes with every batch
  }

  /** Peer changes in order: returns the events the backend must apply (removals first). */
  apply(events: readonly LeaseEvent[]): AdmissionChange & { events: LeaseEvent[] } {
    /** The admitted version before this batch, of every key an event touched. */
    const before = new Map<string, Lease | undefined>();
    const changed = new Set<string>();
    const rest = new Set<string>();
    let released = false;
    for (const e of events) {
      const key = leaseKey(e.lease);
      if (!before.has(key)) before.set(key, this.#admitted.get(key));
      const was = this.#admitted.get(key);
      if (e.type === "removed") {
        this.#leases.delete(key);
        this.#refused.delete(key);
        changed.delete(key);
        rest.delete(key);
        if (was) released = this.#release(key);
        continue;
      }
      this.#leases.set(key, e.lease);
      if (was && sameVersion(was, e.lease)) {
        this.#admitted.set(key, e.lease); // a renewal: same place
        continue;
      }
      if (was) released = this.#release(key);
      (before.get(key) ? changed : rest).add(key);
    }
    // Freed subnets, addresses or MACs may let refused leases in: look at them again.
    if (released) for (const key of this.#refused.keys()) if (!changed.has(key)) rest.add(key);
    const pick = (keys: Set<string>) => [...keys].map((k) => this.#leases.get(k)!).sort(byAge);
    // A working peer that changed goes before the leases that were refused or new.
    const change = this.#evaluate([...pick(changed), ...pick(rest)]);
    const out: LeaseEvent[] = [];
    const touched = new Set([...before.keys(), ...rest]);
    for (const key of touched) {
      const old = before.get(key);
      if (old && !this.#admitted.has(key)) out.push({ type: "removed", lease: old });
    }
    for (const key of touched) {
      const old = before.get(key);
      const now = this.#admitted.get(key);
      if (now && (!old || !sameVersion(old, now))) out.push({ type: "added", lease: now });
    }
    return { ...change, flagged: this.#reflag(), events: out };
  }

  /** Checks `leases` in order against what is admitted, admitting or refusing each. */
  #evaluate(leases: readonly Lease[]): Omit<AdmissionChange, "flagged"> {
    const change: Omit<AdmissionChange, "flagged"> = { refused: [], admitted: [] };
    for (const l of leases) {
      const f = this.#facts(l);
      const prev = this.#refused.get(f.key);
      const why = this.#check(f, this.#held);
      if (!why) {
        this.#refused.delete(f.key);
        this.#admit(f, l);
        if (prev) change.admitted.push({ lease: l, was: prev });
        continue;
      }
      const same = prev && prev.reason === why.reason && prev.message === why.message;
      const r: Refusal = { key: f.key, lease: l, ...why, since: same ? prev.since : this.#now() };
      this.#refused.set(f.key, r);
      if (!same) change.refused.push(r);
    }
    return change;
  }

  #admit(f: Facts, l: Lease): void {
    this.#held.hold(f);
    this.#admitted.set(f.key, l);
    this.#admittedFacts.set(f.key, f);
    for (const id of publicIPIds(f)) {
      const keys = this.#sharing.get(id) ?? [];
      keys.push(f.key);
      this.#sharing.set(id, keys);
      for (const k of keys) this.#reflagKeys.add(k);
    }
  }

  /** Takes `key` out of the admitted set and frees what it held; returns true. */
  #release(key: string): boolean {
    const f = this.#admittedFacts.get(key);
    if (f) {
      this.#held.release(f);
      for (const id of publicIPIds(f)) {
        const keys = (this.#sharing.get(id) ?? []).filter((k) => k !== key);
        if (keys.length > 0) this.#sharing.set(id, keys);
        else this.#sharing.delete(id);
        for (const k of keys) this.#reflagKeys.add(k);
      }
    }
    this.#reflagKeys.add(key);
    this.#admittedFacts.delete(key);
    this.#admitted.delete(key);
    return true;
  }

  /**
   * Brings the flags of the keys this batch touched up to date: an admitted lease that shares a
   * PublicIP with one admitted before it is flagged. Returns the new or changed flags.
   */
  #reflag(): Flag[] {
    const out: Flag[] = [];
    for (const key of this.#reflagKeys) {
      const f = this.#admittedFacts.get(key);
      let flag: Omit<Flag, "since" | "lease"> | undefined;
      for (const id of f ? publicIPIds(f) : []) {
        const first = this.#sharing.get(id)![0]!;
        if (first === key) continue;
        const ip = id.startsWith("4 ") ? `PublicIP ${formatIPv4(f!.publicIP!)}` : `PublicIPv6 ${formatIPv6(f!.publicIP6!)}`;
        flag = {
          key, reason: "duplicate_public_ip", conflictsWith: first,
          message: `${ip} is also advertised by ${firstHolder(first)} (two hosts behind one address?)`,
        };
        break;
      }
      const prev = this.#flagged.get(key);
      if (!flag) {
        this.#flagged.delete(key);
        continue;
      }
      const same = prev && prev.reason === flag.reason && prev.message === flag.message;
      const next: Flag = { ...flag, lease: this.#admitted.get(key)!, since: same ? prev.since : this.#now() };
      this.#flagged.set(key, next);
      if (!same) out.push(next);
    }
    this.#reflagKeys.clear();
    return out;
  }

  #facts(l: Lease): Facts {
    const { enableIPv4, enableIPv6 } = this.opts.config;
    const v4 = enableIPv4 && l.subnet !== undefined;
    const v6 = enableIPv6 && l.ipv6Subnet !== undefined;
    return {
      key: leaseKey(l),
      subnet: v4 ? l.subnet : undefined,
      subnet6: v6 ? l.ipv6Subnet : undefined,
      publicIP: v4 ? l.attrs.publicIP : undefined,
      publicIP6: v6 ? l.attrs.publicIPv6 : undefined,
      mac: v4 ? vtepMACOf(l, l.attrs.backendData) : undefined,
      mac6: v6 ? vtepMACOf(l, l.attrs.backendV6Data) : undefined,
    };
  }

  /** The first rule `f` breaks (module doc), or undefined when it may be programmed. */
  #check(f: Facts, held: Holdings): { reason: RefusalReason; message: string; conflictsWith?: string } | undefined {
    const { config: cfg, own } = this.opts;
    const no = (reason: RefusalReason, what: string, conflictsWith?: string) =>
      ({ reason, message: what, ...(conflictsWith ? { conflictsWith } : {}) });
    // 1–3: what flannel's allocator could have produced, and never over our own subnet.
    if (f.subnet && cfg.network) {
      const s = formatIPv4Net(f.subnet);
      if (f.subnet.len !== cfg.subnetLen) {
        return no("prefix_length", `subnet ${s} is a /${f.subnet.len}, but leases in Network ${formatIPv4Net(cfg.network)} are /${cfg.subnetLen} (SubnetLen)`);
      }
      if (!containsV4Net(cfg.network, f.subnet)) return no("outside_network", `subnet ${s} is not inside Network ${formatIPv4Net(cfg.network)}`);
      if (own.subnet && overlapsV4(own.subnet, f.subnet)) return no("overlaps_own", `subnet ${s} overlaps this host's own lease ${formatIPv4Net(own.subnet)}`);
    }
    if (f.subnet6 && cfg.ipv6Network) {
      const s = formatIPv6Net(f.subnet6);
      if (f.subnet6.len !== cfg.ipv6SubnetLen) {
        return no("prefix_length", `IPv6 subnet ${s} is a /${f.subnet6.len}, but leases in IPv6Network ${formatIPv6Net(cfg.ipv6Network)} are /${cfg.ipv6SubnetLen} (IPv6SubnetLen)`);
      }
      if (!containsV6Net(cfg.ipv6Network, f.subnet6)) return no("outside_network", `IPv6 subnet ${s} is not inside IPv6Network ${formatIPv6Net(cfg.ipv6Network)}`);
      if (own.ipv6Subnet && overlapsV6(own.ipv6Subnet, f.subnet6)) {
        return no("overlaps_own", `IPv6 subnet ${s} overlaps this host's own lease ${formatIPv6Net(own.ipv6Subnet)}`);
      }
    }
    // 4–5: where encapsulated traffic would go.
    if (f.publicIP !== undefined) {
      const bad = badPublicIP(f.publicIP, cfg, own);
      if (bad) return no("bad_public_ip", `PublicIP ${formatIPv4(f.publicIP)} ${bad}: it cannot be a host's address`);
      if (own.addresses.includes(f.publicIP)) return no("own_public_ip", `PublicIP ${formatIPv4(f.publicIP)} is this host's own address (traffic to it would loop back here)`);
    }
    if (f.publicIP6 !== undefined) {
      const bad = badPublicIPv6(f.publicIP6, cfg, own);
      if (bad) return no("bad_public_ip", `PublicIPv6 ${formatIPv6(f.publicIP6)} ${bad}: it cannot be a host's address`);
      if (own.addresses6.includes(f.publicIP6)) return no("own_public_ip", `PublicIPv6 ${formatIPv6(f.publicIP6)} is this host's own address (traffic to it would loop back here)`);
    }
    // 6–8: what would displace our own or an admitted peer's kernel entries.
    if (f.mac !== undefined && f.mac === own.vtepMAC) return no("duplicate_vtep_mac", `VtepMAC ${f.mac} is this host's own VTEP MAC`);
    if (f.mac6 !== undefined && f.mac6 === own.vtepMACv6) return no("duplicate_vtep_mac", `IPv6 VtepMAC ${f.mac6} is this host's own VTEP MAC`);
    const first = firstHolder;
    let k: string | undefined;
    if (f.mac !== undefined && (k = held.macs.get(f.mac))) return no("duplicate_vtep_mac", `VtepMAC ${f.mac} is already used by ${first(k)}`, k);
    if (f.mac6 !== undefined && (k = held.macs6.get(f.mac6))) return no("duplicate_vtep_mac", `IPv6 VtepMAC ${f.mac6} is already used by ${first(k)}`, k);
    if (f.subnet && (k = held.subnets.get(f.subnet.ip))) return no("overlaps_peer", `subnet ${formatIPv4Net(f.subnet)} overlaps ${first(k)}`, k);
    if (f.subnet6 && (k = held.subnets6.get(f.subnet6.ip))) return no("overlaps_peer", `IPv6 subnet ${formatIPv6Net(f.subnet6)} overlaps ${first(k)}`, k);
    return undefined;
  }
}
