/**
 * @module The storage contract of the lease manager (flannel's Registry): raw keys and values
 * under `<prefix>/config` and `<prefix>/subnets/`, etcd leases and revisions. Policy lives in
 * `src/lease/manager.ts`; only `etcd.ts` imports etcd3, and `memory.ts` implements the same
 * contract in process for fast tests. Both pass one conformance suite (tests/registry/).
 */

/** One key under `<prefix>/subnets/`, as stored. */
export interface SubnetRecord {
  /** The key without `<prefix>/subnets/`, e.g. `10.5.34.0-24`. */
  key: string;
  value: string;
  /** The etcd lease ID as a decimal string; "0" for a reservation (no lease). */
  lease: string;
  modRevision: bigint;
  /** The revision that created the key (etcd's create_revision; kept across re-puts). */
  createRevision?: bigint;
}

export type WatchEvent =
  | { type: "put"; record: SubnetRecord }
  | { type: "delete"; key: string; modRevision: bigint };

/** All the events of one watch response, in order; `revision` is the response header's. */
export interface WatchBatch {
  revision: bigint;
  events: WatchEvent[];
  /**
   * The watch has just been (re-)established and carries no events. Its revision is the store's
   * now, not a position in the stream: history from the requested revision may still follow.
   */
  connected?: boolean;
  /** On a `connected` batch: the etcd member serving the stream (`host:port`), when known. */
  endpoint?: string;
}

/** The watch start revision has been compacted away: re-list, diff, watch again. */
export class CompactedError extends Error {
  constructor(readonly requested: bigint, readonly compactRevision?: bigint) {
    super(`watch from revision ${requested} failed: revision compacted${compactRevision ? ` (compact revision ${compactRevision})` : ""}`);
    this.name = "CompactedError";
  }
}

export interface Registry {
  /** The text at `<prefix>/config`, or undefined when the key is absent. */
  getConfig(): Promise<string | undefined>;
  putConfig(text: string): Promise<void>;
  /** Every subnet record and the store revision they were read at. */
  listSubnets(): Promise<{ records: SubnetRecord[]; revision: bigint }>;
  getSubnet(key: string): Promise<SubnetRecord | undefined>;
  /**
   * Creates `key` only if it is absent, under a fresh lease of `ttlSeconds` (flannel: Grant, then
   * Txn(If Version(key)==0, Then Put)). Returns the lease, or undefined if the key exists (the
   * granted lease is revoked then).
   */
  createSubnet(key: string, value: string, ttlSeconds: number): Promise<{ lease: string } | undefined>;
  /**
   * Puts `key` under a fresh lease of `ttlSeconds`, or with no lease when `ttlSeconds` is 0 (a
   * reservation); then revokes `revokeLease` if given (flannel leaks it: §12.15), unless that
   * lease still holds other keys (someone else's, which revoking would delete).
   */
  putSubnet(key: string, value: string, ttlSeconds: number, revokeLease?: string): Promise<{ lease: string }>;
  deleteSubnet(key: string): Promise<void>;
  /** Seconds left on an etcd lease; -1 when it has expired or does not exist. */
  leaseTimeToLive(lease: string): Promise<number>;
  /**
   * Watches `<prefix>/subnets/` from `fromRevision`, yielding every response's events in order.
   * Throws CompactedError when that revision is gone, and other errors when the connection is
   * lost; the caller reconnects. Ends when `signal` aborts.
   */
  watchSubnets(fromRevision: bigint, signal: AbortSignal): AsyncIterable<WatchBatch>;
  close(): Promise<void>;
  /**
   * Optional (overlay health, src/health/summary.ts): puts this host's health summary at
   * `<prefix>/health/<key>` under a fresh lease of `ttlSeconds`, revoking `previousLease`. Never
   * under `subnets/`, which flanneld reads. Returns the new lease.
   */
  putHealth?(key: string, value: string, ttlSeconds: number, previousLease?: string): Promise<{ lease: string }>;
  /** Optional: every host's health summary under `<prefix>/health/`, by key. */
  listHealth?(): Promise<Map<string, string>>;
}
