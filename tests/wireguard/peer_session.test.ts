/**
 * @module PeerSession, the per-peer session and timer state machine, rule by rule against a fake
 * clock (times are plain numbers), with short timers and a fixed jitter; timerSettings'
 * validation with its exact messages.
 */
import { describe, expect, test } from "bun:test";
import {
  DEFAULT_TIMER_SETTINGS, type Keypair, PeerSession, timerSettings, type WgTimerSettings,
} from "../../src/backend/wireguard/peer_session.ts";
import {
  KEEPALIVE_TIMEOUT_MS, REJECT_AFTER_MESSAGES, REJECT_AFTER_TIME_MS, REKEY_AFTER_MESSAGES, REKEY_AFTER_TIME_MS,
  REKEY_ATTEMPT_TIME_MS, REKEY_TIMEOUT_JITTER_MAX_MS, REKEY_TIMEOUT_MS,
} from "../../src/backend/wireguard/timers.ts";

const JITTER = 7;
/** rekey 3 s, reject 6 s, attempts 3 s / 0.5 s = 6 retries, keepalive 1 s; jitter always 7 ms. */
function settings(over: Partial<WgTimerSettings> = {}): WgTimerSettings {
  return {
    rekeyAfterTimeMs: 3000, rejectAfterTimeMs: 6000, rekeyAttemptTimeMs: 3000, rekeyTimeoutMs: 500,
    keepaliveTimeoutMs: 1000, rekeyAfterMessages: 100n, rejectAfterMessages: 200n, jitterMs: () => JITTER, ...over,
  };
}
const kp = (slot: number, isInitiator: boolean, createdMs: number): Keypair => ({ slot, localIndex: 1000 + slot, isInitiator, createdMs });
const session = (pka = 0, over: Partial<WgTimerSettings> = {}) => new PeerSession(settings(over), pka);

/** A session whose first initiation (at 0) went unanswered and was sent again at 507 ms. */
function retriedOnce(): PeerSession {
  const s = session();
  s.wantHandshake(0);
  s.poll(0);
  s.initiationSent(0, false);
  s.poll(507);
  s.initiationSent(507, true);
  return s;
}
const NOTHING = { initiate: false, retry: false, keepalive: false, giveUp: false, zeroAll: false, expired: [] };

/** A session that initiated at `t` and got its response: current = initiator keypair `slot`, confirming keepalive sent. */
function initiated(s: PeerSession, slot: number, t: number): Keypair {
  s.wantHandshake(t);
  expect(s.poll(t).initiate).toBe(true);
  s.initiationSent(t, false);
  const k = kp(slot, true, t);
  s.handshakeTraffic(t);
  s.sessionDerived(k, t);
  expect(s.poll(t).keepalive).toBe(true);
  s.sent(t, true, 1n);
  return k;
}

describe("timerSettings", () => {
  test("DEFAULT_TIMER_SETTINGS holds the whitepaper's values and a whole-ms jitter in [0, 334)", () => {
    expect(DEFAULT_TIMER_SETTINGS).toMatchObject({
      rekeyAfterTimeMs: REKEY_AFTER_TIME_MS, rejectAfterTimeMs: REJECT_AFTER_TIME_MS, rekeyAttemptTimeMs: REKEY_ATTEMPT_TIME_MS,
      rekeyTimeoutMs: REKEY_TIMEOUT_MS, keepaliveTimeoutMs: KEEPALIVE_TIMEOUT_MS,
      rekeyAfterMessages: REKEY_AFTER_MESSAGES, rejectAfterMessages: REJECT_AFTER_MESSAGES,
    });
    for (let i = 0; i < 1000; i++) {
      const j = DEFAULT_TIMER_SETTINGS.jitterMs();
      expect(Number.isInteger(j) && j >= 0 && j < REKEY_TIMEOUT_JITTER_MAX_MS).toBe(true);
    }
  });

  test("undefined or empty → the defaults", () => {
    expect(timerSettings(undefined)).toBe(DEFAULT_TIMER_SETTINGS);
    expect(timerSettings("")).toBe(DEFAULT_TIMER_SETTINGS);
  });

  test("overrides replace only the keys given", () => {
    const s = timerSettings('{"rekeyAfterTimeMs":3000,"rejectAfterTimeMs":6000,"keepaliveTimeoutMs":1000,"rekeyTimeoutMs":500,"rekeyAttemptTimeMs":3000}');
    expect(s).toMatchObject({
      rekeyAfterTimeMs: 3000, rejectAfterTimeMs: 6000, keepaliveTimeoutMs: 1000, rekeyTimeoutMs: 500, rekeyAttemptTimeMs: 3000,
      rekeyAfterMessages: REKEY_AFTER_MESSAGES, rejectAfterMessages: REJECT_AFTER_MESSAGES,
    });
    expect(s.jitterMs).toBe(DEFAULT_TIMER_SETTINGS.jitterMs);
    expect(timerSettings('{"rekeyAfterMessages":1000,"rejectAfterMessages":"18446744073709543423"}')).toMatchObject({
      rekeyAfterMessages: 1000n, rejectAfterMessages: 18446744073709543423n,
    });
  });

  test.each([
    ['{"rekeyAfterTime":3000}', 'WEFT_TEST_WG_TIMERS key "rekeyAfterTime" (value 3000) is not a timer setting; allowed keys: rekeyAfterTimeMs, rejectAfterTimeMs, rekeyAttemptTimeMs, rekeyTimeoutMs, keepaliveTimeoutMs, rekeyAfterMessages, rejectAfterMessages'],
    ['{"rekeyTimeoutMs":0}', "WEFT_TEST_WG_TIMERS rekeyTimeoutMs 0 must be a positive whole number of milliseconds"],
    ['{"keepaliveTimeoutMs":-5}', "WEFT_TEST_WG_TIMERS keepaliveTimeoutMs -5 must be a positive whole number of milliseconds"],
    ['{"rekeyAfterTimeMs":2.5}', "WEFT_TEST_WG_TIMERS rekeyAfterTimeMs 2.5 must be a positive whole number of milliseconds"],
    ['{"rekeyAttemptTimeMs":"3000"}', 'WEFT_TEST_WG_TIMERS rekeyAttemptTimeMs "3000" must be a positive whole number of milliseconds'],
    ['{"rekeyAfterMessages":0}', "WEFT_TEST_WG_TIMERS rekeyAfterMessages 0 must be a positive whole number of messages"],
    ['{"rekeyAfterTimeMs":6000,"rejectAfterTimeMs":6000}', "WEFT_TEST_WG_TIMERS rejectAfterTimeMs 6000 must be greater than rekeyAfterTimeMs 6000"],
    ['{"rekeyAfterTimeMs":200000}', "WEFT_TEST_WG_TIMERS rejectAfterTimeMs 180000 must be greater than rekeyAfterTimeMs 200000"],
    ['{"rejectAfterMessages":5,"rekeyAfterMessages":5}', "WEFT_TEST_WG_TIMERS rejectAfterMessages 5 must be greater than rekeyAfterMessages 5"],
    ["rekey=3000", 'WEFT_TEST_WG_TIMERS "rekey=3000" must be a JSON object of timer settings, e.g. {"rekeyAfterTimeMs":3000,"rejectAfterTimeMs":6000}'],
    ["[3000]", 'WEFT_TEST_WG_TIMERS "[3000]" must be a JSON object of timer settings, e.g. {"rekeyAfterTimeMs":3000,"rejectAfterTimeMs":6000}'],
  ])("%s is refused", (text, message) => {
    expect(() => timerSettings(text)).toThrow(new Error(message));
  });
});

describe("keypair slots (BeginSymmetricSession, ReceivedWithKeypair)", () => {
  test("an initiator's keypair becomes current at once; the old current becomes previous, the older goes", () => {
    const s = session();
    const a = kp(1, true, 0), b = kp(2, true, 100), c = kp(3, true, 200);
    expect(s.sessionDerived(a, 0)).toEqual([]);
    expect([s.current, s.previous, s.next]).toEqual([a, null, null]);
    expect(s.sendSlot(0)).toBe(1);
    expect(s.sessionDerived(b, 100)).toEqual([]);
    expect([s.current, s.previous, s.next]).toEqual([b, a, null]);
    expect(s.sessionDerived(c, 200)).toEqual([a]);
    expect([s.current, s.previous, s.next]).toEqual([c, b, null]);
    expect(s.sendSlot(200)).toBe(3);
  });

  test("a responder's keypair waits in next, unused for sending, until the first message on it rotates it in", () => {
    const s = session();
    const r = kp(5, false, 0);
    expect(s.sessionDerived(r, 0)).toEqual([]);
    expect([s.current, s.previous, s.next]).toEqual([null, null, r]);
    expect(s.sendSlot(0)).toBe(-1);
    expect(s.lastHandshakeMs).toBe(0);
    expect(s.received(5, 40, true)).toEqual([]);
    expect([s.current, s.previous, s.next]).toEqual([r, null, null]);
    expect(s.sendSlot(40)).toBe(5);
    expect(s.lastHandshakeMs).toBe(40);
  });

  test("a responder keeps sending on its old current until the new keypair is confirmed; rotation displaces the old previous", () => {
    const s = session();
    const a = kp(1, true, 0), b = kp(2, true, 100), r = kp(3, false, 200);
    s.sessionDerived(a, 0);
    s.sessionDerived(b, 100); // current b, previous a
    expect(s.sessionDerived(r, 200)).toEqual([a]); // a responder's session derivation drops previous
    expect([s.current, s.previous, s.next]).toEqual([b, null, r]);
    expect(s.sendSlot(200)).toBe(2);
    expect(s.received(2, 210, false)).toEqual([]); // on current: no rotation
    expect(s.next).toBe(r);
    const r2 = kp(4, false, 300);
    expect(s.sessionDerived(r2, 300)).toEqual([r]); // a newer response replaces the unconfirmed next
    expect(s.received(4, 310, true)).toEqual([]);
    expect([s.current, s.previous, s.next]).toEqual([r2, b, null]);
    const r3 = kp(6, false, 400);
    s.sessionDerived(r3, 400);
    expect([s.current, s.previous, s.next]).toEqual([r2, null, r3]);
    s.sessionDerived(kp(7, true, 450), 450); // an initiator keypair with next waiting: next → previous, current goes
    s.sessionDerived(kp(8, false, 500), 500);
    s.received(8, 510, false);
    expect(s.previous?.slot).toBe(7);
  });

  test("an initiator's keypair with a responder keypair in next: next becomes previous, the old current and previous go", () => {
    const s = session();
    const a = kp(1, true, 0), r = kp(2, false, 100), i = kp(3, true, 150);
    s.sessionDerived(a, 0);
    s.sessionDerived(r, 100);
    expect(s.sessionDerived(i, 150)).toEqual([a]);
    expect([s.current, s.previous, s.next]).toEqual([i, r, null]);
  });

  test("a message on an unknown slot changes nothing; receiveAllowed refuses unknown and REJECT_AFTER_TIME-old slots", () => {
    const s = session();
    const r = kp(5, false, 0);
    s.sessionDerived(r, 0);
    expect(s.received(9, 10, false)).toEqual([]);
    expect(s.next).toBe(r);
    expect(s.nextDeadline()).toBe(6000); // no keepalive armed by the stray message: only r's age limit
    expect(s.receiveAllowed(9, 10)).toBe(false);
    expect(s.receiveAllowed(5, 5999)).toBe(true);
    expect(s.receiveAllowed(5, 6000)).toBe(false);
    expect(s.received(5, 6000, false)).toEqual([]); // too old to confirm
    expect(s.current).toBeNull();
  });
});

describe("sending limits (§6.2, SendStagedPackets)", () => {
  test("sendSlot is -1 from REJECT_AFTER_TIME on", () => {
    const s = session();
    s.sessionDerived(kp(1, true, 1000), 1000);
    expect(s.sendSlot(6999)).toBe(1);
    expect(s.sendSlot(7000)).toBe(-1);
  });

  test("sendSlot is -1 once the send counter reaches REJECT_AFTER_MESSAGES; a new keypair starts from 0", () => {
    const s = session();
    s.sessionDerived(kp(1, true, 0), 0);
    s.sent(0, false, 199n);
    expect(s.sendSlot(1)).toBe(1);
    s.sent(1, false, 200n);
    expect(s.sendSlot(1)).toBe(-1);
    s.sessionDerived(kp(2, true, 2), 2);
    expect(s.sendSlot(2)).toBe(2);
  });
});

describe("rekeying", () => {
  test("keepKeyFreshSending: an initiator's send on a keypair older than REKEY_AFTER_TIME initiates; a responder's does not", () => {
    const i = session();
    i.sessionDerived(kp(1, true, 0), 0);
    i.poll(0); // the confirming keepalive
    i.sent(3000, false, 5n);
    expect(i.poll(3000).initiate).toBe(false);
    i.sent(3001, false, 6n);
    expect(i.poll(3001)).toMatchObject({ initiate: true, retry: false });

    const r = session();
    r.sessionDerived(kp(1, false, 0), 0);
    r.received(1, 10, true);
    r.sent(5000, false, 5n);
    expect(r.poll(5000).initiate).toBe(false);
  });

  test("keepKeyFreshSending: a send counter past REKEY_AFTER_MESSAGES initiates, for either role", () => {
    const r = session();
    r.sessionDerived(kp(1, false, 0), 0);
    r.received(1, 10, true);
    r.sent(600, false, 100n);
    expect(r.poll(600).initiate).toBe(false);
    r.sent(600, false, 101n);
    expect(r.poll(600).initiate).toBe(true);
  });

  test("keepKeyFreshReceiving: an initiator whose keypair is older than REJECT − KEEPALIVE − REKEY_TIMEOUT initiates once", () => {
    const s = session();
    initiated(s, 1, 0); // 6000 − 1000 − 500 = 4500
    s.received(1, 4500, false);
    expect(s.poll(4500).initiate).toBe(false);
    s.received(1, 4501, true);
    expect(s.poll(4501)).toMatchObject({ initiate: true, retry: false });
    s.initiationSent(4501, false);
    expect(s.poll(5008)).toMatchObject({ initiate: true, retry: true }); // its retransmit
    s.initiationSent(5008, true);
    s.received(1, 5510, false); // past the rate limit (5008 + 500), before the next retransmit (5515), but sentLastMinuteHandshake holds
    expect(s.poll(5510).initiate).toBe(false);
    expect(s.handshakeAttempts).toBe(1); // no fresh request restarted the count either
    s.sessionDerived(kp(2, true, 5200), 5200); // a completed handshake resets it
    s.poll(5200);
    s.received(2, 9701, true);
    expect(s.poll(9701).initiate).toBe(true);
  });

  test("keepKeyFreshReceiving: a responder never initiates for an old keypair", () => {
    const s = session();
    s.sessionDerived(kp(1, false, 0), 0);
    s.received(1, 10, false);
    s.received(1, 5900, false);
    expect(s.poll(5900).initiate).toBe(false);
  });
});

describe("handshake initiation (§6.4, SendHandshakeInitiation, expiredRetransmitHandshake)", () => {
  test("wantHandshake initiates at once, not again within REKEY_TIMEOUT of the last initiation", () => {
    const s = session();
    expect(s.nextDeadline()).toBe(Infinity);
    s.wantHandshake(100);
    expect(s.nextDeadline()).toBe(100);
    expect(s.poll(100)).toEqual({ ...NOTHING, initiate: true });
    s.initiationSent(100, false);
    s.wantHandshake(599);
    expect(s.poll(599).initiate).toBe(false);
    s.wantHandshake(600);
    expect(s.poll(600).initiate).toBe(true);
  });

  test("a response this side sent counts for the rate limit too (SendHandshakeResponse)", () => {
    const s = session();
    s.sessionDerived(kp(1, false, 1000), 1000);
    s.wantHandshake(1200); // data waits for the initiator's confirmation
    expect(s.poll(1200).initiate).toBe(false);
    s.wantHandshake(1500);
    expect(s.poll(1500).initiate).toBe(true);
  });

  test("an unanswered initiation is retried after REKEY_TIMEOUT + a fresh jitter each time", () => {
    const jitters = [3, 11, 5];
    let calls = 0;
    const s = session(0, { jitterMs: () => jitters[calls++] ?? 0 });
    s.wantHandshake(0);
    s.poll(0);
    s.initiationSent(0, false);
    expect(s.nextDeadline()).toBe(503);
    expect(s.poll(502).initiate).toBe(false);
    expect(s.poll(503)).toEqual({ ...NOTHING, initiate: true, retry: true });
    expect(s.handshakeAttempts).toBe(1);
    s.initiationSent(503, true);
    expect(s.nextDeadline()).toBe(503 + 500 + 11);
    expect(s.poll(1014)).toMatchObject({ initiate: true, retry: true });
    expect(s.handshakeAttempts).toBe(2);
    expect(calls).toBe(2);
  });

  test("after REKEY_ATTEMPT_TIME / REKEY_TIMEOUT retries it gives up, and a new wantHandshake starts over", () => {
    const s = session(); // 3000 / 500 = 6 retries → 8 initiations, as wireguard-go's MaxTimerHandshakes + 2
    s.wantHandshake(0);
    let sent = 0, now = 0, due = s.poll(0);
    while (due.initiate) {
      s.initiationSent(now, due.retry);
      sent++;
      now = s.nextDeadline();
      due = s.poll(now);
    }
    expect(sent).toBe(8);
    expect(due).toEqual({ ...NOTHING, giveUp: true });
    expect(now).toBe(8 * 507);
    expect(s.nextDeadline()).toBe(now + 18000); // zero timer armed for what a partial exchange left
    s.wantHandshake(now + 1);
    expect(s.handshakeAttempts).toBe(0);
    expect(s.poll(now + 1)).toMatchObject({ initiate: true, retry: false });
  });

  test("data waiting (wantHandshake) restarts the attempt count, as a non-retry initiation does", () => {
    const s = retriedOnce();
    expect(s.handshakeAttempts).toBe(1);
    s.wantHandshake(600); // rate-limited, but the count restarts
    expect(s.handshakeAttempts).toBe(0);
    expect(s.poll(600).initiate).toBe(false);
  });

  test("the response completes the handshake: retransmit stops, attempts reset, a confirming keepalive is due", () => {
    const s = retriedOnce();
    s.handshakeTraffic(520);
    s.sessionDerived(kp(1, true, 520), 520);
    expect(s.handshakeAttempts).toBe(0);
    expect(s.lastHandshakeMs).toBe(520);
    expect(s.nextDeadline()).toBe(520);
    expect(s.poll(520)).toEqual({ ...NOTHING, keepalive: true });
    s.sent(520, true, 1n);
    expect(s.nextDeadline()).toBe(520 + 6000); // only the keypair's age limit: no retransmit
  });
});

describe("keepalives (§6.5, timersDataReceived, expiredSendKeepalive)", () => {
  test("data received and nothing sent for KEEPALIVE_TIMEOUT → one keepalive", () => {
    const s = session();
    initiated(s, 1, 0);
    s.received(1, 100, false);
    expect(s.nextDeadline()).toBe(1100);
    expect(s.poll(1099).keepalive).toBe(false);
    expect(s.poll(1100)).toEqual({ ...NOTHING, keepalive: true });
    s.sent(1100, true, 2n);
    expect(s.poll(2100).keepalive).toBe(false);
  });

  test("data sent in the meantime cancels the keepalive; a keepalive received arms none", () => {
    const s = session();
    initiated(s, 1, 0);
    s.received(1, 100, false);
    s.sent(300, false, 2n);
    expect(s.poll(1100).keepalive).toBe(false);
    s.received(1, 1200, true);
    expect(s.poll(2200).keepalive).toBe(false);
  });

  test("needAnotherKeepalive: data received while the keepalive timer runs → one more keepalive KEEPALIVE_TIMEOUT later", () => {
    const s = session();
    initiated(s, 1, 0);
    s.received(1, 100, false);
    s.received(1, 600, false); // timer already running: not pushed back
    expect(s.nextDeadline()).toBe(1100);
    expect(s.poll(1100).keepalive).toBe(true);
    s.sent(1100, true, 2n); // the keepalive asked for does not cancel the second one
    expect(s.nextDeadline()).toBe(2100);
    expect(s.poll(2100).keepalive).toBe(true);
    s.sent(2100, true, 3n);
    expect(s.poll(3100).keepalive).toBe(false);
  });
});

describe("newHandshake (§6.5, timersDataSent, expiredNewHandshake)", () => {
  test("data sent and nothing received for KEEPALIVE_TIMEOUT + REKEY_TIMEOUT + jitter → initiate", () => {
    const s = session();
    initiated(s, 1, 0);
    s.sent(100, false, 2n);
    s.sent(400, false, 3n); // armed once: not pushed back
    s.sent(500, true, 4n); // keepalives do not arm it
    expect(s.nextDeadline()).toBe(100 + 1000 + 500 + JITTER);
    expect(s.poll(1606).initiate).toBe(false);
    expect(s.poll(1607)).toEqual({ ...NOTHING, initiate: true });
  });

  test("anything authenticated received (transport or handshake) cancels it", () => {
    const s = session();
    initiated(s, 1, 0);
    s.sent(100, false, 2n);
    s.received(1, 900, true);
    expect(s.poll(1607).initiate).toBe(false);
    s.sent(2000, false, 3n);
    s.handshakeTraffic(2500);
    expect(s.poll(3507).initiate).toBe(false);
  });
});

describe("persistent keepalive (timersAnyAuthenticatedPacketTraversal, expiredPersistentKeepalive)", () => {
  test("due at once when configured, then the interval after any authenticated packet either way", () => {
    const s = session(2000);
    expect(s.nextDeadline()).toBe(-Infinity);
    expect(s.poll(50)).toEqual({ ...NOTHING, keepalive: true });
    expect(s.nextDeadline()).toBe(Infinity);
    s.wantHandshake(50); // no keypair: the keepalive turns into a handshake
    s.poll(50);
    s.initiationSent(50, false);
    s.handshakeTraffic(60);
    s.sessionDerived(kp(1, true, 60), 60);
    s.poll(60);
    s.sent(60, true, 1n);
    s.received(1, 500, false);
    s.sent(800, false, 2n);
    s.received(1, 900, true); // newHandshake cancelled; persistent now at 2900
    expect(s.poll(2899).keepalive).toBe(false);
    expect(s.poll(2900)).toEqual({ ...NOTHING, keepalive: true });
    s.sent(2900, true, 3n);
    expect(s.nextDeadline()).toBe(4900);
  });

  test("off (0): never due", () => {
    const s = session(0);
    initiated(s, 1, 0);
    expect(s.poll(100000).keepalive).toBe(false);
  });
});

describe("key expiry (§6.3, zeroKeyMaterial)", () => {
  test("a keypair is reported expired once REJECT_AFTER_TIME old", () => {
    const s = session();
    const a = kp(1, true, 0);
    s.sessionDerived(a, 0);
    s.poll(0);
    const b = kp(2, true, 1000);
    s.sessionDerived(b, 1000);
    s.poll(1000);
    expect(s.nextDeadline()).toBe(6000);
    expect(s.poll(6000)).toEqual({ ...NOTHING, expired: [a] });
    expect([s.current, s.previous]).toEqual([b, null]);
    expect(s.poll(7000)).toEqual({ ...NOTHING, expired: [b] });
    expect(s.current).toBeNull();
  });

  test("REJECT_AFTER_TIME × 3 after the last keypair was derived, everything is zeroed", () => {
    const s = session();
    const a = kp(1, true, 0), r = kp(2, false, 100);
    s.sessionDerived(a, 0);
    s.sessionDerived(r, 100); // restarts the zero timer
    s.poll(100);
    expect(s.poll(18099).zeroAll).toBe(false); // (a and r aged out on the way)
    const t = session();
    t.sessionDerived(a, 0);
    t.sessionDerived(r, 100);
    t.poll(100);
    expect(t.poll(18100)).toEqual({ ...NOTHING, zeroAll: true, expired: [a, r] });
    expect([t.current, t.previous, t.next]).toEqual([null, null, null]);
    expect(t.nextDeadline()).toBe(Infinity);
  });
});

describe("clear", () => {
  test("returns every keypair and starts over", () => {
    const s = session(2000);
    s.poll(0);
    const a = kp(1, true, 0), b = kp(2, true, 10), r = kp(3, false, 20);
    s.sessionDerived(a, 0);
    s.sessionDerived(b, 10);
    s.sessionDerived(r, 20);
    expect(s.clear()).toEqual([b, r]);
    expect([s.current, s.previous, s.next, s.lastHandshakeMs, s.handshakeAttempts]).toEqual([null, null, null, 0, 0]);
    expect(s.nextDeadline()).toBe(-Infinity); // persistent keepalive due at once again
    s.poll(30);
    expect(s.nextDeadline()).toBe(Infinity);
    s.wantHandshake(30); // the rate limit starts over as well
    expect(s.poll(30).initiate).toBe(true);
  });
});
