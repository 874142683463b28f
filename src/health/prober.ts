/**
 * @module The overlay health prober (docs/health.md): a UDP echo every weft agent answers, and
 * probes from this host to every peer's overlay address through the overlay itself, at a
 * jittered, capped rate (scheduler.ts). Results per peer (peer_state.ts) go to `/status`,
 * `/metrics` and, only on a change, the log, with the likely cause (cause.ts).
 *
 * Flow:
 *   1. one UDP socket on 0.0.0.0:<port> (and [::]:<port> with an IPv6 lease): answers well-formed requests from the cluster network or
 *      a known peer's public IP with the same bytes (no amplification), takes our replies;
 *   2. every tick: expire unanswered probes (losses), send the probes due; a full-size probe
 *      (overlay MTU, DF: Linux' default IP_PMTUDISC_WANT sets DF on every UDP datagram that fits
 *      the route's MTU) every `mtuEvery`-th time;
 *   3. a peer gone down is diagnosed: the kernel's route to its overlay address, and whether its
 *      agent answers on the underlay (underlay_check.ts); again every 30 s while it stays down (the
 *      cause may change), at most 4 peers at a time (a host whose own uplink died has every peer
 *      down at once).
 *
 * The overlay address probed: vxlan, udp and any backend with an overlay device put
 * `<lease network address>/32` on it (flannel.N, flannel0); host-gw has none, so its peers are
 * probed at their containers' gateway `<lease network address + 1>` (cni0), the address pods route
 * through, which exists once the host runs a pod.
 */
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { type Lease, leaseKey } from "../lease/lease.ts";
import type { Logger } from "../log.ts";
import { type IPv4Net, type IPv6Net, containsV4, containsV6Net, formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net, tryParseIPv4, tryParseIPv6 } from "../net/ip.ts";
import type { Metrics, Sample } from "../status/metrics.ts";
import { type DownEvidence, likelyCause, mtuCause } from "./cause.ts";
import { type Change, medianRtt, newPeerState, onAnswer, onLoss, type PeerState } from "./peer_state.ts";
import { decodeProbe, encodeProbe, IPV4_UDP_HEADERS, IPV6_UDP_HEADERS, replyTo, REPLY, REQUEST, SMALL_PROBE_BYTES } from "./probe_packet.ts";
import { ProbeScheduler } from "./scheduler.ts";
import { type Matrix, MATRIX_MAX_HOSTS, type Summary, buildMatrix, cellOf, decodeSummary, encodeSummary } from "./summary.ts";
import { parseSubnetKey } from "../lease/lease.ts";

/** weft's probe port: next to vxlan's 8472, used by no flannel backend. */
export const DEFAULT_HEALTH_PORT = 8473;

export interface HealthOptions {
  /** UDP port of the echo and the probes (0: no prober). */
  port: number;
  /** Each peer's probe interval, ms (default 10 s; tests shorten it). */
  intervalMs?: number;
  /** Probes per second from this host at most (default 50). */
  maxPerSecond?: number;
  /** Every n-th probe to a peer is full-size (default 6: once a minute at 10 s). */
  mtuEvery?: number;
}

/** Where summaries are published and read (the subnet manager's optional methods). */
export interface HealthPublisher {
  publishHealth?(summary: string, ttlSeconds: number): Promise<void>;
  clusterHealth?(): Promise<Map<string, string>>;
}

/** What the prober reads of the agent, at each tick. */
export interface HealthSource {
  readonly lease?: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net };
  readonly peers: ReadonlyMap<string, Lease>;
  /** Peer leases the admission gate refused (by lease key): never probed. */
  readonly refusedLeases?: ReadonlyMap<string, unknown>;
  readonly backendType?: string;
  readonly config?: { network?: IPv4Net; ipv6Network?: IPv6Net };
  readonly network?: { mtu: number; devices?: readonly string[] };
}

/** A peer's health as `/status` shows it. */
export interface PeerHealthJSON {
  state: "unknown" | "up" | "down";
  since: string;
  overlayAddr: string;
  rttMs: { last: number | null; p50: number | null };
  mtuOk: boolean | null;
  probes: number;
  failures: number;
  cause: string | null;
}

interface Peer {
  family: 4 | 6;
  label: string;
  addr: string;
  publicIP: string;
  state: PeerState;
  diagnosing?: boolean;
  /** When it went down (epoch ms), until it answers again. */
  wasDown?: number;
  /** When its cause was last looked for (epoch ms). */
  diagnosedAt?: number;
}

interface Outstanding {
  peer: string;
  /** Wall clock (ms) for the loss timeout; performance.now() for the RTT (sub-millisecond). */
  sentAt: number;
  sentPerf: number;
  mtu: boolean;
}

/** The address a peer's probes go to (see the module comment). */
export function overlayAddress(subnet: IPv4Net, backend: string | undefined): string {
  return formatIPv4((subnet.ip + (backend === "host-gw" ? 1 : 0)) >>> 0);
}

/** The same for the IPv6 subnet of a dual-stack or IPv6-only lease (`<v6 net>/128` on flannel-v6.N). */
export function overlayAddress6(subnet: IPv6Net, backend: string | undefined): string {
  return formatIPv6(subnet.ip + (backend === "host-gw" ? 1n : 0n));
}

/** "10.244.3.0/24" → its address as a number, for sorting. */
function parseIPv4Label(label: string): number {
  return tryParseIPv4(label.split("/")[0]!) ?? 0;
}

export class HealthProber {
  readonly #peers = new Map<string, Peer>(); // by overlay address
  readonly #outstanding = new Map<number, Outstanding>();
  readonly #token = (Math.random() * 2 ** 32) >>> 0;
  readonly #sched: ProbeScheduler;
  readonly intervalMs: number;
  readonly maxPerSecond: number;
  #seq = 0;
  #timer?: ReturnType<typeof setInterval>;
  #lastSync = 0;
  sent = 0;
  answered = 0;
  repliesSent = 0;
  #tickMs: number;
  #publishTimer?: ReturnType<typeof setTimeout>;
  #summaries = new Map<string, Summary>();
  #publishError = "";
  #diagnoses = 0;

  private constructor(
    readonly opts: HealthOptions,
    readonly source: HealthSource,
    readonly log: Logger,
    readonly socket: Socket,
    readonly publisher?: HealthPublisher,
    /** The IPv6 twin of `socket` on [::]:<port>, when this host's lease has an IPv6 subnet. */
    readonly socket6?: Socket,
  ) {
    this.intervalMs = opts.intervalMs ?? 10_000;
    this.maxPerSecond = opts.maxPerSecond ?? 50;
    this.#tickMs = Math.min(100, this.intervalMs / 5);
    this.#sched = new ProbeScheduler({ intervalMs: this.intervalMs, maxPerSecond: this.maxPerSecond, mtuEvery: opts.mtuEvery ?? 6 }, Date.now());
  }

  /** Binds the echo socket and starts probing; a port in use is logged and the prober left out (never fatal). */
  static async start(opts: HealthOptions, source: HealthSource, log: Logger, metrics: Metrics, publisher?: HealthPublisher): Promise<HealthProber | undefined> {
    // alloc leases a subnet and programs nothing: there is no overlay to probe.
    if (opts.port <= 0 || source.backendType === "alloc") return undefined;
    const bind = async (type: "udp4" | "udp6"): Promise<Socket | undefined> => {
      const socket = createSocket({ type, ...(type === "udp6" ? { ipv6Only: true } : {}) });
      const where = type === "udp4" ? `0.0.0.0:${opts.port}` : `[::]:${opts.port}`;
      try {
        await new Promise<void>((resolve, reject) => {
          socket.once("error", reject);
          socket.bind(opts.port, type === "udp4" ? "0.0.0.0" : "::", () => { socket.off("error", reject); resolve(); });
        });
        return socket;
      } catch (e) {
        socket.close();
        log.warn(`overlay health probes${type === "udp6" ? " over IPv6" : ""} off: cannot bind UDP ${where} (--health-port): ${(e as Error).message}`);
        return undefined;
      }
    };
    const socket = source.lease?.subnet || !source.lease?.ipv6Subnet ? await bind("udp4") : undefined;
    const socket6 = source.lease?.ipv6Subnet ? await bind("udp6") : undefined;
    if (!socket && !socket6) return undefined;
    // An IPv6-only host still needs `socket` for its type; it never sends on it.
    const p = new HealthProber(opts, source, log, socket ?? socket6!, publisher, socket6);
    for (const s of new Set([socket, socket6])) {
      s?.on("message", (msg, rinfo) => p.#onMessage(msg, rinfo, s));
      s?.on("error", (e) => log.warn(`overlay health socket: ${e.message}`));
    }
    p.#register(metrics);
    p.#timer = setInterval(() => p.#tick(), p.#tickMs);
    if (publisher?.publishHealth && publisher.clusterHealth) p.#publishTimer = setTimeout(() => void p.#publish(), p.#publishMs);
    log.info(`Overlay health: probing peers every ${p.intervalMs / 1000} s (at most ${p.maxPerSecond} probes/s) on UDP ${opts.port}`);
    return p;
  }

  async close(): Promise<void> {
    clearInterval(this.#timer);
    clearTimeout(this.#publishTimer);
    this.#publishTimer = undefined;
    // Bounded: under Bun a dgram socket's close callback does not always fire (seen with the udp
    // backend's agent), and a shutdown must never wait on it.
    await Promise.all([...new Set([this.socket, this.socket6])].map((s) => new Promise<void>((r) => {
      const t = setTimeout(r, 200);
      try {
        s?.close(() => { clearTimeout(t); r(); });
      } catch {
        clearTimeout(t);
        r();
      }
    })));
  }

  /** Sources we answer: the cluster network(s) (overlay addresses) and peers' public IPs. */
  #allowed(address: string): boolean {
    const ip = tryParseIPv4(address);
    const ip6 = ip === undefined ? tryParseIPv6(address) : undefined;
    if (ip === undefined && ip6 === undefined) return false;
    const net = this.source.config?.network;
    const net6 = this.source.config?.ipv6Network;
    if (ip !== undefined && net && containsV4(net, ip)) return true;
    if (ip6 !== undefined && net6 && containsV6Net(net6, { ip: ip6, len: 128 })) return true;
    const refused = this.source.refusedLeases;
    for (const l of this.source.peers.values()) {
      if ((ip !== undefined ? l.attrs.publicIP === ip : l.attrs.publicIPv6 === ip6) && !refused?.has(leaseKey(l))) return true;
    }
    return false;
  }

  #onMessage(msg: Buffer, rinfo: RemoteInfo, socket: Socket): void {
    const p = decodeProbe(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength));
    if (!p) return;
    if (p.type === REQUEST) {
      if (!this.#allowed(rinfo.address)) return;
      socket.send(replyTo(new Uint8Array(msg.buffer, msg.byteOffset, msg.byteLength)), rinfo.port, rinfo.address);
      this.repliesSent++;
      return;
    }
    if (p.type !== REPLY || p.token !== this.#token) return;
    const o = this.#outstanding.get(p.seq);
    if (!o) return; // late: already counted lost
    this.#outstanding.delete(p.seq);
    const peer = this.#peers.get(o.peer);
    if (!peer) return;
    this.answered++;
    this.#changed(peer, onAnswer(peer.state, Date.now(), performance.now() - o.sentPerf, o.mtu));
  }

  /** Follows the peer set (once a second): IPv4 leases of other hosts, keyed by overlay address. */
  #syncPeers(now: number): void {
    const backend = this.source.backendType;
    const seen = new Set<string>();
    const refused = this.source.refusedLeases;
    const own = this.source.lease;
    const add = (family: 4 | 6, addr: string, label: string, publicIP: string) => {
      seen.add(addr);
      const known = this.#peers.get(addr);
      if (known) known.publicIP = publicIP;
      else this.#peers.set(addr, { family, label, addr, publicIP, state: newPeerState(now) });
    };
    for (const l of this.source.peers.values()) {
      if (refused?.has(leaseKey(l))) continue;
      const publicIP = l.attrs.publicIP ? formatIPv4(l.attrs.publicIP) : formatIPv6(l.attrs.publicIPv6 ?? 0n);
      if (l.subnet && own?.subnet) add(4, overlayAddress(l.subnet, backend), formatIPv4Net(l.subnet), publicIP);
      if (l.ipv6Subnet && own?.ipv6Subnet && this.socket6) add(6, overlayAddress6(l.ipv6Subnet, backend), formatIPv6Net(l.ipv6Subnet), publicIP);
    }
    for (const a of this.#peers.keys()) if (!seen.has(a)) this.#peers.delete(a);
    this.#sched.setPeers(seen, now);
  }

  #tick(): void {
    const now = Date.now();
    if (!this.source.lease?.subnet && !this.source.lease?.ipv6Subnet) return;
    if (now - this.#lastSync >= 1000) {
      this.#lastSync = now;
      this.#syncPeers(now);
    }
    const timeout = Math.min(2000, this.intervalMs / 2);
    for (const [seq, o] of this.#outstanding) {
      if (now - o.sentAt < timeout) continue;
      this.#outstanding.delete(seq);
      const peer = this.#peers.get(o.peer);
      if (!peer) continue;
      this.#changed(peer, onLoss(peer.state, now, o.mtu));
      if (peer.state.state === "down" && now - (peer.diagnosedAt ?? 0) >= Math.max(30_000, 3 * this.intervalMs)) void this.#diagnose(peer);
    }
    const mtu = this.source.network?.mtu ?? 1450;
    for (const d of this.#sched.due(now, this.#tickMs)) {
      const peer = this.#peers.get(d.peer);
      if (!peer) continue;
      const seq = (this.#seq = (this.#seq + 1) >>> 0);
      const size = d.mtu ? mtu - (peer.family === 6 ? IPV6_UDP_HEADERS : IPV4_UDP_HEADERS) : SMALL_PROBE_BYTES;
      this.#outstanding.set(seq, { peer: d.peer, sentAt: now, sentPerf: performance.now(), mtu: d.mtu });
      peer.state.sent++;
      this.sent++;
      // Errors (EMSGSIZE with a lower learned PMTU, ENETUNREACH …) surface as a loss at timeout.
      (peer.family === 6 ? this.socket6! : this.socket).send(encodeProbe({ type: REQUEST, mtu: d.mtu, seq, token: this.#token, size }), this.opts.port, peer.addr, () => {});
    }
  }

  #changed(peer: Peer, changes: Change[]): void {
    const mtu = this.source.network?.mtu ?? 1450;
    for (const c of changes) {
      // A first answer is no news (1000 peers would log 1000 lines at start); coming back is.
      if (c === "up" && peer.wasDown) this.log.info(`overlay health: peer ${peer.label} (${peer.publicIP}) reachable again through the overlay after ${Math.round((Date.now() - peer.wasDown) / 1000)} s (rtt ${peer.state.lastRttMs?.toFixed(1) ?? "?"} ms)`);
      if (c === "up") peer.wasDown = undefined;
      else if (c === "mtu_ok") this.log.info(`overlay health: full-size probes (${mtu} bytes) to ${peer.label} pass again`);
      else if (c === "mtu_failed") this.log.warn(`overlay health: ${mtuCause(peer.label, mtu)}`);
      else if (c === "down") {
        peer.wasDown = Date.now();
        void this.#diagnose(peer);
      }
    }
  }

  /** Finds the likely cause of a peer being down, stores it and logs it. */
  async #diagnose(peer: Peer): Promise<void> {
    if (peer.diagnosing || this.#diagnoses >= 4) return; // the next loss tries again
    peer.diagnosing = true;
    peer.diagnosedAt = Date.now();
    this.#diagnoses++;
    const ev: DownEvidence = {
      peer: peer.label, publicIP: peer.publicIP, overlayAddr: peer.addr, port: this.opts.port, backend: this.source.backendType ?? "",
    };
    try {
      ev.route = await this.#routeCheck(peer).catch(() => undefined);
      const { checkUnderlay } = await import("./underlay_check.ts");
      if (tryParseIPv4(peer.publicIP) !== undefined) ev.underlay = await checkUnderlay(peer.publicIP, this.opts.port, Math.min(2000, this.intervalMs)).catch(() => undefined);
      if (ev.underlay === "refused" && ev.route?.ok !== false && peer.family === 4) {
        const { pingOverlay } = await import("./icmp_echo.ts");
        ev.overlayIcmp = await pingOverlay(peer.addr, Math.min(2000, this.intervalMs)).catch(() => undefined);
      }
    } finally {
      peer.diagnosing = false;
      this.#diagnoses--;
    }
    if (peer.state.state !== "down") return;
    const cause = likelyCause(ev);
    if (cause === peer.state.cause) return; // logged already
    const again = peer.state.cause !== undefined;
    peer.state.cause = cause;
    if (again) return this.log.warn(`overlay health: peer ${peer.label} (${peer.publicIP}) still unreachable through the overlay; now: ${cause}`);
    this.log.warn(`overlay health: peer ${peer.label} (${peer.publicIP}) unreachable through the overlay (probes to ${peer.addr}:${this.opts.port} unanswered): ${peer.state.cause}`);
  }

  /** `ip route get <overlay addr>`: host-gw must go via the peer's public IP, others out an overlay device. */
  async #routeCheck(peer: Peer): Promise<{ ok: boolean; detail: string }> {
    const { NetlinkSocket, routeGet, linkByIndex } = await import("../../ffi/netlink/index.ts");
    const { loadSys } = await import("../../ffi/sys.ts");
    const nl = NetlinkSocket.open(await loadSys());
    try {
      const r = routeGet(nl, peer.addr);
      const dev = r.dev !== undefined ? linkByIndex(nl, r.dev)?.name ?? `#${r.dev}` : "?";
      const detail = `ip route get ${peer.addr}: ${r.gw ? `via ${r.gw} ` : ""}dev ${dev}`;
      const ok = this.source.backendType === "host-gw" ? r.gw === peer.publicIP : (this.source.network?.devices ?? []).includes(dev);
      return { ok, detail };
    } catch (e) {
      return { ok: false, detail: `ip route get ${peer.addr}: ${(e as Error).message}` };
    } finally {
      nl.close();
    }
  }

  /** Publishing period: twice the probe interval, 1–20 s. */
  get #publishMs(): number {
    return Math.min(20_000, Math.max(1000, this.intervalMs * 2));
  }

  /** The IPv4 peers: the matrix is drawn over IPv4 (IPv6 results stay in /status and /metrics). */
  #v4Peers(): Peer[] {
    return [...this.#peers.values()].filter((p) => p.family === 4);
  }

  /** Our label: the own lease's subnet. */
  get #ownLabel(): string | undefined {
    const s = this.source.lease?.subnet;
    return s ? formatIPv4Net(s) : undefined;
  }

  /** Publishes our summary and reads everyone's, while the cluster is small enough for a matrix. */
  async #publish(): Promise<void> {
    const own = this.#ownLabel;
    try {
      if (own && this.#v4Peers().length + 1 <= MATRIX_MAX_HOSTS) {
        const peers: Summary["peers"] = {};
        for (const p of this.#v4Peers()) peers[p.label] = cellOf(p.state);
        await this.publisher!.publishHealth!(encodeSummary({ at: Math.floor(Date.now() / 1000), peers }), Math.ceil((this.#publishMs * 3) / 1000));
        const all = await this.publisher!.clusterHealth!();
        const next = new Map<string, Summary>();
        for (const [key, text] of all) {
          const sub = parseSubnetKey(key)?.subnet;
          const s = sub ? decodeSummary(text) : undefined;
          if (sub && s) next.set(formatIPv4Net(sub), s);
        }
        this.#summaries = next;
        if (this.#publishError) this.log.info("overlay health: publishing the health summary works again");
        this.#publishError = "";
      } else {
        this.#summaries = new Map();
      }
    } catch (e) {
      const msg = (e as Error).message;
      if (msg !== this.#publishError) this.log.warn(`overlay health: cannot publish or read health summaries: ${msg}`);
      this.#publishError = msg;
    }
    if (this.#publishTimer !== undefined) this.#publishTimer = setTimeout(() => void this.#publish(), this.#publishMs);
  }

  /** The whole-cluster matrix from the published summaries (ours live), or null above MATRIX_MAX_HOSTS or without any. */
  matrix(): Matrix | null {
    const own = this.#ownLabel;
    if (!own || this.#summaries.size === 0 || this.#v4Peers().length + 1 > MATRIX_MAX_HOSTS) return null;
    const hosts = [own, ...this.#v4Peers().map((p) => p.label)].sort((a, b) => parseIPv4Label(a) - parseIPv4Label(b));
    const summaries = new Map(this.#summaries);
    const peers: Summary["peers"] = {};
    for (const p of this.#v4Peers()) peers[p.label] = cellOf(p.state);
    const now = Math.floor(Date.now() / 1000);
    summaries.set(own, { at: now, peers });
    return buildMatrix(hosts, summaries, now, Math.ceil((this.#publishMs * 3) / 1000));
  }

  /** `/status` of one peer lease: its IPv4 results, with the IPv6 ones under `ipv6` (an IPv6-only lease: those alone); null when not probed. */
  peerJSON(l: Lease): (PeerHealthJSON & { ipv6?: PeerHealthJSON | null }) | null {
    const v4 = l.subnet ? this.#peers.get(overlayAddress(l.subnet, this.source.backendType)) : undefined;
    const v6 = l.ipv6Subnet ? this.#peers.get(overlayAddress6(l.ipv6Subnet, this.source.backendType)) : undefined;
    if (!v4) return v6 ? this.#json(v6) : null;
    return { ...this.#json(v4), ...(this.socket6 && l.ipv6Subnet ? { ipv6: v6 ? this.#json(v6) : null } : {}) };
  }

  #json(p: Peer): PeerHealthJSON {
    const s = p.state;
    const r = (ms: number | undefined) => (ms === undefined ? null : Math.round(ms * 1000) / 1000);
    return {
      state: s.state, since: new Date(s.since).toISOString(), overlayAddr: p.addr,
      rttMs: { last: r(s.lastRttMs), p50: r(medianRtt(s)) }, mtuOk: s.mtuOk ?? null,
      probes: s.sent, failures: s.failures, cause: s.cause ?? null,
    };
  }

  /** The totals `/status` shows beside the peers. */
  summary(): Record<string, unknown> {
    const n = { up: 0, down: 0, unknown: 0, mtuFailed: 0 };
    for (const p of this.#peers.values()) {
      n[p.state.state]++;
      if (p.state.mtuOk === false) n.mtuFailed++;
    }
    return { port: this.opts.port, intervalMs: ProbeScheduler.intervalFor(this.#peers.size, { intervalMs: this.intervalMs, maxPerSecond: this.maxPerSecond, mtuEvery: 6 }), maxPerSecond: this.maxPerSecond, ...n, matrix: this.matrix() };
  }

  #register(metrics: Metrics): void {
    const per = (f: (p: Peer) => number | undefined): (() => Sample[]) => () => {
      const out: Sample[] = [];
      for (const p of this.#peers.values()) {
        const v = f(p);
        if (v !== undefined) out.push([{ peer: p.label }, v]);
      }
      return out;
    };
    metrics.register("weft_peer_up", { type: "gauge", help: "1 while the peer answers probes through the overlay, 0 when it does not (or has not yet).", samples: per((p) => (p.state.state === "up" ? 1 : 0)) });
    metrics.register("weft_peer_rtt_seconds", { type: "gauge", help: "Median round-trip time of the recent probes to the peer through the overlay.", samples: per((p) => { const m = medianRtt(p.state); return m === undefined ? undefined : m / 1000; }) });
    metrics.register("weft_peer_mtu_ok", { type: "gauge", help: "1 while full-size probes (overlay MTU, DF) to the peer pass, 0 when they are lost while small ones pass; absent until known.", samples: per((p) => (p.state.mtuOk === undefined ? undefined : p.state.mtuOk ? 1 : 0)) });
    metrics.register("weft_peer_probe_failures_total", { type: "counter", help: "Probes to the peer that went unanswered.", samples: per((p) => p.state.failures) });
    metrics.register("weft_health_probes_sent_total", { type: "counter", help: "Overlay health probes sent by this host.", samples: () => [[{}, this.sent]] });
    metrics.register("weft_health_probes_answered_total", { type: "counter", help: "Overlay health probes answered in time.", samples: () => [[{}, this.answered]] });
    metrics.register("weft_health_replies_sent_total", { type: "counter", help: "Probes from other hosts this host answered.", samples: () => [[{}, this.repliesSent]] });
  }
}
