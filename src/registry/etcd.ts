/**
 * @module The Registry over etcd v3 (compat §2–§4), the only module that imports etcd3. Keys and
 * values are flannel's; creates are `Grant` + `Txn(If Version(key)==0, Then Put)`, renewals put
 * under a fresh lease and revoke the old one. Unary calls carry a deadline so a dead etcd is an
 * error, not a hang; the watch surfaces every response and leaves reconnecting to the caller.
 *
 * The watch must never go blind, as etcd's own clients make sure: the channel pings the member
 * (gRPC keepalive), so a member that vanished without a FIN or RST (power loss, partition) ends
 * the stream within seconds instead of leaving it half-open; and every call requires a leader
 * (`hasleader` metadata), so a member cut off from its quorum ends the watch ("no leader")
 * instead of serving one that no longer gets events, and refuses other calls at once instead of
 * holding them until their deadline. The caller reconnects, and etcd3 retries a refused call, on
 * another member (this one refuses new calls while it has no leader).
 */
import { readFileSync } from "node:fs";
import { type CallOptions, InterceptingCall, type Interceptor, status as grpcStatus } from "@grpc/grpc-js";
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

/**
 * Channel options: keepalive pings every 10 s, the connection declared dead 5 s after an
 * unanswered one. etcd answers pings sent more often than `--grpc-keepalive-min-time` (default
 * 5 s) with GOAWAY too_many_pings, and pings on a connection with no call open (the server's
 * PermitWithoutStream is false): so 10 s, and only while a call is open, which the watch always
 * is (as etcd's clientv3 does). A lost connection is retried every 0.5 s growing to 2 s at most
 * (gRPC's default grows to 120 s), so a member that comes back is reached within seconds.
 */
const ETCD_CHANNEL_OPTIONS = {
  "grpc.keepalive_time_ms": 10_000,
  "grpc.keepalive_timeout_ms": 5_000,
  "grpc.keepalive_permit_without_calls": 0,
  "grpc.initial_reconnect_backoff_ms": 500,
  "grpc.max_reconnect_backoff_ms": 2_000,
} as const;

/** etcd's `rpctypes.MetadataRequireLeaderKey` and `MetadataHasLeader` (clientv3.WithRequireLeader). */
const REQUIRE_LEADER_KEY = "hasleader";
const HAS_LEADER = "true";

/**
 * An interceptor that adds `hasleader: true` to a copy of the call's metadata (etcd3 has no
 * per-call metadata; its own, the auth token, is shared by every call). For a stream (`watch`
 * given), it reports the member that answers, and cancels the call when no member answered
 * within `answerWithinMs`: a stream has no deadline, and gRPC has no connect timeout, so a
 * stream sent to a member that went silent would wait for the kernel's SYN retries (minutes).
 */
function requireLeader(watch?: { onPeer: (peer: string) => void; answerWithinMs: number }): Interceptor {
  return (options, nextCall) => {
    const call = nextCall(options);
    return new InterceptingCall(call, {
      start: (metadata, _listener, next) => {
        const md = metadata.clone();
        md.set(REQUIRE_LEADER_KEY, HAS_LEADER);
        if (!watch) return next(md, {});
        const timer = setTimeout(() => call.cancelWithStatus(grpcStatus.UNAVAILABLE,
          `no answer from the etcd member within ${watch.answerWithinMs / 1000} s`), watch.answerWithinMs);
        // A Listener (two-argument callbacks): gRPC passes the other callbacks on unchanged.
        next(md, {
          onReceiveMetadata: (headers, nextHeaders) => { clearTimeout(timer); watch.onPeer(call.getPeer()); nextHeaders(headers); },
          onReceiveStatus: (status, nextStatus) => { clearTimeout(timer); nextStatus(status); },
        });
      },
    });
  };
}
const REQUIRE_LEADER = requireLeader();

const enc = new TextEncoder();
const dec = new TextDecoder();

export class EtcdRegistry implements Registry {
  readonly #client: Etcd3;
  readonly #configKey: string;
  readonly #subnetPrefix: string;
  /** The member serving the newest watch stream (`host:port`), once it answered. */
  #watchPeer?: string;

  constructor(opts: EtcdRegistryOptions) {
    const timeout = opts.timeoutMs ?? 5000;
    const options: IOptions = {
      hosts: opts.endpoints,
      dialTimeout: timeout,
      defaultCallOptions: (ctx) => this.#callOptions(ctx.service, ctx.isStream, timeout),
      grpcOptions: ETCD_CHANNEL_OPTIONS,
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
    watcher.on("connected", (res: IWatchResponse) => push({ revision: BigInt(res.header.revision), events: [], connected: true, endpoint: this.#watchPeer }));
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

  /**
   * Every call requires a leader: a member cut off from its quorum refuses it at once ("no
   * leader") instead of serving a watch that gets no events, or holding a read until its
   * deadline, and etcd3 retries the call on another member. The watch also notes its member,
   * and ends when none answers within the unary deadline (so it can move to another).
   */
  #callOptions(service: string, isStream: boolean, timeoutMs: number): CallOptions {
    if (!isStream) return { deadline: Date.now() + timeoutMs, interceptors: [REQUIRE_LEADER] };
    if (service !== "Watch") return {};
    return { interceptors: [requireLeader({ onPeer: (peer) => (this.#watchPeer = peer), answerWithinMs: timeoutMs })] };
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
