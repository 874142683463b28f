/**
 * @module The receive counter's sliding window (RFC 6479, as wireguard-go's replay.Filter): a
 * ring of WG_REPLAY_BLOCKS 64-bit blocks behind the highest counter seen, `last`. A counter is
 * new when it is above `last`, or at most WG_REPLAY_WINDOW below it and its bit is clear.
 * Split into a check and a commit so that only an authenticated message moves the window: the
 * core checks before it spends a MAC on the message and commits after the tag matched.
 * Both take the session record's address (`last` at WG_S_RECV_LAST, the ring at WG_S_REPLAY).
 */
import { WG_REPLAY_BLOCKS, WG_REPLAY_WINDOW, WG_S_RECV_LAST, WG_S_REPLAY } from "./layout";

/** WireGuard's RejectAfterMessages, 2^64 - 2^13 - 1: counters at or above it are never valid. */
export const REJECT_AFTER_MESSAGES: u64 = 0xffffffffffffdfff;

const BLOCK_MASK: u64 = <u64>WG_REPLAY_BLOCKS - 1;

/** True when `counter` would be accepted by `replayCommit` (nothing changes). */
export function replayCheck(session: usize, counter: u64): bool {
  if (counter >= REJECT_AFTER_MESSAGES) return false;
  const last = load<u64>(session + <usize>WG_S_RECV_LAST);
  if (counter > last) return true;
  if (last - counter > <u64>WG_REPLAY_WINDOW) return false;
  const block = load<u64>(session + <usize>WG_S_REPLAY + <usize>(((counter >> 6) & BLOCK_MASK) << 3));
  return (block & (<u64>1 << (counter & 63))) == 0;
}

/**
 * Marks `counter` as received, sliding the window forward when it is the new highest (blocks
 * passed over are cleared, at most the whole ring). Returns false when it was not new.
 */
export function replayCommit(session: usize, counter: u64): bool {
  if (counter >= REJECT_AFTER_MESSAGES) return false;
  const ring = session + <usize>WG_S_REPLAY;
  const last = load<u64>(session + <usize>WG_S_RECV_LAST);
  const index = counter >> 6;
  if (counter > last) {
    const current = last >> 6;
    let diff = index - current;
    if (diff > <u64>WG_REPLAY_BLOCKS) diff = <u64>WG_REPLAY_BLOCKS;
    for (let i = current + 1; i <= current + diff; i++) store<u64>(ring + <usize>((i & BLOCK_MASK) << 3), 0);
    store<u64>(session + <usize>WG_S_RECV_LAST, counter);
  } else if (last - counter > <u64>WG_REPLAY_WINDOW) {
    return false;
  }
  const at = ring + <usize>((index & BLOCK_MASK) << 3);
  const old = load<u64>(at);
  const now = old | (<u64>1 << (counter & 63));
  store<u64>(at, now);
  return old != now;
}
