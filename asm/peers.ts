/**
 * @module The peer table: peer id -> public IPv4 and port (where its datagrams go and come from)
 * and its lease subnets (what inner source addresses it may send: receive-side anti-spoofing).
 * Route values are peer ids. A public IP belongs to at most one peer.
 *
 * Entry (PEER_SIZE = 48): flags u32 (PEER_VALID | PEER_V6), ip u32, port u32, subnet4 u32,
 * len4 u32, len6 u32, 8 bytes pad, subnet6[16] (network order).
 */
import { ARG, PEERS, PEER_CAP, PEER_SIZE, ERR_INVALID, ERR_NOT_FOUND, ERR_EXISTS, ERR_FULL } from "./layout";
import { TAG_PUBLIC, ruleGet, rulePut, ruleDelete } from "./rules";
import { mask4 } from "./route";

export const PEER_VALID: u32 = 1;
export const PEER_V6: u32 = 2;

// @ts-ignore: decorator
@inline export function peerAt(id: u32): usize { return <usize>PEERS + <usize>id * <usize>PEER_SIZE; }

/** Sets peer `id`: public `ip`:`port`, subnet `subnet4/len4`; clears its IPv6 subnet. */
export function peerSet(id: u32, ip: u32, port: u32, subnet4: u32, len4: u32): i32 {
  if (id >= <u32>PEER_CAP || port > 0xffff || len4 > 32) return ERR_INVALID;
  const owner = ruleGet(TAG_PUBLIC, ip, 0, 0, 0);
  if (owner >= 0 && <u32>owner != id) return ERR_EXISTS;
  const p = peerAt(id);
  if (load<u32>(p) & PEER_VALID) {
    const old = load<u32>(p, 4);
    if (old != ip) ruleDelete(TAG_PUBLIC, old, 0, 0, 0);
  }
  if (rulePut(TAG_PUBLIC, ip, 0, 0, 0, id) < 0) {
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
  store<u32>(p, PEER_VALID | PEER_V6);
  return 0;
}

/** Forgets peer `id`; routes that still name it make egress drop with V_NO_PEER. */
export function peerDelete(id: u32): i32 {
  if (id >= <u32>PEER_CAP) return ERR_INVALID;
  const p = peerAt(id);
  if (!(load<u32>(p) & PEER_VALID)) return ERR_NOT_FOUND;
  ruleDelete(TAG_PUBLIC, load<u32>(p, 4), 0, 0, 0);
  memory.fill(p, 0, <usize>PEER_SIZE);
  return 0;
}

/** The peer whose public IP is `ip`, or -1. */
export function peerByAddress(ip: u32): i32 { return ruleGet(TAG_PUBLIC, ip, 0, 0, 0); }

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
