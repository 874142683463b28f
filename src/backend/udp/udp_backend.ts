/**
 * @module The `udp` backend (compat §6.3): flanneld's userspace overlay, interoperable with it on
 * the wire, built for throughput (docs/perf.md).
 *
 * What it programs:
 * - TUN `flannel0` (IFF_TUN|IFF_NO_PI, plus IFF_VNET_HDR and TSO/USO offloads when the kernel
 *   takes them, IFF_MULTI_QUEUE with several workers), MTU = iface MTU − 28 (− 48 with an
 *   IPv6 underlay), address `<lease net>/32`, up, and `ip route replace <Network> dev
 *   flannel0`. The TUN is not persistent: closing its fds at exit removes it and its routes,
 *   as with flanneld.
 * - A UDP socket per worker on IfaceAddr:Port (default 8285; SO_REUSEPORT when several),
 *   7 MiB buffers, UDP GSO/GRO when available. A datagram's payload is one bare inner IP
 *   packet, sent to `<peer PublicIP>:<our Port>`; GSO sends runs of them in one call, but each
 *   is still its own datagram on the wire, so flanneld's udp backend interoperates.
 * - Beyond flanneld (IPv4 only), with an IPv6Network (dual stack): flannel0 also gets
 *   `<v6 lease net>/128` and `ip -6 route replace <IPv6Network> dev flannel0`, and the cores
 *   carry IPv6 inner packets to the peers' IPv6 subnets. When the interface has an IPv6
 *   address, a second socket per worker listens on [IfaceAddr6]:Port, the IPv6 underlay: peers
 *   without a PublicIP are reached over it, and every peer with a PublicIPv6 with
 *   WEFT_UDP_PREFER_IPV6 (the choice: peer_table.ts). Datagrams over IPv6 carry 20 bytes more
 *   of headers, hence flannel0's MTU.
 * - No other kernel state: peers live in the packet cores' route and peer tables.
 *
 * Threads: the main thread decides (PeerTable: which leases, which peer ids) and appends core
 * operations to a shared ControlLog; each packet worker (worker.ts) owns one Wasm core, one TUN
 * queue and one socket and replays the log before handling packets; a worker that dies is
 * restarted with the whole peer state (worker_pool.ts). Counters flow back through
 * a shared stats buffer (worker_stats.ts) into `describe()` and `/metrics`.
 *
 * Peers: every lease without a BackendType is programmed (flanneld's udp filters nothing);
 * a lease advertising another backend (vxlan, host-gw, …) is refused with one error per peer,
 * since that host would drop our datagrams (peer_table.ts). Datagrams from an address that is
 * no peer, or whose inner source lies outside the sender's lease, are dropped and counted.
 */
import { readFileSync } from "node:fs";
import {
  EINVAL, F_GETFD, TUN_F_TSO4, TUN_F_USO4, enableTunOffloads, enableUdpGro, loadSys, openTun, openUdpSocket, probeUdpGso,
  setBuffers, type Sys, SysError,
} from "../../../ffi/index.ts";
import { NetlinkSocket, addrDel, addrReplace, linkSetMtu, linkSetUp, routeReplace } from "../../../ffi/netlink/index.ts";
import { type Lease, type LeaseAttrs, type LeaseEvent, leaseKey } from "../../lease/lease.ts";
import { type IPv4Net, type IPv6Net, formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net, maskV4, maskV6 } from "../../net/ip.ts";
import type { Backend, BackendContext, Network } from "../types.ts";
import { type ControlOp, ControlLog } from "./control_log.ts";
import { coreWasmBytes } from "./core_wasm.ts";
import type { PacketLoopOptions } from "./packet_loop.ts";
import { PeerTable, type PeerPlan, udpV6Data } from "./peer_table.ts";
import { hasCapSysNice, type UdpOptions, udpOptions } from "./udp_options.ts";
import { WorkerPool } from "./worker_pool.ts";
import { type UdpStats, createStatsBuffer, sumStats, udpFamilies } from "./worker_stats.ts";

/** The TUN device's name, as flanneld's. */
export const UDP_DEVICE = "flannel0";
/** IPv4 (20) + UDP (8) headers around each inner packet. */
export const UDP_OVERHEAD = 28;
/** IPv6 (40) + UDP (8): flannel0's MTU leaves room for them when the IPv6 underlay is open. */
export const UDP_OVERHEAD_V6 = 48;

/** What the data path ended up with after probing the kernel. */
export interface UdpDataPath {
  vnetHdr: boolean;
  /** TUN_F_* offloads in force (TSO when vnetHdr, USO on Linux ≥ 6.2). */
  tunOffloads: number;
  udpGso: boolean;
  udpGro: boolean;
  multiQueue: boolean;
  workers: number;
  /** Busy-poll window after traffic, µs (0: off; WEFT_UDP_SPIN_US without CAP_SYS_NICE is 0). */
  busyPollUs: number;
  /** The IPv6 underlay socket's address ([IfaceAddr6]:Port), when one is open. */
  listen6?: string;
}

/** Opens the TUN queues, falling back from vnet_hdr and multi-queue when refused. */
function openQueues(sys: Sys, opts: UdpOptions): { fds: number[]; vnetHdr: boolean; multiQueue: boolean } {
  const attempts: { vnetHdr: boolean; multiQueue: boolean }[] = [];
  for (const multiQueue of opts.workers > 1 ? [true, false] : [false]) {
    if (opts.vnetHdr) attempts.push({ vnetHdr: true, multiQueue });
    attempts.push({ vnetHdr: false, multiQueue });
  }
  let last: unknown;
  for (const a of attempts) {
    const fds: number[] = [];
    try {
      for (let q = 0; q < (a.multiQueue ? opts.workers : 1); q++) {
        fds.push(openTun(sys, { name: UDP_DEVICE, multiQueue: a.multiQueue, vnetHdr: a.vnetHdr, nonBlocking: true }).fd);
      }
      return { fds, ...a };
    } catch (e) {
      for (const fd of fds) sys.close(fd);
      if (!(e instanceof SysError && e.errno === EINVAL)) throw e;
      last = e;
    }
  }
  throw last;
}

function describeOffloads(d: UdpDataPath): string {
  const on = (b: boolean) => (b ? "on" : "off");
  return `vnet_hdr ${on(d.vnetHdr)} (TSO ${on((d.tunOffloads & TUN_F_TSO4) !== 0)}, USO ${on((d.tunOffloads & TUN_F_USO4) !== 0)}), ` +
    `UDP GSO ${on(d.udpGso)}, UDP GRO ${on(d.udpGro)}, multi-queue ${on(d.multiQueue)}, ${d.workers} worker${d.workers === 1 ? "" : "s"}` +
    (d.busyPollUs > 0 ? `, busy-poll ${d.busyPollUs} µs after traffic (SCHED_IDLE)` : "");
}

/**
 * The source address of the ICMP net-unreachable replies the cores write into flannel0.
 * flanneld uses the TUN's own address, but the kernel drops a packet arriving with a local
 * source as a martian, so those replies never reach the sender. The cluster network's own
 * address is routed through flannel0 (so it passes rp_filter) and is no host's lease (flannel
 * skips the first subnet); when SubnetMin made it ours, the network's last address serves.
 */
export function icmpSource(network: IPv4Net, own: IPv4Net): number {
  const inOwn = ((network.ip ^ own.ip) >>> (32 - own.len)) === 0;
  return inOwn ? (network.ip | ~maskV4(network.len)) >>> 0 : network.ip;
}

/** icmpSource() for ICMPv6: the IPv6Network's own address, or its last when that is our lease's. */
export function icmpSource6(network: IPv6Net, own: IPv6Net): bigint {
  const inOwn = (network.ip & maskV6(own.len)) === own.ip;
  return inOwn ? network.ip | (~maskV6(network.len) & ((1n << 128n) - 1n)) : network.ip;
}

/** Whether `ip` can carry the IPv6 underlay: not link-local (fe80::/10 needs a scope id). */
function underlayUsable6(ip: bigint | undefined): ip is bigint {
  return ip !== undefined && ip >> 118n !== 0x3fan;
}

/**
 * Where the worker's module is. From sources it sits beside this file. In a `bun build
 * --compile` executable (built with worker.ts as a second entry point) every bundled module's
 * import.meta.url is the executable's root in Bun's embedded file system (`/$bunfs/root/`), and
 * entry points keep their paths relative to the entry points' common directory, src/.
 */
export function workerUrl(moduleUrl: string = import.meta.url): string {
  const compiled = moduleUrl.startsWith("file:///$bunfs/") || moduleUrl.startsWith("file:///B:/~BUN/");
  return new URL(compiled ? "./backend/udp/worker.ts" : "./worker.ts", moduleUrl).href;
}

class UdpNetwork implements Network {
  /**
   * flanneld writes no BackendType for udp: {"PublicIP":…,"PublicIPv6":null}. In a dual-stack
   * network weft adds BackendV6Data {"IPv6Underlay":…}: this host carries IPv6 packets (and
   * listens on [PublicIPv6]:Port), which a flanneld udp host, IPv4 only, does not (peer_table.ts).
   */
  readonly leaseAttrs: Pick<LeaseAttrs, "backendV6Data">;
  readonly mtu: number;
  readonly devices = [UDP_DEVICE];
  #peers: PeerTable;
  #address?: string;
  #address6?: string;
  #closed = false;
  #statsCache?: { at: number; stats: UdpStats };

  private constructor(
    private readonly ctx: BackendContext,
    private readonly sys: Sys,
    private readonly nl: NetlinkSocket,
    private readonly opts: UdpOptions,
    private readonly network: IPv4Net,
    private readonly tunFds: number[],
    private readonly udpFds: number[],
    readonly dataPath: UdpDataPath,
    private readonly control: ControlLog,
    private readonly stats: SharedArrayBuffer,
    private readonly workers: WorkerPool,
  ) {
    this.mtu = ctx.extIface.mtu - (dataPath.listen6 ? UDP_OVERHEAD_V6 : UDP_OVERHEAD);
    this.#peers = this.#peerTable("");
    this.leaseAttrs = this.#ipv6Network ? { backendV6Data: udpV6Data(dataPath.listen6 !== undefined) } : {};
  }

  /** The peer policy for this data path (peer_table.ts), with `ownKey` our lease's key. */
  #peerTable(ownKey: string): PeerTable {
    return new PeerTable(this.opts.port, ownKey, {
      ipv4Underlay: true,
      ipv6Underlay: this.dataPath.listen6 !== undefined,
      preferIPv6: this.opts.preferIPv6,
      ipv6Network: this.#ipv6Network !== undefined,
    });
  }

  /** The IPv6Network the cores carry, in a dual-stack network. */
  get #ipv6Network(): IPv6Net | undefined {
    return this.ctx.config.enableIPv6 ? this.ctx.config.ipv6Network : undefined;
  }

  static async create(ctx: BackendContext): Promise<UdpNetwork> {
    const { config, extIface: ext, log } = ctx;
    const opts = udpOptions(config.backend, process.env);
    if (!config.network) throw new Error("udp backend: the network config has no IPv4 Network; the udp backend needs one (set Network and EnableIPv4; IPv6Network is carried beside it, dual stack)");
    if (ext.ifaceAddr === 0) throw new Error(`udp backend: interface ${ext.name} has no IPv4 address to bind UDP port ${opts.port} to`);
    const six = config.enableIPv6 && config.ipv6Network !== undefined;
    const addr6 = six && underlayUsable6(ext.ifaceAddr6) ? ext.ifaceAddr6 : undefined;
    if (six && addr6 === undefined) {
      log.info(`udp backend: interface ${ext.name} has no global IPv6 address: no IPv6 underlay, IPv6 packets travel over IPv4`);
    }
    const overhead = addr6 === undefined ? UDP_OVERHEAD : UDP_OVERHEAD_V6;
    const mtu = ext.mtu - overhead;
    // IPv6 needs 1280 on every link; IPv4 flanneld's 576.
    const least = six ? 1280 : 576;
    if (mtu < least) throw new RangeError(`udp backend: interface ${ext.name} MTU ${ext.mtu} leaves ${mtu} for ${UDP_DEVICE}; at least ${least + overhead} is needed`);
    const sys = await loadSys();
    const opened: { tun: number[]; udp: number[]; nl?: NetlinkSocket; owner?: UdpNetwork } = { tun: [], udp: [] };
    try {
      const q = openQueues(sys, opts);
      opened.tun = q.fds;
      const tunOffloads = q.vnetHdr ? enableTunOffloads(sys, q.fds[0]!) : 0;
      const workers = q.fds.length;
      let udpGso = opts.gso, udpGro = opts.gro;
      const binds = [formatIPv4(ext.ifaceAddr), ...(addr6 === undefined ? [] : [formatIPv6(addr6)])];
      for (const ip of binds) {
        for (let i = 0; i < workers; i++) {
          const fd = openUdpSocket(sys, { ip, port: opts.port, reuse: workers > 1 });
          opened.udp.push(fd);
          setBuffers(sys, fd);
          udpGso &&= probeUdpGso(sys, fd);
          udpGro &&= enableUdpGro(sys, fd);
        }
      }
      const listen6 = addr6 === undefined ? undefined : `[${formatIPv6(addr6)}]:${opts.port}`;
      opened.nl = NetlinkSocket.open(sys);
      linkSetMtu(opened.nl, UDP_DEVICE, mtu);
      let spinUs = opts.spinUs;
      if (spinUs > 0 && !hasCapSysNice(readFileSync("/proc/self/status", "utf8"))) {
        log.warn(`udp backend: WEFT_UDP_SPIN_US=${spinUs} ignored: busy-polling runs the packet threads as SCHED_IDLE, and this process lacks CAP_SYS_NICE to return them to SCHED_OTHER`);
        spinUs = 0;
      }
      const dataPath: UdpDataPath = {
        vnetHdr: q.vnetHdr, tunOffloads, udpGso, udpGro, multiQueue: q.multiQueue, workers, busyPollUs: spinUs, ...(listen6 ? { listen6 } : {}),
      };
      log.info(`udp backend: ${UDP_DEVICE} mtu ${mtu}, UDP ${formatIPv4(ext.ifaceAddr)}:${opts.port}${listen6 ? ` and ${listen6}` : ""}; ${describeOffloads(dataPath)}`);

      const control = new ControlLog(workers);
      const stats = createStatsBuffer(workers);
      const options = opened.tun.map((tunFd, i): PacketLoopOptions => ({
        tunFd, udpFd: opened.udp[i]!, ...(listen6 ? { udp6Fd: opened.udp[workers + i]! } : {}), vnetHdr: q.vnetHdr, gso: udpGso, gro: udpGro, ifaceMtu: ext.mtu,
        spinUs, warmUp: opts.warmUp, trace: opts.trace, crashAfterPackets: i === 0 ? opts.testCrashAfter : undefined,
      }));
      const pool = new WorkerPool({
        url: workerUrl(), wasm: await coreWasmBytes(), control, stats, log,
        failed: () => ctx.metrics.error("udp_worker"),
        fdOpen: (fd) => sys.fcntl(fd, F_GETFD, 0) >= 0,
        trace: (i, summary) => log.info(`udp backend: worker ${i} stage µs: ${summary}`),
      }, options);
      const net = new UdpNetwork(ctx, sys, opened.nl, opts, config.network, opened.tun, opened.udp, dataPath, control, stats, pool);
      opened.owner = net;
      await pool.start();
      for (const [name, family] of udpFamilies(() => net.#stats())) ctx.metrics.register(name, family);
      return net;
    } catch (e) {
      if (opened.owner) {
        await opened.owner.close();
      } else {
        opened.nl?.close();
        for (const fd of [...opened.tun, ...opened.udp]) sys.close(fd);
      }
      throw e;
    }
  }

  #stats(): UdpStats {
    const now = Date.now();
    if (!this.#statsCache || now - this.#statsCache.at > 100) this.#statsCache = { at: now, stats: sumStats(this.stats, this.tunFds.length) };
    return this.#statsCache.stats;
  }

  async #push(ops: readonly ControlOp[]): Promise<void> {
    if (ops.length === 0) return;
    // A dead worker's reader is detached (it gets the whole state when it restarts), so this
    // only waits for live workers; it gives up only when the network closes.
    const n = await this.control.append(ops, () => !this.#closed);
    if (n < ops.length) this.ctx.log.error(`udp backend: ${ops.length - n} peer table changes not delivered: the network closed`);
  }

  #report(plan: PeerPlan): void {
    for (const r of plan.refused) {
      if (r.error) {
        this.ctx.log.error(`udp backend: peer lease ${r.key} ${r.reason}`);
        this.ctx.metrics.error("udp_peer_refused");
      } else {
        this.ctx.log.warn(`udp backend: peer lease ${r.key} ${r.reason}`);
      }
    }
  }

  /**
   * Equivalent to: `ip addr replace <lease net>/32 dev flannel0; ip link set flannel0 up; ip route
   * replace <Network> dev flannel0`, and in a dual-stack network `ip -6 addr replace <v6 lease
   * net>/128 dev flannel0; ip -6 route replace <IPv6Network> dev flannel0`.
   */
  async start(lease: Lease): Promise<void> {
    if (!lease.subnet) throw new Error(`udp backend: our lease ${leaseKey(lease)} has no IPv4 subnet`);
    const net6 = this.#ipv6Network;
    const subnet6 = net6 ? lease.ipv6Subnet : undefined;
    if (net6 && !subnet6) this.ctx.log.warn(`udp backend: our lease ${leaseKey(lease)} has no IPv6 subnet: IPv6 packets are not carried`);
    this.#address = this.#replaceAddress(this.#address, `${formatIPv4(lease.subnet.ip)}/32`);
    if (subnet6) this.#address6 = this.#replaceAddress(this.#address6, `${formatIPv6(subnet6.ip)}/128`);
    linkSetUp(this.nl, UDP_DEVICE);
    routeReplace(this.nl, { dst: formatIPv4Net(this.network), dev: UDP_DEVICE });
    if (net6 && subnet6) routeReplace(this.nl, { dst: formatIPv6Net(net6), dev: UDP_DEVICE });
    this.#peers = this.#peerTable(leaseKey(lease));
    const ops: ControlOp[] = [
      { op: "cluster", network: this.network.ip, networkLen: this.network.len, subnetLen: this.ctx.config.subnetLen },
      { op: "tunAddr", addr: icmpSource(this.network, lease.subnet) },
      // Egress forwards only what our own lease sends (a container cannot spoof another's source).
      { op: "ownSubnet4", subnet: lease.subnet.ip, len: lease.subnet.len },
    ];
    if (net6 && subnet6) {
      ops.push({ op: "tunAddr6", addr: icmpSource6(net6, subnet6) }, { op: "ownSubnet6", prefix: subnet6.ip, len: subnet6.len });
    }
    await this.#push(ops);
  }

  /** `ip addr replace next dev flannel0`, after deleting `previous` when it differs; returns next. */
  #replaceAddress(previous: string | undefined, next: string): string {
    if (previous && previous !== next) {
      try { addrDel(this.nl, UDP_DEVICE, previous); } catch { /* already gone */ }
    }
    addrReplace(this.nl, UDP_DEVICE, next);
    return next;
  }

  async reconcile(peers: ReadonlyMap<string, Lease>): Promise<void> {
    const plan = this.#peers.reconcile(peers);
    this.#report(plan);
    await this.#push(plan.ops);
  }

  async apply(events: readonly LeaseEvent[]): Promise<void> {
    const plan = this.#peers.apply(events);
    this.#report(plan);
    await this.#push(plan.ops);
  }

  async describe(): Promise<Record<string, unknown>> {
    const s = sumStats(this.stats, this.tunFds.length);
    return {
      backend: "udp",
      device: UDP_DEVICE,
      mtu: this.mtu,
      listen: `${formatIPv4(this.ctx.extIface.ifaceAddr)}:${this.opts.port}`,
      ...(this.dataPath.listen6 ? { listen6: this.dataPath.listen6 } : {}),
      offloads: describeOffloads({ ...this.dataPath, udpGso: this.dataPath.udpGso && s.gsoWorkers > 0 }),
      busyPollUs: this.dataPath.busyPollUs,
      workers: this.workers.states,
      workerRestarts: this.workers.restarts,
      peers: [...this.#peers.programmed].map(([key, p]) => ({
        key, id: p.id, publicIP: formatIPv4(p.lease.attrs.publicIP),
        ...(p.lease.attrs.publicIPv6 !== undefined ? { publicIPv6: formatIPv6(p.lease.attrs.publicIPv6) } : {}),
        underlay: p.via6 ? "ipv6" : "ipv4",
        ipv6: p.ipv6, // its IPv6 subnet is routed (it carries IPv6 packets)
      })),
      refused: Object.fromEntries(this.#peers.refused),
      controlLag: this.tunFds.map((_, i) => this.control.head - this.control.tail(i)),
      counters: s,
    };
  }

  /** Stops the workers, then closes the TUN queues (flannel0 disappears) and the sockets. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.workers.stop();
    this.ctx.metrics.unregister("weft_udp_");
    for (const fd of [...this.tunFds, ...this.udpFds]) this.sys.close(fd);
    this.nl.close();
  }
}

/** The `udp` backend (registered as "udp"). */
export const udpBackend: Backend = {
  type: "udp",
  createNetwork: (ctx) => UdpNetwork.create(ctx),
};
