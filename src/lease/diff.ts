/**
 * @module Snapshot diffing (compat §4.6, §12.4): compare the leases known before a re-list with
 * the leases found, and say what changed. A lease whose attributes changed (same subnet, new
 * VtepMAC, say) is an `added` event, which replaces the cached entry — flanneld drops those.
 */
import { type Lease, type LeaseEvent, leaseKey, sameAttrs } from "./lease.ts";

/** Events that turn `known` into `snapshot`: removals first, then additions and changes. */
export function diffLeases(known: ReadonlyMap<string, Lease>, snapshot: readonly Lease[]): LeaseEvent[] {
  const found = new Map<string, Lease>();
  for (const l of snapshot) found.set(leaseKey(l), l);
  const events: LeaseEvent[] = [];
  for (const [key, lease] of known) if (!found.has(key)) events.push({ type: "removed", lease });
  for (const [key, lease] of found) {
    const old = known.get(key);
    if (!old || !sameAttrs(old.attrs, lease.attrs)) events.push({ type: "added", lease });
  }
  return events;
}
