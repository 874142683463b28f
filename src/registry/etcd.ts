/**
 * @module The Registry over etcd v3 (compat §2–§4), the only module that imports etcd3. Keys and
 * values are flannel's; creates are `Grant` + `Txn(If Version(key)==0, Then Put)`, renewals put
 * under a fresh lease and revoke the old one. Unary calls carry a deadline so a dead etcd is an
 * error, not a hang; the watch surfaces every response and leaves reconnecting to the caller.
 */
import { readFileSync } from "node:fs";
import { Etcd3, type IOptions, type IKeyValue, type IWatchResponse } from "etcd3";
import { EventQueue } from "./event_queue.ts";
import { CompactedError, type Registry, type SubnetRecord, type WatchBatch } from "./types.ts";

export interface EtcdRegistryOptions {
  endpoints: string[];
  prefix: string;
  keyFile?: string;
  certFile?: string;
  caFile?: string;
  username?: string;
  password?: string;
  /** Deadline of each unary call, ms. */
  timeoutMs?: number;
}

const enc = new TextEncoder();
const dec = new TextDecoder();

export class EtcdRegistry implements Registry {
  readonly #client: Etcd3;
  readonly #configKey: string;
  readonly #subnetPrefix: string;
  readonly #healthPrefix: string;

  constructor(opts: EtcdRegistryOptions) {
    const timeout = opts.timeoutMs ?? 5000;
    const options: IOptions = {
      hosts: opts.endpoints,
      dialTimeout: timeout,
      defaultCallOptions: (ctx) => (ctx.isStream ? {} : { deadline: Date.now() + timeout }),
    };
    // TLS when a key and certificate are given (flannel), or a CA alone (flannel ignores it: §12.16).
    if ((opts.keyFile && opts.certFile) || opts.caFile) {
      options.credentials = {
        rootCertificate: opts.caFile ? readFileSync(opts.caFile) : (undefined as unknown as Buffer),
        privateKey: opts.keyFile ? readFileSync(opts.keyFile) : undefined,
        certChain: opts.certFile ? readFileSync(opts.certFile) : undefined,
      };
    }
    if (opts.username) options.auth = { username: opts.username, password: opts.password ?? "" };
    this.#client = new Etcd3(options);
    const prefix = opts.prefix.replace(/\/+$/, "");
    this.#configKey = `${prefix}/config`;
    this.#subnetPrefix = `${prefix}/subnets/`;
    this.#healthPrefix = `${prefix}/health/`;
  }

  async getConfig(): Promise<string | undefined> {
    const v = await this.#client.get(this.#configKey).string();
    return v ?? undefined;
  }

  async putConfig(text: string): Promise<void> {
    await this.#client.put(this.#configKey).value(text);
  }

  async listSubnets(): Promise<{ records: SubnetRecord[]; revision: bigint }> {
    const res = await this.#client.kv.range({ key: enc.encode(this.#subnetPrefix), range_end: prefixEnd(this.#subnetPrefix) } as never);
    return { records: res.kvs.map((kv) => this.#record(kv)), revision: BigInt(res.header.revision) };
  }

  async getSubnet(key: string): Promise<SubnetRecord | undefined> {
    const res = await this.#client.kv.range({ key: enc.encode(this.#subnetPrefix + key) } as never);
    return res.kvs[0] && this.#record(res.kvs[0]);
  }

  async createSubnet(key: string, value: string, ttlSeconds: number): Promise<{ lease: string } | undefined> {
    const lease = await this.#grant(ttlSeconds);
    const k = enc.encode(this.#subnetPrefix + key);
    try {
      const res = await this.#client.kv.txn({
        compare: [{ key: k, target: "Version", result: "Equal", version: 0 }],
        success: [{ request_put: { key: k, value: enc.encode(value), lease } }],
        failure: [],
      } as never);
      if (res.succeeded) return { lease };
    } catch (e) {
      await this.#revoke(lease).catch(() => {});
      throw e;
    }
    await this.#revoke(lease).catch(() => {});
    return undefined;
  }

  async putSubnet(key: string, value: string, ttlSeconds: number, revokeLease?: string): Promise<{ lease: string }> {
    const lease = ttlSeconds > 0 ? await this.#grant(ttlSeconds) : "0";
    await this.#client.kv.put({ key: enc.encode(this.#subnetPrefix + key), value: enc.encode(value), lease } as never);
    if (revokeLease && revokeLease !== "0" && revokeLease !== lease) await this.#revokeIfEmpty(revokeLease).catch(() => {});
    return { lease };
  }

  async deleteSubnet(key: string): Promise<void> {
    await this.#client.kv.deleteRange({ key: enc.encode(this.#subnetPrefix + key) } as never);
  }

  async leaseTimeToLive(lease: string): Promise<number> {
    const res = await this.#client.leaseClient.leaseTimeToLive({ ID: lease } as never);
    return Number(res.TTL);
  }

  async *watchSubnets(fromRevision: bigint, signal: AbortSignal): AsyncIterable<WatchBatch> {
    const watcher = this.#client.watch().prefix(this.#subnetPrefix).startRevision(fromRevision.toString()).watcher();
    const queue = new EventQueue<WatchBatch>();
    const push = (x: WatchBatch | Error) => queue.push(x);
    watcher.on("connected", (res: IWatchResponse) => push({ revision: BigInt(res.header.revision), events: [], connected: true }));
    watcher.on("data", (res: IWatchResponse) => {
      if (res.compact_revision && res.compact_revision !== "0") {
        push(new CompactedError(fromRevision, BigInt(res.compact_revision)));
        return;
      }
      push({
        revision: BigInt(res.header.revision),
        events: res.events.map((ev) =>
          ev.type === "Delete"
            ? { type: "delete" as const, key: this.#suffix(ev.kv.key), modRevision: BigInt(ev.kv.mod_revision) }
            : { type: "put" as const, record: this.#record(ev.kv) }),
      });
    });
    // A cancelled watch (compaction: etcd cancels it with compact_revision set) must be resynced.
    // etcd has dropped a cancelled watcher already: cancelling it again would wait forever.
    let cancelled = false;
    watcher.on("end", () => { cancelled = true; });
    watcher.on("error", (err: Error) => (cancelled = true) && push(/compact/i.test(err.message) || /canceled/i.test(err.message) ? new CompactedError(fromRevision) : err));
    watcher.on("disconnected", (err: Error) => push(new Error(`etcd watch disconnected: ${err?.message ?? err}`)));
    try {
      yield* queue.drain(signal);
    } finally {
      watcher.removeAllListeners();
      watcher.on("error", () => {});
      if (!cancelled) {
        await Promise.race([watcher.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
      }
    }
  }

  async close(): Promise<void> {
    this.#client.close();
  }

  async putHealth(key: string, value: string, ttlSeconds: number, previousLease?: string): Promise<{ lease: string }> {
    const lease = await this.#grant(ttlSeconds);
    await this.#client.kv.put({ key: enc.encode(this.#healthPrefix + key), value: enc.encode(value), lease } as never);
    if (previousLease) await this.#revoke(previousLease).catch(() => {});
    return { lease };
  }

  async listHealth(): Promise<Map<string, string>> {
    const res = await this.#client.kv.range({ key: enc.encode(this.#healthPrefix), range_end: prefixEnd(this.#healthPrefix) } as never);
    return new Map(res.kvs.map((kv) => [dec.decode(kv.key).slice(this.#healthPrefix.length), dec.decode(kv.value)]));
  }

  async #grant(ttlSeconds: number): Promise<string> {
    const res = await this.#client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 } as never);
    return String(res.ID);
  }

  async #revoke(lease: string): Promise<void> {
    await this.#client.leaseClient.leaseRevoke({ ID: lease } as never);
  }

  /** Revokes `lease` unless it still holds a key (someone else's: revoking would delete it). */
  async #revokeIfEmpty(lease: string): Promise<void> {
    const res = await this.#client.leaseClient.leaseTimeToLive({ ID: lease, keys: true } as never);
    if (Number(res.TTL) >= 0 && (res.keys?.length ?? 0) === 0) await this.#revoke(lease);
  }

  #suffix(key: Buffer | Uint8Array): string {
    return dec.decode(key).slice(this.#subnetPrefix.length);
  }

  #record(kv: IKeyValue): SubnetRecord {
    return { key: this.#suffix(kv.key), value: dec.decode(kv.value), lease: String(kv.lease ?? "0"), modRevision: BigInt(kv.mod_revision) };
  }
}

/** The range end that selects every key starting with `prefix`. */
function prefixEnd(prefix: string): Uint8Array {
  const b = enc.encode(prefix);
  for (let i = b.length - 1; i >= 0; i--) {
    if (b[i]! < 0xff) { b[i]!++; return b.slice(0, i + 1); }
  }
  return new Uint8Array([0]);
}
