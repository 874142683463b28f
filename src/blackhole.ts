/**
 * @module `--ip-blackhole-route` (flanneld v0.27.1+): blackhole routes so that packets for pod
 * addresses nobody serves are dropped on this host instead of leaking out by the default route.
 *
 * flanneld adds `blackhole <our lease>` (for setups without a bridge, e.g. Canal) at metric 0 and
 * re-adds it every `--iptables-resync` seconds. At metric 0 it collides with cni0's connected
 * route for the same prefix (EEXIST, logged every resync), and it does nothing for a departed
 * peer's subnet, whose traffic still follows the default route. weft installs, per family:
 *
 *   ip route replace blackhole <our lease>        metric 4294967295
 *   ip route replace blackhole <cluster network>  metric 4294967295
 *
 * At the highest metric they lose every tie: cni0's connected route, the udp backend's
 * `<network> dev flannel0` and every peer route (more specific) keep working, and only what
 * nothing else routes is dropped. Blackholes at that metric inside the current or previous
 * network that are no longer wanted (a previous lease's) are removed. The planner is pure.
 */
import { NetlinkSocket, type Route, routeDel, routeList, routeReplace } from "../ffi/netlink/index.ts";
import { loadSys } from "../ffi/sys.ts";
import type { NetworkConfig } from "./config/network.ts";
import { startCheckLoop } from "./backend/check_loop.ts";
import type { Lease } from "./lease/lease.ts";
import type { Logger } from "./log.ts";
import {
  type IPv4Net, type IPv6Net, containsV4Net, containsV6Net, formatIPv4Net, formatIPv6Net, parseIPv4Net, parseIPv6Net,
} from "./net/ip.ts";

/** The metric of weft's blackholes: the highest, so any other route to the prefix wins. */
export const BLACKHOLE_METRIC = 0xffffffff;

/** The blackholes wanted for this lease and config, as CIDR strings, IPv4 then IPv6. */
export function wantedBlackholes(config: NetworkConfig, lease: Pick<Lease, "subnet" | "ipv6Subnet">): string[] {
  const out: string[] = [];
  if (config.enableIPv4 && lease.subnet && config.network) out.push(formatIPv4Net(lease.subnet), formatIPv4Net(config.network));
  if (config.enableIPv6 && lease.ipv6Subnet && config.ipv6Network) out.push(formatIPv6Net(lease.ipv6Subnet), formatIPv6Net(config.ipv6Network));
  return out;
}

/** A prefix inside which a blackhole at our metric is ours to remove when unwanted. */
export type OwnedNet = { v4: IPv4Net } | { v6: IPv6Net };

/**
 * What to add and delete, given the blackholes at our metric now in the main table. Adds come
 * first; only prefixes inside an `owned` network are deleted (never another tool's blackhole).
 */
export function planBlackholes(wanted: readonly string[], actual: readonly string[], owned: readonly OwnedNet[]): { add: string[]; del: string[] } {
  const isOwned = (cidr: string) => owned.some((o) => {
    if ("v4" in o) return !cidr.includes(":") && containsV4Net(o.v4, parseIPv4Net(cidr));
    return cidr.includes(":") && containsV6Net(o.v6, parseIPv6Net(cidr));
  });
  return {
    add: wanted.filter((w) => !actual.includes(w)),
    del: actual.filter((a) => !wanted.includes(a) && isOwned(a)),
  };
}

export interface BlackholeOptions {
  config: NetworkConfig;
  lease: Pick<Lease, "subnet" | "ipv6Subnet">;
  /** Networks of the previous run (its subnet.env), whose stale blackholes are removed too. */
  previousNetworks?: OwnedNet[];
  /** Re-check period, seconds (flanneld: --iptables-resync). */
  resyncSeconds: number;
  log: Logger;
  signal: AbortSignal;
}

function ourBlackholes(nl: NetlinkSocket): string[] {
  const mine = (r: Route) => r.typeName === "blackhole" && r.priority === BLACKHOLE_METRIC;
  return [...routeList(nl, { family: 4 }), ...routeList(nl, { family: 6 })].filter(mine).map((r) => r.dst);
}

/**
 * Installs the blackholes now and keeps them until the signal aborts (routes stay on exit, as
 * flanneld's do). Returns when the first pass is done; a failure then is thrown, later ones logged.
 */
export async function startBlackholeRoutes(opts: BlackholeOptions): Promise<void> {
  const { config, log, signal } = opts;
  const nl = NetlinkSocket.open(await loadSys());
  const wanted = wantedBlackholes(config, opts.lease);
  const owned: OwnedNet[] = [
    ...(config.network ? [{ v4: config.network }] : []),
    ...(config.ipv6Network ? [{ v6: config.ipv6Network }] : []),
    ...(opts.previousNetworks ?? []),
  ];
  let said = "";
  const sync = () => {
    const plan = planBlackholes(wanted, ourBlackholes(nl), owned);
    for (const dst of plan.add) routeReplace(nl, { dst, type: "blackhole", priority: BLACKHOLE_METRIC });
    for (const dst of plan.del) routeDel(nl, { dst, type: "blackhole", priority: BLACKHOLE_METRIC });
    const msg = [plan.add.length ? `added ${plan.add.join(", ")}` : "", plan.del.length ? `removed stale ${plan.del.join(", ")}` : ""].filter(Boolean).join("; ");
    if (msg && msg !== said) log.info(`blackhole routes (metric ${BLACKHOLE_METRIC}): ${(said = msg)}`);
  };
  try {
    sync();
  } catch (e) {
    nl.close();
    throw new Error(`--ip-blackhole-route: cannot install blackhole routes for ${wanted.join(", ")}: ${(e as Error).message}`);
  }
  const stop = startCheckLoop({ signal, log, intervalMs: opts.resyncSeconds * 1000, what: "blackhole route check", tick: sync });
  signal.addEventListener("abort", () => { stop(); nl.close(); }, { once: true });
}
