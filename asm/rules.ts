/**
 * @module The exact-match table beside the tries: every installed route (by family, prefix and
 * length) and every peer's public IPv4 and IPv6, in one open-addressing hash with linear probing and
 * backward-shift deletion (no tombstones, so lookups stay short under churn). The tries answer
 * longest-prefix lookups; this table answers "is this exact route installed" and "which
 * shorter route does a deleted one uncover", and maps a datagram's source to its peer.
 *
 * Entry (RULE_SIZE = 24 bytes): tag u32 (0 = empty), k0..k3 u32, value u32.
 */
import { RULES, RULE_SLOTS, RULE_SIZE, RULE_MAX } from "./layout";

/** Tags: route4 = TAG_ROUTE4 | len, route6 = TAG_ROUTE6 | len, public IP = TAG_PUBLIC(6). */
export const TAG_PUBLIC: u32 = 0x100;
export const TAG_PUBLIC6: u32 = 0x200;
export const TAG_ROUTE4: u32 = 0x400;
export const TAG_ROUTE6: u32 = 0x600;

let count: u32 = 0;

// @ts-ignore: decorator
@inline function slotAt(i: u32): usize { return <usize>RULES + <usize>i * <usize>RULE_SIZE; }

function hash(tag: u32, k0: u32, k1: u32, k2: u32, k3: u32): u32 {
  let h = tag * 0x9e3779b1;
  h ^= k0; h = rotl<u32>(h, 13) * 0x85ebca6b;
  h ^= k1; h = rotl<u32>(h, 13) * 0x85ebca6b;
  h ^= k2; h = rotl<u32>(h, 13) * 0x85ebca6b;
  h ^= k3; h ^= h >> 16; h *= 0xc2b2ae35; h ^= h >> 13;
  return h & (<u32>RULE_SLOTS - 1);
}

/** The slot holding the key, or -1. */
export function ruleFind(tag: u32, k0: u32, k1: u32, k2: u32, k3: u32): i32 {
  let i = hash(tag, k0, k1, k2, k3);
  while (true) {
    const s = slotAt(i);
    const t = load<u32>(s);
    if (t == 0) return -1;
    if (t == tag && load<u32>(s, 4) == k0 && load<u32>(s, 8) == k1 && load<u32>(s, 12) == k2 && load<u32>(s, 16) == k3) {
      return <i32>i;
    }
    i = (i + 1) & (<u32>RULE_SLOTS - 1);
  }
}

/** The value stored under the key, or -1. */
export function ruleGet(tag: u32, k0: u32, k1: u32, k2: u32, k3: u32): i32 {
  const i = ruleFind(tag, k0, k1, k2, k3);
  return i < 0 ? -1 : load<i32>(slotAt(<u32>i), 20);
}

/** Inserts or updates; returns 1 when added, 0 when updated, -1 when the table is full. */
export function rulePut(tag: u32, k0: u32, k1: u32, k2: u32, k3: u32, value: u32): i32 {
  let i = hash(tag, k0, k1, k2, k3);
  while (true) {
    const s = slotAt(i);
    const t = load<u32>(s);
    if (t == 0) {
      if (count >= <u32>RULE_MAX) return -1;
      store<u32>(s, tag); store<u32>(s, k0, 4); store<u32>(s, k1, 8); store<u32>(s, k2, 12); store<u32>(s, k3, 16);
      store<u32>(s, value, 20);
      count++;
      return 1;
    }
    if (t == tag && load<u32>(s, 4) == k0 && load<u32>(s, 8) == k1 && load<u32>(s, 12) == k2 && load<u32>(s, 16) == k3) {
      store<u32>(s, value, 20);
      return 0;
    }
    i = (i + 1) & (<u32>RULE_SLOTS - 1);
  }
}

/** Removes the key; returns false when absent. */
export function ruleDelete(tag: u32, k0: u32, k1: u32, k2: u32, k3: u32): bool {
  const found = ruleFind(tag, k0, k1, k2, k3);
  if (found < 0) return false;
  const mask = <u32>RULE_SLOTS - 1;
  let hole = <u32>found;
  let j = hole;
  // Backward shift: move later entries of the probe run into the hole when their home allows.
  while (true) {
    j = (j + 1) & mask;
    const s = slotAt(j);
    const t = load<u32>(s);
    if (t == 0) break;
    const home = hash(t, load<u32>(s, 4), load<u32>(s, 8), load<u32>(s, 12), load<u32>(s, 16));
    // The entry at j may move to hole iff home is not cyclically in (hole, j].
    const inRange = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
    if (!inRange) {
      memory.copy(slotAt(hole), s, <usize>RULE_SIZE);
      hole = j;
    }
  }
  store<u32>(slotAt(hole), 0);
  count--;
  return true;
}

/** Number of entries. */
export function ruleCount(): u32 { return count; }

/** Calls back nothing (no closures in AS): exposes slot access for scans over all entries. */
export function ruleTagAt(i: u32): u32 { return load<u32>(slotAt(i)); }
export function ruleKeyAt(i: u32, word: u32): u32 { return load<u32>(slotAt(i) + 4 + <usize>word * 4); }
export function ruleValueAt(i: u32): u32 { return load<u32>(slotAt(i), 20); }

/** Empties the table. */
export function ruleClear(): void {
  memory.fill(<usize>RULES, 0, <usize>RULE_SLOTS * <usize>RULE_SIZE);
  count = 0;
}
