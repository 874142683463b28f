/**
 * @module The vxlan network (compat §6.1): one VXLAN device flannel.<VNI> over the external
 * interface; each peer gets a permanent neighbour (its subnet's network address → its VTEP MAC),
 * an FDB entry (that MAC → its PublicIP) and an onlink route of its subnet via that address; with
 * DirectRouting a peer on our L2 gets only a route via its PublicIP on the interface.
 *
 * Design notes:
 * - Reconcile, not replay: peer state goes through PeerSync (a pure plan against the kernel, then
 *   one batch), so a restart over a programmed kernel sends nothing and nothing flaps.
 * - The VTEP MAC is stable: the existing device is reused when compatible, and a recreated one
 *   keeps its MAC (or the previous lease's), so peers' ARP/FDB entries stay right (§13).
 * - The device is watched every second; deleted, it is recreated with the same MAC and every
 *   cached peer is re-programmed (§12.13). Every 10 s missing entries are re-added.
 * - Kernel state is left in place on close: the next start reuses it.
 * IPv4 only for now (no flannel-v6.N).
 */
import {
  type Link, NetlinkSocket, addrAdd, addrDel, addrList, linkByName, linkSetAddress, linkSetUp, routeGet,
} from "../../../ffi/netlink/index.ts";
import { type Sys, loadSys } from "../../../ffi/sys.ts";
import type { NetworkConfig } from "../../config/network.ts";
import type { Lease, LeaseAttrs, LeaseEvent } from "../../lease/lease.ts";
import { type IPv4Net, containsV4, formatIPv4, tryParseIPv4 } from "../../net/ip.ts";
import { startCheckLoop } from "../check_loop.ts";
import { readDeviceCounters } from "../device_counters.ts";
import { PeerSync, readRouteState } from "../peer_sync.ts";
import { isOwnedPrefix } from "../route_plan.ts";
import type { BackendContext, Network } from "../types.ts";
import { type VxlanConfig, parseVxlanConfig, vxlanDeviceMtu } from "./config.ts";
import { ensureVxlanDevice, vxlanDeviceName, vxlanIncompatibility } from "./device.ts";
import { encodeVxlanLeaseData, parseVxlanLeaseData, vxlanPeerEntries } from "./lease_data.ts";
import { setTxChecksumOffload, txChecksumOffload } from "./tx_checksum.ts";

const DEFAULT_CHECK_MS = 10_000;
const DEVICE_WATCH_MS = 1_000;

export class VxlanNetwork implements Network {
  readonly leaseAttrs: Omit<LeaseAttrs, "publicIP" | "publicIPv6">;
  readonly mtu: number;
  readonly device: string;
  get devices(): readonly string[] {
    return [this.device];
  }
  readonly #network: IPv4Net;
  #link: Link;
  #lease?: Lease;
  #sync?: PeerSync;
  #stops: (() => void)[] = [];
  /** Recreating the device failed: no new attempt before this time (1 s doubling to 30 s, as flanneld). */
  #retryAt = 0;
  #retryMs = 0;

  private constructor(
    private readonly ctx: BackendContext, readonly cfg: VxlanConfig, private readonly sys: Sys,
    private readonly nl: NetlinkSocket, link: Link, mtu: number,
  ) {
    this.#link = link;
    this.mtu = mtu;
    this.device = link.name;
    this.#network = ctx.config.network!;
    this.leaseAttrs = { backendType: "vxlan", backendData: encodeVxlanLeaseData(cfg.vni, link.mac!) };
  }

  /** Reads the config, creates or reuses flannel.<VNI> (compat §6.1 "Devices", "MAC"). */
  static async create(ctx: BackendContext): Promise<VxlanNetwork> {
    const cfg = parseVxlanConfig(ctx.config.backend);
    const config: NetworkConfig = ctx.config;
    if (!config.enableIPv4 || !config.network) {
      throw new Error("weft's vxlan backend programs IPv4 only: the network config needs EnableIPv4 and Network");
    }
    const ext = ctx.extIface;
    const mtu = vxlanDeviceMtu(cfg, ext.mtu, ext.name);
    const sys = await loadSys();
    const nl = NetlinkSocket.open(sys);
    try {
      const previous = ctx.previousLease?.attrs.backendType === "vxlan" ? parseVxlanLeaseData(ctx.previousLease.attrs.backendData) : undefined;
      const link = ensureVxlanDevice(nl, VxlanNetwork.#spec(cfg, ctx, mtu), typeof previous === "object" ? previous.vtepMAC : undefined, ctx.log);
      const net = new VxlanNetwork(ctx, cfg, sys, nl, link, mtu);
      net.#applyTxChecksum();
      return net;
    } catch (e) {
      nl.close();
      throw e;
    }
  }

  static #spec(cfg: VxlanConfig, ctx: BackendContext, mtu: number) {
    return {
      name: vxlanDeviceName(cfg.vni), vni: cfg.vni, local: formatIPv4(ctx.extIface.ifaceAddr), underlayIndex: ctx.extIface.index,
      port: cfg.port, learning: cfg.learning, gbp: cfg.gbp, mtu,
    };
  }

  /** The VTEP MAC advertised in our lease. */
  get vtepMAC(): string {
    return (this.leaseAttrs.backendData as { VtepMAC: string }).VtepMAC;
  }

  async start(lease: Lease): Promise<void> {
    if (!lease.subnet) throw new Error("vxlan: our lease has no IPv4 subnet");
    this.#lease = lease;
    this.#ensureAddressAndUp();
    const { log, metrics, extIface } = this.ctx;
    this.#sync = new PeerSync({
      nl: this.nl, log, metrics, backendType: "vxlan",
      scope: { network: this.#network, own: lease.subnet },
      entriesFor: (l) => vxlanPeerEntries(l, { dev: this.#link.index, iface: extIface.index, direct: this.#isDirect(l) }),
      readActual: () => readRouteState(this.nl, { overlay: this.#link.index, underlay: extIface.index }),
    });
    const signal = this.ctx.signal;
    const checkMs = this.ctx.checkIntervalMs ?? DEFAULT_CHECK_MS;
    this.#stops.push(
      startCheckLoop({ signal, log, intervalMs: Math.min(DEVICE_WATCH_MS, checkMs), what: `vxlan device watch (${this.device})`, tick: () => this.#watchDevice() }),
      startCheckLoop({ signal, log, intervalMs: checkMs, what: "vxlan route check", tick: () => this.#check() }),
    );
  }

  async reconcile(peers: ReadonlyMap<string, Lease>): Promise<void> {
    this.#started().reconcile(peers);
  }

  async apply(events: readonly LeaseEvent[]): Promise<void> {
    this.#started().apply(events);
  }

  /** Device, VNI, MAC, MTU, this host's flannel routes and the device's counters. */
  async describe(): Promise<Record<string, unknown>> {
    const names = new Map([[this.#link.index, this.device], [this.ctx.extIface.index, this.ctx.extIface.name]]);
    let routes: { dst: string; via?: string; dev: string }[] = [];
    if (this.#lease) {
      const scope = { network: this.#network, own: this.#lease.subnet };
      routes = readRouteState(this.nl, { overlay: this.#link.index, underlay: this.ctx.extIface.index }).routes
        .filter((r) => isOwnedPrefix(r.dst, scope))
        .map((r) => ({ dst: r.dst, ...(r.gw ? { via: r.gw } : {}), dev: names.get(r.dev) ?? String(r.dev) }));
    }
    return {
      type: "vxlan", device: this.device, vni: this.cfg.vni, vtepMAC: this.vtepMAC, mtu: this.mtu, port: this.cfg.port,
      underlay: this.ctx.extIface.name, directRouting: this.cfg.directRouting, gbp: this.cfg.gbp,
      txChecksumOffload: this.#txChecksumState(),
      peers: this.#sync?.peers.size ?? 0, routes, counters: readDeviceCounters(this.device),
    };
  }

  async close(): Promise<void> {
    for (const stop of this.#stops.splice(0)) stop();
    this.nl.close();
  }

  #started(): PeerSync {
    if (!this.#sync) throw new Error("vxlan: start(lease) must run before peers are programmed");
    return this.#sync;
  }

  /** DirectRouting: the peer's PublicIP is reached without a gateway through our interface. */
  #isDirect(lease: Lease): boolean {
    if (!this.cfg.directRouting) return false;
    try {
      const r = routeGet(this.nl, formatIPv4(lease.attrs.publicIP));
      return r.gw === undefined && r.dev === this.ctx.extIface.index;
    } catch {
      return false;
    }
  }

  /**
   * `ip addr add <lease net addr>/32 dev flannel.N` unless present, other addresses inside
   * Network removed, `ip link set flannel.N up` unless up. Changes nothing that is right.
   */
  #ensureAddressAndUp(): void {
    const subnet = this.#lease!.subnet!;
    const want = `${formatIPv4(subnet.ip)}/32`;
    let have = false;
    for (const a of addrList(this.nl, { dev: this.#link.index, family: 4 })) {
      if (a.cidr === want) { have = true; continue; }
      const ip = a.local !== undefined ? tryParseIPv4(a.local) : undefined;
      if (ip !== undefined && containsV4(this.#network, ip)) {
        addrDel(this.nl, this.#link.index, a.cidr);
        this.ctx.log.info(`${this.device}: removed stale address ${a.cidr}`);
      }
    }
    if (!have) addrAdd(this.nl, this.#link.index, want);
    const link = linkByName(this.nl, this.device);
    if (link && !link.up) linkSetUp(this.nl, link.index);
  }

  #txChecksumState(): string {
    try {
      return txChecksumOffload(this.sys, this.device) ? "on" : "off";
    } catch (e) {
      return `unknown (${(e as Error).message})`;
    }
  }

  #applyTxChecksum(): void {
    if (!this.cfg.disableTxChecksumOffload) return;
    setTxChecksumOffload(this.sys, this.device, false);
    this.ctx.log.info(`${this.device}: tx checksum offload turned off (Backend.DisableTxChecksumOffload)`);
  }

  /** Every second: recreate a deleted or replaced device, fix its MAC, bring it back up. */
  #watchDevice(): void {
    const link = linkByName(this.nl, this.device);
    const spec = VxlanNetwork.#spec(this.cfg, this.ctx, this.mtu);
    const why = !link ? "was deleted" : vxlanIncompatibility(link, spec) ? `was changed (${vxlanIncompatibility(link, spec)})` : undefined;
    if (why) {
      if (Date.now() < this.#retryAt) return;
      try {
        this.#link = ensureVxlanDevice(this.nl, spec, this.vtepMAC, this.ctx.log);
      } catch (e) {
        this.#retryMs = Math.min(30_000, Math.max(1_000, this.#retryMs * 2));
        this.#retryAt = Date.now() + this.#retryMs;
        throw new Error(`${this.device} ${why}; recreating it failed (next attempt in ${this.#retryMs / 1000} s): ${(e as Error).message}`);
      }
      this.#retryMs = 0;
      this.#applyTxChecksum();
      this.#ensureAddressAndUp();
      const r = this.#sync!.reprogram();
      this.ctx.log.warn(`${this.device} ${why}: recreated with MAC ${this.vtepMAC} and re-programmed ${this.#sync!.peers.size} peers (${r.added} entries)`);
      return;
    }
    let touched = false;
    if (link!.index !== this.#link.index) {
      this.#link = link!;
      touched = true;
    }
    if (link!.mac !== this.vtepMAC) {
      linkSetAddress(this.nl, link!.index, this.vtepMAC);
      this.ctx.log.warn(`${this.device}: MAC was changed to ${link!.mac}; set back to ${this.vtepMAC}`);
    }
    if (!link!.up) {
      this.ctx.log.warn(`${this.device} was down: bringing it up`);
      touched = true;
    }
    if (touched) {
      this.#ensureAddressAndUp();
      this.#sync!.reprogram();
    }
  }

  /** Every 10 s: the address and every peer's entries are still there. */
  #check(): void {
    this.#ensureAddressAndUp();
    this.#sync!.check();
  }
}
