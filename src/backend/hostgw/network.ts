/**
 * @module The host-gw network (compat §6.2): no device; every peer's subnet is routed via its
 * PublicIP on the external interface (`ip route replace <subnet> via <PublicIP> dev <iface>`),
 * and its IPv6 subnet via its PublicIPv6 (`ip -6 route replace <v6 subnet> via <PublicIPv6> dev
 * <iface>`) in a dual-stack or IPv6-only network. That needs all hosts on one L2 segment and the
 * public addresses on the interface (no NAT).
 *
 * Design notes: peer routes go through PeerSync (pure plan against the kernel, then one batch),
 * so restarts touch nothing that is right and routes of vanished peers are removed (§12.5); a
 * check every 10 s re-adds routes that went missing, as flanneld's route check does. The MTU is
 * the interface's. Routes are left in place on close.
 */
import { NetlinkSocket, addrList } from "../../../ffi/netlink/index.ts";
import { loadSys } from "../../../ffi/sys.ts";
import type { Lease, LeaseEvent } from "../../lease/lease.ts";
import { type IPv4Net, type IPv6Net, formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net } from "../../net/ip.ts";
import { startCheckLoop } from "../check_loop.ts";
import { readDeviceCounters } from "../device_counters.ts";
import { PeerSync, readRouteState } from "../peer_sync.ts";
import { type DataPathState, type PlanScope, type RouteItem, isOwnedPrefix, mergeStates } from "../route_plan.ts";
import type { BackendContext, Network } from "../types.ts";

const DEFAULT_CHECK_MS = 10_000;

/**
 * The routes a host-gw peer needs, one per family it has and we program:
 * `ip route replace <subnet> via <PublicIP> dev <iface>` and
 * `ip -6 route replace <v6 subnet> via <PublicIPv6> dev <iface>`.
 */
export function hostgwPeerEntries(lease: Lease, iface: number, families: { v4: boolean; v6: boolean } = { v4: true, v6: false }): DataPathState | string {
  const routes: RouteItem[] = [];
  if (families.v4 && lease.subnet) {
    if (lease.attrs.publicIP === 0) return `lease ${formatIPv4Net(lease.subnet)} has PublicIP 0.0.0.0`;
    routes.push({ dst: formatIPv4Net(lease.subnet), gw: formatIPv4(lease.attrs.publicIP), dev: iface });
  }
  if (families.v6 && lease.ipv6Subnet) {
    if (lease.attrs.publicIPv6 === undefined) return `lease ${formatIPv6Net(lease.ipv6Subnet)} has no PublicIPv6`;
    routes.push({ dst: formatIPv6Net(lease.ipv6Subnet), gw: formatIPv6(lease.attrs.publicIPv6), dev: iface });
  }
  if (routes.length === 0) return families.v4 ? "no IPv4 subnet" : "no IPv6 subnet";
  return { routes, neighs: [], fdbs: [] };
}

export class HostGwNetwork implements Network {
  readonly leaseAttrs = { backendType: "host-gw" };
  readonly mtu: number;
  get devices(): readonly string[] {
    return [this.ctx.extIface.name];
  }
  readonly #network?: IPv4Net;
  readonly #network6?: IPv6Net;
  #scope?: PlanScope;
  #sync?: PeerSync;
  #stop?: () => void;

  private constructor(private readonly ctx: BackendContext, private readonly nl: NetlinkSocket) {
    this.mtu = ctx.extIface.mtu;
    this.#network = ctx.config.enableIPv4 ? ctx.config.network : undefined;
    this.#network6 = ctx.config.enableIPv6 ? ctx.config.ipv6Network : undefined;
  }

  /** Checks the precondition (each public address is an address of the interface) and opens netlink. */
  static async create(ctx: BackendContext): Promise<HostGwNetwork> {
    const { extIface: ext, config } = ctx;
    if (config.enableIPv4 && !config.network) throw new Error("host-gw: EnableIPv4 is on but the network config has no Network");
    if (config.enableIPv6 && !config.ipv6Network) throw new Error("host-gw: EnableIPv6 is on but the network config has no IPv6Network");
    if (ext.mtu === 0) throw new Error(`interface ${ext.name} reports MTU 0`);
    const nl = NetlinkSocket.open(await loadSys());
    try {
      if (config.enableIPv4 && ext.extAddr !== ext.ifaceAddr) {
        const pub = formatIPv4(ext.extAddr);
        const onIface = addrList(nl, { dev: ext.index, family: 4 }).some((a) => a.local === pub);
        if (!onIface) {
          throw new Error(`host-gw backend requires the public IP to be on the interface: --public-ip ${pub} is not an address of ${ext.name}`);
        }
      }
      if (config.enableIPv6) {
        if (ext.extAddr6 === undefined) throw new Error(`host-gw: EnableIPv6 is on but interface ${ext.name} has no IPv6 address`);
        if (ext.extAddr6 !== ext.ifaceAddr6) {
          const pub = formatIPv6(ext.extAddr6);
          const onIface = addrList(nl, { dev: ext.index, family: 6 }).some((a) => (a.local ?? a.address) === pub);
          if (!onIface) {
            throw new Error(`host-gw backend requires the public IPv6 to be on the interface: --public-ipv6 ${pub} is not an address of ${ext.name}`);
          }
        }
      }
      return new HostGwNetwork(ctx, nl);
    } catch (e) {
      nl.close();
      throw e;
    }
  }

  async start(lease: Lease): Promise<void> {
    if (this.#network && !lease.subnet) throw new Error("host-gw: our lease has no IPv4 subnet");
    if (this.#network6 && !lease.ipv6Subnet) throw new Error("host-gw: our lease has no IPv6 subnet");
    const scope: PlanScope = { network: this.#network, own: lease.subnet, network6: this.#network6, own6: lease.ipv6Subnet };
    this.#scope = scope;
    const { log, metrics, extIface } = this.ctx;
    const families = { v4: this.#network !== undefined, v6: this.#network6 !== undefined };
    this.#sync = new PeerSync({
      nl: this.nl, log, metrics, backendType: "host-gw", scope,
      entriesFor: (l) => hostgwPeerEntries(l, extIface.index, families),
      readActual: () => this.#readActual(),
    });
    this.#stop = startCheckLoop({
      signal: this.ctx.signal, log, intervalMs: this.ctx.checkIntervalMs ?? DEFAULT_CHECK_MS, what: "host-gw route check",
      tick: () => this.#sync!.check(),
    });
  }

  async reconcile(peers: ReadonlyMap<string, Lease>): Promise<void> {
    this.#started().reconcile(peers);
  }

  async apply(events: readonly LeaseEvent[]): Promise<void> {
    this.#started().apply(events);
  }

  /** The interface, MTU, this host's host-gw routes (both families) and the interface's counters. */
  async describe(): Promise<Record<string, unknown>> {
    const ext = this.ctx.extIface;
    const scope = this.#scope;
    const routes = scope
      ? this.#readActual().routes.filter((r) => isOwnedPrefix(r.dst, scope)).map((r) => ({ dst: r.dst, via: r.gw, dev: ext.name }))
      : [];
    return { type: "host-gw", device: ext.name, mtu: this.mtu, peers: this.#sync?.peers.size ?? 0, routes, counters: readDeviceCounters(ext.name) };
  }

  async close(): Promise<void> {
    this.#stop?.();
    this.nl.close();
  }

  #readActual(): DataPathState {
    const underlay = this.ctx.extIface.index;
    const states: DataPathState[] = [];
    if (this.#network) states.push(readRouteState(this.nl, { underlay }, 4));
    if (this.#network6) states.push(readRouteState(this.nl, { underlay }, 6));
    return mergeStates(states);
  }

  #started(): PeerSync {
    if (!this.#sync) throw new Error("host-gw: start(lease) must run before peers are programmed");
    return this.#sync;
  }
}
