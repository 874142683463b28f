/**
 * @module An in-process Registry with etcd's semantics where the lease manager depends on them:
 * one revision counter, create-if-absent, leases that expire and delete their keys, a history
 * that watches replay from any revision, and compaction. For fast tests of lease policy; the
 * same conformance suite runs it and the etcd registry.
 */
import { EventQueue } from "./event_queue.ts";
import { CompactedError, type Registry, type SubnetRecord, type WatchBatch, type WatchEvent } from "./types.ts";

interface Entry { value: string; lease: string; modRevision: bigint; createRevision: bigint }
interface LeaseState { expiresAt: number; keys: Set<string>; timer: ReturnType<typeof setTimeout> }

export class MemoryRegistry implements Registry {
  #config: string | undefined;
  #subnets = new Map<string, Entry>();
  #leases = new Map<string, LeaseState>();
  #nextLease = 0x1000n;
  #revision = 1n;
  #compacted = 0n;
  /** Every change since the last compaction, with its revision. */
  #history: { revision: bigint; event: WatchEvent }[] = [];
  #listeners = new Set<(batch: WatchBatch | Error) => void>();

  constructor(config?: string) {
    this.#config = config;
  }

  async getConfig(): Promise<string | undefined> {
    return this.#config;
  }

  async putConfig(text: string): Promise<void> {
    this.#config = text;
    this.#revision++;
  }

  async listSubnets(): Promise<{ records: SubnetRecord[]; revision: bigint }> {
    const records = [...this.#subnets].map(([key, e]) => ({ key, ...e }));
    records.sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0));
    return { records, revision: this.#revision };
  }

  async getSubnet(key: string): Promise<SubnetRecord | undefined> {
    const e = this.#subnets.get(key);
    return e && { key, ...e };
  }

  async createSubnet(key: string, value: string, ttlSeconds: number): Promise<{ lease: string } | undefined> {
    const lease = this.#grant(ttlSeconds);
    if (this.#subnets.has(key)) {
      this.#revoke(lease);
      return undefined;
    }
    this.#put([[key, value, lease]]);
    return { lease };
  }

  async putSubnet(key: string, value: string, ttlSeconds: number, revokeLease?: string): Promise<{ lease: string }> {
    const lease = ttlSeconds > 0 ? this.#grant(ttlSeconds) : "0";
    this.#put([[key, value, lease]]);
    if (revokeLease && revokeLease !== "0" && revokeLease !== lease && this.#keysOf(revokeLease).length === 0) this.#revoke(revokeLease);
    return { lease };
  }

  async deleteSubnet(key: string): Promise<void> {
    this.#delete([key]);
  }

  async leaseTimeToLive(lease: string): Promise<number> {
    const l = this.#leases.get(lease);
    return l ? Math.max(0, Math.ceil((l.expiresAt - Date.now()) / 1000)) : -1;
  }

  async *watchSubnets(fromRevision: bigint, signal: AbortSignal): AsyncIterable<WatchBatch> {
    if (fromRevision > 0n && fromRevision <= this.#compacted) throw new CompactedError(fromRevision, this.#compacted);
    const queue = new EventQueue<WatchBatch>();
    const listener = (b: WatchBatch | Error) => queue.push(b);
    const past = this.#history.filter((h) => h.revision >= fromRevision);
    if (past.length > 0) queue.push({ revision: this.#revision, events: past.map((h) => h.event) });
    this.#listeners.add(listener);
    try {
      yield* queue.drain(signal);
    } finally {
      this.#listeners.delete(listener);
    }
  }

  /** Health summaries with their expiry (ms); kept apart from the subnets, as etcd keeps them under another prefix. */
  #health = new Map<string, { value: string; expiresAt: number }>();

  async putHealth(key: string, value: string, ttlSeconds: number): Promise<{ lease: string }> {
    this.#health.set(key, { value, expiresAt: Date.now() + ttlSeconds * 1000 });
    return { lease: String(this.#nextLease++) };
  }

  async listHealth(): Promise<Map<string, string>> {
    const now = Date.now();
    return new Map([...this.#health].filter(([, h]) => h.expiresAt > now).map(([k, h]) => [k, h.value]));
  }

  async close(): Promise<void> {
    for (const l of this.#leases.values()) clearTimeout(l.timer);
    this.#leases.clear();
  }

  // ------------------------------------------------------------ test controls

  /** Puts several records in one revision, as one etcd transaction would. */
  async putMany(records: [key: string, value: string, ttlSeconds: number][]): Promise<void> {
    this.#put(records.map(([k, v, ttl]) => [k, v, ttl > 0 ? this.#grant(ttl) : "0"]));
  }

  /** Drops history below the current revision, as `etcdctl compact`. */
  compact(): void {
    this.#compacted = this.#revision;
    this.#history = [];
  }

  /** Breaks every open watch with `err`, as a lost connection would. */
  interruptWatches(err = new Error("watch stream interrupted")): void {
    for (const l of this.#listeners) l(err);
  }

  get revision(): bigint {
    return this.#revision;
  }

  // ------------------------------------------------------------ internals

  #grant(ttlSeconds: number): string {
    const id = (this.#nextLease++).toString();
    const timer = setTimeout(() => this.#revoke(id), ttlSeconds * 1000);
    (timer as { unref?: () => void }).unref?.();
    this.#leases.set(id, { expiresAt: Date.now() + ttlSeconds * 1000, keys: new Set(), timer });
    return id;
  }

  #revoke(id: string): void {
    const l = this.#leases.get(id);
    if (!l) return;
    const keys = this.#keysOf(id);
    clearTimeout(l.timer);
    this.#leases.delete(id);
    this.#delete(keys);
  }

  /** The keys lease `id` holds now (a key put again under another lease has left it). */
  #keysOf(id: string): string[] {
    return [...this.#leases.get(id)?.keys ?? []].filter((k) => this.#subnets.get(k)?.lease === id);
  }

  #put(records: [key: string, value: string, lease: string][]): void {
    const revision = ++this.#revision;
    const events: WatchEvent[] = [];
    for (const [key, value, lease] of records) {
      const old = this.#subnets.get(key);
      if (old && old.lease !== lease) this.#leases.get(old.lease)?.keys.delete(key);
      const createRevision = old?.createRevision ?? revision;
      this.#subnets.set(key, { value, lease, modRevision: revision, createRevision });
      this.#leases.get(lease)?.keys.add(key);
      events.push({ type: "put", record: { key, value, lease, modRevision: revision, createRevision } });
    }
    this.#emit(revision, events);
  }

  #delete(keys: string[]): void {
    const present = keys.filter((k) => this.#subnets.has(k));
    if (present.length === 0) return;
    const revision = ++this.#revision;
    for (const k of present) this.#subnets.delete(k);
    this.#emit(revision, present.map((key) => ({ type: "delete", key, modRevision: revision })));
  }

  #emit(revision: bigint, events: WatchEvent[]): void {
    for (const event of events) this.#history.push({ revision, event });
    for (const l of this.#listeners) l({ revision, events });
  }
}
