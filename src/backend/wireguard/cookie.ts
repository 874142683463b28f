/**
 * @module WireGuard's DoS defence (whitepaper §5.4.4, §5.4.7): every handshake message ends in
 * `mac1 ‖ mac2`. MAC1 = MAC(HASH("mac1----" ‖ receiver's public key), message up to mac1) proves
 * the sender knows whom it is talking to, and is always checked. Under load a responder also
 * wants MAC2 = MAC(cookie, message up to mac2), where the cookie = MAC(secret, sender address)
 * and the secret changes every two minutes; a message without a valid MAC2 gets a cookie reply
 * (type 3, 64 bytes) instead of an answer: the cookie sealed with XChaCha20-Poly1305 under
 * HASH("cookie--" ‖ responder's public key), with the message's MAC1 as additional data.
 *
 * `CookieChecker` is the receiving side (one per device, over our public key); a
 * `CookieGenerator` is the sending side (one per peer, over the peer's public key). Time comes in
 * as milliseconds; randomness is injected.
 *
 * @example
 *   const gen = new CookieGenerator(peerPublic);
 *   gen.addMacs(initiation, nowMs);                    // fills its last 32 bytes
 *   new CookieChecker(peerPublic, random).checkMac1(initiation)   // true, on the peer
 */
import { xchacha20Poly1305Open, xchacha20Poly1305Seal } from "./aead.ts";
import { hash, mac } from "./kdf.ts";

/** Length of MAC1, MAC2 and a cookie. */
export const MAC_LEN = 16;
/** A cookie secret, and a received cookie, live this long (whitepaper §6.1 Cookie-Refresh-Time). */
export const COOKIE_REFRESH_MS = 120_000;
/** Message type of a cookie reply. */
export const MESSAGE_COOKIE_REPLY = 3;
/** Size of a cookie reply: type ‖ receiver ‖ nonce(24) ‖ sealed cookie(32). */
export const COOKIE_REPLY_LEN = 64;

const LABEL_MAC1 = new TextEncoder().encode("mac1----");
const LABEL_COOKIE = new TextEncoder().encode("cookie--");

/** HASH(label ‖ public key): the MAC1 key and the cookie encryption key of a public key. */
function keysOf(publicKey: Uint8Array): { mac1Key: Uint8Array; cookieKey: Uint8Array } {
  return { mac1Key: hash(LABEL_MAC1, publicKey), cookieKey: hash(LABEL_COOKIE, publicKey) };
}

function equal(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a[i]! ^ b[i]!;
  return d === 0;
}

/** Checks MAC1/MAC2 of messages sent to us and makes cookie replies. */
export class CookieChecker {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private secret: Uint8Array = new Uint8Array(32);
  private secretSetMs = -Infinity;

  constructor(ourPublicKey: Uint8Array, private readonly random: (n: number) => Uint8Array) {
    ({ mac1Key: this.mac1Key, cookieKey: this.cookieKey } = keysOf(ourPublicKey));
  }

  /** True when the message's MAC1 is right for our public key. */
  checkMac1(msg: Uint8Array): boolean {
    const at = msg.length - 2 * MAC_LEN;
    return equal(mac(this.mac1Key, msg.subarray(0, at)), msg.subarray(at, at + MAC_LEN));
  }

  /** True when the message's MAC2 is right for the cookie of `src` (address bytes) now. */
  checkMac2(msg: Uint8Array, src: Uint8Array, nowMs: number): boolean {
    if (nowMs - this.secretSetMs > COOKIE_REFRESH_MS) return false; // no cookie given out is still valid
    const at = msg.length - MAC_LEN;
    return equal(mac(mac(this.secret, src), msg.subarray(0, at)), msg.subarray(at));
  }

  /** The 64-byte cookie reply to `msg` (whose sender index is `receiver`) from `src`. */
  createReply(msg: Uint8Array, receiver: number, src: Uint8Array, nowMs: number): Uint8Array {
    if (nowMs - this.secretSetMs > COOKIE_REFRESH_MS) {
      this.secret = this.random(32);
      this.secretSetMs = nowMs;
    }
    const cookie = mac(this.secret, src);
    const reply = new Uint8Array(COOKIE_REPLY_LEN);
    const dv = new DataView(reply.buffer);
    dv.setUint32(0, MESSAGE_COOKIE_REPLY, true);
    dv.setUint32(4, receiver, true);
    const nonce = this.random(24);
    reply.set(nonce, 8);
    const at = msg.length - 2 * MAC_LEN;
    reply.set(xchacha20Poly1305Seal(this.cookieKey, nonce, cookie, msg.subarray(at, at + MAC_LEN)), 32);
    return reply;
  }
}

/** Adds MAC1/MAC2 to messages we send one peer and takes the cookies it replies with. */
export class CookieGenerator {
  private readonly mac1Key: Uint8Array;
  private readonly cookieKey: Uint8Array;
  private cookie: Uint8Array | null = null;
  private cookieSetMs = -Infinity;
  private lastMac1: Uint8Array | null = null;

  constructor(peerPublicKey: Uint8Array) {
    ({ mac1Key: this.mac1Key, cookieKey: this.cookieKey } = keysOf(peerPublicKey));
  }

  /** Fills the last 32 bytes of `msg`: MAC1, and MAC2 when a cookie younger than 120 s is held (else zeros). */
  addMacs(msg: Uint8Array, nowMs: number): void {
    const at1 = msg.length - 2 * MAC_LEN;
    const at2 = msg.length - MAC_LEN;
    const mac1 = mac(this.mac1Key, msg.subarray(0, at1));
    msg.set(mac1, at1);
    this.lastMac1 = mac1;
    if (this.cookie && nowMs - this.cookieSetMs <= COOKIE_REFRESH_MS) {
      msg.set(mac(this.cookie, msg.subarray(0, at2)), at2);
    } else {
      msg.fill(0, at2);
    }
  }

  /** Takes the cookie from a 64-byte cookie reply; false when it does not decrypt for our last MAC1. */
  consumeReply(reply: Uint8Array, nowMs: number): boolean {
    if (reply.length !== COOKIE_REPLY_LEN || !this.lastMac1) return false;
    const cookie = xchacha20Poly1305Open(this.cookieKey, reply.subarray(8, 32), reply.subarray(32), this.lastMac1);
    if (!cookie) return false;
    this.cookie = cookie;
    this.cookieSetMs = nowMs;
    return true;
  }
}
