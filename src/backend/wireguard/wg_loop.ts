/**
 * @module One WireGuard device's packet loop: a TUN queue and its UDP socket(s) moved through one
 * Wasm core on the calling thread (a Worker: every call here may block). The core does every
 * per-packet byte (checks, routes, TTL, segmentation of TSO super-packets, ChaCha20-Poly1305
 * seal and open, replay window, receive-side anti-spoofing, TCP coalescing); this loop decides
 * which session seals what, runs the handshakes (noise.ts) and the timers (peer_session.ts),
 * and moves batches between the kernel and the core's memory.
 *
 * Each turn:
 *  1. poll(TUN, UDP[, UDP6]) for up to 200 ms, less when a timer is due;
 *  2. apply the device state when the main thread published a new one (wg_channel.ts);
 *  3. TUN readable: read a batch into EG_IN, `egress()` (checks, route to a peer id, TSO split),
 *     then for each datagram the peer's current session: seal the batch into the seal area
 *     (IN_OUT, free outside ingress) so one super-packet's messages lie back to back and leave
 *     as one UDP_SEGMENT send; a packet for a peer without a session is staged (up to
 *     STAGED_MAX) and a handshake asked for, as wireguard-go does;
 *  4. UDP readable: one recvmmsg (UDP GRO trains split into their datagrams); transport messages
 *     are opened in place in one `wgOpen` batch, handshake messages go to noise.ts; an opened
 *     message's session names its peer, whose allowed IPs the core checks the inner source
 *     against (cryptokey routing: OPT_PEER_ID_IN), and whose endpoint follows the message's
 *     source (roaming); then `ingress()` writes the packets into the TUN;
 *  5. the timers of every peer, at most every TIMER_MS: initiations, retries, keepalives,
 *     expired keys wiped.
 * Sessions live in the core's WG_SESSIONS slots; our receiver index for slot s has s in its low
 * bits (wgLocalIndex), so the core finds a message's session without asking the host.
 */
import * as L from "../../core/layout.ts";
import type { Core } from "../../core/types.ts";
import { WgTransport, coreAead, wgLocalIndex } from "../../core/wg_transport.ts";
import {
  EAGAIN, EINTR, MSG_DONTWAIT, MSG_TRUNC, POLLERR, POLLFD_SIZE, POLLHUP, POLLIN, pollRevents, setPollfd,
  sockaddrIn, sockaddrIn6, structBuffer,
} from "../../../ffi/linux.ts";
import type { Sys } from "../../../ffi/sys.ts";
import { MMSG_WORDS, NAME_WORDS, UdpBatch, W_CONTROLLEN, W_FLAGS, W_LEN } from "../../../ffi/udp.ts";
import { formatIPv6, parseIP } from "../../net/ip.ts";
import { type EgressSlots, egressSlots, ingressSlots, readTun, writeTun } from "../udp/core_slots.ts";
import { UdpSender } from "../udp/udp_sender.ts";
import { foldCoreCounters, hostIndex } from "../udp/worker_stats.ts";
import { MESSAGE_TRANSPORT, Noise, type RejectReason } from "./noise.ts";
import { type Keypair, PeerSession, type WgTimerSettings } from "./peer_session.ts";
import type { WgDeviceState, WgPeerConfig, WgStateReader } from "./wg_channel.ts";

export interface WgLoopOptions {
  /** The device's name, for messages. */
  device: string;
  tunFd: number;
  /** UDP sockets on the listen port: IPv4 and IPv6 (-1 when the device has none of that family). */
  udpFd: number;
  udp6Fd: number;
  vnetHdr: boolean;
  gso: boolean;
  gro: boolean;
  /** The underlay MTU: no datagram from a peer is larger (without GRO). */
  ifaceMtu: number;
  /** The device MTU: padding never goes past it (wireguard-go's rule). */
  mtu: number;
  /** Our private key, base64. */
  privateKey: string;
  /** Tests only (WEFT_TEST_WG_WORKER_CRASH_AFTER): throw after handling this many packets. */
  crashAfterPackets?: number;
}

/** What the worker reports to the main thread (about once a second when something changed). */
export interface WgLoopStatus {
  peers: {
    id: number; lease: string; publicKey: string; endpoint: string; lastHandshakeMs: number;
    rxBytes: number; txBytes: number; rxPackets: number; txPackets: number; session: boolean; staged: number;
  }[];
  handshakes: { initiationsSent: number; responsesSent: number; sessions: number; cookieRepliesSent: number; rejected: Record<RejectReason, number> };
  transport: { seal: Record<string, number>; open: Record<string, number> };
  keepalivesSent: number;
  stagedDropped: number;
  /** Packets no peer's allowed IPs explain, by core verdict. */
  ingressDrops: Record<string, number>;
  roamed: number;
  /** Handshakes started because a peer sent on a session we do not know (it outlived our restart). */
  staleSessions: number;
}

const READY = POLLIN | POLLERR | POLLHUP;
const POLL_MS = 200;
/** Peers' timers are looked at this often at most. */
const TIMER_MS = 50;
/** Packets kept per peer while its handshake runs (wireguard-go keeps up to 1024). */
const STAGED_MAX = 128;
/** Handshake messages per second above which initiations must carry a cookie (MAC2). */
const UNDER_LOAD_PER_SECOND = 512;
const PUBLISH_MS = 50;
const STATUS_MS = 1000;
const align = (n: number, a: number) => Math.ceil(n / a) * a;
/** The core's ingress verdicts that drop an opened packet (status names them). */
const INGRESS_DROPS: readonly [string, number][] = [
  ["spoofed", L.V_SPOOFED], ["unknown_source", L.V_UNKNOWN_SOURCE], ["ttl_expired", L.V_TTL_EXPIRED], ["too_short", L.V_TOO_SHORT],
  ["bad_version", L.V_BAD_VERSION], ["bad_header_length", L.V_BAD_HEADER_LENGTH], ["bad_total_length", L.V_BAD_TOTAL_LENGTH],
];

/** The message for `len` bytes of plaintext: header, padded body (wireguard-go's padding), tag. */
export function sealedLength(len: number, mtu: number): number {
  let last = len;
  if (mtu > 0 && last > mtu) last %= mtu;
  let padded = (last + 15) & ~15;
  if (mtu > 0 && padded > mtu) padded = mtu;
  return L.WG_HEADER_LEN + len + (padded - last) + L.WG_TAG_LEN;
}

/** Whether the IPv6 address `ep6` equals the 4 words at w[at..] (both in memory order: no allocation). */
function same6(ep6: Uint8Array | null, w: Uint32Array, at: number): boolean {
  if (ep6 === null) return false;
  for (let k = 0; k < 4; k++) {
    const v = w[at + k]!, o = 4 * k;
    if (ep6[o] !== (v & 255) || ep6[o + 1] !== ((v >>> 8) & 255) || ep6[o + 2] !== ((v >>> 16) & 255) || ep6[o + 3] !== v >>> 24) return false;
  }
  return true;
}

/** A peer endpoint's key in #byEndpoint. */
function endpointKey(ip4: number, ip6: Uint8Array | null, port: number): string {
  return ip6 ? `${Buffer.from(ip6.buffer, ip6.byteOffset, 16).toString("hex")} ${port}` : `${ip4} ${port}`;
}

interface Peer {
  cfg: WgPeerConfig;
  key: Uint8Array;
  session: PeerSession;
  /** Current endpoint: IPv4 as u32 (0 when IPv6), IPv6 as 16 bytes (null when IPv4), port. */
  ep4: number;
  ep6: Uint8Array | null;
  port: number;
  /** Our receiver index of the initiation in flight, or -1. */
  pendingIndex: number;
  staged: Uint8Array[];
  rxBytes: number; txBytes: number; rxPackets: number; txPackets: number;
  lastHandshakeMs: number;
}

const C = {
  rxPackets: hostIndex("rxPackets"), rxBytes: hostIndex("rxBytes"), rxMessages: hostIndex("rxMessages"),
  rxSyscalls: hostIndex("rxSyscalls"), rxTruncated: hostIndex("rxTruncated"), rxErrors: hostIndex("rxErrors"),
  polls: hostIndex("polls"), gsoOn: hostIndex("gsoOn"),
};

/** Where sealed messages go: the ingress output arena, unused outside ingress(). */
const SEAL_AREA = L.IN_OUT;
const SEAL_END = L.IN_OUT + L.IN_OUT_SIZE;
const SLOT_MASK = L.WG_SESSION_CAP - 1;

export class WgLoop {
  readonly #sys: Sys;
  readonly #core: Core;
  readonly #wg: WgTransport;
  readonly #o: WgLoopOptions;
  readonly #state: WgStateReader;
  readonly #row: Float64Array;
  readonly #report: (s: WgLoopStatus) => void;
  readonly #noise: Noise;
  readonly #timers: WgTimerSettings;
  readonly #u32: Uint32Array;
  readonly #u16: Uint16Array;
  readonly #bytes: Uint8Array;
  readonly #pollfds = structBuffer(3 * POLLFD_SIZE);
  readonly #nfds: number;
  /** Which pollfd is which: -1 when absent. */
  readonly #pfUdp: number;
  readonly #pfUdp6: number;
  readonly #sender: UdpSender;
  readonly #lastCounters = new Uint32Array(L.COUNTER_COUNT);
  readonly #eg: EgressSlots;
  readonly #batch: UdpBatch | null;
  readonly #batch6: UdpBatch | null;
  readonly #inStride: number;
  readonly recvBatch: number;

  /** Peers by core id and by base64 key. */
  readonly #peers: (Peer | undefined)[] = [];
  readonly #byKey = new Map<string, Peer>();
  /** Peers by current endpoint ("ip port"), for messages on sessions we do not know (#staleSession). */
  readonly #byEndpoint = new Map<string, Peer>();
  #psk: string | null = null;
  #keepaliveMs = 0;
  /** The cluster/own settings last applied, as JSON, to apply only changes. */
  #applied = "";
  /** Session slots: owner peer id (-1: free) and receiver index; free slots as a stack. */
  readonly #slotPeer = new Int32Array(L.WG_SESSION_CAP).fill(-1);
  readonly #slotIndex = new Uint32Array(L.WG_SESSION_CAP);
  readonly #free = new Int32Array(L.WG_SESSION_CAP);
  #freeTop = 0;
  /** Per seal/open descriptor: its peer id, its message's source (message index). */
  readonly #sealPeer = new Int32Array(L.WG_SEAL_CAP);
  readonly #openMsg = new Int32Array(L.WG_OPEN_CAP);
  /** Peers that sent in the current batch (their timers learn it once per batch). */
  readonly #touched = new Int32Array(L.EG_UDP_CAP);
  readonly #touchMark = new Uint32Array(L.PEER_CAP);
  #touchGen = 1;
  #nextTimers = 0;
  #published = 0;
  #statusAt = 0;
  #dirty = false;
  /** Something changed since the last status report (sent at most every STATUS_MS). */
  #unreported = false;
  #recvN = 1;
  #handshakeWindow = 0;
  #handshakesInWindow = 0;
  readonly #stats = {
    initiationsSent: 0, responsesSent: 0, sessions: 0, cookieRepliesSent: 0, keepalivesSent: 0, stagedDropped: 0, roamed: 0, staleSessions: 0,
  };

  constructor(sys: Sys, core: Core, options: WgLoopOptions, state: WgStateReader, row: Float64Array, report: (s: WgLoopStatus) => void, timers: WgTimerSettings) {
    this.#sys = sys;
    this.#core = core;
    this.#o = options;
    this.#state = state;
    this.#row = row;
    this.#report = report;
    this.#timers = timers;
    this.#wg = new WgTransport(core);
    this.#bytes = core.bytes;
    this.#u32 = new Uint32Array(core.buffer);
    this.#u16 = new Uint16Array(core.buffer);
    core.setOptions((options.vnetHdr ? L.OPT_VNET_HDR : 0) | L.OPT_PEER_ID_IN);
    this.#lastCounters.set(core.regions.counters);
    for (let s = L.WG_SESSION_CAP - 1; s >= 0; s--) this.#free[this.#freeTop++] = s;
    this.#noise = new Noise({
      privateKey: new Uint8Array(Buffer.from(options.privateKey, "base64")),
      aead: coreAead(core), // the transport's ChaCha20-Poly1305 for the handshake's sealed fields too
      // The index the next handshake announces names the slot on top of the free stack; the
      // handshake's caller claims it (#claim) before another index is asked for.
      index: () => wgLocalIndex(this.#free[this.#freeTop - 1]!, (Math.random() * 0x100000000) >>> 0),
    });

    this.#eg = egressSlots(this.#bytes, options.vnetHdr, options.ifaceMtu);
    const { slots, stride, batch } = ingressSlots(this.#bytes, options.gro, options.ifaceMtu);
    this.#inStride = stride;
    this.recvBatch = batch;
    this.#batch = options.udpFd >= 0 ? new UdpBatch(sys, options.udpFd, slots) : null;
    this.#batch6 = options.udp6Fd >= 0 ? new UdpBatch(sys, options.udp6Fd, slots) : null;
    this.#sender = new UdpSender(sys, options.udpFd, this.#bytes, options.gso, options.udp6Fd);
    let n = 0;
    setPollfd(this.#pollfds, n++, options.tunFd, POLLIN);
    this.#pfUdp = options.udpFd >= 0 ? n : -1;
    if (options.udpFd >= 0) setPollfd(this.#pollfds, n++, options.udpFd, POLLIN);
    this.#pfUdp6 = options.udp6Fd >= 0 ? n : -1;
    if (options.udp6Fd >= 0) setPollfd(this.#pollfds, n++, options.udp6Fd, POLLIN);
    this.#nfds = n;
  }

  /** Runs turns until the main thread asks to stop. */
  run(): void {
    let busy = false, handled = 0;
    const crashAfter = this.#o.crashAfterPackets ?? Infinity;
    for (;;) {
      const now = performance.now();
      if (!busy && (this.#dirty || this.#unreported)) this.publish(now);
      // Sleep until the next timer, or until the status report that is still owed falls due.
      const due = this.#unreported ? this.#statusAt + STATUS_MS : Infinity;
      const timeout = busy ? 0 : Math.max(0, Math.min(POLL_MS, Math.ceil(Math.min(this.#nextTimers, due) - now)));
      const n = this.turn(timeout);
      if (n < 0) return;
      busy = n > 0;
      handled += n;
      if (handled > crashAfter) throw new Error(`wireguard packet loop: crashing after ${handled} packets, as asked (WEFT_TEST_WG_WORKER_CRASH_AFTER)`);
    }
  }

  /** One turn; returns packets and messages handled, or -1 once a stop was requested. */
  turn(timeoutMs: number): number {
    const rc = this.#sys.poll(this.#pollfds, this.#nfds, timeoutMs);
    if (this.#state.stopping) return -1;
    const st = this.#state.poll();
    if (st) this.#apply(st);
    this.#row[C.polls]!++;
    let n = 0;
    if (rc > 0) {
      if ((pollRevents(this.#pollfds, 0) & READY) !== 0) n += this.#egress();
      if (this.#pfUdp >= 0 && (pollRevents(this.#pollfds, this.#pfUdp) & READY) !== 0) n += this.#ingress(this.#batch!, 4);
      if (this.#pfUdp6 >= 0 && (pollRevents(this.#pollfds, this.#pfUdp6) & READY) !== 0) n += this.#ingress(this.#batch6!, 6);
      if (n === 0) this.#recvN = 1;
    } else if (rc < 0 && rc !== -EINTR) {
      throw new Error(`wireguard packet loop of ${this.#o.device}: poll failed: errno ${-rc}`);
    }
    const now = performance.now();
    if (now >= this.#nextTimers) this.#runTimers(now);
    if (n > 0) {
      this.#dirty = true;
      if (now - this.#published >= PUBLISH_MS) this.publish(now);
    }
    return n;
  }

  /** Folds counters into the stats row and, about once a second, reports the peers. */
  publish(now = performance.now()): void {
    foldCoreCounters(this.#core.regions.counters, this.#lastCounters, this.#row);
    this.#row[C.gsoOn] = this.#sender.gso ? 1 : 0;
    this.#published = now;
    if (this.#dirty) this.#unreported = true;
    this.#dirty = false;
    if (this.#unreported && now - this.#statusAt >= STATUS_MS) this.reportStatus(now);
  }

  reportStatus(now = performance.now()): void {
    this.#statusAt = now;
    this.#unreported = false;
    const row = this.#row;
    this.#report({
      peers: this.#peers.filter((p): p is Peer => p !== undefined).map((p) => ({
        id: p.cfg.id, lease: p.cfg.lease, publicKey: p.cfg.publicKey, endpoint: this.#endpointText(p),
        lastHandshakeMs: p.lastHandshakeMs, rxBytes: p.rxBytes, txBytes: p.txBytes, rxPackets: p.rxPackets, txPackets: p.txPackets,
        session: p.session.sendSlot(now) >= 0, staged: p.staged.length,
      })),
      handshakes: {
        initiationsSent: this.#stats.initiationsSent, responsesSent: this.#stats.responsesSent, sessions: this.#stats.sessions,
        cookieRepliesSent: this.#stats.cookieRepliesSent, rejected: { ...this.#noise.rejected },
      },
      transport: this.#wg.counterSnapshot(),
      keepalivesSent: this.#stats.keepalivesSent,
      stagedDropped: this.#stats.stagedDropped,
      ingressDrops: Object.fromEntries(INGRESS_DROPS.map(([name, v]) => [name, row[L.C_IN + v]!])),
      roamed: this.#stats.roamed,
      staleSessions: this.#stats.staleSessions,
    });
  }

  // ------------------------------------------------------------------ state from the main thread

  /** Applies a new device state: settings, then peers added, changed and removed. */
  #apply(st: WgDeviceState): void {
    const core = this.#core;
    const settings = JSON.stringify([st.cluster, st.tunAddr4, st.tunAddr6, st.own4, st.own6]);
    if (settings !== this.#applied) {
      this.#applied = settings;
      if (st.cluster) core.setClusterNetwork(st.cluster.network >>> 0, st.cluster.networkLen, st.cluster.subnetLen);
      if (st.tunAddr4 !== undefined) core.setTunAddr4(st.tunAddr4 >>> 0);
      if (st.tunAddr6 !== undefined) { this.#arg6(st.tunAddr6); core.setTunAddr6(); }
      if (st.own4) core.setOwnSubnet4(st.own4[0] >>> 0, st.own4[1]);
      if (st.own6) { this.#arg6(st.own6[0]); core.setOwnSubnet6(st.own6[1]); }
    }
    const rekeyAll = st.psk !== this.#psk;
    this.#psk = st.psk;
    this.#keepaliveMs = st.keepaliveMs;
    const wanted = new Map(st.peers.map((p) => [p.id, p]));
    for (const p of this.#peers) {
      if (p && !wanted.has(p.cfg.id)) this.#removePeer(p);
    }
    for (const cfg of st.peers) {
      const p = this.#peers[cfg.id];
      if (!p || rekeyAll || p.cfg.publicKey !== cfg.publicKey) {
        if (p) this.#removePeer(p);
        this.#addPeer(cfg);
        continue;
      }
      if (p.cfg.endpoint.ip !== cfg.endpoint.ip || p.cfg.endpoint.port !== cfg.endpoint.port) this.#setEndpoint(p, cfg.endpoint.ip, cfg.endpoint.port);
      if (JSON.stringify([p.cfg.subnet4, p.cfg.subnet6]) !== JSON.stringify([cfg.subnet4, cfg.subnet6])) {
        this.#unroute(p.cfg);
        this.#route(cfg);
      }
      p.cfg = cfg;
    }
    this.#statusAt = -Infinity; // the main thread hears of the new peers before it sleeps
    this.#dirty = true;
  }

  #arg6(hex: string): void {
    const arg = this.#core.regions.arg;
    for (let i = 0; i < 16; i++) arg[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  }

  #addPeer(cfg: WgPeerConfig): void {
    const key = new Uint8Array(Buffer.from(cfg.publicKey, "base64"));
    const other = this.#byKey.get(cfg.publicKey);
    if (other) this.#removePeer(other); // one key, one peer (the newer lease wins, as `wg set` replaces)
    this.#noise.addPeer({ publicKey: key, ...(this.#psk ? { presharedKey: new Uint8Array(Buffer.from(this.#psk, "base64")) } : {}) });
    const p: Peer = {
      cfg, key, session: new PeerSession(this.#timers, this.#keepaliveMs), ep4: 0, ep6: null, port: 0, pendingIndex: -1, staged: [],
      rxBytes: 0, txBytes: 0, rxPackets: 0, txPackets: 0, lastHandshakeMs: 0,
    };
    this.#setEndpoint(p, cfg.endpoint.ip, cfg.endpoint.port);
    this.#peers[cfg.id] = p;
    this.#byKey.set(cfg.publicKey, p);
    this.#route(cfg);
  }

  #removePeer(p: Peer): void {
    for (const kp of p.session.clear()) this.#freeSlot(kp.slot);
    if (p.pendingIndex >= 0) this.#freeSlot(p.pendingIndex & SLOT_MASK);
    for (let s = 0; s < L.WG_SESSION_CAP; s++) if (this.#slotPeer[s] === p.cfg.id) this.#freeSlot(s);
    this.#unroute(p.cfg);
    this.#noise.removePeer(p.key);
    this.#unindex(p);
    this.#peers[p.cfg.id] = undefined;
    if (this.#byKey.get(p.cfg.publicKey) === p) this.#byKey.delete(p.cfg.publicKey);
  }

  /** Programs the core: the peer entry (allowed IPs for receiving) and its routes (for sending). */
  #route(cfg: WgPeerConfig): void {
    const core = this.#core, id = cfg.id;
    // Without an IPv4 subnet no IPv4 source is allowed: 255.255.255.255/32, which no unicast packet has.
    const [s4, l4] = cfg.subnet4 ?? [0xffffffff, 32];
    core.peerSet(id, 0, 0, s4 >>> 0, l4);
    if (cfg.subnet4) core.route4Insert(s4 >>> 0, l4, id);
    if (cfg.subnet6) {
      this.#arg6(cfg.subnet6[0]);
      core.peerSetSubnet6(id, cfg.subnet6[1]);
      this.#arg6(cfg.subnet6[0]);
      core.route6Insert(cfg.subnet6[1], id);
    }
  }

  #unroute(cfg: WgPeerConfig): void {
    const core = this.#core;
    if (cfg.subnet4) core.route4Delete(cfg.subnet4[0] >>> 0, cfg.subnet4[1]);
    if (cfg.subnet6) { this.#arg6(cfg.subnet6[0]); core.route6Delete(cfg.subnet6[1]); }
    core.peerDelete(cfg.id);
  }

  #setEndpoint(p: Peer, ip: string, port: number): void {
    const a = parseIP(ip, `peer ${p.cfg.lease} endpoint`);
    this.#unindex(p);
    p.port = port;
    if (a.family === 4) {
      p.ep4 = a.ip >>> 0;
      p.ep6 = null;
    } else {
      p.ep4 = 0;
      p.ep6 = new Uint8Array(16);
      let v = a.ip;
      for (let i = 15; i >= 0; i--) { p.ep6[i] = Number(v & 0xffn); v >>= 8n; }
    }
    this.#byEndpoint.set(endpointKey(p.ep4, p.ep6, p.port), p);
  }

  #unindex(p: Peer): void {
    const k = endpointKey(p.ep4, p.ep6, p.port);
    if (this.#byEndpoint.get(k) === p) this.#byEndpoint.delete(k);
  }

  #endpointText(p: Peer): string {
    if (p.ep6) return `[${formatIPv6(p.ep6.reduce((v, b) => (v << 8n) | BigInt(b), 0n))}]:${p.port}`;
    return `${p.ep4 >>> 24}.${(p.ep4 >>> 16) & 255}.${(p.ep4 >>> 8) & 255}.${p.ep4 & 255}:${p.port}`;
  }

  // ------------------------------------------------------------------ session slots

  /** Marks the slot of our receiver `index` as `id`'s (it is the top of the free stack). */
  #claim(index: number, id: number): number {
    const slot = index & SLOT_MASK;
    if (this.#freeTop > 0 && this.#free[this.#freeTop - 1] === slot) {
      this.#freeTop--;
    } else {
      for (let i = 0; i < this.#freeTop; i++) {
        if (this.#free[i] === slot) { this.#free[i] = this.#free[--this.#freeTop]!; break; }
      }
    }
    this.#slotPeer[slot] = id;
    this.#slotIndex[slot] = index >>> 0;
    return slot;
  }

  #freeSlot(slot: number): void {
    if (this.#slotPeer[slot]! < 0) return;
    this.#wg.deleteSession(slot);
    this.#noise.releaseIndex(this.#slotIndex[slot]!);
    this.#slotPeer[slot] = -1;
    this.#free[this.#freeTop++] = slot;
  }

  // ------------------------------------------------------------------ egress: TUN -> peers

  #egress(): number {
    const n = readTun(this.#sys, this.#o.tunFd, this.#eg, this.#u32, this.#row, 0, this.#eg.batch);
    const core = this.#core;
    for (let start = 0; start < n;) {
      const k = core.egress(start, n - start);
      const udp = core.egressUdpCount();
      if (udp > 0) this.#sealAndSend(udp);
      const tun = core.egressTunCount();
      if (tun > 0) this.#writeTun(L.EG_TUN_DESC, tun);
      if (k === 0) break;
      start += k;
    }
    return n;
  }

  /** Seals the `count` datagrams egress() left in EG_UDP_DESC for their peers' sessions and sends them. */
  #sealAndSend(count: number): void {
    const u32 = this.#u32, u16 = this.#u16, wg = this.#wg, peers = this.#peers, mtu = this.#o.mtu;
    const now = performance.now();
    const gen = ++this.#touchGen;
    let touched = 0;
    let i = 0;
    while (i < count) {
      let j = 0, cursor = SEAL_AREA;
      for (; i < count && j < L.WG_SEAL_CAP; i++) {
        const dw = (L.EG_UDP_DESC + i * L.UDP_DESC_SIZE) >>> 2;
        const off = u32[dw]!, len = u32[dw + 1]!, id = u16[(L.EG_UDP_DESC + i * L.UDP_DESC_SIZE + 14) >>> 1]!;
        const p = peers[id];
        if (!p) continue;
        const slot = p.session.sendSlot(now);
        if (slot < 0) { this.#stage(p, off, len, now); continue; }
        const out = sealedLength(len, mtu);
        if (cursor + out > SEAL_END) break;
        wg.setSeal(j, off, cursor, len, slot);
        this.#sealPeer[j] = id;
        cursor += out;
        j++;
        if (this.#touchMark[id] !== gen) { this.#touchMark[id] = gen; this.#touched[touched++] = id; }
      }
      if (j === 0) continue;
      // The sealed messages become the send ring: in place, never past the entries still to read.
      this.#sealAndSendRing(j);
    }
    for (let t = 0; t < touched; t++) {
      const p = peers[this.#touched[t]!];
      if (!p) continue;
      const slot = p.session.current?.slot ?? -1;
      if (slot >= 0) p.session.sent(now, false, wg.sendCounter(slot));
    }
  }

  /** Send-ring entry `m`: the message at off[0..len] to the peer's endpoint. */
  #setUdpDesc(m: number, off: number, len: number, p: Peer): void {
    const u32 = this.#u32, d = L.EG_UDP_DESC + m * L.UDP_DESC_SIZE, dw = d >>> 2;
    u32[dw] = off;
    u32[dw + 1] = len;
    const ip = p.ep4;
    // ip[4] + port[2] in network order, then the peer id (u16); 0.0.0.0 means PUBLIC6[peer].
    u32[dw + 2] = ((ip >>> 24) | ((ip >>> 8) & 0xff00) | ((ip << 8) & 0xff0000) | (ip << 24)) >>> 0;
    u32[dw + 3] = (((p.port >>> 8) | ((p.port & 0xff) << 8)) | (p.cfg.id << 16)) >>> 0;
    if (p.ep6) this.#bytes.set(p.ep6, L.PUBLIC6 + p.cfg.id * 16);
  }

  /** Keeps a packet for a peer whose session is not there yet, and asks for a handshake. */
  #stage(p: Peer, off: number, len: number, now: number): void {
    if (p.staged.length >= STAGED_MAX) {
      p.staged.shift();
      this.#stats.stagedDropped++;
    }
    p.staged.push(this.#bytes.slice(off, off + len));
    p.session.wantHandshake(now);
    this.#nextTimers = 0; // initiate in this turn
  }

  /** Sends what waited for the peer's session, now that there is one. */
  #flushStaged(p: Peer, now: number): void {
    const slot = p.session.sendSlot(now);
    if (slot < 0 || p.staged.length === 0) return;
    const staged = p.staged;
    p.staged = [];
    let src = SEAL_AREA, j = 0;
    const dst0 = SEAL_AREA + align(staged.reduce((a, b) => a + b.length, 0), 64);
    let dst = dst0;
    for (const pkt of staged) {
      this.#bytes.set(pkt, src);
      this.#wg.setSeal(j, src, dst, pkt.length, slot);
      this.#sealPeer[j] = p.cfg.id;
      src += pkt.length;
      dst += sealedLength(pkt.length, this.#o.mtu);
      j++;
    }
    this.#sealAndSendRing(j);
    p.session.sent(now, false, this.#wg.sendCounter(slot));
  }

  /**
   * Seals seal descriptors 0..j-1 (their peers in #sealPeer) and sends the messages: each one
   * that sealed becomes a send-ring entry to its peer's endpoint.
   */
  #sealAndSendRing(j: number): void {
    const wg = this.#wg, u32 = this.#u32, peers = this.#peers;
    wg.seal(0, j, this.#o.mtu);
    let m = 0;
    for (let q = 0; q < j; q++) {
      if (wg.sealVerdict(q) !== L.WV_OK) continue;
      const p = peers[this.#sealPeer[q]!]!;
      const len = wg.sealedLength(q);
      this.#setUdpDesc(m++, u32[(L.WG_SEAL_DESC + q * L.WG_DESC_SIZE + 4) >>> 2]!, len, p);
      p.txBytes += len;
      p.txPackets++;
    }
    if (m > 0) this.#sender.send(m, this.#row);
  }

  // ------------------------------------------------------------------ ingress: peers -> TUN

  #ingress(b: UdpBatch, family: 4 | 6): number {
    const row = this.#row;
    const r = b.recv(this.#recvN, MSG_DONTWAIT);
    this.#recvN = Math.min(this.recvBatch, this.#recvN * 4);
    row[C.rxSyscalls]!++;
    if (r <= 0) {
      if (r < 0 && r !== -EAGAIN && r !== -EINTR) row[C.rxErrors]!++;
      return 0;
    }
    const w = b.words, bytes = this.#bytes, wg = this.#wg, stride = this.#inStride, gro = this.#o.gro;
    let j = 0, packets = 0, total = 0, truncated = 0;
    let n = 0; // IN_IN descriptors for the core's ingress
    for (let i = 0; i < r; i++) {
      const m = i * MMSG_WORDS;
      if ((w[m + W_FLAGS]! & MSG_TRUNC) !== 0) { truncated++; continue; }
      const len = w[m + W_LEN]!;
      const seg = gro && w[m + W_CONTROLLEN] !== 0 ? b.segmentSize(i) : 0;
      const base = L.IN_IN + i * stride + L.VNET_HDR_LEN;
      const count = seg > 0 && len > seg ? Math.ceil(len / seg) : 1;
      packets += count;
      total += len;
      for (let k = 0; k < count; k++) {
        const p = base + k * seg;
        const size = count === 1 ? len : Math.min(seg, len - k * seg);
        if (bytes[p] === MESSAGE_TRANSPORT && size >= 32) {
          wg.setOpen(j, p, size);
          this.#openMsg[j++] = i;
          if (j === L.WG_OPEN_CAP) { n = this.#opened(j, b, family, n); j = 0; }
        } else {
          this.#handshake(p, size, b, i, family);
        }
      }
    }
    if (j > 0) n = this.#opened(j, b, family, n);
    this.#toTun(n);
    row[C.rxPackets] = row[C.rxPackets]! + packets;
    row[C.rxBytes] = row[C.rxBytes]! + total;
    if (truncated > 0) row[C.rxTruncated] = row[C.rxTruncated]! + truncated;
    row[C.rxMessages] = row[C.rxMessages]! + r;
    return r;
  }

  /**
   * Opens the `j` transport messages described so far; each authentic one with a packet inside
   * becomes IN_IN descriptor n.. (named by its peer). Returns the descriptor count after them.
   */
  #opened(j: number, b: UdpBatch, family: 4 | 6, n: number): number {
    const wg = this.#wg, u32 = this.#u32, peers = this.#peers;
    const now = performance.now();
    wg.open(0, j);
    for (let q = 0; q < j; q++) {
      const verdict = wg.openVerdict(q);
      if (verdict !== L.WV_OK) {
        if (verdict === L.WV_UNKNOWN_RECEIVER) this.#staleSession(b, this.#openMsg[q]!, family, now);
        continue;
      }
      const slot = wg.openSession(q);
      const id = this.#slotPeer[slot]!;
      const p = id >= 0 ? peers[id] : undefined;
      if (!p) continue;
      const plain = wg.plainLength(q);
      const od = (L.WG_OPEN_DESC + q * L.WG_DESC_SIZE) >>> 2;
      const off = u32[od]!;
      p.rxBytes += u32[od + 1]!;
      p.rxPackets++;
      if (!p.session.receiveAllowed(slot, now)) continue; // its keys are too old (REJECT_AFTER_TIME)
      this.#roam(p, b, this.#openMsg[q]!, family);
      const displaced = p.session.received(slot, now, plain === 0);
      if (displaced.length > 0) {
        for (let d = 0; d < displaced.length; d++) this.#freeSlot(displaced[d]!.slot);
      }
      if (p.staged.length > 0) this.#flushStaged(p, now); // a responder's session just confirmed
      if (plain === 0) continue; // a keepalive
      if (n === L.IN_IN_CAP) { this.#toTun(n); n = 0; }
      const dw = (L.IN_IN_DESC + n * L.IN_DESC_SIZE) >>> 2;
      u32[dw] = off + L.WG_HEADER_LEN;
      u32[dw + 1] = plain;
      u32[dw + 2] = id;
      u32[dw + 3] = 0;
      n++;
    }
    return n;
  }

  /** Hands IN_IN descriptors 0..n-1 to the core's ingress and writes what it allows into the TUN. */
  #toTun(n: number): void {
    const core = this.#core;
    for (let start = 0; start < n;) {
      const k = core.ingress(start, n - start);
      const tun = core.ingressTunCount();
      if (tun > 0) this.#writeTun(L.IN_TUN_DESC, tun);
      if (k === 0) break;
      start += k;
    }
  }

  /**
   * A transport message for a session we do not know, from a peer's endpoint: that peer still
   * sends on keys from before this agent restarted (or before we wiped them). WireGuard would let
   * its timers notice (KEEPALIVE_TIMEOUT + REKEY_TIMEOUT, 15 s of lost traffic); we start a
   * handshake now instead, when we have no session of our own with it. PeerSession's rate limit
   * (one initiation per REKEY_TIMEOUT) bounds what a forged source can make us send.
   */
  #staleSession(b: UdpBatch, i: number, family: 4 | 6, now: number): void {
    const w = b.words, a = b.nameWords + i * NAME_WORDS;
    const port = ((w[a]! >>> 24) | ((w[a]! >>> 8) & 0xff00)) & 0xffff;
    const v = w[a + 1]!;
    const ip = family === 4 ? ((v << 24) | ((v << 8) & 0xff0000) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0 : 0;
    const ip6 = family === 6 ? new Uint8Array(w.buffer, w.byteOffset + (a + 2) * 4, 16) : null;
    const p = this.#byEndpoint.get(endpointKey(ip, ip6, port));
    if (!p || p.session.sendSlot(now) >= 0 || p.pendingIndex >= 0) return;
    p.session.wantHandshake(now);
    this.#nextTimers = 0;
    this.#stats.staleSessions++;
  }

  /** The peer's endpoint follows an authenticated message from elsewhere (whitepaper §2.1). */
  #roam(p: Peer, b: UdpBatch, i: number, family: 4 | 6): void {
    const w = b.words, a = b.nameWords + i * NAME_WORDS;
    const port = ((w[a]! >>> 24) | ((w[a]! >>> 8) & 0xff00)) & 0xffff;
    if (family === 4) {
      const v = w[a + 1]!;
      const ip = ((v << 24) | ((v << 8) & 0xff0000) | ((v >>> 8) & 0xff00) | (v >>> 24)) >>> 0;
      if (p.ep6 === null && ip === p.ep4 && port === p.port) return;
      this.#unindex(p);
      p.ep4 = ip;
      p.ep6 = null;
    } else {
      if (port === p.port && same6(p.ep6, w, a + 2)) return;
      this.#unindex(p);
      p.ep4 = 0;
      p.ep6 = Uint8Array.from(new Uint8Array(w.buffer, w.byteOffset + (a + 2) * 4, 16));
    }
    p.port = port;
    this.#byEndpoint.set(endpointKey(p.ep4, p.ep6, p.port), p);
    this.#stats.roamed++;
  }

  // ------------------------------------------------------------------ handshakes

  /** Handles a handshake message (or anything that is not transport) from message i of `b`. */
  #handshake(off: number, size: number, b: UdpBatch, i: number, family: 4 | 6): void {
    const now = performance.now(), wall = Date.now();
    // Every session slot in use (4096: about a thousand peers with three keypairs each): a
    // handshake now would have no receiver index to announce. The peer retries in 5 s.
    if (this.#freeTop === 0) return;
    if (now - this.#handshakeWindow >= 1000) { this.#handshakeWindow = now; this.#handshakesInWindow = 0; }
    const underLoad = ++this.#handshakesInWindow > UNDER_LOAD_PER_SECOND;
    const w = b.words, a = b.nameWords + i * NAME_WORDS;
    const src = family === 4
      ? new Uint8Array(w.buffer, w.byteOffset + (a + 1) * 4, 4)
      : new Uint8Array(w.buffer, w.byteOffset + (a + 2) * 4, 16);
    const portBytes = new Uint8Array(w.buffer, w.byteOffset + a * 4 + 2, 2);
    const from = new Uint8Array(src.length + 2);
    from.set(src);
    from.set(portBytes, src.length);
    let res: ReturnType<Noise["receive"]>;
    try {
      res = this.#noise.receive(this.#bytes.slice(off, off + size), from, wall, underLoad);
    } catch {
      // Nothing a sender writes may stop the loop: noise.ts refuses bad messages with a reason,
      // and a throw would be a defect there; count it as undecryptable and go on.
      this.#noise.rejected.decrypt++;
      return;
    }
    switch (res.kind) {
      case "cookie-reply":
        this.#sendTo(res.message, family, from);
        this.#stats.cookieRepliesSent++;
        return;
      case "response":
      case "session": {
        const p = this.#byKey.get(Buffer.from(res.session.peer).toString("base64"));
        if (!p) return;
        const s = res.session;
        const slot = res.kind === "response" ? this.#claim(s.localIndex, p.cfg.id) : s.localIndex & SLOT_MASK;
        if (res.kind === "session") p.pendingIndex = -1;
        this.#wg.setSession(slot, { localIndex: s.localIndex, remoteIndex: s.remoteIndex, sendKey: s.sendKey, recvKey: s.receiveKey });
        const kp: Keypair = { slot, localIndex: s.localIndex, isInitiator: s.isInitiator, createdMs: now };
        for (const d of p.session.sessionDerived(kp, now)) this.#freeSlot(d.slot);
        p.session.handshakeTraffic(now);
        p.lastHandshakeMs = wall;
        this.#stats.sessions++;
        this.#roam(p, b, i, family);
        if (res.kind === "response") {
          this.#sendTo(res.message, family, from);
          this.#stats.responsesSent++;
        }
        // An initiator's new session is due a keepalive (staged packets, or an empty message)
        // that confirms it to the responder: the timers send it in this turn.
        this.#nextTimers = 0;
        return;
      }
      default:
        return; // cookie stored, or rejected (counted in noise.rejected)
    }
  }

  /** Sends one message to `from` (address bytes ‖ port, network order). */
  #sendTo(msg: Uint8Array, family: 4 | 6, from: Uint8Array): void {
    const port = (from[from.length - 2]! << 8) | from[from.length - 1]!;
    let addr: Uint8Array;
    if (family === 4) {
      addr = sockaddrIn(((from[0]! << 24) | (from[1]! << 16) | (from[2]! << 8) | from[3]!) >>> 0, port);
    } else {
      let ip = 0n;
      for (let k = 0; k < 16; k++) ip = (ip << 8n) | BigInt(from[k]!);
      addr = sockaddrIn6(ip, port);
    }
    const fd = family === 4 ? this.#o.udpFd : this.#o.udp6Fd;
    if (fd >= 0) this.#sys.sendto(fd, msg, msg.length, 0, addr);
  }

  /** Sends one message to the peer's current endpoint. */
  #sendToPeer(p: Peer, msg: Uint8Array): void {
    const from = new Uint8Array((p.ep6 ? 16 : 4) + 2);
    if (p.ep6) from.set(p.ep6);
    else from.set([p.ep4 >>> 24, (p.ep4 >>> 16) & 255, (p.ep4 >>> 8) & 255, p.ep4 & 255]);
    from[from.length - 2] = p.port >>> 8;
    from[from.length - 1] = p.port & 255;
    this.#sendTo(msg, p.ep6 ? 6 : 4, from);
  }

  #initiate(p: Peer, now: number, isRetry: boolean): void {
    if (p.pendingIndex >= 0) { this.#freeSlot(p.pendingIndex & SLOT_MASK); p.pendingIndex = -1; }
    if (this.#freeTop === 0) return; // every slot in use: the next timer tries again
    const msg = this.#noise.createInitiation(p.key, Date.now());
    const index = new DataView(msg.buffer).getUint32(4, true);
    this.#claim(index, p.cfg.id);
    p.pendingIndex = index;
    this.#sendToPeer(p, msg);
    p.session.initiationSent(now, isRetry);
    p.session.handshakeTraffic(now);
    this.#stats.initiationsSent++;
  }

  /** An empty transport message on the current session. */
  #keepalive(p: Peer, now: number): void {
    const slot = p.session.sendSlot(now);
    if (slot < 0) return;
    const src = SEAL_AREA, dst = SEAL_AREA + 64;
    this.#wg.setSeal(0, src, dst, 0, slot);
    this.#wg.seal(0, 1, this.#o.mtu);
    if (this.#wg.sealVerdict(0) !== L.WV_OK) return;
    this.#setUdpDesc(0, dst, this.#wg.sealedLength(0), p);
    this.#sender.send(1, this.#row);
    p.session.sent(now, true, this.#wg.sendCounter(slot));
    this.#stats.keepalivesSent++;
  }

  // ------------------------------------------------------------------ timers

  #runTimers(now: number): void {
    let next = now + POLL_MS;
    for (const p of this.#peers) {
      if (!p) continue;
      const due = p.session.poll(now);
      for (const kp of due.expired) this.#freeSlot(kp.slot);
      if (due.zeroAll && p.pendingIndex >= 0) { this.#freeSlot(p.pendingIndex & SLOT_MASK); p.pendingIndex = -1; }
      if ((due.giveUp || due.zeroAll) && p.staged.length > 0) {
        this.#stats.stagedDropped += p.staged.length;
        p.staged = [];
      }
      if (due.initiate) this.#initiate(p, now, due.retry);
      // wireguard-go's SendKeepalive: what waited, or else an empty message.
      if (due.keepalive) {
        if (p.staged.length > 0) this.#flushStaged(p, now);
        else this.#keepalive(p, now);
      }
      next = Math.min(next, p.session.nextDeadline());
    }
    this.#nextTimers = Math.max(next, now + TIMER_MS);
  }

  /** Writes `count` TUN descriptors {off, len} found at `ring`. */
  #writeTun(ring: number, count: number): void {
    writeTun(this.#sys, this.#o.tunFd, this.#bytes, this.#u32, this.#row, ring, count);
  }
}
