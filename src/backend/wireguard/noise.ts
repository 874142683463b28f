/**
 * @module WireGuard's handshake, Noise_IKpsk2 (whitepaper §5.4), as a pure state machine: bytes
 * in → bytes out and session keys. No sockets and no clocks: the caller passes the time (wall
 * clock ms, for TAI64N and the cookie and flood timers), the sender's address bytes (for
 * cookies) and whether it is under load; randomness (ephemeral keys, indices, cookie nonces) is
 * injected.
 *
 * Messages, all little-endian, each ending in mac1(16) ‖ mac2(16) (see cookie.ts):
 *   1 initiation, 148 bytes: type(1) 0(3) sender(4) ephemeral(32) static(32+16) timestamp(12+16) macs
 *   2 response,    92 bytes: type(1) 0(3) sender(4) receiver(4) ephemeral(32) empty(0+16) macs
 *   3 cookie reply, 64 bytes: type(1) 0(3) receiver(4) nonce(24) cookie(16+16)
 *
 * Flow (initiator I, responder R; C chaining key, H transcript hash):
 *   1. I: createInitiation(R) — C, H from the protocol names; mix R's static; a fresh ephemeral;
 *      seal I's static under DH(eI, sR) and a TAI64N timestamp under DH(sI, sR).
 *   2. R: receive(initiation) — MAC1 (MAC2 under load, else a cookie reply), open static, find the
 *      peer, open the timestamp; refuse one not newer than the last from that peer (replay) or
 *      within 20 ms of the last accepted (flood); answer at once with a response: a fresh
 *      ephemeral, DH(eR, eI), DH(eR, sI), the PSK mixed in, an empty sealed payload. R's session
 *      keys exist now; R should use them to send only after I's first transport packet.
 *   3. I: receive(response) — the same mixing from I's side; the empty payload authenticates the
 *      whole transcript (a wrong PSK fails here). Session keys: (send, receive) = KDF2(C, ε) for
 *      I and reversed for R.
 *
 * @example
 *   const a = new Noise({ privateKey: ka }), b = new Noise({ privateKey: kb });
 *   a.addPeer({ publicKey: b.publicKey }); b.addPeer({ publicKey: a.publicKey });
 *   const r = b.receive(a.createInitiation(b.publicKey, now), addr, now);   // kind "response"
 *   const s = a.receive(r.message, addr, now);                               // kind "session"
 */
import { randomBytes } from "node:crypto";
import { type Aead, chacha20Poly1305, TAG_LEN } from "./aead.ts";
import { CookieChecker, CookieGenerator, COOKIE_REPLY_LEN, MAC_LEN, MESSAGE_COOKIE_REPLY } from "./cookie.ts";
import { hash, kdf1, kdf2, kdf3 } from "./kdf.ts";
import { tai64n, tai64nAfter, TAI64N_LEN } from "./tai64n.ts";
import { KEY_LEN, publicKeyOf, x25519 } from "./x25519.ts";

export const MESSAGE_INITIATION = 1;
export const MESSAGE_RESPONSE = 2;
export { MAC_LEN, MESSAGE_COOKIE_REPLY };
/** Transport data: type ‖ receiver(4) ‖ counter(8, little-endian) ‖ sealed packet. */
export const MESSAGE_TRANSPORT = 4;
export const INITIATION_LEN = 148;
export const RESPONSE_LEN = 92;
export { COOKIE_REPLY_LEN };

/** The protocol's names (whitepaper §5.4.1). */
export const CONSTRUCTION = "Noise_IKpsk2_25519_ChaChaPoly_BLAKE2s";
export const IDENTIFIER = "WireGuard v1 zx2c4 Jason@zx2c4.com";
/** A responder accepts at most one initiation per peer in this window (wireguard-go's HandshakeInitationRate). */
export const INITIATION_MIN_INTERVAL_MS = 20;

const enc = new TextEncoder();
const INITIAL_CHAIN_KEY = hash(enc.encode(CONSTRUCTION));
const INITIAL_HASH = hash(INITIAL_CHAIN_KEY, enc.encode(IDENTIFIER));
const EMPTY = new Uint8Array(0);
const ZERO_KEY = new Uint8Array(KEY_LEN);

/** What the transport needs of an established handshake. */
export interface Session {
  /** The peer's static public key. */
  readonly peer: Uint8Array;
  /** Our index: the receiver field of transport packets sent to us. */
  readonly localIndex: number;
  /** The peer's index: the receiver field of transport packets we send. */
  readonly remoteIndex: number;
  readonly sendKey: Uint8Array;
  readonly receiveKey: Uint8Array;
  /** True on the side that sent the initiation. A responder sends only after it received. */
  readonly isInitiator: boolean;
  /** When the keys were derived (the caller's clock, ms): the start of the rekey timers. */
  readonly createdMs: number;
}

/** Why a message was refused; each is counted in `Noise.rejected`. */
export type RejectReason =
  | "size" // not a handshake message of its type's exact length
  | "mac1" // MAC1 wrong: not meant for our key, or altered
  | "decrypt" // a sealed field did not open (altered, or not for our key)
  | "unknown-peer" // a valid initiation from a static key we have no peer for
  | "replay" // timestamp not newer than the last accepted from that peer
  | "flood" // a second initiation within 20 ms
  | "unknown-index" // a response or cookie reply for no handshake of ours
  | "bad-key" // a DH gave all zeros (low-order point)
  | "response-auth" // a response's transcript did not authenticate (wrong PSK or key)
  | "cookie"; // a cookie reply that did not open

/** The outcome of `receive`. */
export type HandshakeResult =
  | { kind: "response"; message: Uint8Array; session: Session }
  | { kind: "session"; session: Session }
  | { kind: "cookie-reply"; message: Uint8Array }
  | { kind: "cookie-stored"; peer: Uint8Array }
  | { kind: "rejected"; reason: RejectReason };

/** A peer as the backend configures it (`wg set … peer <key> [preshared-key …]`). */
export interface NoisePeer {
  publicKey: Uint8Array;
  /** 32 bytes; absent = all zeros, as WireGuard uses without a PSK. */
  presharedKey?: Uint8Array;
}

export interface NoiseOptions {
  privateKey: Uint8Array;
  /** Source of random bytes (default: node:crypto randomBytes). */
  random?: (n: number) => Uint8Array;
  /** The AEAD for the handshake's sealed fields (default: the TypeScript ChaCha20-Poly1305). */
  aead?: Aead;
  /**
   * A fresh candidate for our receiver index (default: 32 random bits). The backend's packet
   * core finds a session by the index's low bits, so it hands out indices that name a free slot.
   */
  index?: () => number;
}

interface Pending {
  localIndex: number;
  hash: Uint8Array;
  chainKey: Uint8Array;
  ephemeralPrivate: Uint8Array;
}

interface PeerState {
  readonly publicKey: Uint8Array;
  readonly presharedKey: Uint8Array;
  /** DH(our static, their static), or null for a low-order key. */
  readonly staticStatic: Uint8Array | null;
  readonly cookies: CookieGenerator;
  lastTimestamp: Uint8Array;
  lastInitiationMs: number;
  pending: Pending | null;
}

const keyId = (k: Uint8Array) => Buffer.from(k).toString("base64");

/** One device's handshakes: its static key, its peers, its pending initiations. */
export class Noise {
  readonly publicKey: Uint8Array;
  /** Messages refused, by reason. */
  readonly rejected: Record<RejectReason, number> = {
    size: 0, mac1: 0, decrypt: 0, "unknown-peer": 0, replay: 0, flood: 0, "unknown-index": 0,
    "bad-key": 0, "response-auth": 0, cookie: 0,
  };
  private readonly privateKey: Uint8Array;
  private readonly random: (n: number) => Uint8Array;
  private readonly aead: Aead;
  private readonly index: () => number;
  private readonly checker: CookieChecker;
  private readonly peers = new Map<string, PeerState>();
  /** Every index we handed out and not yet released → its peer. */
  private readonly indices = new Map<number, PeerState>();

  constructor(opts: NoiseOptions) {
    this.privateKey = Uint8Array.from(opts.privateKey);
    this.publicKey = publicKeyOf(this.privateKey);
    this.random = opts.random ?? ((n) => new Uint8Array(randomBytes(n)));
    this.aead = opts.aead ?? chacha20Poly1305;
    this.index = opts.index ?? (() => {
      const b = this.random(4);
      return (b[0]! | (b[1]! << 8) | (b[2]! << 16) | (b[3]! << 24)) >>> 0;
    });
    this.checker = new CookieChecker(this.publicKey, this.random);
  }

  /** Adds or replaces a peer (replacing forgets its handshake state). */
  addPeer(peer: NoisePeer): void {
    if (peer.publicKey.length !== KEY_LEN) throw new RangeError(`peer public key is ${peer.publicKey.length} bytes; it must be ${KEY_LEN}`);
    const psk = peer.presharedKey ?? ZERO_KEY;
    if (psk.length !== KEY_LEN) throw new RangeError(`preshared key is ${psk.length} bytes; it must be ${KEY_LEN}`);
    this.removePeer(peer.publicKey);
    this.peers.set(keyId(peer.publicKey), {
      publicKey: Uint8Array.from(peer.publicKey),
      presharedKey: Uint8Array.from(psk),
      staticStatic: x25519(this.privateKey, peer.publicKey),
      cookies: new CookieGenerator(peer.publicKey),
      lastTimestamp: new Uint8Array(TAI64N_LEN),
      lastInitiationMs: -Infinity,
      pending: null,
    });
  }

  /** Forgets a peer and every index it held. */
  removePeer(publicKey: Uint8Array): void {
    const st = this.peers.get(keyId(publicKey));
    if (!st) return;
    this.peers.delete(keyId(publicKey));
    for (const [i, p] of this.indices) if (p === st) this.indices.delete(i);
  }

  /** Frees an index once the transport no longer uses its session. */
  releaseIndex(index: number): void {
    this.indices.delete(index);
  }

  /** A 148-byte initiation to the peer with `peerPublicKey`, at wall-clock time `nowMs`. */
  createInitiation(peerPublicKey: Uint8Array, nowMs: number): Uint8Array {
    const st = this.peers.get(keyId(peerPublicKey));
    if (!st) throw new Error(`no peer with public key ${keyId(peerPublicKey)}`);
    if (!st.staticStatic) throw new Error(`peer public key ${keyId(peerPublicKey)} is a low-order point`);
    const msg = new Uint8Array(INITIATION_LEN);
    const ephemeralPrivate = this.random(KEY_LEN);
    const ephemeral = publicKeyOf(ephemeralPrivate);
    let h = hash(INITIAL_HASH, st.publicKey);
    let c = kdf1(INITIAL_CHAIN_KEY, ephemeral);
    h = hash(h, ephemeral);
    const es = x25519(ephemeralPrivate, st.publicKey)!; // non-zero: the peer key is not low-order
    let k: Uint8Array;
    [c, k] = kdf2(c, es);
    const sealedStatic = this.aead.seal(k, 0n, this.publicKey, h);
    h = hash(h, sealedStatic);
    [c, k] = kdf2(c, st.staticStatic);
    const sealedTime = this.aead.seal(k, 0n, tai64n(nowMs), h);
    h = hash(h, sealedTime);

    if (st.pending) this.indices.delete(st.pending.localIndex);
    const localIndex = this.newIndex(st);
    st.pending = { localIndex, hash: h, chainKey: c, ephemeralPrivate };
    const dv = new DataView(msg.buffer);
    dv.setUint32(0, MESSAGE_INITIATION, true);
    dv.setUint32(4, localIndex, true);
    msg.set(ephemeral, 8);
    msg.set(sealedStatic, 40);
    msg.set(sealedTime, 88);
    st.cookies.addMacs(msg, nowMs);
    return msg;
  }

  /**
   * Handles one handshake message from `src` (the sender's address bytes, e.g. IPv4 ‖ port; only
   * cookies use it). `underLoad` asks for MAC2 on initiations and responses.
   */
  receive(msg: Uint8Array, src: Uint8Array, nowMs: number, underLoad = false): HandshakeResult {
    const type = msg.length >= 4 ? new DataView(msg.buffer, msg.byteOffset, 4).getUint32(0, true) : -1;
    if (type === MESSAGE_COOKIE_REPLY && msg.length === COOKIE_REPLY_LEN) return this.consumeCookieReply(msg, nowMs);
    const isInit = type === MESSAGE_INITIATION && msg.length === INITIATION_LEN;
    const isResp = type === MESSAGE_RESPONSE && msg.length === RESPONSE_LEN;
    if (!isInit && !isResp) return this.reject("size");
    if (!this.checker.checkMac1(msg)) return this.reject("mac1");
    if (underLoad && !this.checker.checkMac2(msg, src, nowMs)) {
      const sender = new DataView(msg.buffer, msg.byteOffset).getUint32(4, true);
      return { kind: "cookie-reply", message: this.checker.createReply(msg, sender, src, nowMs) };
    }
    return isInit ? this.consumeInitiation(msg, nowMs) : this.consumeResponse(msg, nowMs);
  }

  private consumeInitiation(msg: Uint8Array, nowMs: number): HandshakeResult {
    const dv = new DataView(msg.buffer, msg.byteOffset, msg.length);
    const sender = dv.getUint32(4, true);
    const ephemeral = msg.slice(8, 40);
    let h = hash(INITIAL_HASH, this.publicKey);
    h = hash(h, ephemeral);
    let c = kdf1(INITIAL_CHAIN_KEY, ephemeral);
    const es = x25519(this.privateKey, ephemeral);
    if (!es) return this.reject("bad-key");
    let k: Uint8Array;
    [c, k] = kdf2(c, es);
    const sealedStatic = msg.subarray(40, 88);
    const peerStatic = this.aead.open(k, 0n, sealedStatic, h);
    if (!peerStatic) return this.reject("decrypt");
    h = hash(h, sealedStatic);
    const st = this.peers.get(keyId(peerStatic));
    if (!st) return this.reject("unknown-peer");
    if (!st.staticStatic) return this.reject("bad-key");
    [c, k] = kdf2(c, st.staticStatic);
    const sealedTime = msg.subarray(88, 116);
    const timestamp = this.aead.open(k, 0n, sealedTime, h);
    if (!timestamp) return this.reject("decrypt");
    h = hash(h, sealedTime);
    if (!tai64nAfter(timestamp, st.lastTimestamp)) return this.reject("replay");
    if (nowMs - st.lastInitiationMs <= INITIATION_MIN_INTERVAL_MS) return this.reject("flood");

    // The response: mix our fresh ephemeral, both DHs with it, then the PSK.
    const ephemeralPrivate = this.random(KEY_LEN);
    const ourEphemeral = publicKeyOf(ephemeralPrivate);
    h = hash(h, ourEphemeral);
    c = kdf1(c, ourEphemeral);
    const ee = x25519(ephemeralPrivate, ephemeral);
    const se = x25519(ephemeralPrivate, st.publicKey);
    if (!ee || !se) return this.reject("bad-key");
    c = kdf1(c, ee);
    c = kdf1(c, se);
    let tau: Uint8Array;
    [c, tau, k] = kdf3(c, st.presharedKey);
    h = hash(h, tau);
    const empty = this.aead.seal(k, 0n, EMPTY, h);

    st.lastTimestamp = timestamp;
    st.lastInitiationMs = nowMs;
    const localIndex = this.newIndex(st);
    const out = new Uint8Array(RESPONSE_LEN);
    const odv = new DataView(out.buffer);
    odv.setUint32(0, MESSAGE_RESPONSE, true);
    odv.setUint32(4, localIndex, true);
    odv.setUint32(8, sender, true);
    out.set(ourEphemeral, 12);
    out.set(empty, 44);
    st.cookies.addMacs(out, nowMs);
    const [receiveKey, sendKey] = kdf2(c, EMPTY);
    return {
      kind: "response",
      message: out,
      session: { peer: st.publicKey, localIndex, remoteIndex: sender, sendKey, receiveKey, isInitiator: false, createdMs: nowMs },
    };
  }

  private consumeResponse(msg: Uint8Array, nowMs: number): HandshakeResult {
    const dv = new DataView(msg.buffer, msg.byteOffset, msg.length);
    const sender = dv.getUint32(4, true);
    const receiver = dv.getUint32(8, true);
    const st = this.indices.get(receiver);
    const pending = st?.pending;
    if (!st || !pending || pending.localIndex !== receiver) return this.reject("unknown-index");
    const ephemeral = msg.slice(12, 44);
    let h = hash(pending.hash, ephemeral);
    let c = kdf1(pending.chainKey, ephemeral);
    const ee = x25519(pending.ephemeralPrivate, ephemeral);
    const se = x25519(this.privateKey, ephemeral);
    if (!ee || !se) return this.reject("bad-key");
    c = kdf1(c, ee);
    c = kdf1(c, se);
    let tau: Uint8Array, k: Uint8Array;
    [c, tau, k] = kdf3(c, st.presharedKey);
    h = hash(h, tau);
    if (!this.aead.open(k, 0n, msg.subarray(44, 44 + TAG_LEN), h)) return this.reject("response-auth");

    st.pending = null; // one response per initiation; the index now names the session
    const [sendKey, receiveKey] = kdf2(c, EMPTY);
    return {
      kind: "session",
      session: { peer: st.publicKey, localIndex: receiver, remoteIndex: sender, sendKey, receiveKey, isInitiator: true, createdMs: nowMs },
    };
  }

  private consumeCookieReply(msg: Uint8Array, nowMs: number): HandshakeResult {
    const receiver = new DataView(msg.buffer, msg.byteOffset).getUint32(4, true);
    const st = this.indices.get(receiver);
    if (!st) return this.reject("unknown-index");
    if (!st.cookies.consumeReply(msg, nowMs)) return this.reject("cookie");
    return { kind: "cookie-stored", peer: st.publicKey };
  }

  private newIndex(st: PeerState): number {
    for (;;) {
      const i = this.index() >>> 0;
      if (!this.indices.has(i)) {
        this.indices.set(i, st);
        return i;
      }
    }
  }

  private reject(reason: RejectReason): HandshakeResult {
    this.rejected[reason]++;
    return { kind: "rejected", reason };
  }
}
