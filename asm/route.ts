/**
 * @module Longest-prefix match for IPv4 and IPv6: a multibit trie with a 16-bit first level and
 * 8-bit levels below (DIR-16-8-8 for IPv4, 16 then 14 x 8 for IPv6), prefixes expanded into
 * the entries they cover, so a lookup is one load per level. In front of it, the direct-index
 * table of flannel's equal-size subnets: `(dst - network) >> (32 - subnetLen)`, one compare and
 * one load, exact as long as no route inside the cluster network is longer than a subnet.
 *
 * Entry (u32): [code:8][payload:24]. code 0 = empty, 1..129 = prefix length + 1 (payload =
 * value), CODE_PTR = a chunk of the next level (payload = chunk index). Chunks are never freed
 * (one per /16 or /24 ever used), only reset by routeClear().
 */
import {
  ARG, CHUNKS, CHUNK_CAP, DIRECT, DIRECT_CAP, ROOT4, ROOT6, NO_ROUTE, ROUTE_VALUE_MAX,
  ERR_INVALID, ERR_NOT_FOUND, ERR_FULL,
} from "./layout";
import { TAG_ROUTE4, TAG_ROUTE6, ruleGet, rulePut, ruleDelete, ruleTagAt, ruleKeyAt, ruleValueAt } from "./rules";
import { RULE_SLOTS } from "./layout";

const CODE_PTR: u32 = 0xff;
const CHUNK_BYTES: usize = 1024;
/** Scratch key (16 bytes, network order) for the generic trie walk. */
const KEY: usize = <usize>ARG + 32;

let chunksUsed: u32 = 0;

// Direct-index fast path.
let directOn = false;
let netAddr: u32 = 0;
let netMask: u32 = 0;
let netLen: u32 = 0;
let subLen: u32 = 0;
let subShift: u32 = 0;
/** Installed IPv4 routes inside the cluster network longer than a subnet (disable the shortcut). */
let longerInNet: u32 = 0;

// @ts-ignore: decorator
@inline export function mask4(len: u32): u32 { return len == 0 ? 0 : <u32>(0xffffffff << (32 - len)); }

// @ts-ignore: decorator
@inline function chunkBase(e: u32): usize { return <usize>CHUNKS + <usize>(e & 0xffffff) * CHUNK_BYTES; }

/** Index into the table of `level` for the key at KEY. */
// @ts-ignore: decorator
@inline function levelIndex(level: u32): u32 {
  return level == 0 ? (<u32>load<u8>(KEY) << 8) | <u32>load<u8>(KEY, 1) : <u32>load<u8>(KEY + 1 + <usize>level);
}

function allocChunk(fill: u32): i32 {
  if (chunksUsed >= <u32>CHUNK_CAP) return -1;
  const c = chunksUsed++;
  const base = chunkBase(c);
  for (let i: usize = 0; i < 256; i++) store<u32>(base + i * 4, fill);
  return <i32>c;
}

/** Rewrites the `n` entries from `start` of `table` (and every chunk below them). */
function fill(table: usize, start: u32, n: u32, entry: u32, code: u32, deleting: bool): void {
  for (let i = start; i < start + n; i++) {
    const p = table + <usize>i * 4;
    const e = load<u32>(p);
    const c = e >> 24;
    if (c == CODE_PTR) fill(chunkBase(e), 0, 256, entry, code, deleting);
    else if (deleting ? c == code : c <= code) store<u32>(p, entry);
  }
}

/**
 * Inserts (deleting = false: overwrite entries of prefixes no longer than `len`) or deletes
 * (deleting = true: entries of exactly `len` become `entry`) the prefix at KEY.
 */
function trieWrite(root: usize, len: u32, entry: u32, deleting: bool): i32 {
  let table = root;
  let level: u32 = 0;
  let end: u32 = 16;
  while (len > end) {
    const p = table + <usize>levelIndex(level) * 4;
    let e = load<u32>(p);
    if (e >> 24 != CODE_PTR) {
      if (deleting) return 0; // nothing this long was ever expanded here
      const c = allocChunk(e);
      if (c < 0) return ERR_FULL;
      e = (CODE_PTR << 24) | <u32>c;
      store<u32>(p, e);
    }
    table = chunkBase(e);
    level++;
    end += 8;
  }
  const span = end - len;
  const start = levelIndex(level) & ~((1 << span) - 1);
  fill(table, start, 1 << span, entry, len + 1, deleting);
  return 0;
}

/** Writes the IPv4 address into KEY in network order. */
function key4(a: u32): void { store<u32>(KEY, bswap<u32>(a)); }

/** Masks the 16-byte address at `src` to `len` bits into KEY. */
function key6(src: usize, len: u32): void {
  for (let i: u32 = 0; i < 16; i++) {
    const bits = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
    store<u8>(KEY + i, load<u8>(src + i) & <u8>(0xff00 >> bits));
  }
}

// @ts-ignore: decorator
@inline function keyWord(i: usize): u32 { return load<u32>(KEY + i * 4); }

// ------------------------------------------------------------------ IPv4

/** Installs or replaces prefix/len -> value. */
export function route4Insert(prefix: u32, len: u32, value: u32): i32 {
  if (len > 32 || value > <u32>ROUTE_VALUE_MAX) return ERR_INVALID;
  prefix &= mask4(len);
  const added = rulePut(TAG_ROUTE4 | len, prefix, 0, 0, 0, value);
  if (added < 0) return ERR_FULL;
  key4(prefix);
  if (trieWrite(<usize>ROOT4, len, ((len + 1) << 24) | value, false) < 0) {
    if (added == 1) ruleDelete(TAG_ROUTE4 | len, prefix, 0, 0, 0);
    return ERR_FULL;
  }
  if (directOn && len >= subLen && (prefix & netMask) == netAddr) {
    if (len == subLen) store<u32>(<usize>DIRECT + <usize>((prefix - netAddr) >> subShift) * 4, value);
    else if (added == 1) longerInNet++;
  }
  return 0;
}

/** Removes prefix/len; the next shorter installed route covers its addresses again. */
export function route4Delete(prefix: u32, len: u32): i32 {
  if (len > 32) return ERR_INVALID;
  prefix &= mask4(len);
  if (!ruleDelete(TAG_ROUTE4 | len, prefix, 0, 0, 0)) return ERR_NOT_FOUND;
  let entry: u32 = 0;
  for (let l = <i32>len - 1; l >= 0; l--) {
    const v = ruleGet(TAG_ROUTE4 | <u32>l, prefix & mask4(<u32>l), 0, 0, 0);
    if (v >= 0) { entry = ((<u32>l + 1) << 24) | <u32>v; break; }
  }
  key4(prefix);
  trieWrite(<usize>ROOT4, len, entry, true);
  if (directOn && len >= subLen && (prefix & netMask) == netAddr) {
    if (len == subLen) store<i32>(<usize>DIRECT + <usize>((prefix - netAddr) >> subShift) * 4, NO_ROUTE);
    else longerInNet--;
  }
  return 0;
}

/** The value of the longest installed prefix containing `addr`, or NO_ROUTE. */
// @ts-ignore: decorator
@inline export function route4Lookup(addr: u32): i32 {
  if (directOn && (addr & netMask) == netAddr && longerInNet == 0) {
    const v = load<i32>(<usize>DIRECT + <usize>((addr - netAddr) >> subShift) * 4);
    if (v >= 0) return v;
  }
  let e = load<u32>(<usize>ROOT4 + <usize>(addr >> 16) * 4);
  if (e >> 24 == CODE_PTR) {
    e = load<u32>(chunkBase(e) + <usize>((addr >> 8) & 0xff) * 4);
    if (e >> 24 == CODE_PTR) e = load<u32>(chunkBase(e) + <usize>(addr & 0xff) * 4);
  }
  return e >> 24 == 0 ? NO_ROUTE : <i32>(e & 0xffffff);
}

/**
 * Configures the direct-index fast path for flannel's cluster network: `network/networkLen`
 * split into `/subnetLen` leases, at most DIRECT_CAP of them. Rebuilds the table from the
 * installed routes. Invalid arguments disable the fast path (lookups stay exact either way).
 */
export function setClusterNetwork(network: u32, networkLen: u32, subnetLen: u32): i32 {
  directOn = false;
  if (networkLen > subnetLen || subnetLen > 32 || subnetLen == 0 || (1 << (subnetLen - networkLen)) > DIRECT_CAP || subnetLen - networkLen > 16) {
    return ERR_INVALID;
  }
  netLen = networkLen;
  netMask = mask4(networkLen);
  netAddr = network & netMask;
  subLen = subnetLen;
  subShift = 32 - subnetLen;
  longerInNet = 0;
  memory.fill(<usize>DIRECT, 0xff, <usize>DIRECT_CAP * 4);
  for (let i: u32 = 0; i < <u32>RULE_SLOTS; i++) {
    const tag = ruleTagAt(i);
    if ((tag & 0xff00) != TAG_ROUTE4) continue;
    const len = tag & 0xff;
    const prefix = ruleKeyAt(i, 0);
    if (len < subLen || (prefix & netMask) != netAddr) continue;
    if (len == subLen) store<u32>(<usize>DIRECT + <usize>((prefix - netAddr) >> subShift) * 4, ruleValueAt(i));
    else longerInNet++;
  }
  directOn = true;
  return 0;
}

// ------------------------------------------------------------------ IPv6 (address at ARG)

/** Installs or replaces ARG[0..16]/len -> value. */
export function route6Insert(len: u32, value: u32): i32 {
  if (len > 128 || value > <u32>ROUTE_VALUE_MAX) return ERR_INVALID;
  key6(<usize>ARG, len);
  const added = rulePut(TAG_ROUTE6 | len, keyWord(0), keyWord(1), keyWord(2), keyWord(3), value);
  if (added < 0) return ERR_FULL;
  if (trieWrite(<usize>ROOT6, len, ((len + 1) << 24) | value, false) < 0) {
    if (added == 1) ruleDelete(TAG_ROUTE6 | len, keyWord(0), keyWord(1), keyWord(2), keyWord(3));
    return ERR_FULL;
  }
  return 0;
}

/** Removes ARG[0..16]/len. */
export function route6Delete(len: u32): i32 {
  if (len > 128) return ERR_INVALID;
  key6(<usize>ARG, len);
  if (!ruleDelete(TAG_ROUTE6 | len, keyWord(0), keyWord(1), keyWord(2), keyWord(3))) return ERR_NOT_FOUND;
  let entry: u32 = 0;
  for (let l = <i32>len - 1; l >= 0; l--) {
    key6(<usize>ARG, <u32>l);
    const v = ruleGet(TAG_ROUTE6 | <u32>l, keyWord(0), keyWord(1), keyWord(2), keyWord(3));
    if (v >= 0) { entry = ((<u32>l + 1) << 24) | <u32>v; break; }
  }
  key6(<usize>ARG, len);
  trieWrite(<usize>ROOT6, len, entry, true);
  return 0;
}

/** The value of the longest installed prefix containing the 16-byte address at `a`. */
export function route6LookupAt(a: usize): i32 {
  let e = load<u32>(<usize>ROOT6 + <usize>((<u32>load<u8>(a) << 8) | <u32>load<u8>(a, 1)) * 4);
  let i: usize = 2;
  while (e >> 24 == CODE_PTR) {
    e = load<u32>(chunkBase(e) + <usize>load<u8>(a + i) * 4);
    i++;
  }
  return e >> 24 == 0 ? NO_ROUTE : <i32>(e & 0xffffff);
}

/** Removes every IPv4 and IPv6 route (peers stay); the direct table keeps its configuration. */
export function routeClear(): void {
  let removed = true;
  while (removed) {
    removed = false;
    for (let i: u32 = 0; i < <u32>RULE_SLOTS; i++) {
      let tag = ruleTagAt(i);
      while (tag != 0 && ((tag & 0xff00) == TAG_ROUTE4 || (tag & 0xff00) == TAG_ROUTE6)) {
        ruleDelete(tag, ruleKeyAt(i, 0), ruleKeyAt(i, 1), ruleKeyAt(i, 2), ruleKeyAt(i, 3));
        removed = true;
        tag = ruleTagAt(i);
      }
    }
  }
  memory.fill(<usize>ROOT4, 0, 65536 * 4);
  memory.fill(<usize>ROOT6, 0, 65536 * 4);
  chunksUsed = 0;
  longerInNet = 0;
  memory.fill(<usize>DIRECT, 0xff, <usize>DIRECT_CAP * 4);
}
