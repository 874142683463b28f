/**
 * @module Watching the peer leases (compat §4): list, then watch from the list's revision + 1,
 * handling EVERY event of every response in order (flanneld v0.20.2 handles only the first:
 * §12.1). Reconnects with backoff (100 ms doubling to 5 s) from the next unseen revision; on
 * compaction, and every few minutes, re-lists and diffs against the cache so nothing is missed
 * and changed attributes become `added` events (§12.4). Malformed records are logged once and
 * skipped; our own key is reported separately.
 */
import { createHash } from "node:crypto";
import type { Logger } from "../log.ts";
import { CompactedError, type Registry, type SubnetRecord, type WatchEvent } from "../registry/types.ts";
import type { Metrics } from "../status/metrics.ts";
import { diffLeases } from "./diff.ts";
import { type Lease, type LeaseEvent, leaseKey, sameAttrs } from "./lease.ts";
import { recordToLease, sleep } from "./manager.ts";
import { type WatchHealth, watchHealthFamilies } from "./watch_health.ts";

export interface WatchOptions {
  registry: Registry;
  /** Our own lease key: its events go to `onOwnLease`, never to `onEvents`. */
  ownKey: string;
  log: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** Peer events in order; called once per watch response (or later re-list) with all its events. */
  onEvents: (events: LeaseEvent[], peers: ReadonlyMap<string, Lease>) => void | Promise<void>;
  /** The first listing, instead of events (the snapshot: reconcile time). */
  onSnapshot?: (peers: ReadonlyMap<string, Lease>) => void | Promise<void>;
  /** Our own key was re-put (`record`) or deleted (undefined). */
  onOwnLease?: (record: SubnetRecord | undefined) => void | Promise<void>;
  /** Whether etcd answers: false with the error while the watch is down, true once it is back. */
  onHealth?: (error: string | undefined) => void;
  /**
   * Updated as the stream comes and goes (read by the status server); each change is logged
   * once, and its gauges are added to `metrics`.
   */
  health?: WatchHealth;
  /** Full re-list interval, ms (default 5 min). */
  resyncMs?: number;
  minBackoffMs?: number;
  maxBackoffMs?: number;
}

/** Keeps `peers` equal to the leases in the registry until the signal aborts. */
export class LeaseWatcher {
  /** The peer leases by key (our own excluded). */
  readonly peers = new Map<string, Lease>();
  /**
   * Malformed keys already reported -> a short hash of the value reported, so each is logged
   * once per value. Never the value itself (a key re-put with a new 1 MB value 5×/s grew the
   * agent by 170 MiB), at most MAX_REPORTED keys, and a key leaves when it is deleted or valid.
   */
  readonly #reported = new Map<string, string>();
  #synced = false;

  /** True once the first listing has been applied. */
  get synced(): boolean {
    return this.#synced;
  }

  constructor(readonly opts: WatchOptions) {
    if (opts.health) for (const [name, f] of watchHealthFamilies(opts.health)) opts.metrics.register(name, f);
  }

  /** Runs until the signal aborts. Never throws for registry trouble: it logs and retries. */
  async run(): Promise<void> {
    const { registry, log, metrics, signal } = this.opts;
    const minBackoff = this.opts.minBackoffMs ?? 100;
    const maxBackoff = this.opts.maxBackoffMs ?? 5000;
    const resyncMs = this.opts.resyncMs ?? 5 * 60_000;
    let backoff = minBackoff;
    let revision: bigint | undefined; // the next revision to watch from; undefined: re-list first
    while (!signal.aborted) {
      try {
        if (revision === undefined) {
          revision = (await this.#relist()) + 1n;
          this.opts.onHealth?.(undefined);
          backoff = minBackoff;
        }
        // Watch until an error, or until the periodic resync is due.
        const round = new AbortController();
        const stop = () => round.abort();
        signal.addEventListener("abort", stop, { once: true });
        const timer = setTimeout(stop, resyncMs);
        try {
          for await (const batch of registry.watchSubnets(revision, round.signal)) {
            this.opts.onHealth?.(undefined);
            this.#up(batch.endpoint); // any response: the stream is established
            if (batch.connected) continue; // not a stream position: keep our revision
            this.opts.health?.response(Date.now(), batch.events.length);
            await this.#apply(batch.events);
            revision = batch.revision + 1n;
            backoff = minBackoff;
          }
        } finally {
          clearTimeout(timer);
          signal.removeEventListener("abort", stop);
        }
        if (!signal.aborted) revision = undefined; // resync due
      } catch (e) {
        if (signal.aborted) break;
        if (e instanceof CompactedError) {
          log.info(`lease watch: ${e.message}; re-listing`);
          revision = undefined;
          continue;
        }
        metrics.watchReconnects++;
        metrics.error("etcd");
        this.opts.onHealth?.((e as Error).message);
        // With a health object, the loss is logged once; the retries that fail again only at -v 1.
        const retry = `lease watch: ${(e as Error).message}; reconnecting in ${backoff} ms`;
        if (!this.opts.health) log.warn(retry);
        else if (!this.#down((e as Error).message)) log.debug(1, retry);
        await sleep(backoff, signal);
        backoff = Math.min(backoff * 2, maxBackoff);
      }
    }
  }

  /** The stream is established: logs the change when the watch was not healthy. */
  #up(endpoint: string | undefined): void {
    const change = this.opts.health?.up(Date.now(), endpoint);
    if (!change) return;
    const on = change.endpoint ? ` on ${change.endpoint}` : "";
    this.opts.log.info(`lease watch healthy${on} (after ${(change.afterMs / 1000).toFixed(1)} s without)`);
  }

  /** The stream failed: logs the change (true) when the watch was healthy, or never failed. */
  #down(error: string): boolean {
    const change = this.opts.health?.down(Date.now(), error);
    if (!change) return false;
    this.opts.log.warn(`lease watch lost: ${error}; peers are not updated until it is back (retrying)`);
    return true;
  }

  /** Lists every lease, diffs against the cache and applies the difference. Returns the revision. */
  async #relist(): Promise<bigint> {
    const { records, revision } = await this.opts.registry.listSubnets();
    const found: Lease[] = [];
    const stillBad = new Set<string>();
    let own: SubnetRecord | undefined;
    for (const r of records) {
      if (r.key === this.opts.ownKey) { own = r; continue; }
      const l = recordToLease(r, (key, why) => this.#bad(key, r.value, why));
      if (l) found.push(l);
      else stillBad.add(reportedId(r.key));
    }
    for (const id of this.#reported.keys()) if (!stillBad.has(id)) this.#reported.delete(id);
    const events = diffLeases(this.peers, found);
    this.opts.metrics.watchResyncs++;
    for (const e of events) this.#cache(e);
    if (!this.#synced) {
      // The first listing is a snapshot: the backend reconciles against all of it at once.
      this.#synced = true;
      await this.opts.onSnapshot?.(this.peers);
    } else {
      if (events.length > 0) await this.opts.onEvents(events, this.peers);
      if (!own) await this.opts.onOwnLease?.(undefined);
    }
    return revision;
  }

  async #apply(watchEvents: readonly WatchEvent[]): Promise<void> {
    const events: LeaseEvent[] = [];
    const emit = (e: LeaseEvent) => { events.push(e); this.#cache(e); };
    for (const ev of watchEvents) {
      this.opts.metrics.watchEvents++;
      const key = ev.type === "put" ? ev.record.key : ev.key;
      if (key === this.opts.ownKey) {
        await this.opts.onOwnLease?.(ev.type === "put" ? ev.record : undefined);
        continue;
      }
      const old = this.peers.get(key);
      if (ev.type === "delete") {
        this.#reported.delete(reportedId(key));
        if (old) emit({ type: "removed", lease: old });
        continue;
      }
      const l = recordToLease(ev.record, (k, why) => this.#bad(k, ev.record.value, why));
      if (l) this.#reported.delete(reportedId(key));
      if (!l) {
        if (old) emit({ type: "removed", lease: old }); // overwritten with something unreadable
      } else if (!old || !sameAttrs(old.attrs, l.attrs)) {
        emit({ type: "added", lease: l });
      } else {
        this.peers.set(key, l); // a renewal: same attributes, new etcd lease
      }
    }
    if (events.length > 0) await this.opts.onEvents(events, this.peers);
  }

  #cache(e: LeaseEvent): void {
    const key = leaseKey(e.lease);
    if (e.type === "added") this.peers.set(key, e.lease);
    else this.peers.delete(key);
    this.opts.metrics.peers = this.peers.size;
  }

  #bad(key: string, value: string, why: string): void {
    const id = reportedId(key);
    const hash = shortHash(value);
    if (this.#reported.get(id) === hash) return;
    this.#reported.delete(id); // re-inserted last: the map's order is the order of reports
    if (this.#reported.size >= MAX_REPORTED) this.#reported.delete(this.#reported.keys().next().value!);
    this.#reported.set(id, hash);
    this.opts.metrics.error("malformed_lease");
    this.opts.log.warn(`ignoring malformed lease ${excerpt(key, 120)}: ${excerpt(why, 300)}`);
  }
}

/** Malformed keys remembered at most (beyond that the oldest report is forgotten: logged again if seen again). */
const MAX_REPORTED = 1024;

/** A short digest (not the text) of a value, to tell a re-put with a new value from a repeat. */
function shortHash(text: string): string {
  return createHash("sha256").update(text).digest("base64").slice(0, 16);
}

/** How a key is remembered: itself when short, else a prefix and a digest (keys can be large too). */
function reportedId(key: string): string {
  return key.length <= 256 ? key : `${key.slice(0, 64)}…${shortHash(key)}`;
}

/** `text` cut to `max` characters with the length said, so a peer's huge value never fills the log. */
function excerpt(text: string, max: number): string {
  return text.length <= max ? text : `${text.slice(0, max)}… (${text.length} characters)`;
}

