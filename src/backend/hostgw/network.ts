/**
 * @module The host-gw network (compat §6.2): no device; every peer's subnet is routed via its
 * PublicIP on the external interface (`ip route replace <subnet> via <PublicIP> dev <iface>`),
 * which needs all hosts on one L2 segment and the public IP on the interface (no NAT).
 *
 * Design notes: peer routes go through PeerSync (pure plan against the kernel, then one batch),
 * so restarts touch nothing that is right and routes of vanished peers are removed (§12.5); a
 * check every 10 s re-adds routes that went missing, as flanneld's route check does. The MTU is
 * the interface's. Routes are left in place on close.
 */
import { NetlinkSocket, addrList } from "../../../ffi/netlink/index.ts";
import { loadSys } from "../../../ffi/sys.ts";
import type { Lease, LeaseEvent } from "../../lease/lease.ts";
import { type IPv4Net, formatIPv4, formatIPv4Net } from "../../net/ip.ts";
import { startCheckLoop } from "../check_loop.ts";
import { readDeviceCounters } from "../device_counters.ts";
import { PeerSync, readRouteState } from "../peer_sync.ts";
import { type DataPathState, isOwnedPrefix } from "../route_plan.ts";
import type { BackendContext, Network } from "../types.ts";

const DEFAULT_CHECK_MS = 10_000;

/** The one route a host-gw peer needs: `ip route replace <subnet> via <PublicIP> dev <iface>`. */
export function hostgwPeerEntries(lease: Lease, iface: number): DataPathState | string {
  if (!lease.subnet) return "no IPv4 subnet";
  if (lease.attrs.publicIP === 0) return `lease ${formatIPv4Net(lease.subnet)} has PublicIP 0.0.0.0`;
  return { routes: [{ dst: formatIPv4Net(lease.subnet), gw: formatIPv4(lease.attrs.publicIP), dev: iface }], neighs: [], fdbs: [] };
}

export class HostGwNetwork implements Network {
  readonly leaseAttrs = { backendType: "host-gw" };
  readonly mtu: number;
  get devices(): readonly string[] {
    return [this.ctx.extIface.name];
  }
  readonly #network: IPv4Net;
  #own?: IPv4Net;
  #sync?: PeerSync;
  #stop?: () => void;

  private constructor(private readonly ctx: BackendContext, private readonly nl: NetlinkSocket) {
    this.mtu = ctx.extIface.mtu;
    this.#network = ctx.config.network!;
  }

  /** Checks the precondition (the public IP is an address of the interface) and opens netlink. */
  static async create(ctx: BackendContext): Promise<HostGwNetwork> {
    const ext = ctx.extIface;
    if (!ctx.config.enableIPv4 || !ctx.config.network) {
      throw new Error("weft's host-gw backend programs IPv4 only: the network config needs EnableIPv4 and Network");
    }
    if (ext.mtu === 0) throw new Error(`interface ${ext.name} reports MTU 0`);
    const nl = NetlinkSocket.open(await loadSys());
    try {
      if (ext.extAddr !== ext.ifaceAddr) {
        const pub = formatIPv4(ext.extAddr);
        const onIface = addrList(nl, { dev: ext.index, family: 4 }).some((a) => a.local === pub);
        if (!onIface) {
          throw new Error(`host-gw backend requires the public IP to be on the interface: --public-ip ${pub} is not an address of ${ext.name}`);
        }
      }
      return new HostGwNetwork(ctx, nl);
    } catch (e) {
      nl.close();
      throw e;
    }
  }

  async start(lease: Lease): Promise<void> {
    if (!lease.subnet) throw new Error("host-gw: our lease has no IPv4 subnet");
    this.#own = lease.subnet;
    const { log, metrics, extIface } = this.ctx;
    this.#sync = new PeerSync({
      nl: this.nl, log, metrics, backendType: "host-gw",
      scope: { network: this.#network, own: lease.subnet },
      entriesFor: (l) => hostgwPeerEntries(l, extIface.index),
      readActual: () => readRouteState(this.nl, { underlay: extIface.index }),
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

  /** The interface, MTU, this host's host-gw routes and the interface's counters. */
  async describe(): Promise<Record<string, unknown>> {
    const ext = this.ctx.extIface;
    const scope = { network: this.#network, own: this.#own };
    const routes = this.#own
      ? readRouteState(this.nl, { underlay: ext.index }).routes.filter((r) => isOwnedPrefix(r.dst, scope))
        .map((r) => ({ dst: r.dst, via: r.gw, dev: ext.name }))
      : [];
    return { type: "host-gw", device: ext.name, mtu: this.mtu, peers: this.#sync?.peers.size ?? 0, routes, counters: readDeviceCounters(ext.name) };
  }

  async close(): Promise<void> {
    this.#stop?.();
    this.nl.close();
  }

  #started(): PeerSync {
    if (!this.#sync) throw new Error("host-gw: start(lease) must run before peers are programmed");
    return this.#sync;
  }
}
