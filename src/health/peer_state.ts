/**
 * @module One peer's health as the prober sees it, as a pure state machine: probes answered or
 * lost in, state changes out. A peer is `up` after one answered small probe, `down` after
 * `LOSSES_DOWN` small probes lost in a row (one lost datagram is not an outage), and `unknown`
 * until either happens. The MTU check is separate: full-size probes lost `LOSSES_DOWN` times in a
 * row while small ones are answered is an MTU black hole; one answered full-size probe clears it.
 */

/** Small probes lost in a row before a peer counts as unreachable. */
export const LOSSES_DOWN = 3;
/** RTT samples kept for the median. */
export const RTT_WINDOW = 16;

export type Reachability = "unknown" | "up" | "down";

export interface PeerState {
  state: Reachability;
  /** When `state` began (epoch ms). */
  since: number;
  /** Last answered probe's RTT and the recent ones (ms). */
  lastRttMs?: number;
  rtts: number[];
  lostInRow: number;
  /** Full-size probes: undefined until one was answered or lost LOSSES_DOWN times with the peer up. */
  mtuOk?: boolean;
  mtuLostInRow: number;
  sent: number;
  failures: number;
  /** Why the peer is down, once diagnosed. */
  cause?: string;
}

export type Change = "up" | "down" | "mtu_failed" | "mtu_ok";

export function newPeerState(now: number): PeerState {
  return { state: "unknown", since: now, rtts: [], lostInRow: 0, mtuLostInRow: 0, sent: 0, failures: 0 };
}

/** An answered probe. Returns the changes it makes (empty for none). */
export function onAnswer(s: PeerState, now: number, rttMs: number, mtu: boolean): Change[] {
  const out: Change[] = [];
  if (mtu) {
    s.mtuLostInRow = 0;
    if (s.mtuOk === false) out.push("mtu_ok");
    s.mtuOk = true;
  }
  // A full-size probe's RTT includes serialising 1.4 kB: keep the median to small probes.
  if (!mtu) {
    s.lastRttMs = rttMs;
    s.rtts.push(rttMs);
    if (s.rtts.length > RTT_WINDOW) s.rtts.shift();
  }
  s.lostInRow = 0;
  if (s.state !== "up") {
    s.state = "up";
    s.since = now;
    s.cause = undefined;
    out.unshift("up");
  }
  return out;
}

/** A probe that timed out. Returns the changes it makes. */
export function onLoss(s: PeerState, now: number, mtu: boolean): Change[] {
  s.failures++;
  if (mtu) {
    // Only a reachable peer's lost full-size probes say anything about the MTU.
    if (s.state !== "up") return [];
    s.mtuLostInRow++;
    if (s.mtuLostInRow >= LOSSES_DOWN && s.mtuOk !== false) {
      s.mtuOk = false;
      return ["mtu_failed"];
    }
    return [];
  }
  s.lostInRow++;
  if (s.lostInRow >= LOSSES_DOWN && s.state !== "down") {
    s.state = "down";
    s.since = now;
    return ["down"];
  }
  return [];
}

/** Median of the recent RTTs (ms), undefined without samples. */
export function medianRtt(s: PeerState): number | undefined {
  if (s.rtts.length === 0) return undefined;
  const sorted = [...s.rtts].sort((a, b) => a - b);
  const m = sorted.length >> 1;
  return sorted.length % 2 ? sorted[m] : (sorted[m - 1]! + sorted[m]!) / 2;
}
