/**
 * @module WATCH as a stream of `{"type": …, "object": …}` lines (chunked JSON, one event per
 * line) with the apiserver's semantics: from resourceVersion unset or `0`, ADDED for every
 * current object first; from `N`, the changes after N (an ERROR event carrying a 410 `Status`
 * when N was compacted away, then the end); objects entering or leaving a selector arrive as
 * ADDED / DELETED; `allowWatchBookmarks` gives BOOKMARK events at the newest version;
 * `sendInitialEvents` ends its initial ADDED events with the `k8s.io/initial-events-end`
 * bookmark; `timeoutSeconds` ends the stream cleanly.
 */
import { parseResourceVersion } from "./list.ts";
import { type Predicate, parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import { ApiError, badRequest } from "./status.ts";
import type { KubeObject, ObjectStore, StoreEvent } from "./store.ts";

export type WatchEventType = "ADDED" | "MODIFIED" | "DELETED" | "BOOKMARK" | "ERROR";

/** Where a watch writes its events, and how it learns that the client went away. */
export interface WatchSink {
  send(type: WatchEventType, object: unknown): void;
  end(): void;
  onClose(fn: () => void): void;
}

export interface WatchOptions {
  /** The object of a bookmark: the kind of the watched resource, e.g. `{kind: "Node", apiVersion: "v1"}`. */
  kind: { kind: string; apiVersion: string };
  /** Turns a stored object into what the client gets (a Table row, or the object). */
  render: (o: KubeObject) => unknown;
  bookmarkIntervalMs: number;
  defaultTimeoutSeconds: number;
  namespace?: string;
}

/** The live watches, so the server can bookmark or end them all. */
export class WatchRegistry {
  private live = new Set<{ bookmark: () => void; end: () => void }>();
  add(w: { bookmark: () => void; end: () => void }): () => void {
    this.live.add(w);
    return () => this.live.delete(w);
  }
  bookmarkAll(): void { for (const w of this.live) w.bookmark(); }
  endAll(): void { for (const w of [...this.live]) w.end(); }
  get size(): number { return this.live.size; }
}

/** Starts a watch of `resource` per `query`, writing to `sink` until it ends. */
export function startWatch(store: ObjectStore, registry: WatchRegistry, resource: string, query: URLSearchParams, sink: WatchSink, opts: WatchOptions): void {
  const field = parseFieldSelector(resource, query.get("fieldSelector"));
  const label = parseLabelSelector(query.get("labelSelector"));
  const inScope: Predicate = (o) => opts.namespace === undefined || o.metadata.namespace === opts.namespace;
  const matches: Predicate = (o) => inScope(o) && field.match(o) && label(o);
  const bookmarks = ["true", "1"].includes(query.get("allowWatchBookmarks") ?? "");
  const initialEvents = query.get("sendInitialEvents");
  if (initialEvents === "true" && (!bookmarks || query.get("resourceVersionMatch") !== "NotOlderThan")) {
    throw badRequest("sendInitialEvents: Forbidden: sendInitialEvents requires setting allowWatchBookmarks=true and resourceVersionMatch=NotOlderThan");
  }
  const timeoutText = query.get("timeoutSeconds");
  const timeoutSeconds = timeoutText ? Number(timeoutText) : opts.defaultTimeoutSeconds;
  if (!Number.isFinite(timeoutSeconds) || timeoutSeconds < 0) throw badRequest(`timeoutSeconds: Invalid value: ${JSON.stringify(timeoutText)}`);
  const rv = parseResourceVersion(query.get("resourceVersion"));

  // Everything below runs synchronously up to the subscription: no change can slip between
  // the initial state (or the history replay) and the live events.
  let ended = false;
  let lastRv = store.rv;
  const deliver = (e: StoreEvent) => {
    lastRv = e.rv;
    const before = e.prev !== undefined && matches(e.prev);
    const now = e.type !== "DELETED" && matches(e.object);
    if (e.type === "ADDED" && now) sink.send("ADDED", opts.render(e.object));
    else if (e.type === "MODIFIED" && before && now) sink.send("MODIFIED", opts.render(e.object));
    else if (e.type === "MODIFIED" && now) sink.send("ADDED", opts.render(e.object));
    else if (e.type === "MODIFIED" && before) sink.send("DELETED", opts.render(e.object));
    else if (e.type === "DELETED" && before) sink.send("DELETED", opts.render(e.object));
  };
  const bookmark = (annotations?: Record<string, string>) => {
    if (!ended) sink.send("BOOKMARK", { ...opts.kind, metadata: { resourceVersion: String(lastRv), ...(annotations ? { annotations } : {}) } });
  };

  if (rv === undefined || rv === 0 || initialEvents === "true") {
    for (const { object } of store.snapshot(resource)) if (matches(object)) sink.send("ADDED", opts.render(object));
    lastRv = store.rv;
    if (initialEvents === "true") bookmark({ "k8s.io/initial-events-end": "true" });
  } else {
    let replay: StoreEvent[];
    try {
      replay = store.eventsSince(rv);
    } catch (e) {
      if (!(e instanceof ApiError)) throw e;
      sink.send("ERROR", e.status);
      sink.end();
      return;
    }
    lastRv = Math.min(rv, store.rv);
    for (const e of replay) if (e.resource === resource) deliver(e); else lastRv = e.rv;
  }

  const unsubscribe = store.subscribe((e) => { if (e.resource === resource) deliver(e); else lastRv = e.rv; });
  const timers: ReturnType<typeof setTimeout>[] = [];
  if (bookmarks) timers.push(setInterval(() => { lastRv = store.rv; bookmark(); }, opts.bookmarkIntervalMs));
  const stop = () => {
    if (ended) return;
    ended = true;
    unsubscribe();
    forget();
    for (const t of timers) clearTimeout(t);
  };
  const forget = registry.add({
    bookmark: () => { if (bookmarks) { lastRv = store.rv; bookmark(); } },
    end: () => { stop(); sink.end(); },
  });
  if (timeoutSeconds > 0) timers.push(setTimeout(() => { stop(); sink.end(); }, timeoutSeconds * 1000));
  sink.onClose(stop);
}
