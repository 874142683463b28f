/**
 * @module The peer table: peer id -> public IPv4 and/or IPv6 and port (where its datagrams go
 * and come from) and its lease subnets (what inner source addresses it may send: receive-side
 * anti-spoofing). Route values are peer ids. A public address belongs to at most one peer; a
 * peer is found by either of its public addresses, whichever family it sends over, and is sent
 * to over IPv6 only when PEER_VIA6 says so (the host's choice, peer_table.ts).
 *
 * Entry (PEER_SIZE = 48): flags u32 (PEER_VALID | PEER_V6 | PEER_PUB6 | PEER_VIA6), ip u32
 * (0: none), port u32, subnet4 u32, len4 u32, len6 u32, 8 bytes pad, subnet6[16] (network
 * order); the public IPv6 is at PUBLIC6 + 16 * id.
 */
import {
  ARG, PEERS, PEER_CAP, PEER_SIZE, PUBLIC6, ERR_INVALID, ERR_NOT_FOUND, ERR_EXISTS, ERR_FULL,
  PEER_VALID as VALID, PEER_V6 as V6, PEER_PUB6 as PUB6, PEER_VIA6 as VIA6,
} from "./layout";
import { TAG_PUBLIC, TAG_PUBLIC6, ruleGet, rulePut, ruleDelete } from "./rules";
import { mask4 } from "./route";

export const PEER_VALID: u32 = VALID;
export const PEER_V6: u32 = V6;
export const PEER_PUB6: u32 = PUB6;
export const PEER_VIA6: u32 = VIA6;

// @ts-ignore: decorator
@inline export function public6At(id: u32): usize { return <usize>PUBLIC6 + <usize>id * 16; }

/** The rule key of the 16-byte address at `a`: its four words as stored. */
function ruleGet6(a: usize): i32 { return ruleGet(TAG_PUBLIC6, load<u32>(a), load<u32>(a, 4), load<u32>(a, 8), load<u32>(a, 12)); }
function ruleDelete6(a: usize): void { ruleDelete(TAG_PUBLIC6, load<u32>(a), load<u32>(a, 4), load<u32>(a, 8), load<u32>(a, 12)); }

/** Drops the public IPv6 of the peer entry `p` (id `id`) from the address rules. */
function forgetPublic6(p: usize, id: u32): void {
  if (load<u32>(p) & PEER_PUB6) ruleDelete6(public6At(id));
}

// @ts-ignore: decorator
@inline export function peerAt(id: u32): usize { return <usize>PEERS + <usize>id * <usize>PEER_SIZE; }

/**
 * Sets peer `id`: public `ip`:`port` (ip 0: the peer has no public IPv4), subnet
 * `subnet4/len4`; clears its IPv6 subnet and public IPv6 (peerSetSubnet6, peerSetPublic6 follow).
 */
export function peerSet(id: u32, ip: u32, port: u32, subnet4: u32, len4: u32): i32 {
  if (id >= <u32>PEER_CAP || port > 0xffff || len4 > 32) return ERR_INVALID;
  const owner = ip == 0 ? -1 : ruleGet(TAG_PUBLIC, ip, 0, 0, 0);
  if (owner >= 0 && <u32>owner != id) return ERR_EXISTS;
  const p = peerAt(id);
  if (load<u32>(p) & PEER_VALID) {
    const old = load<u32>(p, 4);
    if (old != ip && old != 0) ruleDelete(TAG_PUBLIC, old, 0, 0, 0);
    forgetPublic6(p, id);
  }
  if (ip != 0 && rulePut(TAG_PUBLIC, ip, 0, 0, 0, id) < 0) {
    store<u32>(p, 0);
    return ERR_FULL;
  }
  memory.fill(p, 0, <usize>PEER_SIZE);
  store<u32>(p, PEER_VALID);
  store<u32>(p, ip, 4);
  store<u32>(p, port, 8);
  store<u32>(p, subnet4 & mask4(len4), 12);
  store<u32>(p, len4, 16);
  return 0;
}

/** Sets the IPv6 subnet ARG[0..16]/len6 of peer `id`. */
export function peerSetSubnet6(id: u32, len6: u32): i32 {
  if (id >= <u32>PEER_CAP || len6 > 128) return ERR_INVALID;
  const p = peerAt(id);
  if (!(load<u32>(p) & PEER_VALID)) return ERR_NOT_FOUND;
  for (let i: u32 = 0; i < 16; i++) {
    const bits = len6 >= 8 * (i + 1) ? 8 : len6 > 8 * i ? len6 - 8 * i : 0;
    store<u8>(p + 32 + i, load<u8>(<usize>ARG + i) & <u8>(0xff00 >> bits));
  }
  store<u32>(p, len6, 20);
  store<u32>(p, load<u32>(p) | PEER_V6);
  return 0;
}

/**
 * Sets the public IPv6 ARG[0..16] of peer `id` (its datagrams from there are accepted); with
 * `via6` non-zero, datagrams to it go over IPv6 from now on, else over its public IPv4.
 */
export function peerSetPublic6(id: u32, via6: u32): i32 {
  if (id >= <u32>PEER_CAP) return ERR_INVALID;
  const p = peerAt(id);
  if (!(load<u32>(p) & PEER_VALID)) return ERR_NOT_FOUND;
  if (via6 == 0 && load<u32>(p, 4) == 0) return ERR_INVALID; // no IPv4 to send to
  const owner = ruleGet6(<usize>ARG);
  if (owner >= 0 && <u32>owner != id) return ERR_EXISTS;
  forgetPublic6(p, id);
  const a = public6At(id);
  memory.copy(a, <usize>ARG, 16);
  if (rulePut(TAG_PUBLIC6, load<u32>(a), load<u32>(a, 4), load<u32>(a, 8), load<u32>(a, 12), id) < 0) {
    store<u32>(p, load<u32>(p) & ~(PEER_PUB6 | PEER_VIA6));
    return ERR_FULL;
  }
  store<u32>(p, (load<u32>(p) & ~PEER_VIA6) | PEER_PUB6 | (via6 != 0 ? PEER_VIA6 : 0));
  return 0;
}

/** Forgets peer `id`; routes that still name it make egress drop with V_NO_PEER. */
export function peerDelete(id: u32): i32 {
  if (id >= <u32>PEER_CAP) return ERR_INVALID;
  const p = peerAt(id);
  if (!(load<u32>(p) & PEER_VALID)) return ERR_NOT_FOUND;
  const ip = load<u32>(p, 4);
  if (ip != 0) ruleDelete(TAG_PUBLIC, ip, 0, 0, 0);
  forgetPublic6(p, id);
  memory.fill(p, 0, <usize>PEER_SIZE);
  return 0;
}

/** The peer whose public IP is `ip`, or -1. */
export function peerByAddress(ip: u32): i32 { return ip == 0 ? -1 : ruleGet(TAG_PUBLIC, ip, 0, 0, 0); }

/** The peer whose public IPv6 is the 16 bytes at `a`, or -1. */
export function peerByAddress6(a: usize): i32 { return ruleGet6(a); }

/** True when the 16-byte address at `a` lies in the peer's IPv6 subnet. */
export function peerHasSource6(p: usize, a: usize): bool {
  if (!(load<u32>(p) & PEER_V6)) return false;
  const len = load<u32>(p, 20);
  for (let i: u32 = 0; i < 16; i++) {
    const bits = len >= 8 * (i + 1) ? 8 : len > 8 * i ? len - 8 * i : 0;
    if (bits == 0) break;
    if ((load<u8>(a + i) & <u8>(0xff00 >> bits)) != load<u8>(p + 32 + i)) return false;
  }
  return true;
}
