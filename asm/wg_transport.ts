/**
 * @module WireGuard transport data messages (whitepaper §5.4.6), in batches over descriptor
 * rings: `wgSeal` turns plaintext packets into messages for the wire, `wgOpen` turns received
 * messages back into plaintext in place. The handshake, timers and which session to use are the
 * host's (the wireguard backend); the core holds the sessions' keys, send counters and replay
 * windows (WG_SESSIONS, filled with `wgSessionSet`) and does every per-packet byte.
 *
 * Message: type u32 = 4 | receiver u32 | counter u64 (little-endian) | ChaCha20-Poly1305 of the
 * packet zero-padded to a multiple of 16 (capped at the MTU, as wireguard-go pads), nonce =
 * 4 zero bytes || counter, no AAD | 16-byte tag. A keepalive is a message of empty plaintext.
 *
 * Flow of wgOpen, per descriptor (numbered as the checks run; the first failing one is the
 * verdict, counted at WG_C_OPEN + verdict):
 *   1. the datagram lies in the packet arenas          else WV_BAD_DESCRIPTOR
 *   2. at least 32 bytes                                else WV_BAD_LENGTH
 *   3. type field == 4 (handshake messages stop here)   else WV_BAD_TYPE
 *   4. receiver index names a valid session             else WV_UNKNOWN_RECEIVER
 *   5. counter new to the window, below the limit       else WV_REPLAYED
 *   6. tag authenticates                                else WV_AUTH_FAILED
 *   7. decrypt in place; only now the window moves; the plaintext (at off + 16) is reported
 *      without padding when an IPv4/IPv6 header inside says its length.
 * Ring protocol as egress/ingress (asm/index.ts): the host fills descriptors [start, start +
 * count), calls, and owns everything again when the call returns.
 */
import { aeadOpen, aeadSeal } from "./aead";
import { replayCheck, replayCommit, REJECT_AFTER_MESSAGES } from "./replay";
import {
  ARG, ERR_INVALID, ERR_NOT_FOUND, WG_ARENA_END, WG_ARENA_START, WG_C_OPEN, WG_C_SEAL, WG_COUNTERS,
  WG_DESC_SIZE, WG_HEADER_LEN, WG_MAX_MESSAGE, WG_MESSAGE_TRANSPORT, WG_OPEN_CAP, WG_OPEN_DESC,
  WG_S_FLAGS, WG_S_LOCAL_INDEX, WG_S_RECV_KEY, WG_S_REMOTE_INDEX, WG_S_SEND_COUNTER, WG_S_SEND_KEY,
  WG_SCRATCH, WG_SEAL_CAP, WG_SEAL_DESC, WG_SESSION_CAP, WG_SESSIONS, WG_SESSION_SIZE, WG_SESSION_VALID,
  WG_TAG_LEN, WV_AUTH_FAILED, WV_BAD_DESCRIPTOR, WV_BAD_LENGTH, WV_BAD_TYPE, WV_EXHAUSTED,
  WV_NO_SESSION, WV_OK, WV_REPLAYED, WV_UNKNOWN_RECEIVER,
} from "./layout";

/** The 12-byte nonce of the message at hand: 4 zero bytes, then the counter. */
const NONCE: usize = <usize>WG_SCRATCH;
const SLOT_MASK: u32 = <u32>WG_SESSION_CAP - 1;

// @ts-ignore: decorator
@inline function sessionAt(slot: u32): usize { return <usize>WG_SESSIONS + <usize>slot * <usize>WG_SESSION_SIZE; }

// @ts-ignore: decorator
@inline function tally(base: i32, verdict: i32): void {
  const at = <usize>WG_COUNTERS + <usize>(base + verdict) * 4;
  store<u32>(at, load<u32>(at) + 1);
}

/** True when [off, off + len) lies inside the packet arenas. */
// @ts-ignore: decorator
@inline function inArena(off: u32, len: u32): bool {
  return off >= <u32>WG_ARENA_START && <u64>off + <u64>len <= <u64>WG_ARENA_END;
}

/**
 * Installs session `slot`: send key ARG[0..32], receive key ARG[32..64] (ARG is wiped after),
 * our receiver index `localIndex` (its low bits must equal the slot: `localIndex &
 * (WG_SESSION_CAP - 1) == slot`), the peer's `remoteIndex`; counters and window start at zero.
 * Returns 0, or ERR_INVALID for a slot out of range or an index that does not name it.
 */
export function wgSessionSet(slot: u32, localIndex: u32, remoteIndex: u32): i32 {
  if (slot >= <u32>WG_SESSION_CAP || (localIndex & SLOT_MASK) != slot) return ERR_INVALID;
  const s = sessionAt(slot);
  memory.fill(s, 0, WG_SESSION_SIZE);
  memory.copy(s + <usize>WG_S_SEND_KEY, <usize>ARG, 32);
  memory.copy(s + <usize>WG_S_RECV_KEY, <usize>ARG + 32, 32);
  memory.fill(<usize>ARG, 0, 64);
  store<u32>(s + <usize>WG_S_LOCAL_INDEX, localIndex);
  store<u32>(s + <usize>WG_S_REMOTE_INDEX, remoteIndex);
  store<u32>(s + <usize>WG_S_FLAGS, WG_SESSION_VALID);
  return 0;
}

/** Wipes session `slot` (keys included); its receiver index stops matching. */
export function wgSessionDelete(slot: u32): i32 {
  if (slot >= <u32>WG_SESSION_CAP) return ERR_INVALID;
  const s = sessionAt(slot);
  const was = load<u32>(s + <usize>WG_S_FLAGS) & WG_SESSION_VALID;
  memory.fill(s, 0, WG_SESSION_SIZE);
  return was != 0 ? 0 : ERR_NOT_FOUND;
}

/** wireguard-go's calculatePaddingSize: pad to 16, but never past the MTU (0: no cap). */
// @ts-ignore: decorator
@inline function paddedLength(len: u32, mtu: u32): u32 {
  if (mtu == 0) return (len + 15) & ~15;
  let last = len;
  if (last > mtu) last %= mtu;
  let padded = (last + 15) & ~15;
  if (padded > mtu) padded = mtu;
  return len + (padded - last);
}

/**
 * Seals WG_SEAL_DESC[start, start + count): for each, the message for the descriptor's session
 * with that session's next send counter, written at dst (header, ciphertext, tag; `out` = its
 * length). `mtu` caps the padding as the device MTU does in wireguard-go (0: pad to 16 always).
 * Returns the number of descriptors processed (all of them, up to the ring's end).
 */
export function wgSeal(start: u32, count: u32, mtu: u32): u32 {
  const n = start >= <u32>WG_SEAL_CAP ? <u32>0 : min(count, <u32>WG_SEAL_CAP - start);
  for (let i: u32 = 0; i < n; i++) {
    const d = <usize>WG_SEAL_DESC + <usize>(start + i) * <usize>WG_DESC_SIZE;
    const v = sealOne(d, mtu);
    store<u16>(d, <u16>v, 14);
    tally(WG_C_SEAL, v);
  }
  return n;
}

function sealOne(d: usize, mtu: u32): i32 {
  const src = load<u32>(d), dst = load<u32>(d, 4);
  const len = <u32>load<u16>(d, 8), slot = <u32>load<u16>(d, 10);
  store<u16>(d, 0, 12);
  const padded = paddedLength(len, mtu);
  const out = padded + <u32>(WG_HEADER_LEN + WG_TAG_LEN);
  if (out > <u32>WG_MAX_MESSAGE) return WV_BAD_LENGTH;
  if (!inArena(src, len) || !inArena(dst, out)) return WV_BAD_DESCRIPTOR;
  if (slot >= <u32>WG_SESSION_CAP) return WV_NO_SESSION;
  const s = sessionAt(slot);
  if ((load<u32>(s + <usize>WG_S_FLAGS) & WG_SESSION_VALID) == 0) return WV_NO_SESSION;
  const counter = load<u64>(s + <usize>WG_S_SEND_COUNTER);
  if (counter >= REJECT_AFTER_MESSAGES) return WV_EXHAUSTED;
  store<u64>(s + <usize>WG_S_SEND_COUNTER, counter + 1);

  // Plaintext to its place after the header (a no-op in place), zero padding, header, then
  // encrypt in place: the header is written last-but-one so it can never clobber the input.
  const body = <usize>dst + WG_HEADER_LEN;
  if (body != <usize>src) memory.copy(body, <usize>src, len);
  for (let i = body + <usize>len, end = body + <usize>padded; i < end; i++) store<u8>(i, 0);
  store<u32>(<usize>dst, WG_MESSAGE_TRANSPORT);
  store<u32>(<usize>dst, load<u32>(s + <usize>WG_S_REMOTE_INDEX), 4);
  store<u64>(<usize>dst, counter, 8);
  store<u32>(NONCE, 0);
  store<u64>(NONCE, counter, 4);
  aeadSeal(s + <usize>WG_S_SEND_KEY, NONCE, 0, 0, body, padded, body);
  store<u16>(d, <u16>out, 12);
  return WV_OK;
}

/**
 * Opens WG_OPEN_DESC[start, start + count) in place (flow in the module comment). Writes each
 * descriptor's verdict, `plain` length and `session` (0xffff when none matched). Returns the
 * number processed.
 */
export function wgOpen(start: u32, count: u32): u32 {
  const n = start >= <u32>WG_OPEN_CAP ? <u32>0 : min(count, <u32>WG_OPEN_CAP - start);
  for (let i: u32 = 0; i < n; i++) {
    const d = <usize>WG_OPEN_DESC + <usize>(start + i) * <usize>WG_DESC_SIZE;
    const v = openOne(d);
    store<u16>(d, <u16>v, 14);
    tally(WG_C_OPEN, v);
  }
  return n;
}

function openOne(d: usize): i32 {
  const off = load<u32>(d), len = load<u32>(d, 4);
  store<u32>(d, 0, 8);
  store<u16>(d, 0xffff, 12);
  if (!inArena(off, len)) return WV_BAD_DESCRIPTOR;
  if (len < <u32>(WG_HEADER_LEN + WG_TAG_LEN)) return WV_BAD_LENGTH;
  const m = <usize>off;
  if (load<u32>(m) != WG_MESSAGE_TRANSPORT) return WV_BAD_TYPE;
  const receiver = load<u32>(m, 4);
  const slot = receiver & SLOT_MASK;
  const s = sessionAt(slot);
  if ((load<u32>(s + <usize>WG_S_FLAGS) & WG_SESSION_VALID) == 0 || load<u32>(s + <usize>WG_S_LOCAL_INDEX) != receiver) {
    return WV_UNKNOWN_RECEIVER;
  }
  store<u16>(d, <u16>slot, 12);
  const counter = load<u64>(m, 8);
  if (!replayCheck(s, counter)) return WV_REPLAYED;
  store<u32>(NONCE, 0);
  store<u64>(NONCE, counter, 4);
  const body = m + WG_HEADER_LEN;
  const bodyLen = <usize>(len - <u32>(WG_HEADER_LEN + WG_TAG_LEN));
  if (!aeadOpen(s + <usize>WG_S_RECV_KEY, NONCE, 0, 0, body, bodyLen, body)) return WV_AUTH_FAILED;
  replayCommit(s, counter); // cannot fail: checked above, and nothing ran in between
  store<u32>(d, unpadded(body, <u32>bodyLen), 8);
  return WV_OK;
}

/**
 * The packet's own length when the IP header inside says one that fits (padding removed),
 * else the decrypted length: the host's packet checks judge a header that does not fit.
 */
function unpadded(p: usize, len: u32): u32 {
  if (len == 0) return 0;
  const version = load<u8>(p) >> 4;
  if (version == 4 && len >= 20) {
    const total = <u32>bswap<u16>(load<u16>(p, 2));
    if (total >= 20 && total <= len) return total;
  } else if (version == 6 && len >= 40) {
    const total = <u32>40 + <u32>bswap<u16>(load<u16>(p, 4));
    if (total <= len) return total;
  }
  return len;
}
