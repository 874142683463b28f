/**
 * @module What `weft doctor` reads, thin and read-only: the config and leases from the store, the
 * interface the agent's flags select, subnet.env, the devices and the kernel entries (netlink),
 * the firewall (iptables-save, nft), the agent's /status (probe results) and the vxlan device's
 * checksum offload. Every part that fails is recorded as the reason, never thrown: the checks
 * (checks.ts) turn missing evidence into findings.
 */
import { execFileSync } from "node:child_process";
import { release } from "node:os";
import { NetlinkSocket, addrList, linkByName, linkList } from "../../ffi/netlink/index.ts";
import { loadSys } from "../../ffi/sys.ts";
import { hostgwPeerEntries } from "../backend/hostgw/network.ts";
import { readRouteState } from "../backend/peer_sync.ts";
import { type DataPathState, mergeStates } from "../backend/route_plan.ts";
import { parseVxlanConfig } from "../backend/vxlan/config.ts";
import { vxlanDeviceName } from "../backend/vxlan/device.ts";
import { vxlanPeerEntries } from "../backend/vxlan/lease_data.ts";
import { type NetworkConfig, parseNetworkConfig } from "../config/network.ts";
import { type Lease, leaseBackendType } from "../lease/lease.ts";
import { type IfaceOptions, readHostNetwork, selectInterface } from "../net/iface.ts";
import { formatIPv4, formatIPv4Net } from "../net/ip.ts";
import { readSubnetEnv } from "../subnet_env.ts";
import type { DeviceInfo, DoctorInput, PeerProbe } from "./checks.ts";
import type { DoctorStore } from "./store.ts";

export interface GatherOptions {
  /** Where the config and leases are (etcd or Kubernetes, as the agent's flags say). */
  store: DoctorStore;
  iface: Omit<IfaceOptions, "enableIPv4" | "enableIPv6">;
  subnetFile: string;
  ipMasq: boolean;
  forwardRules: boolean;
  /** The agent's status server, e.g. http://127.0.0.1:8081 ("" when --healthz-port is 0). */
  statusURL: string;
}

const withTimeout = <T>(p: Promise<T>, ms: number, what: string): Promise<T> =>
  Promise.race([p, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`${what}: no answer within ${ms / 1000} s`)), ms).unref?.())]);

function tool(cmd: string, args: string[]): string {
  return execFileSync(cmd, args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"], timeout: 10_000 });
}

export async function gather(o: GatherOptions): Promise<DoctorInput> {
  const input: DoctorInput = {
    flags: { ipMasq: o.ipMasq, forwardRules: o.forwardRules, subnetFile: o.subnetFile, status: o.statusURL || "(--healthz-port 0)" },
    overlayName: "", firewall: {}, kernel: release(),
  };
  // The store: config and leases (and in kube mode this host's Node).
  const where = o.store.kind === "kube" ? "the Kubernetes API" : "etcd";
  input.source = o.store.kind;
  try {
    const text = await withTimeout(o.store.config(), 5000, where);
    if (text === undefined) {
      input.configError = o.store.kind === "kube" ? "no network config file (--net-config-path; the ConfigMap key net-conf.json)" : "no network config is stored (<prefix>/config is absent)";
    } else input.config = parseNetworkConfig(text);
  } catch (e) {
    input.configError = (e as Error).message;
  }
  try {
    input.leases = await withTimeout(o.store.leases(), 5000, where);
  } catch (e) {
    input.leasesError = (e as Error).message;
  }
  if (o.store.ownNode) {
    try {
      input.ownNode = await withTimeout(o.store.ownNode(), 5000, where);
    } catch (e) {
      input.ownNode = { name: "(unknown)", podCIDRs: [], problem: `cannot read this host's Node: ${(e as Error).message}` };
    }
  }
  const config = input.config;
  // This host: interface, subnet.env.
  try {
    const ext = selectInterface(readHostNetwork(), { ...o.iface, enableIPv4: config?.enableIPv4 ?? true, enableIPv6: config?.enableIPv6 ?? false });
    input.publicIP = formatIPv4(ext.extAddr);
    input.iface = { name: ext.name, mtu: ext.mtu };
  } catch (e) {
    input.ifaceError = (e as Error).message;
  }
  try {
    input.subnetEnv = readSubnetEnv(o.subnetFile);
    if (!input.subnetEnv) input.subnetEnvError = `${o.subnetFile} does not exist`;
  } catch (e) {
    input.subnetEnvError = (e as Error).message;
  }
  // Devices and kernel entries.
  const sys = await loadSys();
  const nl = NetlinkSocket.open(sys);
  try {
    const device = (name: string): DeviceInfo | undefined => {
      const l = linkByName(nl, name);
      return l ? { name, mtu: l.mtu ?? 0, addrs: addrList(nl, { dev: l.index, family: 4 }).map((a) => a.cidr) } : undefined;
    };
    const backend = config?.backendType ?? "";
    const vx = backend === "vxlan" ? parseVxlanConfig(config!.backend) : undefined;
    input.overlayName = vx ? vxlanDeviceName(vx.vni) : backend === "udp" ? "flannel0" : backend === "wireguard" ? "flannel-wg" : "";
    input.overlay = input.overlayName ? device(input.overlayName) : undefined;
    input.bridge = device("cni0");
    input.dataPath = dataPath(nl, config, input, vx?.directRouting ?? false);
    if (vx && input.overlay) {
      const { txChecksumOffload } = await import("../backend/vxlan/tx_checksum.ts");
      try { input.txChecksum = txChecksumOffload(sys, input.overlayName); } catch { /* not readable: not reported */ }
    }
  } finally {
    nl.close();
  }
  // Firewall.
  const errors: string[] = [];
  for (const [k, cmd, args] of [["filter", "iptables-save", ["-t", "filter"]], ["nat", "iptables-save", ["-t", "nat"]], ["nft", "nft", ["list", "ruleset"]]] as const) {
    try { input.firewall[k] = tool(cmd, [...args]); } catch (e) { errors.push(`${cmd}: ${(e as Error).message.split("\n")[0]}`); }
  }
  if (errors.length) input.firewall.error = errors.join("; ");
  // The agent's probe results.
  if (o.statusURL) {
    try {
      const r = await fetch(`${o.statusURL}/status`, { signal: AbortSignal.timeout(3000) });
      const st = (await r.json()) as { peers?: { subnet: string; publicIP: string; health?: Omit<PeerProbe, "subnet" | "publicIP"> | null }[] };
      input.probes = (st.peers ?? []).filter((p) => p.health).map((p) => ({ subnet: p.subnet, publicIP: p.publicIP, ...p.health! }));
    } catch (e) {
      input.statusError = `${o.statusURL}/status: ${(e as Error).message}`;
    }
  } else {
    input.statusError = "--healthz-port is 0: the agent's status server is off";
  }
  return input;
}

/** The entries the peer leases call for (the backends' own entry functions) and what the kernel holds. */
function dataPath(nl: NetlinkSocket, config: NetworkConfig | undefined, input: DoctorInput, directRouting: boolean): DoctorInput["dataPath"] {
  if (!config?.network) return { skipped: "no IPv4 network config" };
  if (!input.leases || !input.iface) return { skipped: "the leases or the interface are unknown" };
  const backend = config.backendType;
  if (backend !== "vxlan" && backend !== "host-gw") return { skipped: `the ${backend} backend keeps its peers in the agent, not the kernel` };
  if (directRouting) return { skipped: "DirectRouting: which peers are direct depends on the agent's view of the L2" };
  const iface = linkByName(nl, input.iface.name);
  const overlay = input.overlayName ? linkByName(nl, input.overlayName) : undefined;
  if (!iface || (backend === "vxlan" && !overlay)) return { skipped: "the devices are missing" };
  const ownSubnet = input.subnetEnv?.subnet;
  const peers: Lease[] = input.leases.filter((l) => l.subnet && formatIPv4Net({ ip: l.subnet.ip + 1, len: l.subnet.len }) !== ownSubnet && leaseBackendType(l.attrs) === backend);
  const states: DataPathState[] = [];
  for (const l of peers) {
    const s = backend === "vxlan" ? vxlanPeerEntries(l, { dev: overlay!.index, iface: iface.index, direct: false }) : hostgwPeerEntries(l, iface.index);
    if (typeof s !== "string") states.push(s);
  }
  const own = input.leases.find((l) => l.subnet && formatIPv4Net({ ip: l.subnet.ip + 1, len: l.subnet.len }) === ownSubnet)?.subnet;
  const names: Record<number, string> = Object.fromEntries(linkList(nl).map((l) => [l.index, l.name]));
  return {
    desired: mergeStates(states),
    actual: readRouteState(nl, { overlay: overlay?.index, underlay: iface.index }),
    scope: { network: config.network, own },
    names,
  };
}
