/**
 * @module The udp backend's peer policy, pure: which peer leases get programmed into the packet
 * cores and as which peer id, expressed as core operations (`CoreOp`) that every worker applies
 * in order. No I/O, so it is tested with tables of leases in, operations out.
 *
 * Policy:
 * - flanneld's udp backend filters no lease by type (compat §6): leases without a BackendType —
 *   written by flanneld's udp and alloc and by weft's udp — are programmed.
 * - A lease that advertises another data-path backend (vxlan, host-gw, …) means the cluster is
 *   misconfigured: that host expects VXLAN frames or plain routes, not udp datagrams on our
 *   port, so programming it would only black-hole traffic. It is refused with one error per
 *   peer and reason (this is weft's reading of "mixed backends are refused with a clear error").
 * - Inner packets: IPv4 always (as flanneld's); IPv6 too when the network has an IPv6Network
 *   and the peer says it carries IPv6 (weft only): its IPv6 subnet is routed to it and is what
 *   it may send from. A weft udp host in a dual-stack network says so with the lease's
 *   BackendV6Data `{"IPv6Underlay":<bool>}` (udpV6Data()); flanneld's udp backend is IPv4 only,
 *   writes none, and would mangle an IPv6 packet (it decrements an IPv4 TTL), so a flanneld
 *   peer's IPv6 subnet is not routed: IPv6 packets to it get ICMPv6 unreachable. A lease
 *   without an IPv4 subnet is skipped (the udp backend needs an IPv4 network).
 * - Underlay (where datagrams to the peer go): its PublicIP over IPv4 whenever both hosts have
 *   an IPv4 underlay — flanneld peers keep working unchanged, and IPv4 costs 20 bytes less per
 *   packet; over IPv6 to its PublicIPv6 (only a peer whose BackendV6Data says it listens there)
 *   when that is the only family both share (a v6-only host), or for every such peer when
 *   `preferIPv6` (WEFT_UDP_PREFER_IPV6). Datagrams *from* a peer are accepted from either public
 *   address, whichever family that peer chose. A lease that shares no underlay family with us
 *   is skipped.
 * - A public IP (v4 or v6) is one peer (the core finds the sender of a datagram by it, for
 *   anti-spoofing). A second lease with the same address waits, refused, until the first goes.
 *
 * Peer ids are small integers reused after removal (the core's table has PEER_CAP entries).
 */
import { PEER_CAP } from "../../core/layout.ts";
import { getCI, isObject } from "../../config/json_ci.ts";
import { type Lease, type LeaseAttrs, type LeaseEvent, leaseBackendType, leaseKey, showValue } from "../../lease/lease.ts";
import { formatIPv4, formatIPv6 } from "../../net/ip.ts";

/**
 * One change to a core's routes and peers; `apply` order matters. `peerSet` clears the peer's
 * IPv6 subnet and public IPv6, so `peerSubnet6`/`peerPublic6` follow it whenever it is sent.
 * IPv6 addresses are bigints; `ip` 0 in peerSet: the peer is reached over IPv6 only.
 */
export type CoreOp =
  | { readonly op: "peerSet"; readonly id: number; readonly ip: number; readonly port: number; readonly subnet: number; readonly len: number }
  | { readonly op: "peerSubnet6"; readonly id: number; readonly prefix: bigint; readonly len: number }
  | { readonly op: "peerPublic6"; readonly id: number; readonly ip: bigint; readonly via6: boolean }
  | { readonly op: "peerDelete"; readonly id: number }
  | { readonly op: "routeInsert"; readonly prefix: number; readonly len: number; readonly id: number }
  | { readonly op: "routeDelete"; readonly prefix: number; readonly len: number }
  | { readonly op: "route6Insert"; readonly prefix: bigint; readonly len: number; readonly id: number }
  | { readonly op: "route6Delete"; readonly prefix: bigint; readonly len: number };

/**
 * The BackendV6Data a weft udp host advertises in a dual-stack network: it carries IPv6 packets,
 * and listens on [PublicIPv6]:Port when `ipv6Underlay`. flanneld writes none for udp.
 */
export function udpV6Data(ipv6Underlay: boolean): { IPv6Underlay: boolean } {
  return { IPv6Underlay: ipv6Underlay };
}

/** What a peer's lease says of its IPv6 data path (see udpV6Data). */
function peerV6(attrs: LeaseAttrs): { carries: boolean; listens: boolean } {
  const d = attrs.backendV6Data;
  if (!isObject(d)) return { carries: false, listens: false };
  return { carries: true, listens: getCI(d, "IPv6Underlay") === true };
}

/** What this host can carry and reach: the table's view of our own data path. */
export interface PeerTableOptions {
  /** Our UDP socket on the IPv4 underlay is open (default true). */
  ipv4Underlay?: boolean;
  /** Our UDP socket on the IPv6 underlay is open (default false). */
  ipv6Underlay?: boolean;
  /** Send over IPv6 to every peer that advertises a PublicIPv6, not only to v6-only ones. */
  preferIPv6?: boolean;
  /** The network has an IPv6Network: program peers' IPv6 subnets (default false). */
  ipv6Network?: boolean;
}

/** A lease the table refuses, and why (for the log, once per key and reason). */
export interface Refusal {
  readonly key: string;
  readonly reason: string;
  /** true: a cluster misconfiguration (logged as an error), false: merely not applicable. */
  readonly error: boolean;
}

/** What one `apply`/`reconcile` changed. */
export interface PeerPlan {
  readonly ops: CoreOp[];
  /** Leases newly refused, or refused for a new reason. */
  readonly refused: Refusal[];
}

interface Programmed {
  readonly id: number;
  readonly lease: Lease;
  /** The public addresses it holds (addrKey), and whether datagrams to it go over IPv6. */
  readonly addrs: readonly string[];
  readonly via6: boolean;
  /** Its IPv6 subnet is routed to it (it carries IPv6 packets). */
  readonly ipv6: boolean;
}

/** The key of a public address in the clash map: `4:<ip>` or `6:<ip>`. */
const addrKey4 = (ip: number) => `4:${ip}`;
const addrKey6 = (ip: bigint) => `6:${ip}`;

export class PeerTable {
  /** Every peer lease we were told about, by key (accepted or not). */
  readonly #leases = new Map<string, Lease>();
  readonly #programmed = new Map<string, Programmed>();
  /** Public address (addrKey) -> key of the lease programmed with it. */
  readonly #byAddr = new Map<string, string>();
  readonly #refused = new Map<string, string>();
  readonly #freeIds: number[] = [];
  #nextId = 0;

  readonly #v4: boolean;
  readonly #v6: boolean;
  readonly #prefer6: boolean;
  readonly #net6: boolean;

  /** @param port where datagrams to every peer go: our own Backend.Port, as flanneld. */
  constructor(readonly port: number, readonly ownKey = "", options: PeerTableOptions = {}) {
    this.#v4 = options.ipv4Underlay ?? true;
    this.#v6 = options.ipv6Underlay ?? false;
    this.#prefer6 = options.preferIPv6 ?? false;
    this.#net6 = options.ipv6Network ?? false;
  }

  /** Programmed peers by lease key. */
  get programmed(): ReadonlyMap<string, { id: number; lease: Lease; via6: boolean; ipv6: boolean }> {
    return this.#programmed;
  }

  /** Refused leases by key, with the reason. */
  get refused(): ReadonlyMap<string, string> {
    return this.#refused;
  }

  /** Applies lease events in order. */
  apply(events: readonly LeaseEvent[]): PeerPlan {
    const ops: CoreOp[] = [];
    const refused: Refusal[] = [];
    for (const e of events) {
      const key = leaseKey(e.lease);
      if (e.type === "added") this.#put(key, e.lease, ops, refused);
      else this.#remove(key, ops, refused);
    }
    return { ops, refused };
  }

  /** Makes the table hold exactly `peers` (the first snapshot, or a re-list). */
  reconcile(peers: ReadonlyMap<string, Lease>): PeerPlan {
    const ops: CoreOp[] = [];
    const refused: Refusal[] = [];
    for (const key of [...this.#leases.keys()]) {
      if (!peers.has(key)) this.#remove(key, ops, refused);
    }
    for (const [key, lease] of peers) this.#put(key, lease, ops, refused);
    return { ops, refused };
  }

  /** Why `lease` cannot be programmed, or undefined when it can (ignoring public IP clashes). */
  #check(key: string, lease: Lease): Refusal | undefined {
    const type = leaseBackendType(lease.attrs);
    if (type !== "" && type !== "udp") {
      return {
        key, error: true,
        reason: `advertises BackendType ${showValue(type)} but this host runs the udp backend: not programmed ` +
          `(every host of a network must run the same Backend.Type; fix the network config or that host's agent)`,
      };
    }
    if (!lease.subnet) return { key, error: false, reason: "has no IPv4 subnet and the udp backend needs an IPv4 network: not programmed" };
    if (this.#underlay(lease) === undefined) {
      const v6 = lease.attrs.publicIPv6 !== undefined;
      return {
        key, error: false,
        reason: v6 && !this.#v6
          ? "has no PublicIP (0.0.0.0) and this host has no IPv6 underlay for its PublicIPv6 (no IPv6Network, or no IPv6 address on the interface): not programmed"
          : "has no PublicIP (0.0.0.0): not programmed",
      };
    }
    return undefined;
  }

  /**
   * Which public addresses of `lease` the cores hold (those of a family we have an underlay
   * for) and whether datagrams to it go over IPv6 (see the module's policy); undefined when we
   * share no underlay family with it.
   */
  #underlay(lease: Lease): { addrs: string[]; ip: number; ip6?: bigint; via6: boolean } | undefined {
    const ip = this.#v4 ? lease.attrs.publicIP : 0;
    const ip6 = this.#v6 && peerV6(lease.attrs).listens ? lease.attrs.publicIPv6 : undefined;
    if (ip === 0 && ip6 === undefined) return undefined;
    const addrs: string[] = [];
    if (ip !== 0) addrs.push(addrKey4(ip));
    if (ip6 !== undefined) addrs.push(addrKey6(ip6));
    return { addrs, ip, ip6, via6: ip6 !== undefined && (ip === 0 || this.#prefer6) };
  }

  #refuse(r: Refusal, out: Refusal[]): void {
    if (this.#refused.get(r.key) !== r.reason) out.push(r);
    this.#refused.set(r.key, r.reason);
  }

  #put(key: string, lease: Lease, ops: CoreOp[], refused: Refusal[]): void {
    if (key === this.ownKey) return;
    const old = this.#programmed.get(key);
    if (old && sameProgramming(old.lease, lease)) {
      this.#leases.set(key, lease);
      return;
    }
    this.#leases.set(key, lease);
    const why = this.#check(key, lease);
    if (why) {
      if (old) this.#unprogram(key, ops, refused);
      this.#refuse(why, refused);
      return;
    }
    const u = this.#underlay(lease)!;
    for (const a of u.addrs) {
      const holder = this.#byAddr.get(a);
      if (holder !== undefined && holder !== key) {
        if (old) this.#unprogram(key, ops, refused);
        const shown = a.startsWith("4:") ? `PublicIP ${formatIPv4(u.ip)}` : `PublicIPv6 ${formatIPv6(u.ip6!)}`;
        this.#refuse({ key, error: true, reason: `has ${shown}, which peer lease ${holder} already uses: not programmed until that lease goes` }, refused);
        return;
      }
    }
    this.#refused.delete(key);
    const id = old?.id ?? this.#allocId();
    if (id < 0) {
      this.#refuse({ key, error: true, reason: `exceeds the ${PEER_CAP} peers a udp host can hold: not programmed` }, refused);
      return;
    }
    const subnet = lease.subnet!;
    const subnet6 = this.#net6 && peerV6(lease.attrs).carries ? lease.ipv6Subnet : undefined;
    ops.push({ op: "peerSet", id, ip: u.ip, port: this.port, subnet: subnet.ip, len: subnet.len });
    if (subnet6) ops.push({ op: "peerSubnet6", id, prefix: subnet6.ip, len: subnet6.len });
    if (u.ip6 !== undefined) ops.push({ op: "peerPublic6", id, ip: u.ip6, via6: u.via6 });
    // The key names the subnets, so only whether the peer carries IPv6 can change on an update.
    const old6 = old && this.#net6 && peerV6(old.lease.attrs).carries ? old.lease.ipv6Subnet : undefined;
    if (!old) ops.push({ op: "routeInsert", prefix: subnet.ip, len: subnet.len, id });
    if (subnet6 && !old6) ops.push({ op: "route6Insert", prefix: subnet6.ip, len: subnet6.len, id });
    if (old6 && !subnet6) ops.push({ op: "route6Delete", prefix: old6.ip, len: old6.len });
    this.#programmed.set(key, { id, lease, addrs: u.addrs, via6: u.via6, ipv6: subnet6 !== undefined });
    for (const a of u.addrs) this.#byAddr.set(a, key);
    for (const a of old?.addrs ?? []) {
      if (!u.addrs.includes(a) && this.#byAddr.get(a) === key) {
        this.#byAddr.delete(a);
        this.#promoteWaiting(a, key, ops, refused);
      }
    }
  }

  #remove(key: string, ops: CoreOp[], refused: Refusal[]): void {
    this.#leases.delete(key);
    this.#refused.delete(key);
    if (this.#programmed.has(key)) this.#unprogram(key, ops, refused);
  }

  /** Takes `key` out of the cores, then gives its public IP to a waiting lease, if any. */
  #unprogram(key: string, ops: CoreOp[], refused: Refusal[]): void {
    const p = this.#programmed.get(key)!;
    const subnet = p.lease.subnet!;
    ops.push({ op: "routeDelete", prefix: subnet.ip, len: subnet.len });
    const subnet6 = this.#net6 && peerV6(p.lease.attrs).carries ? p.lease.ipv6Subnet : undefined;
    if (subnet6) ops.push({ op: "route6Delete", prefix: subnet6.ip, len: subnet6.len });
    ops.push({ op: "peerDelete", id: p.id });
    this.#programmed.delete(key);
    this.#freeIds.push(p.id);
    for (const a of p.addrs) {
      if (this.#byAddr.get(a) !== key) continue;
      this.#byAddr.delete(a);
      this.#promoteWaiting(a, key, ops, refused);
    }
  }

  /** Programs the first lease that was refused only because address `a` was taken by `previous`. */
  #promoteWaiting(a: string, previous: string, ops: CoreOp[], refused: Refusal[]): void {
    for (const [k, l] of this.#leases) {
      if (k !== previous && !this.#programmed.has(k) && this.#underlay(l)?.addrs.includes(a)) {
        this.#put(k, l, ops, refused);
        if (this.#programmed.has(k)) return;
      }
    }
  }

  #allocId(): number {
    const id = this.#freeIds.pop();
    if (id !== undefined) return id;
    return this.#nextId < PEER_CAP ? this.#nextId++ : -1;
  }
}

/** True when two versions of one lease program the same core state. */
function sameProgramming(a: Lease, b: Lease): boolean {
  const [va, vb] = [peerV6(a.attrs), peerV6(b.attrs)];
  return a.attrs.publicIP === b.attrs.publicIP && a.attrs.publicIPv6 === b.attrs.publicIPv6 &&
    va.carries === vb.carries && va.listens === vb.listens &&
    leaseBackendType(a.attrs) === leaseBackendType(b.attrs) &&
    a.subnet?.ip === b.subnet?.ip && a.subnet?.len === b.subnet?.len &&
    a.ipv6Subnet?.ip === b.ipv6Subnet?.ip && a.ipv6Subnet?.len === b.ipv6Subnet?.len;
}
