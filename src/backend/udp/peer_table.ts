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
 * - udp carries IPv4 only (as flanneld's); a lease without an IPv4 subnet or PublicIP is skipped.
 * - A public IP is one peer (the core finds the sender of a datagram by it, for anti-spoofing).
 *   A second lease with the same PublicIP waits, refused, until the first one goes away.
 *
 * Peer ids are small integers reused after removal (the core's table has PEER_CAP entries).
 */
import { PEER_CAP } from "../../core/layout.ts";
import { type Lease, type LeaseEvent, leaseBackendType, leaseKey, showValue } from "../../lease/lease.ts";
import { formatIPv4 } from "../../net/ip.ts";

/** One change to a core's routes and peers; `apply` order matters. */
export type CoreOp =
  | { readonly op: "peerSet"; readonly id: number; readonly ip: number; readonly port: number; readonly subnet: number; readonly len: number }
  | { readonly op: "peerDelete"; readonly id: number }
  | { readonly op: "routeInsert"; readonly prefix: number; readonly len: number; readonly id: number }
  | { readonly op: "routeDelete"; readonly prefix: number; readonly len: number };

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
}

export class PeerTable {
  /** Every peer lease we were told about, by key (accepted or not). */
  readonly #leases = new Map<string, Lease>();
  readonly #programmed = new Map<string, Programmed>();
  /** Public IP -> key of the lease programmed with it. */
  readonly #byPublicIP = new Map<number, string>();
  readonly #refused = new Map<string, string>();
  readonly #freeIds: number[] = [];
  #nextId = 0;

  /** @param port where datagrams to every peer go: our own Backend.Port, as flanneld. */
  constructor(readonly port: number, readonly ownKey = "") {}

  /** Programmed peers by lease key. */
  get programmed(): ReadonlyMap<string, { id: number; lease: Lease }> {
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
    if (!lease.subnet) return { key, error: false, reason: "has no IPv4 subnet and the udp backend carries IPv4 only: not programmed" };
    if (lease.attrs.publicIP === 0) return { key, error: false, reason: "has no PublicIP (0.0.0.0): not programmed" };
    return undefined;
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
    const ip = lease.attrs.publicIP;
    const holder = this.#byPublicIP.get(ip);
    if (holder !== undefined && holder !== key) {
      if (old) this.#unprogram(key, ops, refused);
      this.#refuse({ key, error: true, reason: `has PublicIP ${formatIPv4(ip)}, which peer lease ${holder} already uses: not programmed until that lease goes` }, refused);
      return;
    }
    this.#refused.delete(key);
    const id = old?.id ?? this.#allocId();
    if (id < 0) {
      this.#refuse({ key, error: true, reason: `exceeds the ${PEER_CAP} peers a udp host can hold: not programmed` }, refused);
      return;
    }
    const subnet = lease.subnet!;
    ops.push({ op: "peerSet", id, ip, port: this.port, subnet: subnet.ip, len: subnet.len });
    if (!old) ops.push({ op: "routeInsert", prefix: subnet.ip, len: subnet.len, id });
    this.#programmed.set(key, { id, lease });
    this.#byPublicIP.set(ip, key);
    const oldIP = old?.lease.attrs.publicIP;
    if (oldIP !== undefined && oldIP !== ip && this.#byPublicIP.get(oldIP) === key) {
      this.#byPublicIP.delete(oldIP);
      this.#promoteWaiting(oldIP, key, ops, refused);
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
    ops.push({ op: "routeDelete", prefix: subnet.ip, len: subnet.len }, { op: "peerDelete", id: p.id });
    this.#programmed.delete(key);
    this.#freeIds.push(p.id);
    const ip = p.lease.attrs.publicIP;
    if (this.#byPublicIP.get(ip) !== key) return;
    this.#byPublicIP.delete(ip);
    this.#promoteWaiting(ip, key, ops, refused);
  }

  /** Programs the first lease that was refused only because `ip` was taken by `previous`. */
  #promoteWaiting(ip: number, previous: string, ops: CoreOp[], refused: Refusal[]): void {
    for (const [k, l] of this.#leases) {
      if (k !== previous && !this.#programmed.has(k) && l.attrs.publicIP === ip) {
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
  return a.attrs.publicIP === b.attrs.publicIP && leaseBackendType(a.attrs) === leaseBackendType(b.attrs) &&
    a.subnet?.ip === b.subnet?.ip && a.subnet?.len === b.subnet?.len;
}
