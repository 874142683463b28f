/**
 * @module The vxlan network (compat §6.1): a VXLAN device per family over the external
 * interface, flannel.<VNI> over its IPv4 address and flannel-v6.<VNI> over its IPv6 one (a
 * dual-stack network has both, an IPv6-only one only the second). Each peer gets, per family, a
 * permanent neighbour (its subnet's network address → that device's VTEP MAC from BackendData or
 * BackendV6Data), an FDB entry (that MAC → its PublicIP or PublicIPv6) and an onlink route of
 * its subnet via that address; with DirectRouting a peer on our L2 gets only a route via its
 * public address on the interface.
 *
 * Design notes:
 * - Reconcile, not replay: peer state goes through PeerSync (a pure plan against the kernel, then
 *   one batch), so a restart over a programmed kernel sends nothing and nothing flaps.
 * - Each VTEP MAC is stable: the existing device is reused when compatible, and a recreated one
 *   keeps its MAC (or the previous lease's BackendData / BackendV6Data one), so peers'
 *   neighbour/FDB entries stay right (§13).
 * - MTU: underlay − 50 for flannel.N, − 70 for flannel-v6.N (flanneld uses 50 for both: §12.9);
 *   FLANNEL_MTU is the smaller.
 * - The devices are watched every second; a deleted one is recreated with the same MAC and every
 *   cached peer is re-programmed (§12.13). Every 10 s missing entries are re-added.
 * - Kernel state is left in place on close: the next start reuses it.
 */
import {
  type Link, NetlinkSocket, addrAdd, addrDel, addrList, linkByName, linkSetAddress, linkSetUp, routeGet,
} from "../../../ffi/netlink/index.ts";
import { type Sys, loadSys } from "../../../ffi/sys.ts";
import { writeSysctl } from "../../../ffi/sysctl.ts";
import type { Lease, LeaseAttrs, LeaseEvent } from "../../lease/lease.ts";
import {
  type IPv4Net, type IPv6Net, containsV4, containsV6Net, formatIPv4, formatIPv6, tryParseIPv4, tryParseIPv6,
} from "../../net/ip.ts";
import { startCheckLoop } from "../check_loop.ts";
import { readDeviceCounters } from "../device_counters.ts";
import { PeerSync, readRouteState } from "../peer_sync.ts";
import { type DataPathState, isOwnedPrefix, mergeStates } from "../route_plan.ts";
import type { BackendContext, Network } from "../types.ts";
import { type VxlanConfig, parseVxlanConfig, vxlanDeviceMtu } from "./config.ts";
import { ensureVxlanDevice, vxlanDeviceName, vxlanIncompatibility } from "./device.ts";
import { encodeVxlanLeaseData, parseVxlanLeaseData, vxlanPeerEntries, vxlanPeerEntries6 } from "./lease_data.ts";
import { setTxChecksumOffload, txChecksumOffload } from "./tx_checksum.ts";

const DEFAULT_CHECK_MS = 10_000;
const DEVICE_WATCH_MS = 1_000;

/** One VTEP device: flannel.N (family 4) or flannel-v6.N (family 6). */
interface Vtep {
  readonly family: 4 | 6;
  readonly name: string;
  readonly mtu: number;
  /** Its MAC, advertised in BackendData (BackendV6Data); never changes while we run. */
  readonly mac: string;
  link: Link;
  /** Recreating the device failed: no new attempt before this time (1 s doubling to 30 s, as flanneld). */
  retryAt: number;
  retryMs: number;
}

export class VxlanNetwork implements Network {
  readonly leaseAttrs: Omit<LeaseAttrs, "publicIP" | "publicIPv6">;
  /** FLANNEL_MTU: the smallest device MTU. */
  readonly mtu: number;
  /** The first device's name (flannel.N, or flannel-v6.N in an IPv6-only network). */
  readonly device: string;
  get devices(): readonly string[] {
    return this.#vteps.map((v) => v.name);
  }
  readonly #network?: IPv4Net;
  readonly #network6?: IPv6Net;
  readonly #vteps: Vtep[];
  #lease?: Lease;
  #sync?: PeerSync;
  #stops: (() => void)[] = [];

  private constructor(
    private readonly ctx: BackendContext, readonly cfg: VxlanConfig, private readonly sys: Sys,
    private readonly nl: NetlinkSocket, vteps: Vtep[],
  ) {
    this.#vteps = vteps;
    this.mtu = Math.min(...vteps.map((v) => v.mtu));
    this.device = vteps[0]!.name;
    this.#network = ctx.config.enableIPv4 ? ctx.config.network : undefined;
    this.#network6 = ctx.config.enableIPv6 ? ctx.config.ipv6Network : undefined;
    const v4 = this.#vtep(4);
    const v6 = this.#vtep(6);
    this.leaseAttrs = {
      backendType: "vxlan",
      ...(v4 ? { backendData: encodeVxlanLeaseData(cfg.vni, v4.mac) } : {}),
      ...(v6 ? { backendV6Data: encodeVxlanLeaseData(cfg.vni, v6.mac) } : {}),
    };
  }

  /** Reads the config, creates or reuses flannel.<VNI> and/or flannel-v6.<VNI> (compat §6.1 "Devices", "MAC"). */
  static async create(ctx: BackendContext): Promise<VxlanNetwork> {
    const cfg = parseVxlanConfig(ctx.config.backend);
    const { config, extIface: ext } = ctx;
    if (config.enableIPv4 && !config.network) throw new Error("vxlan: EnableIPv4 is on but the network config has no Network");
    if (config.enableIPv6 && !config.ipv6Network) throw new Error("vxlan: EnableIPv6 is on but the network config has no IPv6Network");
    if (config.enableIPv4 && !ext.ifaceAddr) throw new Error(`vxlan: interface ${ext.name} has no IPv4 address for flannel.${cfg.vni} (EnableIPv4 is on)`);
    if (config.enableIPv6 && ext.ifaceAddr6 === undefined) {
      throw new Error(`vxlan: interface ${ext.name} has no IPv6 address for flannel-v6.${cfg.vni} (EnableIPv6 is on)`);
    }
    const families = ([4, 6] as const).filter((f) => (f === 4 ? config.enableIPv4 : config.enableIPv6));
    const mtus = families.map((f) => vxlanDeviceMtu(cfg, ext.mtu, ext.name, f));
    const sys = await loadSys();
    const nl = NetlinkSocket.open(sys);
    try {
      const prev = ctx.previousLease?.attrs.backendType === "vxlan" ? ctx.previousLease.attrs : undefined;
      const vteps = families.map((family, i): Vtep => {
        const data = family === 4 ? prev?.backendData : prev?.backendV6Data;
        const previous = data === undefined ? undefined : parseVxlanLeaseData(data);
        const spec = VxlanNetwork.#spec(cfg, ctx, family, mtus[i]!);
        const link = ensureVxlanDevice(nl, spec, typeof previous === "object" ? previous.vtepMAC : undefined, ctx.log);
        return { family, name: spec.name, mtu: mtus[i]!, mac: link.mac!, link, retryAt: 0, retryMs: 0 };
      });
      const net = new VxlanNetwork(ctx, cfg, sys, nl, vteps);
      for (const v of vteps) net.#prepare(v);
      return net;
    } catch (e) {
      nl.close();
      throw e;
    }
  }

  static #spec(cfg: VxlanConfig, ctx: BackendContext, family: 4 | 6, mtu: number) {
    const ext = ctx.extIface;
    return {
      name: vxlanDeviceName(cfg.vni, family), vni: cfg.vni,
      ...(family === 4 ? { local: formatIPv4(ext.ifaceAddr) } : { local6: formatIPv6(ext.ifaceAddr6!) }),
      underlayIndex: ext.index, port: cfg.port, learning: cfg.learning, gbp: cfg.gbp, mtu,
    };
  }

  /** The VTEP MAC advertised in our lease (BackendData; BackendV6Data in an IPv6-only network). */
  get vtepMAC(): string {
    return this.#vteps[0]!.mac;
  }

  /** The MAC of flannel-v6.N, if there is one. */
  get vtepMAC6(): string | undefined {
    return this.#vtep(6)?.mac;
  }

  async start(lease: Lease): Promise<void> {
    if (this.#vtep(4) && !lease.subnet) throw new Error("vxlan: our lease has no IPv4 subnet");
    if (this.#vtep(6) && !lease.ipv6Subnet) throw new Error("vxlan: our lease has no IPv6 subnet");
    this.#lease = lease;
    for (const v of this.#vteps) this.#ensureAddressAndUp(v);
    const { log, metrics } = this.ctx;
    this.#sync = new PeerSync({
      nl: this.nl, log, metrics, backendType: "vxlan",
      scope: this.#scope(),
      entriesFor: (l) => this.#entriesFor(l),
      readActual: () => this.#readActual(),
    });
    const signal = this.ctx.signal;
    const checkMs = this.ctx.checkIntervalMs ?? DEFAULT_CHECK_MS;
    this.#stops.push(
      startCheckLoop({
        signal, log, intervalMs: Math.min(DEVICE_WATCH_MS, checkMs), what: `vxlan device watch (${this.#vteps.map((v) => v.name).join(", ")})`,
        tick: () => { for (const v of this.#vteps) this.#watchDevice(v); },
      }),
      startCheckLoop({ signal, log, intervalMs: checkMs, what: "vxlan route check", tick: () => this.#check() }),
    );
  }

  async reconcile(peers: ReadonlyMap<string, Lease>): Promise<void> {
    this.#started().reconcile(peers);
  }

  async apply(events: readonly LeaseEvent[]): Promise<void> {
    this.#started().apply(events);
  }

  /** Devices (one per family), VNI, MACs, MTUs, this host's flannel routes and the first device's counters. */
  async describe(): Promise<Record<string, unknown>> {
    const names = new Map<number, string>([[this.ctx.extIface.index, this.ctx.extIface.name]]);
    for (const v of this.#vteps) names.set(v.link.index, v.name);
    let routes: { dst: string; via?: string; dev: string }[] = [];
    if (this.#lease) {
      const scope = this.#scope();
      routes = this.#readActual().routes
        .filter((r) => isOwnedPrefix(r.dst, scope))
        .map((r) => ({ dst: r.dst, ...(r.gw ? { via: r.gw } : {}), dev: names.get(r.dev) ?? String(r.dev) }));
    }
    return {
      type: "vxlan", device: this.device, vni: this.cfg.vni, vtepMAC: this.vtepMAC, mtu: this.mtu, port: this.cfg.port,
      underlay: this.ctx.extIface.name, directRouting: this.cfg.directRouting, gbp: this.cfg.gbp,
      txChecksumOffload: this.#txChecksumState(this.device),
      devices: this.#vteps.map((v) => ({ family: `IPv${v.family}`, device: v.name, vtepMAC: v.mac, mtu: v.mtu })),
      peers: this.#sync?.peers.size ?? 0, routes, counters: readDeviceCounters(this.device),
    };
  }

  async close(): Promise<void> {
    for (const stop of this.#stops.splice(0)) stop();
    this.nl.close();
  }

  #vtep(family: 4 | 6): Vtep | undefined {
    return this.#vteps.find((v) => v.family === family);
  }

  #scope() {
    const l = this.#lease;
    return { network: this.#network, own: l?.subnet, network6: this.#network6, own6: l?.ipv6Subnet };
  }

  /** Both families' entries for one peer; a family whose data is unusable skips the lease (as flanneld). */
  #entriesFor(lease: Lease): DataPathState | string {
    const ext = this.ctx.extIface;
    const states: DataPathState[] = [];
    const v4 = this.#vtep(4);
    if (v4 && lease.subnet) {
      const r = vxlanPeerEntries(lease, { dev: v4.link.index, iface: ext.index, direct: this.#isDirect(formatIPv4(lease.attrs.publicIP)) });
      if (typeof r === "string") return r;
      states.push(r);
    }
    const v6 = this.#vtep(6);
    if (v6 && lease.ipv6Subnet && lease.attrs.publicIPv6 !== undefined) {
      const r = vxlanPeerEntries6(lease, { dev: v6.link.index, iface: ext.index, direct: this.#isDirect(formatIPv6(lease.attrs.publicIPv6)) });
      if (typeof r === "string") return r;
      states.push(r);
    }
    return mergeStates(states);
  }

  #readActual(): DataPathState {
    const underlay = this.ctx.extIface.index;
    return mergeStates(this.#vteps.map((v) => readRouteState(this.nl, { overlay: v.link.index, underlay }, v.family)));
  }

  #started(): PeerSync {
    if (!this.#sync) throw new Error("vxlan: start(lease) must run before peers are programmed");
    return this.#sync;
  }

  /** DirectRouting: the peer's public address is reached without a gateway through our interface. */
  #isDirect(publicAddr: string): boolean {
    if (!this.cfg.directRouting) return false;
    try {
      const r = routeGet(this.nl, publicAddr);
      return r.gw === undefined && r.dev === this.ctx.extIface.index;
    } catch {
      return false;
    }
  }

  /** After creating or recreating a device: no router advertisements (as flanneld), tx checksum as configured. */
  #prepare(v: Vtep): void {
    if (v.family === 6) {
      try {
        writeSysctl(`net/ipv6/conf/${v.name}/accept_ra`, 0);
      } catch (e) {
        this.ctx.log.warn(`${v.name}: cannot turn accept_ra off: ${(e as Error).message}`);
      }
    }
    if (!this.cfg.disableTxChecksumOffload) return;
    setTxChecksumOffload(this.sys, v.name, false);
    this.ctx.log.info(`${v.name}: tx checksum offload turned off (Backend.DisableTxChecksumOffload)`);
  }

  /**
   * `ip addr add <lease net addr>/32 dev flannel.N` (`/128 … nodad` on flannel-v6.N: the address
   * is unique by its lease, so no DAD delay) unless present, other addresses inside the Network
   * removed, `ip link set DEV up` unless up. Changes nothing that is right.
   */
  #ensureAddressAndUp(v: Vtep): void {
    const lease = this.#lease!;
    const want = v.family === 4 ? `${formatIPv4(lease.subnet!.ip)}/32` : `${formatIPv6(lease.ipv6Subnet!.ip)}/128`;
    const inNetwork = (addr: string): boolean => {
      if (v.family === 4) {
        const ip = tryParseIPv4(addr);
        return ip !== undefined && containsV4(this.#network!, ip);
      }
      const ip = tryParseIPv6(addr);
      return ip !== undefined && containsV6Net(this.#network6!, { ip, len: 128 });
    };
    let have = false;
    for (const a of addrList(this.nl, { dev: v.link.index, family: v.family })) {
      if (a.cidr === want) { have = true; continue; }
      const addr = a.local ?? a.address;
      if (addr !== undefined && inNetwork(addr)) {
        addrDel(this.nl, v.link.index, a.cidr);
        this.ctx.log.info(`${v.name}: removed stale address ${a.cidr}`);
      }
    }
    if (!have) addrAdd(this.nl, v.link.index, want, { nodad: v.family === 6 });
    const link = linkByName(this.nl, v.name);
    if (link && !link.up) linkSetUp(this.nl, link.index);
  }

  #txChecksumState(dev: string): string {
    try {
      return txChecksumOffload(this.sys, dev) ? "on" : "off";
    } catch (e) {
      return `unknown (${(e as Error).message})`;
    }
  }

  /** Every second: recreate a deleted or replaced device, fix its MAC, bring it back up. */
  #watchDevice(v: Vtep): void {
    const link = linkByName(this.nl, v.name);
    const spec = VxlanNetwork.#spec(this.cfg, this.ctx, v.family, v.mtu);
    const incompatible = link ? vxlanIncompatibility(link, spec) : undefined;
    const why = !link ? "was deleted" : incompatible ? `was changed (${incompatible})` : undefined;
    if (why) {
      if (Date.now() < v.retryAt) return;
      try {
        v.link = ensureVxlanDevice(this.nl, spec, v.mac, this.ctx.log);
      } catch (e) {
        v.retryMs = Math.min(30_000, Math.max(1_000, v.retryMs * 2));
        v.retryAt = Date.now() + v.retryMs;
        throw new Error(`${v.name} ${why}; recreating it failed (next attempt in ${v.retryMs / 1000} s): ${(e as Error).message}`);
      }
      v.retryMs = 0;
      this.#prepare(v);
      this.#ensureAddressAndUp(v);
      const r = this.#sync!.reprogram();
      this.ctx.log.warn(`${v.name} ${why}: recreated with MAC ${v.mac} and re-programmed ${this.#sync!.peers.size} peers (${r.added} entries)`);
      return;
    }
    let touched = false;
    if (link!.index !== v.link.index) {
      v.link = link!;
      touched = true;
    }
    if (link!.mac !== v.mac) {
      linkSetAddress(this.nl, link!.index, v.mac);
      this.ctx.log.warn(`${v.name}: MAC was changed to ${link!.mac}; set back to ${v.mac}`);
    }
    if (!link!.up) {
      this.ctx.log.warn(`${v.name} was down: bringing it up`);
      touched = true;
    }
    if (touched) {
      this.#ensureAddressAndUp(v);
      this.#sync!.reprogram();
    }
  }

  /** Every 10 s: the addresses and every peer's entries are still there. */
  #check(): void {
    for (const v of this.#vteps) this.#ensureAddressAndUp(v);
    this.#sync!.check();
  }
}
