/**
 * @module The API server's storage, standing in for etcd under the apiserver: one
 * resourceVersion counter for every object (etcd's revision), each change an event kept in a
 * bounded history, so watches resume from a resourceVersion and lists can be served as of an
 * earlier one (`resourceVersionMatch=Exact`, `continue`). Versions older than the history
 * (`compactedRv`) are gone: 410 Gone, as after etcd compaction. A write that changes nothing
 * keeps the resourceVersion and makes no event, as the apiserver's no-op update does.
 */
import { randomUUID } from "node:crypto";
import { alreadyExists, gone, notFound } from "./status.ts";

/** Object metadata, the fields this server maintains (others are kept as they come). */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
  [field: string]: unknown;
}

/** Any stored object (a Node, a Pod) as JSON. */
export interface KubeObject {
  apiVersion: string;
  kind: string;
  metadata: ObjectMeta;
  spec?: Record<string, unknown>;
  status?: Record<string, unknown>;
  [field: string]: unknown;
}

export type ChangeType = "ADDED" | "MODIFIED" | "DELETED";

/** One stored change; `prev` is the object before it (MODIFIED, DELETED). */
export interface StoreEvent {
  rv: number;
  type: ChangeType;
  resource: string;
  key: string;
  object: KubeObject;
  prev?: KubeObject;
}

/** `resource/namespace/name` (namespace empty for cluster-scoped objects). */
export function objectKey(resource: string, name: string, namespace = ""): string {
  return `${resource}/${namespace}/${name}`;
}

function sameJson(a: unknown, b: unknown): boolean {
  return JSON.stringify(sorted(a)) === JSON.stringify(sorted(b));
}
function sorted(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(sorted);
  if (v && typeof v === "object") return Object.fromEntries(Object.keys(v).sort().map((k) => [k, sorted((v as Record<string, unknown>)[k])]));
  return v;
}

export class ObjectStore {
  private objects = new Map<string, KubeObject>();
  private history: StoreEvent[] = [];
  private listeners = new Set<(e: StoreEvent) => void>();
  /** The newest resourceVersion (etcd's revision). */
  rv = 1;
  /** Events up to here are gone: a watch or list from an older version gets 410 Gone. */
  compactedRv = 1;

  /** @param maxEvents history kept before the oldest events are compacted away. */
  constructor(private readonly maxEvents = 1000) {}

  get(resource: string, name: string, namespace = ""): KubeObject | undefined {
    const o = this.objects.get(objectKey(resource, name, namespace));
    return o && structuredClone(o);
  }

  /** The object or a 404 Status. */
  mustGet(resource: string, name: string, namespace = ""): KubeObject {
    const o = this.get(resource, name, namespace);
    if (!o) throw notFound(resource, name);
    return o;
  }

  /** Stores a new object: uid, creationTimestamp and resourceVersion set; ADDED. */
  create(resource: string, obj: KubeObject): KubeObject {
    const key = objectKey(resource, obj.metadata.name, obj.metadata.namespace);
    if (this.objects.has(key)) throw alreadyExists(resource, obj.metadata.name);
    const rv = ++this.rv;
    const stored = structuredClone(obj);
    stored.metadata = { ...stored.metadata, uid: randomUUID(), resourceVersion: String(rv), creationTimestamp: new Date().toISOString().replace(/\.\d+Z$/, "Z") };
    this.objects.set(key, stored);
    this.record({ rv, type: "ADDED", resource, key, object: stored });
    return structuredClone(stored);
  }

  /**
   * Replaces an object with `next` (metadata.resourceVersion is set here). Returns the stored
   * object; when `next` equals what is stored, nothing changes (no new version, no event).
   */
  update(resource: string, next: KubeObject): KubeObject {
    const key = objectKey(resource, next.metadata.name, next.metadata.namespace);
    const prev = this.objects.get(key);
    if (!prev) throw notFound(resource, next.metadata.name);
    const candidate = structuredClone(next);
    candidate.metadata.resourceVersion = prev.metadata.resourceVersion;
    if (sameJson(candidate, prev)) return structuredClone(prev);
    const rv = ++this.rv;
    candidate.metadata.resourceVersion = String(rv);
    this.objects.set(key, candidate);
    this.record({ rv, type: "MODIFIED", resource, key, object: candidate, prev });
    return structuredClone(candidate);
  }

  /** Removes an object; the DELETED event carries its last state at the deletion's version. */
  delete(resource: string, name: string, namespace = ""): KubeObject {
    const key = objectKey(resource, name, namespace);
    const prev = this.objects.get(key);
    if (!prev) throw notFound(resource, name);
    this.objects.delete(key);
    const rv = ++this.rv;
    const object = { ...structuredClone(prev), metadata: { ...structuredClone(prev.metadata), resourceVersion: String(rv) } };
    this.record({ rv, type: "DELETED", resource, key, object, prev });
    return structuredClone(object);
  }

  /**
   * The objects of `resource` as they were at `rv` (default: now), sorted by key. Throws 410 Gone
   * when `rv` is older than the history.
   */
  snapshot(resource: string, rv = this.rv, goneMessage = "The resourceVersion for the provided list is too old."): { key: string; object: KubeObject }[] {
    if (rv < this.compactedRv) throw gone(goneMessage);
    const state = new Map([...this.objects].filter(([k]) => k.startsWith(`${resource}/`)));
    for (let i = this.history.length - 1; i >= 0 && this.history[i]!.rv > rv; i--) {
      const e = this.history[i]!;
      if (e.resource !== resource) continue;
      if (e.type === "ADDED") state.delete(e.key);
      else state.set(e.key, e.prev!);
    }
    return [...state].sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)).map(([key, object]) => ({ key, object: structuredClone(object) }));
  }

  /** The events after `rv`; 410 Gone (as a thrown Status) when they were compacted away. */
  eventsSince(rv: number): StoreEvent[] {
    if (rv < this.compactedRv) throw gone(`too old resource version: ${rv} (${this.compactedRv})`);
    return this.history.filter((e) => e.rv > rv);
  }

  /** Calls `fn` for every later change; returns the function that stops it. */
  subscribe(fn: (e: StoreEvent) => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** Forgets the history up to `rv` (default: all of it), as etcd compaction does. */
  compact(rv = this.rv): void {
    this.history = this.history.filter((e) => e.rv > rv);
    this.compactedRv = Math.max(this.compactedRv, Math.min(rv, this.rv));
  }

  private record(e: StoreEvent): void {
    this.history.push(e);
    if (this.history.length > this.maxEvents) this.compactedRv = this.history.shift()!.rv;
    for (const fn of this.listeners) fn(e);
  }
}
