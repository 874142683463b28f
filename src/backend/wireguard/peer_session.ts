/**
 * @module One WireGuard peer's sessions and timers (whitepaper §6, as wireguard-go's
 * device/timers.go, send.go, receive.go and noise-protocol.go do them), as a pure state machine:
 * the packet loop tells it what happened (a keypair derived, a transport message sent or
 * received, an initiation sent) with the time, and asks it which keypair seals data now
 * (`sendSlot`) and what is due (`poll`: initiate, keepalive, give up, keypairs to wipe). No I/O,
 * no clock, no randomness of its own (the retransmit jitter comes from the settings), so every
 * rule is tested against a fake clock. The hot calls (`sendSlot`, `sent`, `received` when no
 * rotation happens) allocate nothing.
 *
 * Keypairs (whitepaper §5.4 and §6.3, wireguard-go's Keypairs and BeginSymmetricSession): up to
 * three per peer. `current` seals everything sent; `previous` still opens what the peer sealed
 * before it saw the newer one; `next` is a responder's keypair that waits for the initiator's
 * first transport message, which proves the initiator holds it (key confirmation); only then
 * does it become `current`. An initiator's keypair is confirmed by the response itself and
 * becomes `current` at once. A keypair serves nothing once it is REJECT_AFTER_TIME old.
 *
 * Timers (wireguard-go's five per peer, here deadlines in ms, Infinity = not armed):
 *   retransmit   an initiation got no response: retry after REKEY_TIMEOUT + jitter, at most
 *                REKEY_ATTEMPT_TIME / REKEY_TIMEOUT retries, then give up (§6.4).
 *   keepalive    data arrived and nothing went back for KEEPALIVE_TIMEOUT: send an empty
 *                transport message so the peer knows we are alive (§6.5, passive keepalive).
 *   newHandshake data went out and nothing came back for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT:
 *                the peer is gone or its session is; start a handshake (§6.5).
 *   zero         REJECT_AFTER_TIME × 3 after the last keypair was derived: wipe every key (§6.3).
 *   persistent   the configured persistent keepalive interval after any authenticated packet
 *                either way (wg(8) PersistentKeepalive, for peers behind NAT).
 * Initiations are rate-limited as wireguard-go's SendHandshakeInitiation does: a request within
 * REKEY_TIMEOUT of the last initiation (or response) this side sent is dropped; the pending
 * retransmit covers it.
 *
 * How the packet loop drives it:
 *   - sending data: `slot = sendSlot(now)`; -1 → stage the packet, `wantHandshake(now)`; else seal
 *     with that slot, send, `sent(now, false, counterAfter)`.
 *   - a transport message opened on `slot` (after `receiveAllowed(slot, now)` let it be opened):
 *     `received(slot, now, plaintext.length === 0)`; wipe what it returns; if packets are staged,
 *     try `sendSlot` again (a responder's keypair may just have been confirmed).
 *   - handshakes: `initiationSent(now, due.retry)` after sending an initiation; `handshakeTraffic(now)`
 *     for each authenticated initiation or response received; `sessionDerived(kp, now)` when the
 *     response was consumed (initiator) or created and sent (responder); wipe what it returns.
 *   - timers: `poll(now)` at `nextDeadline()` (and whenever convenient); act on every field;
 *     poll returns one shared frozen object when nothing is due, so the idle check allocates nothing.
 */
import {
  KEEPALIVE_TIMEOUT_MS, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME_MS, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME_MS,
  REKEY_ATTEMPT_TIME_MS, REKEY_TIMEOUT_JITTER_MAX_MS, REKEY_TIMEOUT_MS,
} from "./timers.ts";

export interface WgTimerSettings {
  rekeyAfterTimeMs: number; rejectAfterTimeMs: number; rekeyAttemptTimeMs: number;
  rekeyTimeoutMs: number; keepaliveTimeoutMs: number; rekeyAfterMessages: bigint; rejectAfterMessages: bigint;
  /** A random jitter in [0, REKEY_TIMEOUT_JITTER_MAX_MS) each time one is needed. */
  jitterMs: () => number;
}

/** The whitepaper's values (timers.ts); jitter a whole number of ms in [0, 334) as wireguard-go's fastrandn. */
export const DEFAULT_TIMER_SETTINGS: WgTimerSettings = Object.freeze({
  rekeyAfterTimeMs: REKEY_AFTER_TIME_MS,
  rejectAfterTimeMs: REJECT_AFTER_TIME_MS,
  rekeyAttemptTimeMs: REKEY_ATTEMPT_TIME_MS,
  rekeyTimeoutMs: REKEY_TIMEOUT_MS,
  keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
  rekeyAfterMessages: REKEY_AFTER_MESSAGES,
  rejectAfterMessages: REJECT_AFTER_MESSAGES,
  jitterMs: () => Math.floor(Math.random() * REKEY_TIMEOUT_JITTER_MAX_MS),
});

const ENV = "WEFT_TEST_WG_TIMERS";
const MS_KEYS = ["rekeyAfterTimeMs", "rejectAfterTimeMs", "rekeyAttemptTimeMs", "rekeyTimeoutMs", "keepaliveTimeoutMs"] as const;
const MESSAGE_KEYS = ["rekeyAfterMessages", "rejectAfterMessages"] as const;

/**
 * Test builds only: the settings with overrides from the JSON text of WEFT_TEST_WG_TIMERS, so a
 * test can watch a rekey in seconds. Millisecond keys take positive whole numbers; the message
 * counts take positive whole numbers (JSON numbers up to 2^53 − 1, or decimal strings for more).
 * undefined or "" → DEFAULT_TIMER_SETTINGS.
 * @example timerSettings('{"rekeyAfterTimeMs":3000,"rejectAfterTimeMs":6000}').rekeyAfterTimeMs // 3000
 */
export function timerSettings(overrides: string | undefined): WgTimerSettings {
  if (overrides === undefined || overrides === "") return DEFAULT_TIMER_SETTINGS;
  let parsed: unknown;
  try {
    parsed = JSON.parse(overrides);
  } catch {
    parsed = undefined;
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new Error(`${ENV} ${JSON.stringify(overrides)} must be a JSON object of timer settings, e.g. {"rekeyAfterTimeMs":3000,"rejectAfterTimeMs":6000}`);
  }
  const s: WgTimerSettings = { ...DEFAULT_TIMER_SETTINGS };
  for (const [key, value] of Object.entries(parsed)) {
    if ((MS_KEYS as readonly string[]).includes(key)) {
      if (typeof value !== "number" || !Number.isSafeInteger(value) || value <= 0) {
        throw new Error(`${ENV} ${key} ${JSON.stringify(value)} must be a positive whole number of milliseconds`);
      }
      (s as unknown as Record<string, number>)[key] = value;
    } else if ((MESSAGE_KEYS as readonly string[]).includes(key)) {
      const ok = (typeof value === "number" && Number.isSafeInteger(value) && value > 0) ||
        (typeof value === "string" && /^[1-9][0-9]*$/.test(value));
      if (!ok) throw new Error(`${ENV} ${key} ${JSON.stringify(value)} must be a positive whole number of messages`);
      (s as unknown as Record<string, bigint>)[key] = BigInt(value as number | string);
    } else {
      throw new Error(`${ENV} key ${JSON.stringify(key)} (value ${JSON.stringify(value)}) is not a timer setting; allowed keys: ${[...MS_KEYS, ...MESSAGE_KEYS].join(", ")}`);
    }
  }
  if (s.rejectAfterTimeMs <= s.rekeyAfterTimeMs) {
    throw new Error(`${ENV} rejectAfterTimeMs ${s.rejectAfterTimeMs} must be greater than rekeyAfterTimeMs ${s.rekeyAfterTimeMs}`);
  }
  if (s.rejectAfterMessages <= s.rekeyAfterMessages) {
    throw new Error(`${ENV} rejectAfterMessages ${s.rejectAfterMessages} must be greater than rekeyAfterMessages ${s.rekeyAfterMessages}`);
  }
  return Object.freeze(s);
}

/** A derived session as the state machine sees it: the caller's slot (its core session) and index. */
export interface Keypair { readonly slot: number; readonly localIndex: number; readonly isInitiator: boolean; readonly createdMs: number }

/** What the caller must do now (poll's answer). */
export interface PeerDue {
  /** Send a handshake initiation (then call initiationSent(now, retry)). */
  initiate: boolean;
  /** The initiation due is a retransmission (pass it to initiationSent). */
  retry: boolean;
  /** Send staged packets, or an empty transport message if none are staged (wireguard-go's SendKeepalive). */
  keepalive: boolean;
  /** The handshake attempts are exhausted: drop the staged packets. */
  giveUp: boolean;
  /** The zero timer fired: besides wiping `expired` (every keypair), forget any half-done handshake and drop staged packets (wireguard-go's ZeroAndFlushAll). */
  zeroAll: boolean;
  /** Keypairs removed from the peer: wipe their core sessions and free their indices. Read only: when empty it is a shared frozen array. */
  expired: Keypair[];
}

const NO_KEYPAIRS: readonly Keypair[] = Object.freeze([]);
const NOTHING_DUE: PeerDue = Object.freeze({
  initiate: false, retry: false, keepalive: false, giveUp: false, zeroAll: false, expired: NO_KEYPAIRS as Keypair[],
});

export class PeerSession {
  readonly #s: WgTimerSettings;
  readonly #persistentKeepaliveMs: number;
  /** wireguard-go's MaxTimerHandshakes: retries before giving up (18 with the whitepaper's values). */
  readonly #maxTimerHandshakes: number;

  #current: Keypair | null = null;
  #previous: Keypair | null = null;
  #next: Keypair | null = null;
  /** The current keypair's next send counter, as the last `sent` reported it. */
  #currentCounter = 0n;

  #retransmitAt = Infinity;
  #keepaliveAt = Infinity;
  #newHandshakeAt = Infinity;
  #zeroAt = Infinity;
  #persistentAt = Infinity;

  #attempts = 0;
  #sentLastMinuteHandshake = false;
  #needAnotherKeepalive = false;
  /**
   * poll re-armed the keepalive timer for needAnotherKeepalive: the next send (the keepalive poll
   * asked for) must not cancel it. wireguard-go re-arms after queueing that keepalive, whose send
   * runs on another goroutine; the rule meant is "once more, KEEPALIVE_TIMEOUT after this one".
   */
  #keepaliveRearmed = false;
  #lastSentHandshakeMs = -Infinity;
  #lastHandshakeMs = 0;

  /** An initiation requested and let through the rate limit, not yet reported by poll (since when). */
  #initiateDueAt = Infinity;
  #initiateRetry = false;
  /** The initiator's confirming keepalive after a response, not yet reported by poll (since when). */
  #confirmDueAt = Infinity;

  /**
   * persistentKeepaliveMs: 0 = off. When on, the first poll asks for a keepalive at once, as
   * wireguard-go sends one when a peer is configured with a persistent keepalive (which, with no
   * keypair yet, starts the handshake).
   */
  constructor(settings: WgTimerSettings, persistentKeepaliveMs: number) {
    if (!Number.isFinite(persistentKeepaliveMs) || persistentKeepaliveMs < 0) {
      throw new RangeError(`persistentKeepaliveMs ${persistentKeepaliveMs} must be a number of ms ≥ 0 (0 = off)`);
    }
    this.#s = settings;
    this.#persistentKeepaliveMs = persistentKeepaliveMs;
    this.#maxTimerHandshakes = Math.floor(settings.rekeyAttemptTimeMs / settings.rekeyTimeoutMs);
    if (persistentKeepaliveMs > 0) this.#persistentAt = -Infinity;
  }

  get current(): Keypair | null { return this.#current; }
  get previous(): Keypair | null { return this.#previous; }
  get next(): Keypair | null { return this.#next; }
  /** When the last handshake completed (initiator: response consumed; responder: confirmed), ms, or 0. */
  get lastHandshakeMs(): number { return this.#lastHandshakeMs; }
  /** Retransmissions of the initiation in flight so far (0 after a handshake completes). */
  get handshakeAttempts(): number { return this.#attempts; }

  /**
   * The slot to seal data with at nowMs, or -1: no current keypair, it is REJECT_AFTER_TIME old,
   * or its send counter reached REJECT_AFTER_MESSAGES (§6.2; wireguard-go's SendStagedPackets).
   * Only `current`: a responder never sends on an unconfirmed `next`.
   */
  sendSlot(nowMs: number): number {
    const kp = this.#current;
    if (kp === null || nowMs >= kp.createdMs + this.#s.rejectAfterTimeMs || this.#currentCounter >= this.#s.rejectAfterMessages) return -1;
    return kp.slot;
  }

  /**
   * Whether a transport message to `slot` may be opened at nowMs: the slot is one of this peer's
   * keypairs and younger than REJECT_AFTER_TIME (§6.2; wireguard-go drops older ones before
   * decrypting, in RoutineReceiveIncoming).
   */
  receiveAllowed(slot: number, nowMs: number): boolean {
    const kp = this.#find(slot);
    return kp !== null && nowMs < kp.createdMs + this.#s.rejectAfterTimeMs;
  }

  /**
   * A handshake produced kp (wireguard-go's BeginSymmetricSession). Initiator: kp becomes current
   * at once; the old current becomes previous, unless a responder keypair was waiting in next,
   * which becomes previous instead (the peer may already send on it) and the old current goes.
   * Responder: kp waits in next; the old next and previous go (the previous would be two
   * sessions old once next is confirmed). Returns the displaced keypairs, to wipe.
   * Timers: the zero timer restarts (timersSessionDerived). Initiator: the handshake is complete
   * (retransmit stops, attempts reset, timersHandshakeComplete) and a keepalive is due at once to
   * confirm the session to the responder (RoutineHandshake's SendKeepalive). Responder: this is
   * the response being sent, which counts for the initiation rate limit (SendHandshakeResponse)
   * and as an authenticated packet sent.
   */
  sessionDerived(kp: Keypair, nowMs: number): Keypair[] {
    const displaced: Keypair[] = [];
    if (kp.isInitiator) {
      if (this.#next !== null) {
        if (this.#current !== null) displaced.push(this.#current);
        if (this.#previous !== null) displaced.push(this.#previous);
        this.#previous = this.#next;
        this.#next = null;
      } else {
        if (this.#previous !== null) displaced.push(this.#previous);
        this.#previous = this.#current;
      }
      this.#current = kp;
      this.#currentCounter = 0n;
      this.#handshakeComplete(nowMs);
      this.#traversal(nowMs);
      this.#newHandshakeAt = Infinity; // the response was an authenticated packet received
      if (this.#confirmDueAt === Infinity) this.#confirmDueAt = nowMs;
    } else {
      if (this.#next !== null) displaced.push(this.#next);
      if (this.#previous !== null) displaced.push(this.#previous);
      this.#next = kp;
      this.#previous = null;
      this.#lastSentHandshakeMs = nowMs;
      this.#traversal(nowMs);
      this.#anySent();
    }
    this.#zeroAt = nowMs + this.#s.rejectAfterTimeMs * 3;
    return displaced;
  }

  /**
   * An authenticated transport message arrived on `slot` (keepalive: empty plaintext). On `next`
   * it confirms the responder's keypair (wireguard-go's ReceivedWithKeypair): next → current,
   * current → previous, the old previous is returned to wipe, and the handshake is complete. An
   * unknown slot or one past REJECT_AFTER_TIME changes nothing. Then, as RoutineSequentialReceiver:
   *   - keepKeyFreshReceiving (§6.3): an initiator whose current keypair is older than
   *     REJECT_AFTER_TIME − KEEPALIVE_TIMEOUT − REKEY_TIMEOUT initiates, once per handshake
   *     (sentLastMinuteHandshake), so a fresh session exists before this one is refused;
   *   - any authenticated packet: persistent keepalive re-armed, the newHandshake timer cancelled;
   *   - data (not a keepalive): the keepalive timer armed for KEEPALIVE_TIMEOUT, or, if it already
   *     runs, needAnotherKeepalive set (timersDataReceived).
   */
  received(slot: number, nowMs: number, keepalive: boolean): readonly Keypair[] {
    const kp = this.#find(slot);
    if (kp === null || nowMs >= kp.createdMs + this.#s.rejectAfterTimeMs) return NO_KEYPAIRS;
    let displaced = NO_KEYPAIRS;
    if (kp === this.#next) {
      if (this.#previous !== null) displaced = [this.#previous];
      this.#previous = this.#current;
      this.#current = kp;
      this.#next = null;
      this.#currentCounter = 0n;
      this.#handshakeComplete(nowMs);
    }
    const cur = this.#current;
    if (!this.#sentLastMinuteHandshake && cur !== null && cur.isInitiator &&
        nowMs - cur.createdMs > this.#s.rejectAfterTimeMs - this.#s.keepaliveTimeoutMs - this.#s.rekeyTimeoutMs) {
      this.#sentLastMinuteHandshake = true;
      this.#requestInitiation(nowMs, false);
    }
    this.#traversal(nowMs);
    this.#newHandshakeAt = Infinity;
    if (!keepalive) {
      if (this.#keepaliveAt === Infinity) this.#keepaliveAt = nowMs + this.#s.keepaliveTimeoutMs;
      else this.#needAnotherKeepalive = true;
    }
    return displaced;
  }

  /**
   * A transport message was sent on the current keypair (keepalive: empty); `counter` is that
   * keypair's next send counter after it. As RoutineSequentialSender:
   *   - any authenticated packet: persistent keepalive re-armed, the pending passive keepalive
   *     cancelled (this message carries the news that we are alive) — except the one a poll
   *     re-armed for needAnotherKeepalive, which this send answers;
   *   - data: the newHandshake timer armed, unless armed already, for KEEPALIVE_TIMEOUT +
   *     REKEY_TIMEOUT + jitter (timersDataSent): without any answer by then, initiate;
   *   - keepKeyFreshSending (§6.2, §6.3): initiate when the counter passed REKEY_AFTER_MESSAGES
   *     (either role), or when this side initiated the keypair and it is older than
   *     REKEY_AFTER_TIME (only the initiator, so both sides do not rekey at once).
   */
  sent(nowMs: number, keepalive: boolean, counter: bigint): void {
    this.#currentCounter = counter;
    this.#traversal(nowMs);
    if (this.#keepaliveRearmed) this.#keepaliveRearmed = false;
    else this.#anySent();
    if (!keepalive && this.#newHandshakeAt === Infinity) {
      this.#newHandshakeAt = nowMs + this.#s.keepaliveTimeoutMs + this.#s.rekeyTimeoutMs + this.#s.jitterMs();
    }
    const cur = this.#current;
    if (cur !== null && (counter > this.#s.rekeyAfterMessages || (cur.isInitiator && nowMs - cur.createdMs > this.#s.rekeyAfterTimeMs))) {
      this.#requestInitiation(nowMs, false);
    }
  }

  /**
   * Data waits without a usable keypair (wireguard-go's SendStagedPackets): initiate, a fresh
   * attempt (the retry count restarts), unless an initiation or response was sent less than
   * REKEY_TIMEOUT ago; then its retransmit (or the session it makes) covers the data.
   */
  wantHandshake(nowMs: number): void {
    this.#requestInitiation(nowMs, false);
  }

  /**
   * The caller sent an initiation at nowMs (wireguard-go's SendHandshakeInitiation after the
   * rate limit): the rate limit window starts, the retransmit timer runs for REKEY_TIMEOUT +
   * jitter (timersHandshakeInitiated; §6.4), any authenticated packet sent (persistent keepalive
   * re-armed, passive keepalive cancelled). isRetry false restarts the attempt count; retries are
   * counted when poll hands them out, as the retransmit timer's expiry does.
   */
  initiationSent(nowMs: number, isRetry: boolean): void {
    if (!isRetry) this.#attempts = 0;
    this.#lastSentHandshakeMs = nowMs;
    this.#initiateDueAt = Infinity;
    this.#initiateRetry = false;
    this.#traversal(nowMs);
    this.#anySent();
    this.#retransmitAt = nowMs + this.#s.rekeyTimeoutMs + this.#s.jitterMs();
  }

  /**
   * An authenticated handshake message (initiation or response) arrived from this peer: the
   * persistent keepalive re-armed, the newHandshake timer cancelled (the peer is alive). The
   * messages this side sends are covered by initiationSent and sessionDerived; calling this for
   * them as well only cancels a newHandshake timer whose work (an initiation) is being done.
   */
  handshakeTraffic(nowMs: number): void {
    this.#traversal(nowMs);
    this.#newHandshakeAt = Infinity;
  }

  /**
   * What is due at nowMs; what it reports is consumed. In order:
   *   - retransmit expired: after more than MaxTimerHandshakes (REKEY_ATTEMPT_TIME / REKEY_TIMEOUT)
   *     retries, give up: the passive keepalive is cancelled, the zero timer armed if it is not
   *     (expiredRetransmitHandshake); else count one more attempt and initiate again (retry);
   *   - keepalive timer expired: keepalive, and once more KEEPALIVE_TIMEOUT later if data arrived
   *     while it ran (expiredSendKeepalive, needAnotherKeepalive);
   *   - newHandshake expired: initiate (expiredNewHandshake);
   *   - zero expired: every keypair expired, zeroAll (expiredZeroKeyMaterial);
   *   - persistent keepalive expired: keepalive (expiredPersistentKeepalive);
   *   - keypairs REJECT_AFTER_TIME old are removed and reported, so their core sessions are wiped
   *     early (they can neither send nor receive any more; wireguard-go keeps them until replaced);
   *   - an initiation requested by sent/received/wantHandshake, or the initiator's confirming
   *     keepalive, not reported yet.
   * Initiations pass the rate limit when requested, as in wireguard-go.
   */
  poll(nowMs: number): PeerDue {
    if (nowMs < this.nextDeadline()) return NOTHING_DUE;
    let keepalive = false, giveUp = false, zeroAll = false;
    let expired: Keypair[] = NO_KEYPAIRS as Keypair[];

    if (nowMs >= this.#retransmitAt) {
      this.#retransmitAt = Infinity;
      if (this.#attempts > this.#maxTimerHandshakes) {
        giveUp = true;
        this.#keepaliveAt = Infinity;
        this.#keepaliveRearmed = false;
        if (this.#zeroAt === Infinity) this.#zeroAt = nowMs + this.#s.rejectAfterTimeMs * 3;
      } else {
        this.#attempts++;
        this.#requestInitiation(nowMs, true);
      }
    }
    if (nowMs >= this.#keepaliveAt) {
      keepalive = true;
      if (this.#needAnotherKeepalive) {
        this.#needAnotherKeepalive = false;
        this.#keepaliveAt = nowMs + this.#s.keepaliveTimeoutMs;
        this.#keepaliveRearmed = true;
      } else {
        this.#keepaliveAt = Infinity;
      }
    }
    if (nowMs >= this.#newHandshakeAt) {
      this.#newHandshakeAt = Infinity;
      this.#requestInitiation(nowMs, false);
    }
    if (nowMs >= this.#zeroAt) {
      this.#zeroAt = Infinity;
      zeroAll = true;
      expired = this.#takeAll();
    }
    if (nowMs >= this.#persistentAt) {
      this.#persistentAt = Infinity;
      if (this.#persistentKeepaliveMs > 0) keepalive = true;
    }
    const reject = this.#s.rejectAfterTimeMs;
    if (this.#previous !== null && nowMs >= this.#previous.createdMs + reject) {
      if (expired.length === 0) expired = [];
      expired.push(this.#previous);
      this.#previous = null;
    }
    if (this.#current !== null && nowMs >= this.#current.createdMs + reject) {
      if (expired.length === 0) expired = [];
      expired.push(this.#current);
      this.#current = null;
      this.#currentCounter = 0n;
    }
    if (this.#next !== null && nowMs >= this.#next.createdMs + reject) {
      if (expired.length === 0) expired = [];
      expired.push(this.#next);
      this.#next = null;
    }
    if (nowMs >= this.#confirmDueAt) {
      this.#confirmDueAt = Infinity;
      keepalive = true;
    }
    const initiate = nowMs >= this.#initiateDueAt;
    const retry = initiate && this.#initiateRetry;
    if (initiate) {
      this.#initiateDueAt = Infinity;
      this.#initiateRetry = false;
    }
    if (!initiate && !keepalive && !giveUp && !zeroAll && expired.length === 0) return NOTHING_DUE;
    return { initiate, retry, keepalive, giveUp, zeroAll, expired };
  }

  /**
   * When poll next has something to report: ms; Infinity if nothing is armed; at or before now if
   * something is due already (-Infinity for the persistent keepalive due at start, so clamp the
   * delay: `Math.max(0, nextDeadline() - now)`, and arm no timer for Infinity).
   */
  nextDeadline(): number {
    let t = Math.min(this.#retransmitAt, this.#keepaliveAt, this.#newHandshakeAt, this.#zeroAt, this.#persistentAt,
      this.#initiateDueAt, this.#confirmDueAt);
    const reject = this.#s.rejectAfterTimeMs;
    if (this.#current !== null) t = Math.min(t, this.#current.createdMs + reject);
    if (this.#previous !== null) t = Math.min(t, this.#previous.createdMs + reject);
    if (this.#next !== null) t = Math.min(t, this.#next.createdMs + reject);
    return t;
  }

  /** The peer is removed or its key changed: every keypair, to wipe; all timers and counts start over. */
  clear(): Keypair[] {
    const all = this.#takeAll();
    this.#retransmitAt = this.#keepaliveAt = this.#newHandshakeAt = this.#zeroAt = Infinity;
    this.#persistentAt = this.#persistentKeepaliveMs > 0 ? -Infinity : Infinity;
    this.#attempts = 0;
    this.#sentLastMinuteHandshake = this.#needAnotherKeepalive = this.#keepaliveRearmed = false;
    this.#lastSentHandshakeMs = -Infinity;
    this.#lastHandshakeMs = 0;
    this.#initiateDueAt = this.#confirmDueAt = Infinity;
    this.#initiateRetry = false;
    return all;
  }

  #find(slot: number): Keypair | null {
    if (this.#current !== null && this.#current.slot === slot) return this.#current;
    if (this.#previous !== null && this.#previous.slot === slot) return this.#previous;
    if (this.#next !== null && this.#next.slot === slot) return this.#next;
    return null;
  }

  #takeAll(): Keypair[] {
    const all: Keypair[] = [];
    if (this.#previous !== null) all.push(this.#previous);
    if (this.#current !== null) all.push(this.#current);
    if (this.#next !== null) all.push(this.#next);
    this.#previous = this.#current = this.#next = null;
    this.#currentCounter = 0n;
    return all;
  }

  /**
   * wireguard-go's SendHandshakeInitiation up to the send: a fresh (non-retry) request restarts
   * the attempt count even when rate-limited; a request within REKEY_TIMEOUT of the last
   * initiation or response sent is dropped.
   */
  #requestInitiation(nowMs: number, isRetry: boolean): void {
    if (!isRetry) this.#attempts = 0;
    if (nowMs - this.#lastSentHandshakeMs < this.#s.rekeyTimeoutMs) return;
    if (this.#initiateDueAt === Infinity) {
      this.#initiateDueAt = nowMs;
      this.#initiateRetry = isRetry;
    } else if (!isRetry) {
      this.#initiateRetry = false;
    }
  }

  /** timersHandshakeComplete: retransmit stops, attempts and sentLastMinuteHandshake reset, the time noted. */
  #handshakeComplete(nowMs: number): void {
    this.#retransmitAt = Infinity;
    this.#initiateDueAt = Infinity;
    this.#initiateRetry = false;
    this.#attempts = 0;
    this.#sentLastMinuteHandshake = false;
    this.#lastHandshakeMs = nowMs;
  }

  /** timersAnyAuthenticatedPacketTraversal: the persistent keepalive restarts. */
  #traversal(nowMs: number): void {
    if (this.#persistentKeepaliveMs > 0) this.#persistentAt = nowMs + this.#persistentKeepaliveMs;
  }

  /** timersAnyAuthenticatedPacketSent: no passive keepalive needed now. */
  #anySent(): void {
    this.#keepaliveAt = Infinity;
  }
}
