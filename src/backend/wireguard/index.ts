/**
 * @module The `wireguard` backend (flannel's backend/wireguard), in userspace: WireGuard on the
 * wire, interoperable with the kernel module and wireguard-go, on kernels without either.
 *
 * What it programs, as flanneld does:
 * - the node's private key from /run/flannel/wgkey (or $WIREGUARD_KEY_FILE), made once (0400);
 *   the lease says BackendType "wireguard" and BackendData (BackendV6Data with IPv6)
 *   {"PublicKey":"<base64>","Port":<listen port>} (flanneld ≥ v0.21 reads Port; v0.20 ignores it);
 * - `Mode` "separate" (default): device `flannel-wg` for IPv4 on ListenPort (51820) and, with
 *   IPv6, `flannel-wg-v6` on ListenPortV6 (51821), each with the same key; "auto", "ipv4",
 *   "ipv6": one `flannel-wg` carrying both families, each peer reached over the family the mode
 *   picks (auto: IPv4 unless only IPv6 is there, flannel's selectPublicEndpoint);
 * - each device: a TUN with MTU = underlay MTU (or Backend.MTU) − 80, address = our lease's
 *   network address /32 (/128), up, `ip route replace <Network> dev <device>`. It persists, as
 *   the kernel module's device does: while the agent is down, packets for other hosts' pods are
 *   dropped there instead of leaving unencrypted by the default route, and a restart attaches to it;
 * - per peer lease of BackendType wireguard: a WireGuard peer with its key, endpoint
 *   PublicIP:Port (its lease's Port, else our listen port), allowed IPs = its subnet(s), the PSK
 *   and PersistentKeepaliveInterval when set. A lease of another type is refused with a warning
 *   (flanneld ignores it the same way); a lease whose BackendData has no valid key, with an error;
 * - `wg show <device>` answered, as wireguard-go answers it, on /var/run/wireguard/<device>.sock
 *   (uapi.ts); `wg set` refused, since the leases set the peers.
 *
 * Threads: the main thread decides (which leases, which peer ids) and publishes each device's
 * whole state (wg_channel.ts); one packet worker per device (worker.ts, wg_loop.ts) owns the TUN,
 * the sockets, the handshakes, the timers and a Wasm core doing every per-packet byte. A worker
 * that dies is restarted and reads the same state (sessions are then renegotiated).
 */
import {
  EINVAL, enableTunOffloads, enableUdpGro, loadSys, openTun, openUdpSocket, probeUdpGso, setBuffers, type Sys, SysError,
} from "../../../ffi/index.ts";
import { NetlinkSocket, addrDel, addrList, addrReplace, linkSetMtu, linkSetUp, routeReplace } from "../../../ffi/netlink/index.ts";
import { type Lease, type LeaseEvent, leaseKey } from "../../lease/lease.ts";
import { type IPv4Net, type IPv6Net, formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net } from "../../net/ip.ts";
import type { Family, Sample } from "../../status/metrics.ts";
import type { Backend, BackendContext, Network } from "../types.ts";
import { coreWasmBytes } from "../udp/core_wasm.ts";
import { createStatsBuffer } from "../udp/worker_stats.ts";
import { icmpSource, icmpSource6 } from "../udp/udp_backend.ts";
import { parseWireguardConfig, type WireguardConfig, wireguardDeviceMtu } from "./config.ts";
import { keyFilePath, loadOrCreateKey } from "./key_file.ts";
import { encodeWireguardLeaseData, parseWireguardLeaseData, peerPort } from "./lease_data.ts";
import { formatKey } from "./wg_key.ts";
import { type UapiDevice, UAPI_DIR, serveUapi } from "./uapi.ts";
import { type WgDeviceState, type WgPeerConfig, WgStateWriter } from "./wg_channel.ts";
import type { WgLoopStatus } from "./wg_loop.ts";
import type { WgWorkerInit, WgWorkerReport } from "./worker.ts";

export const WG_DEVICE = "flannel-wg";
export const WG_DEVICE_V6 = "flannel-wg-v6";
const WORKER_START_MS = 10_000;
const RESTART_MS = 1_000;

const hex128 = (v: bigint) => v.toString(16).padStart(32, "0");

/**
 * Where the worker's module is: beside this file from sources; in a `bun build --compile`
 * executable, at its entry-point path under the embedded root (see udp_backend.ts workerUrl).
 */
export function wgWorkerUrl(moduleUrl: string = import.meta.url): string {
  const compiled = moduleUrl.startsWith("file:///$bunfs/") || moduleUrl.startsWith("file:///B:/~BUN/");
  return new URL(compiled ? "./backend/wireguard/worker.ts" : "./worker.ts", moduleUrl).href;
}

/** Which families a device carries and which underlay sockets it listens on. */
interface DeviceSpec {
  name: string;
  port: number;
  /** Address families of the packets inside. */
  inner4: boolean;
  inner6: boolean;
  /** Underlay sockets to open. */
  udp4: boolean;
  udp6: boolean;
}

/** One TUN device, its sockets and its packet worker. */
class WgDevice {
  readonly writer = new WgStateWriter();
  readonly stats = createStatsBuffer(1);
  status: WgLoopStatus | null = null;
  /** Packet workers restarted after they failed. */
  restarts = 0;
  /** The last state published, for `wg show` (uapi.ts). */
  #state: WgDeviceState | null = null;
  #uapi: { close(): void } | undefined;
  #worker: Worker | null = null;
  #closed = false;
  /** The addresses we set; null until the first configure() (the device may be from an earlier run). */
  #addresses: string[] | null = null;

  constructor(
    readonly spec: DeviceSpec,
    private readonly ctx: BackendContext,
    private readonly sys: Sys,
    private readonly nl: NetlinkSocket,
    readonly tunFd: number,
    readonly udpFd: number,
    readonly udp6Fd: number,
    public init: Omit<WgWorkerInit, "state" | "stats" | "wasm">,
    private readonly wasm: Uint8Array,
  ) {}

  /** Opens the TUN (vnet_hdr when the kernel takes it) and the sockets; closes them again on failure. */
  static async open(ctx: BackendContext, sys: Sys, nl: NetlinkSocket, spec: DeviceSpec, mtu: number, privateKey: string, wasm: Uint8Array): Promise<WgDevice> {
    const fds: number[] = [];
    let dev: WgDevice | undefined;
    try {
      // WEFT_WG_NO_VNET, WEFT_WG_NO_GSO, WEFT_WG_NO_GRO=1 each turn one offload off (as the udp
      // backend's WEFT_UDP_NO_*), for benchmarks and for kernels that mishandle one.
      const off = (name: string) => process.env[`WEFT_WG_NO_${name}`] === "1";
      let tun = -1, vnetHdr = !off("VNET");
      if (vnetHdr) {
        try {
          tun = openTun(sys, { name: spec.name, vnetHdr: true, nonBlocking: true, persist: true }).fd;
        } catch (e) {
          if (!(e instanceof SysError && e.errno === EINVAL)) throw e;
          vnetHdr = false;
        }
      }
      if (tun < 0) tun = openTun(sys, { name: spec.name, nonBlocking: true, persist: true }).fd;
      fds.push(tun);
      if (vnetHdr) enableTunOffloads(sys, tun);
      let gso = !off("GSO"), gro = !off("GRO");
      const socket = (ip: string) => {
        const fd = openUdpSocket(sys, { ip, port: spec.port, v6only: true });
        fds.push(fd);
        setBuffers(sys, fd);
        gso &&= probeUdpGso(sys, fd);
        gro &&= enableUdpGro(sys, fd);
        return fd;
      };
      const udp4 = spec.udp4 ? socket("0.0.0.0") : -1;
      const udp6 = spec.udp6 ? socket("::") : -1;
      linkSetMtu(nl, spec.name, mtu);
      // Test builds only (the release build defines both away): shortened protocol timers, and a
      // packet worker that throws after N packets, once, to show that it is restarted.
      const timers = process.env.WEFT_TEST_WG_TIMERS;
      const crashText = process.env.WEFT_TEST_WG_WORKER_CRASH_AFTER;
      const crash = Number(crashText ?? 0);
      if (!Number.isInteger(crash) || crash < 0) {
        throw new RangeError(`wireguard backend: WEFT_TEST_WG_WORKER_CRASH_AFTER=${JSON.stringify(crashText)} must be a whole number of packets`);
      }
      dev = new WgDevice(spec, ctx, sys, nl, tun, udp4, udp6, {
        type: "init",
        options: {
          device: spec.name, tunFd: tun, udpFd: udp4, udp6Fd: udp6, vnetHdr, gso, gro, ifaceMtu: ctx.extIface.mtu, mtu, privateKey,
          ...(crash > 0 ? { crashAfterPackets: crash } : {}),
        },
        ...(timers ? { timers } : {}),
      }, wasm);
      ctx.log.info(`wireguard backend: ${spec.name} mtu ${mtu}, UDP port ${spec.port}${udp4 >= 0 ? " (IPv4)" : ""}${udp6 >= 0 ? " (IPv6)" : ""}; ` +
        `vnet_hdr ${vnetHdr ? "on" : "off"}, UDP GSO ${gso ? "on" : "off"}, UDP GRO ${gro ? "on" : "off"}`);
      await dev.#start();
      return dev;
    } catch (e) {
      // A worker that failed to start must not be restarted over fds closed here: close() stops that.
      if (dev) await dev.close();
      else for (const fd of fds) sys.close(fd);
      throw e;
    }
  }

  /** Starts the packet worker and waits for it to run; a worker that fails later is restarted. */
  async #start(): Promise<void> {
    const w = new Worker(wgWorkerUrl(), { type: "module" });
    this.#worker = w;
    let ready!: () => void, failed!: (e: Error) => void;
    const started = new Promise<void>((res, rej) => { ready = res; failed = rej; });
    const timer = setTimeout(() => failed(new Error(`wireguard backend: the packet worker of ${this.spec.name} did not start within ${WORKER_START_MS / 1000} s`)), WORKER_START_MS);
    w.onmessage = (e: MessageEvent) => {
      const m = e.data as WgWorkerReport;
      if (m.type === "ready") { clearTimeout(timer); ready(); }
      else if (m.type === "status") this.status = m.status;
      else if (m.type === "error") {
        clearTimeout(timer);
        failed(new Error(m.message));
        this.#died(m.message);
      }
    };
    w.onerror = (e) => {
      const msg = (e as ErrorEvent).message ?? String(e);
      clearTimeout(timer);
      failed(new Error(msg));
      this.#died(msg);
    };
    w.postMessage({ ...this.init, wasm: this.wasm, state: this.writer.buffer, stats: this.stats } satisfies WgWorkerInit);
    await started;
  }

  #died(message: string): void {
    if (this.#closed || !this.#worker) return;
    this.#worker.terminate();
    this.#worker = null;
    this.ctx.metrics.error("wireguard_worker");
    this.ctx.log.error(`wireguard backend: the packet worker of ${this.spec.name} failed; restarting in ${RESTART_MS / 1000} s: ${message}`);
    this.restarts++;
    const { crashAfterPackets: _, ...options } = this.init.options; // a test's crash happens once
    this.init = { ...this.init, options };
    setTimeout(() => {
      if (this.#closed) return;
      this.#start().catch((e) => this.#died((e as Error).message));
    }, RESTART_MS);
  }

  /** `ip addr replace` each of `addresses` (removing ones no longer wanted), link up, routes. */
  configure(addresses: string[], routes: string[]): void {
    // A device kept from an earlier run (it persists) may carry an earlier lease's address.
    const had = this.#addresses ?? addrList(this.nl, { dev: this.spec.name }).filter((a) => !a.cidr.startsWith("fe80:")).map((a) => a.cidr);
    for (const old of had) {
      if (!addresses.includes(old)) {
        try { addrDel(this.nl, this.spec.name, old); } catch { /* already gone */ }
      }
    }
    for (const a of addresses) addrReplace(this.nl, this.spec.name, a);
    this.#addresses = addresses;
    linkSetUp(this.nl, this.spec.name);
    for (const dst of routes) routeReplace(this.nl, { dst, dev: this.spec.name });
  }

  publish(state: WgDeviceState): void {
    this.writer.publish(state);
    this.#state = state;
  }

  /** Serves `wg show <device>` at /var/run/wireguard/<device>.sock (uapi.ts); never fails the start. */
  async startUapi(): Promise<void> {
    this.#uapi = await serveUapi(`${UAPI_DIR}/${this.spec.name}.sock`, this.spec.name, () => this.uapiDevice(), this.ctx.log);
  }

  /** The device as `wg` shows it: the published peers, with the worker's last counters. */
  uapiDevice(): UapiDevice {
    const state = this.#state;
    const seen = new Map((this.status?.peers ?? []).map((p) => [p.id, p]));
    return {
      privateKey: this.init.options.privateKey,
      listenPort: this.spec.port,
      psk: state?.psk ?? null,
      keepaliveSeconds: Math.floor((state?.keepaliveMs ?? 0) / 1000),
      peers: (state?.peers ?? []).map((p) => {
        const st = seen.get(p.id);
        const allowedIPs: string[] = [];
        if (p.subnet4) allowedIPs.push(formatIPv4Net({ ip: p.subnet4[0], len: p.subnet4[1] }));
        if (p.subnet6) allowedIPs.push(formatIPv6Net({ ip: BigInt(`0x${p.subnet6[0]}`), len: p.subnet6[1] }));
        const configured = p.endpoint.ip.includes(":") ? `[${p.endpoint.ip}]:${p.endpoint.port}` : `${p.endpoint.ip}:${p.endpoint.port}`;
        return {
          publicKey: p.publicKey, endpoint: st?.endpoint ?? configured, lastHandshakeMs: st?.lastHandshakeMs ?? 0,
          rxBytes: st?.rxBytes ?? 0, txBytes: st?.txBytes ?? 0, allowedIPs,
        };
      }),
    };
  }

  /** Stops the worker (waiting up to 2 s for it to return), then closes the fds (the device stays: it persists). */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#uapi?.close();
    this.writer.stop();
    const w = this.#worker;
    if (w) {
      await new Promise<void>((res) => {
        const t = setTimeout(res, 2000);
        w.onmessage = (e: MessageEvent) => {
          const m = e.data as WgWorkerReport;
          if (m.type === "status") this.status = m.status;
          if (m.type === "stopped" || m.type === "error") { clearTimeout(t); res(); }
        };
      });
      w.terminate();
    }
    for (const fd of [this.tunFd, this.udpFd, this.udp6Fd]) if (fd >= 0) this.sys.close(fd);
  }
}

/** Our lease's address on a device (/32) and the route to the network through it. */
function ownV4(lease: Lease, network: IPv4Net | undefined): { addr: string; route: string } {
  if (!lease.subnet || !network) throw new Error(`wireguard backend: our lease ${leaseKey(lease)} has no IPv4 subnet`);
  return { addr: `${formatIPv4(lease.subnet.ip)}/32`, route: formatIPv4Net(network) };
}

function ownV6(lease: Lease, network: IPv6Net | undefined): { addr: string; route: string } {
  if (!lease.ipv6Subnet || !network) throw new Error(`wireguard backend: our lease ${leaseKey(lease)} has no IPv6 subnet`);
  return { addr: `${formatIPv6(lease.ipv6Subnet.ip)}/128`, route: formatIPv6Net(network) };
}

class WireguardNetwork implements Network {
  readonly leaseAttrs: Network["leaseAttrs"];
  readonly mtu: number;
  readonly devices: string[];
  readonly #peers = new Map<string, Lease>();
  readonly #ids = new Map<string, number>();
  #nextId = 0;
  readonly #freeIds: number[] = [];
  /** Leases refused, with why (logged once per reason). */
  readonly #refused = new Map<string, string>();
  #own?: Lease;
  #closed = false;

  private constructor(
    private readonly ctx: BackendContext,
    private readonly cfg: WireguardConfig,
    private readonly nl: NetlinkSocket,
    private readonly v4: WgDevice | null,
    private readonly v6: WgDevice | null,
    publicKey: Uint8Array,
    mtu: number,
  ) {
    this.mtu = mtu;
    this.devices = [v4, v6].filter((d): d is WgDevice => d !== null).map((d) => d.spec.name);
    const { enableIPv4, enableIPv6 } = ctx.config;
    this.leaseAttrs = {
      backendType: "wireguard",
      ...(enableIPv4 ? { backendData: encodeWireguardLeaseData(publicKey, (v4 ?? v6)!.spec.port) } : {}),
      ...(enableIPv6 ? { backendV6Data: encodeWireguardLeaseData(publicKey, (this.#separate ? v6 : v4)!.spec.port) } : {}),
    };
  }

  get #separate(): boolean {
    return this.cfg.mode === "separate";
  }

  static async create(ctx: BackendContext): Promise<WireguardNetwork> {
    const { config, extIface: ext, log } = ctx;
    const cfg = parseWireguardConfig(config.backend);
    const mtu = wireguardDeviceMtu(cfg, ext.mtu, ext.name);
    if (config.enableIPv6 && mtu < 1280) throw new RangeError(`wireguard backend: device MTU ${mtu} is below IPv6's 1280; an underlay MTU of at least 1360 is needed`);
    const key = loadOrCreateKey(keyFilePath(process.env));
    log.info(`wireguard backend: ${key.created ? "made a new" : "using the"} private key in ${key.path}; public key ${formatKey(key.publicKey)}`);
    const specs: DeviceSpec[] = [];
    const six = config.enableIPv6;
    if (cfg.mode === "separate") {
      if (config.enableIPv4) specs.push({ name: WG_DEVICE, port: cfg.listenPort, inner4: true, inner6: false, udp4: true, udp6: false });
      if (six) specs.push({ name: WG_DEVICE_V6, port: cfg.listenPortV6, inner4: false, inner6: true, udp4: false, udp6: true });
    } else {
      const v4Under = cfg.mode !== "ipv6", v6Under = cfg.mode === "ipv6" || (cfg.mode === "auto" && ext.ifaceAddr6 !== undefined);
      specs.push({ name: WG_DEVICE, port: cfg.listenPort, inner4: config.enableIPv4, inner6: six, udp4: v4Under, udp6: v6Under });
    }
    const sys = await loadSys();
    const nl = NetlinkSocket.open(sys);
    const wasm = await coreWasmBytes();
    const opened: WgDevice[] = [];
    try {
      for (const s of specs) opened.push(await WgDevice.open(ctx, sys, nl, s, mtu, formatKey(key.privateKey), wasm));
    } catch (e) {
      for (const d of opened) await d.close();
      nl.close();
      throw e;
    }
    // Separate mode: a device per family. Otherwise one device carries both: it stands as v4.
    const v4 = cfg.mode === "separate" ? opened.find((d) => d.spec.inner4) ?? null : opened[0]!;
    const v6 = cfg.mode === "separate" ? opened.find((d) => d.spec.inner6) ?? null : null;
    for (const d of opened) await d.startUapi();
    const net = new WireguardNetwork(ctx, cfg, nl, v4, v6, key.publicKey, mtu);
    for (const [name, family] of net.#families()) ctx.metrics.register(name, family);
    return net;
  }

  /**
   * Equivalent to `ip addr replace <lease net>/32 dev flannel-wg; ip link set up; ip route
   * replace <Network> dev flannel-wg`, and for IPv6 the same with /128 on flannel-wg-v6 (or
   * flannel-wg outside separate mode).
   */
  async start(lease: Lease): Promise<void> {
    const { config } = this.ctx;
    this.#own = lease;
    const v4 = config.enableIPv4 ? ownV4(lease, config.network) : undefined;
    const v6 = config.enableIPv6 ? ownV6(lease, config.ipv6Network) : undefined;
    if (this.#separate) {
      if (v4) this.v4!.configure([v4.addr], [v4.route]);
      if (v6) this.v6!.configure([v6.addr], [v6.route]);
    } else {
      const both = [v4, v6].filter((x) => x !== undefined);
      this.v4!.configure(both.map((x) => x.addr), both.map((x) => x.route)); // the one device
    }
    this.#publish();
  }

  async reconcile(peers: ReadonlyMap<string, Lease>): Promise<void> {
    this.#peers.clear();
    for (const [k, l] of peers) this.#peers.set(k, l);
    this.#publish();
  }

  async apply(events: readonly LeaseEvent[]): Promise<void> {
    for (const e of events) {
      const k = leaseKey(e.lease);
      if (e.type === "added") this.#peers.set(k, e.lease);
      else this.#peers.delete(k);
    }
    this.#publish();
  }

  #idOf(key: string): number {
    let id = this.#ids.get(key);
    if (id === undefined) {
      id = this.#freeIds.pop() ?? this.#nextId++;
      this.#ids.set(key, id);
    }
    return id;
  }

  #refuse(key: string, why: string, error: boolean): void {
    if (this.#refused.get(key) === why) return;
    this.#refused.set(key, why);
    if (error) {
      this.ctx.log.error(`wireguard backend: peer lease ${key} ${why}`);
      this.ctx.metrics.error("wireguard_peer_refused");
    } else {
      this.ctx.log.warn(`wireguard backend: peer lease ${key} ${why}`);
    }
  }

  /** Every device's state from our lease and the peers' leases (flannel's handleSubnetEvents). */
  #publish(): void {
    if (this.#closed || !this.#own) return;
    const { config } = this.ctx;
    const own = this.#own;
    const v4peers: WgPeerConfig[] = [], v6peers: WgPeerConfig[] = [];
    const live = new Set<string>();
    for (const [key, lease] of this.#peers) {
      const a = lease.attrs;
      if (a.backendType !== "wireguard") { this.#refuse(key, `has BackendType ${JSON.stringify(a.backendType ?? "")}, not "wireguard": ignored, as flanneld does`, false); continue; }
      const d4 = config.enableIPv4 && lease.subnet ? parseWireguardLeaseData(a.backendData) : undefined;
      const d6 = config.enableIPv6 && lease.ipv6Subnet ? parseWireguardLeaseData(a.backendV6Data ?? a.backendData) : undefined;
      if (typeof d4 === "string") { this.#refuse(key, `BackendData: ${d4}`, true); continue; }
      if (typeof d6 === "string") { this.#refuse(key, `BackendV6Data: ${d6}`, true); continue; }
      const subnet4 = d4 && lease.subnet ? [lease.subnet.ip, lease.subnet.len] as const : undefined;
      const subnet6 = d6 && lease.ipv6Subnet ? [hex128(lease.ipv6Subnet.ip), lease.ipv6Subnet.len] as const : undefined;
      if (this.#separate) {
        if (d4 && subnet4) {
          if (a.publicIP === 0) { this.#refuse(key, "has no PublicIP to reach flannel-wg over", true); }
          else { v4peers.push({ id: this.#idOf(key), lease: key, publicKey: formatKey(d4.publicKey), endpoint: { ip: formatIPv4(a.publicIP), port: peerPort(d4, this.cfg.listenPort) }, subnet4 }); live.add(key); }
        }
        if (d6 && subnet6) {
          if (a.publicIPv6 === undefined) { this.#refuse(key, "has no PublicIPv6 to reach flannel-wg-v6 over", true); }
          else { v6peers.push({ id: this.#idOf(key), lease: key, publicKey: formatKey(d6.publicKey), endpoint: { ip: formatIPv6(a.publicIPv6), port: peerPort(d6, this.cfg.listenPortV6) }, subnet6 }); live.add(key); }
        }
        continue;
      }
      const data = (d4 ?? d6)!;
      if (!data) continue;
      const ip = this.#endpointFor(a.publicIP, a.publicIPv6);
      if (!ip) { this.#refuse(key, `has no ${this.cfg.mode === "ipv6" ? "PublicIPv6" : "PublicIP"} for Mode ${this.cfg.mode}`, true); continue; }
      v4peers.push({ id: this.#idOf(key), lease: key, publicKey: formatKey(data.publicKey), endpoint: { ip, port: peerPort(data, this.cfg.listenPort) }, ...(subnet4 ? { subnet4 } : {}), ...(subnet6 ? { subnet6 } : {}) });
      live.add(key);
    }
    for (const [key, id] of this.#ids) {
      if (!live.has(key)) { this.#ids.delete(key); this.#freeIds.push(id); }
    }
    for (const key of this.#refused.keys()) if (!this.#peers.has(key) || live.has(key)) this.#refused.delete(key);
    const base = { psk: this.cfg.psk ? Buffer.from(this.cfg.psk).toString("base64") : null, keepaliveMs: this.cfg.persistentKeepaliveInterval * 1000 };
    const v4state = (network: IPv4Net | undefined): Partial<WgDeviceState> => network && own.subnet ? {
      cluster: { network: network.ip, networkLen: network.len, subnetLen: config.subnetLen },
      tunAddr4: icmpSource(network, own.subnet), own4: [own.subnet.ip, own.subnet.len],
    } : {};
    const v6state = (network: IPv6Net | undefined): Partial<WgDeviceState> => network && own.ipv6Subnet ? {
      tunAddr6: hex128(icmpSource6(network, own.ipv6Subnet)), own6: [hex128(own.ipv6Subnet.ip), own.ipv6Subnet.len],
    } : {};
    if (this.#separate) {
      this.v4?.publish({ ...base, ...v4state(config.network), peers: v4peers });
      this.v6?.publish({ ...base, ...v6state(config.ipv6Network), peers: v6peers });
    } else {
      this.v4!.publish({ ...base, ...v4state(config.enableIPv4 ? config.network : undefined), ...v6state(config.enableIPv6 ? config.ipv6Network : undefined), peers: v4peers });
    }
  }

  /** The endpoint address Mode picks for a peer (flannel's selectPublicEndpoint for auto). */
  #endpointFor(ip4: number, ip6: bigint | undefined): string | undefined {
    const has4 = ip4 !== 0;
    if (this.cfg.mode === "ipv4") return has4 ? formatIPv4(ip4) : undefined;
    if (this.cfg.mode === "ipv6") return ip6 !== undefined ? formatIPv6(ip6) : undefined;
    if (has4 && (ip6 === undefined || this.ctx.extIface.ifaceAddr !== 0)) return formatIPv4(ip4);
    if (ip6 !== undefined) return formatIPv6(ip6);
    return has4 ? formatIPv4(ip4) : undefined;
  }

  #statuses(): { device: WgDevice; status: WgLoopStatus }[] {
    return [this.v4, this.v6].filter((d): d is WgDevice => d !== null && d.status !== null).map((d) => ({ device: d, status: d.status! }));
  }

  #families(): [string, Family][] {
    const sum = (f: (s: WgLoopStatus) => number) => this.#statuses().reduce((a, { status }) => a + f(status), 0);
    const byDevice = (f: (s: WgLoopStatus) => number): (() => Sample[]) => () => this.#statuses().map(({ device, status }) => [{ device: device.spec.name }, f(status)]);
    return [
      ["weft_wireguard_peers", { type: "gauge", help: "WireGuard peers configured, by device.", samples: byDevice((s) => s.peers.length) }],
      ["weft_wireguard_peers_with_session", { type: "gauge", help: "WireGuard peers with a session to send on, by device.", samples: byDevice((s) => s.peers.filter((p) => p.session).length) }],
      ["weft_wireguard_handshakes_total", {
        type: "counter", help: "Handshake messages sent (initiation, response, cookie reply) and sessions established.",
        samples: () => [
          [{ kind: "initiation_sent" }, sum((s) => s.handshakes.initiationsSent)], [{ kind: "response_sent" }, sum((s) => s.handshakes.responsesSent)],
          [{ kind: "cookie_reply_sent" }, sum((s) => s.handshakes.cookieRepliesSent)], [{ kind: "session" }, sum((s) => s.handshakes.sessions)],
        ],
      }],
      ["weft_wireguard_handshakes_rejected_total", {
        type: "counter", help: "Handshake messages refused, by reason (mac1: not for our key; response-auth: wrong PSK or key; unknown-peer: a key no lease has; ...).",
        samples: () => {
          const reasons = new Map<string, number>();
          for (const { status } of this.#statuses()) for (const [r, n] of Object.entries(status.handshakes.rejected)) reasons.set(r, (reasons.get(r) ?? 0) + n);
          return [...reasons].map(([reason, n]) => [{ reason }, n]);
        },
      }],
      ["weft_wireguard_transport_total", {
        type: "counter", help: "Transport messages sealed and opened, by verdict (ok, auth_failed, replayed, unknown_receiver, ...).",
        samples: () => {
          const out: Sample[] = [];
          const totals = new Map<string, number>();
          for (const { status } of this.#statuses()) {
            for (const dir of ["seal", "open"] as const) for (const [v, n] of Object.entries(status.transport[dir])) totals.set(`${dir} ${v}`, (totals.get(`${dir} ${v}`) ?? 0) + n);
          }
          for (const [k, n] of totals) { const [direction, verdict] = k.split(" "); out.push([{ direction: direction!, verdict: verdict! }, n]); }
          return out;
        },
      }],
      ["weft_wireguard_dropped_packets_total", {
        type: "counter", help: "Opened packets dropped: inner source outside the peer's allowed IPs (spoofed), TTL, bad headers.",
        samples: () => {
          const totals = new Map<string, number>();
          for (const { status } of this.#statuses()) for (const [r, n] of Object.entries(status.ingressDrops)) totals.set(r, (totals.get(r) ?? 0) + n);
          return [...totals].map(([reason, n]) => [{ reason }, n]);
        },
      }],
    ];
  }

  async describe(): Promise<Record<string, unknown>> {
    return {
      backend: "wireguard",
      mode: this.cfg.mode,
      mtu: this.mtu,
      devices: [this.v4, this.v6].filter((d): d is WgDevice => d !== null).map((d) => ({
        device: d.spec.name, listenPort: d.spec.port, workerRestarts: d.restarts, peers: [], ...(d.status ?? {}),
      })),
      refused: Object.fromEntries(this.#refused),
    };
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    for (const d of [this.v4, this.v6]) if (d) await d.close();
    this.ctx.metrics.unregister("weft_wireguard_");
    this.nl.close();
  }
}

/** The `wireguard` backend (registered as "wireguard"). */
export const wireguardBackend: Backend = {
  type: "wireguard",
  createNetwork: (ctx) => WireguardNetwork.create(ctx),
};
