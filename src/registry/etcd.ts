/**
 * @module The Registry over etcd v3 (compat §2–§4), the only module that imports etcd3. Keys and
 * values are flannel's; creates are `Grant` + `Txn(If Version(key)==0, Then Put)`, renewals put
 * under a fresh lease and revoke the old one. Unary calls carry a deadline so a dead etcd is an
 * error, not a hang; the watch surfaces every response and leaves reconnecting to the caller.
 * Every failure is translated (etcd_errors.ts) into what happened where; close() or the `signal`
 * abandons the calls in flight at once, so a shutdown never waits on an unreachable etcd.
 *
 * The watch must never go blind, as etcd's own clients make sure: the channel pings the member
 * (gRPC keepalive), so a member that vanished without a FIN or RST (power loss, partition) ends
 * the stream within seconds instead of leaving it half-open; and every call requires a leader
 * (`hasleader` metadata), so a member cut off from its quorum ends the watch ("no leader")
 * instead of serving one that no longer gets events, and refuses other calls at once instead of
 * holding them until their deadline. etcd3 retries a refused call on another member (this one
 * refuses new calls while it has no leader). The watch runs on a client of its own, bound to one
 * member; when its stream fails the caller reconnects and the watch moves to the next member in
 * turn (etcd3's pool picks a member at random, so a watch could go back to a silent member again
 * and again, waiting each time for the answer that never comes).
 */
import { X509Certificate, createPrivateKey } from "node:crypto";
import { readFileSync } from "node:fs";
import { createSecureContext } from "node:tls";
import { type CallOptions, InterceptingCall, type Interceptor, status as grpcStatus } from "@grpc/grpc-js";
import { ConsecutiveBreaker, circuitBreaker, handleWhen, isBrokenCircuitError, retry } from "cockatiel";
import { Etcd3, GRPCDeadlineExceededError, type IOptions, type IKeyValue, type IWatchResponse, isRecoverableError } from "etcd3";
import { type EtcdCallContext, EtcdAbortedError, type TlsFiles, translateEtcdError } from "./etcd_errors.ts";
import { EtcdTlsCredentials } from "./etcd_tls.ts";
import { EventQueue } from "./event_queue.ts";
import { CompactedError, type Registry, type SubnetRecord, type WatchBatch } from "./types.ts";
import { fileErrorReason } from "../file_error.ts";

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
  /** Aborting it abandons every call in flight and fails later ones (the agent's shutdown). */
  signal?: AbortSignal;
}

/** How long an endpoint that failed 3 times in a row is left alone (etcd3's default). */
const RESTING_MS = 5000;

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
  readonly #healthPrefix: string;
  readonly #context: Omit<EtcdCallContext, "permission" | "key" | "prefix">;
  readonly #closed = new AbortController();
  /** The member serving the newest watch stream (`host:port`), once it answered. */
  #watchPeer?: string;
  /** The watch's client, bound to one endpoint (`#watchTurn`, modulo their count) until its stream fails. */
  #watchClient?: Etcd3;
  /** Which endpoint the watch uses; a random start spreads the agents' watches over the members. */
  #watchTurn: number;
  readonly #newClient: (hosts: string[]) => Etcd3;
  /** The last failure an endpoint's circuit breaker counted. */
  #lastFailure: unknown;

  /**
   * Throws, before any connection, when a TLS file cannot be read or used: the message names the
   * flag and the path.
   */
  constructor(opts: EtcdRegistryOptions) {
    const timeout = opts.timeoutMs ?? 5000;
    if (opts.endpoints.length === 0) throw new Error("--etcd-endpoints is empty: give at least one etcd URL, e.g. http://127.0.0.1:2379");
    const files: TlsFiles = { caFile: opts.caFile, certFile: opts.certFile, keyFile: opts.keyFile };
    const options = (hosts: string[]): IOptions => ({
      hosts,
      dialTimeout: timeout,
      defaultCallOptions: (ctx) => this.#callOptions(ctx.service, ctx.isStream, timeout),
      grpcOptions: ETCD_CHANNEL_OPTIONS,
      faultHandling: {
        // etcd3's default: an endpoint that failed 3 times in a row rests for 5 s, so calls go to
        // the others. While all rest, etcd3 says only "Execution prevented because the circuit
        // breaker is open": the last real failure is kept to say what it was (#call).
        host: () => {
          const breaker = circuitBreaker(handleWhen(isRecoverableError), { halfOpenAfter: RESTING_MS, breaker: new ConsecutiveBreaker(3) });
          breaker.onFailure(({ reason }) => { if ("error" in reason) this.#lastFailure = reason.error; });
          return breaker;
        },
        // Up to 3 retries, each on the next endpoint (etcd3's default), except that a call that
        // timed out is not sent to the same single endpoint again: it would only wait as long again.
        global: retry(handleWhen((e) => isRecoverableError(e) && (hosts.length > 1 || !(e instanceof GRPCDeadlineExceededError))), { maxAttempts: 3 }),
      },
      ...(opts.username ? { auth: { username: opts.username, password: opts.password ?? "" } } : {}),
    });
    // TLS when a key and certificate are given (flannel), or a CA alone (flannel ignores it: §12.16).
    const tls = (opts.keyFile && opts.certFile) || opts.caFile;
    const credentials = tls ? tlsCredentials(files) : undefined;
    this.#newClient = (hosts) => {
      const client = new Etcd3(options(hosts));
      if (credentials) installCredentials(client, credentials);
      return client;
    };
    this.#client = this.#newClient(opts.endpoints);
    this.#watchTurn = Math.floor(Math.random() * opts.endpoints.length);
    const prefix = opts.prefix.replace(/\/+$/, "");
    this.#configKey = `${prefix}/config`;
    this.#subnetPrefix = `${prefix}/subnets/`;
    this.#healthPrefix = `${prefix}/health/`;
    this.#context = { endpoints: opts.endpoints, username: opts.username, timeoutMs: timeout, tls: tls ? files : undefined };
    if (opts.signal?.aborted) this.#closed.abort();
    opts.signal?.addEventListener("abort", () => this.#closed.abort(), { once: true });
  }

  async getConfig(): Promise<string | undefined> {
    const v = await this.#call("read", this.#configKey, () => this.#client.get(this.#configKey).string());
    return v ?? undefined;
  }

  async putConfig(text: string): Promise<void> {
    await this.#call("write", this.#configKey, () => this.#client.put(this.#configKey).value(text));
  }

  async listSubnets(): Promise<{ records: SubnetRecord[]; revision: bigint }> {
    const res = await this.#call("read", this.#subnetPrefix, () =>
      this.#client.kv.range({ key: enc.encode(this.#subnetPrefix), range_end: prefixEnd(this.#subnetPrefix) } as never), true);
    return { records: res.kvs.map((kv) => this.#record(kv)), revision: BigInt(res.header.revision) };
  }

  async getSubnet(key: string): Promise<SubnetRecord | undefined> {
    const res = await this.#call("read", this.#subnetPrefix + key, () => this.#client.kv.range({ key: enc.encode(this.#subnetPrefix + key) } as never));
    return res.kvs[0] && this.#record(res.kvs[0]);
  }

  async createSubnet(key: string, value: string, ttlSeconds: number): Promise<{ lease: string } | undefined> {
    const full = this.#subnetPrefix + key;
    const lease = await this.#grant(ttlSeconds, full);
    const k = enc.encode(full);
    try {
      const res = await this.#call("write", full, () => this.#client.kv.txn({
        compare: [{ key: k, target: "Version", result: "Equal", version: 0 }],
        success: [{ request_put: { key: k, value: enc.encode(value), lease } }],
        failure: [],
      } as never));
      if (res.succeeded) return { lease };
    } catch (e) {
      await this.#revoke(lease, full).catch(() => {});
      throw e;
    }
    await this.#revoke(lease, full).catch(() => {});
    return undefined;
  }

  async putSubnet(key: string, value: string, ttlSeconds: number, revokeLease?: string): Promise<{ lease: string }> {
    const full = this.#subnetPrefix + key;
    const lease = ttlSeconds > 0 ? await this.#grant(ttlSeconds, full) : "0";
    await this.#call("write", full, () => this.#client.kv.put({ key: enc.encode(full), value: enc.encode(value), lease } as never));
    if (revokeLease && revokeLease !== "0" && revokeLease !== lease) await this.#revokeIfEmpty(revokeLease, full).catch(() => {});
    return { lease };
  }

  async deleteSubnet(key: string): Promise<void> {
    const full = this.#subnetPrefix + key;
    await this.#call("write", full, () => this.#client.kv.deleteRange({ key: enc.encode(full) } as never));
  }

  async leaseTimeToLive(lease: string): Promise<number> {
    const res = await this.#call("read", `etcd lease ${lease}`, () => this.#client.leaseClient.leaseTimeToLive({ ID: lease } as never));
    return Number(res.TTL);
  }

  async *watchSubnets(fromRevision: bigint, signal: AbortSignal): AsyncIterable<WatchBatch> {
    const { endpoints } = this.#context;
    const endpoint = endpoints[this.#watchTurn % endpoints.length]!;
    const client = (this.#watchClient ??= this.#newClient([endpoint]));
    const watcher = client.watch().prefix(this.#subnetPrefix).startRevision(fromRevision.toString()).watcher();
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
    let failed = false; // the member failed the stream: the next watch goes to the next member
    watcher.on("end", () => { cancelled = true; });
    const watchError = (err: Error) => translateEtcdError(err, { ...this.#context, endpoints: [endpoint], permission: "read", key: this.#subnetPrefix, prefix: true });
    watcher.on("error", (err: Error) => {
      cancelled = true;
      const compacted = /compact/i.test(err.message) || /canceled/i.test(err.message);
      failed ||= !compacted;
      push(compacted ? new CompactedError(fromRevision) : watchError(err));
    });
    watcher.on("disconnected", (err: Error) => {
      failed = true;
      push(new Error(`etcd watch disconnected: ${watchError(err).message}`));
    });
    try {
      yield* queue.drain(signal);
    } finally {
      watcher.removeAllListeners();
      watcher.on("error", () => {});
      if (!cancelled && !this.#closed.signal.aborted) { // closing ends it: no need to wait on etcd
        await Promise.race([watcher.cancel().catch(() => {}), new Promise((r) => setTimeout(r, 1000))]);
      }
      if (failed) { // detached above, so etcd3 does not reconnect it on the closed client
        this.#watchTurn++;
        if (this.#watchClient === client) this.#watchClient = undefined;
        client.close();
      }
    }
  }

  async close(): Promise<void> {
    this.#closed.abort();
    this.#watchClient?.close();
    this.#client.close();
  }

  async putHealth(key: string, value: string, ttlSeconds: number, previousLease?: string): Promise<{ lease: string }> {
    const full = this.#healthPrefix + key;
    const lease = await this.#grant(ttlSeconds, full);
    await this.#call("write", full, () => this.#client.kv.put({ key: enc.encode(full), value: enc.encode(value), lease } as never));
    if (previousLease) await this.#revoke(previousLease, full).catch(() => {});
    return { lease };
  }

  async listHealth(): Promise<Map<string, string>> {
    const res = await this.#call("read", this.#healthPrefix, () =>
      this.#client.kv.range({ key: enc.encode(this.#healthPrefix), range_end: prefixEnd(this.#healthPrefix) } as never), true);
    return new Map(res.kvs.map((kv) => [dec.decode(kv.key).slice(this.#healthPrefix.length), dec.decode(kv.value)]));
  }

  /**
   * Runs one etcd call: translated failures (what, where, why), and an immediate rejection when
   * the registry is closed or its signal aborts (the gRPC call itself ends with the client).
   */
  async #call<T>(permission: "read" | "write", key: string, run: () => PromiseLike<T>, prefix = false): Promise<T> {
    const ctx: EtcdCallContext = { ...this.#context, permission, key, prefix };
    const closed = this.#closed.signal;
    const what = `${permission === "write" ? "writing" : "reading"} ${key}`;
    if (closed.aborted) throw new EtcdAbortedError(what);
    let onAbort!: () => void;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new EtcdAbortedError(what));
      closed.addEventListener("abort", onAbort, { once: true });
    });
    try {
      return await Promise.race([Promise.resolve(run()), aborted]);
    } catch (e) {
      // Every endpoint rests: say why the last one failed (the same words as then, so a log
      // that repeats only new messages stays quiet).
      throw translateEtcdError(isBrokenCircuitError(e) && this.#lastFailure !== undefined ? this.#lastFailure : e, ctx);
    } finally {
      closed.removeEventListener("abort", onAbort);
    }
  }

  /** Grants a lease for `key` (the key names the call in a failure: etcd checks no key here). */
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

  async #grant(ttlSeconds: number, key: string): Promise<string> {
    const res = await this.#call("write", key, () => this.#client.leaseClient.leaseGrant({ TTL: ttlSeconds, ID: 0 } as never));
    return String(res.ID);
  }

  async #revoke(lease: string, key: string): Promise<void> {
    await this.#call("write", key, () => this.#client.leaseClient.leaseRevoke({ ID: lease } as never));
  }

  /** Revokes `lease` unless it still holds a key (someone else's: revoking would delete it). */
  async #revokeIfEmpty(lease: string, key: string): Promise<void> {
    const res = await this.#call("read", key, () => this.#client.leaseClient.leaseTimeToLive({ ID: lease, keys: true } as never));
    if (Number(res.TTL) >= 0 && (res.keys?.length ?? 0) === 0) await this.#revoke(lease, key);
  }

  #suffix(key: Buffer | Uint8Array): string {
    return dec.decode(key).slice(this.#subnetPrefix.length);
  }

  #record(kv: IKeyValue): SubnetRecord {
    return { key: this.#suffix(kv.key), value: dec.decode(kv.value), lease: String(kv.lease ?? "0"), modRevision: BigInt(kv.mod_revision), createRevision: BigInt(kv.create_revision) };
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

/**
 * weft's TLS credentials (etcd_tls.ts) from the files; throws naming the flag and the path when
 * one is missing, unreadable or not usable, before any connection is tried.
 */
function tlsCredentials(files: TlsFiles): EtcdTlsCredentials {
  if (files.certFile && !files.keyFile) throw new Error(`--etcd-certfile ${files.certFile} needs --etcd-keyfile (the client certificate's private key)`);
  if (files.keyFile && !files.certFile) throw new Error(`--etcd-keyfile ${files.keyFile} needs --etcd-certfile (the client certificate)`);
  const read = (flag: string, path: string | undefined): Buffer | undefined => {
    if (!path) return undefined;
    try {
      return readFileSync(path);
    } catch (e) {
      throw new Error(`${flag}: cannot read ${path}: ${fileErrorReason(e)}`);
    }
  };
  const ca = read("--etcd-cafile", files.caFile);
  const cert = read("--etcd-certfile", files.certFile);
  const key = read("--etcd-keyfile", files.keyFile);
  for (const [flag, path, pem, kind] of [["--etcd-cafile", files.caFile, ca, "CERTIFICATE"], ["--etcd-certfile", files.certFile, cert, "CERTIFICATE"], ["--etcd-keyfile", files.keyFile, key, "PRIVATE KEY"]] as const) {
    if (pem && !pem.toString("latin1").includes(`-----BEGIN`)) throw new Error(`${flag}: ${path} is not a PEM file (expected "-----BEGIN ${kind}-----")`);
  }
  // Checked here too: Deno's createSecureContext() checks nothing until the first handshake.
  if (cert && key && !matchingKey(cert, key)) throw new Error(`--etcd-keyfile ${files.keyFile} is not the private key of --etcd-certfile ${files.certFile}`);
  try {
    return new EtcdTlsCredentials(createSecureContext({ ca, cert, key }), files);
  } catch (e) {
    const msg = (e as Error).message;
    if (/key values mismatch|KEY_VALUES_MISMATCH/i.test(msg)) throw new Error(`--etcd-keyfile ${files.keyFile} is not the private key of --etcd-certfile ${files.certFile}`);
    throw new Error(`TLS files (--etcd-cafile ${files.caFile ?? "-"}, --etcd-certfile ${files.certFile ?? "-"}, --etcd-keyfile ${files.keyFile ?? "-"}) are not usable: ${msg}`);
  }
}

/** Whether `key` is the private key of the (first) certificate in `cert`; true when it cannot tell. */
function matchingKey(cert: Buffer, key: Buffer): boolean {
  try {
    return new X509Certificate(cert).checkPrivateKey(createPrivateKey(key));
  } catch {
    return true; // unparsable: createSecureContext() says what is wrong
  }
}

/**
 * Puts weft's credentials in place of those etcd3 made with grpc-js's `createSsl()` (see
 * etcd_tls.ts for why), on every endpoint and for the auth token request. etcd3 has no option
 * for it; its hosts build their gRPC clients lazily, at the first call, so nothing has used the
 * old ones yet.
 */
function installCredentials(client: Etcd3, credentials: EtcdTlsCredentials): void {
  const pool = (client as unknown as { pool?: { hosts?: { channelCredentials: unknown }[]; authenticator?: { credentials: unknown } } }).pool;
  if (!pool?.hosts?.length || !pool.authenticator || !("credentials" in pool.authenticator)) {
    throw new Error("etcd3 changed: cannot install weft's TLS credentials (src/registry/etcd_tls.ts)");
  }
  for (const host of pool.hosts) host.channelCredentials = credentials;
  pool.authenticator.credentials = credentials;
}
