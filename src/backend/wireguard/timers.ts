/**
 * @module WireGuard's protocol constants (whitepaper §6.1, the values wireguard-go uses), in
 * milliseconds and message counts, for the session and timer logic the backend builds over
 * noise.ts. A session's keys serve sending until REKEY_AFTER_TIME (the initiator then starts a
 * new handshake) and are refused after REJECT_AFTER_TIME; an unanswered initiation is retried
 * every REKEY_TIMEOUT (plus up to REKEY_TIMEOUT_JITTER_MAX) for REKEY_ATTEMPT_TIME; a peer that
 * received data and sent nothing for KEEPALIVE_TIMEOUT sends a keepalive. The timer logic should
 * take them as parameters, so that a test can shorten them (issue #18's rekey test) while weft
 * runs with these. COOKIE_REFRESH_MS (cookie.ts) and INITIATION_MIN_INTERVAL_MS (noise.ts) live
 * beside the code that applies them.
 */

export const REKEY_AFTER_MESSAGES = 2n ** 60n;
export const REJECT_AFTER_MESSAGES = 2n ** 64n - 2n ** 13n - 1n;
export const REKEY_AFTER_TIME_MS = 120_000;
export const REJECT_AFTER_TIME_MS = 180_000;
export const REKEY_ATTEMPT_TIME_MS = 90_000;
export const REKEY_TIMEOUT_MS = 5_000;
export const REKEY_TIMEOUT_JITTER_MAX_MS = 334;
export const KEEPALIVE_TIMEOUT_MS = 10_000;
/** A transport packet's payload is padded to a multiple of this. */
export const PADDING_MULTIPLE = 16;
/** A device counts as under load (asks for MAC2) this long after it last was (wireguard-go). */
export const UNDER_LOAD_AFTER_MS = 1_000;
