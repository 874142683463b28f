/**
 * @module Runs inside a network namespace (`ip netns exec NS bun backend_ns_script.ts JSON`) on
 * behalf of the backend kernel tests: builds a vxlan or host-gw network the way the agent does
 * (getBackend → createNetwork → start), runs the steps it is given (reconcile, apply, generated
 * peers, waits, deleting the device or a route), times each, and prints one JSON object. Peers
 * and our lease may have an IPv6 subnet (`subnet6`, `publicIPv6`, `mac6`), or only that.
 */
import { NetlinkSocket, addrList, linkByName, linkDel, routeDel } from "../../ffi/netlink/index.ts";
import { loadSys } from "../../ffi/sys.ts";
import { getBackend } from "../../src/backend/registry.ts";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { type Lease, type LeaseEvent, leaseKey } from "../../src/lease/lease.ts";
import type { Logger } from "../../src/log.ts";
import { formatIPv4Net, parseIPv4, parseIPv4Net, parseIPv6, parseIPv6Net } from "../../src/net/ip.ts";
import { Metrics } from "../../src/status/metrics.ts";

export interface PeerSpec {
  /** IPv4 subnet; absent for an IPv6-only peer. */
  subnet?: string;
  publicIP?: string;
  subnet6?: string;
  publicIPv6?: string;
  /** BackendV6Data; default {VNI, VtepMAC: mac6}. */
  data6?: unknown;
  mac6?: string;
  /** BackendType; default the network's. */
  type?: string | null;
  /** BackendData; default {VNI, VtepMAC: mac}. */
  data?: unknown;
  mac?: string;
}

export type Step =
  | { op: "reconcile"; peers: PeerSpec[] }
  | { op: "apply"; added?: PeerSpec[]; removed?: PeerSpec[] }
  /** count peers: subnets `<base>+i` of `len`, PublicIPs `<pubBase>+i`. */
  | { op: "generate"; as: "apply" | "reconcile" | "remove"; count: number; base: string; len: number; pubBase: string }
  | { op: "wait"; ms: number }
  | { op: "deleteDevice"; name: string }
  | { op: "deleteRoute"; dst: string }
  | { op: "describe" };

export interface ScriptInput {
  config: Record<string, unknown>;
  iface: string;
  publicIP?: string;
  publicIPv6?: string;
  /** Our lease's IPv4 subnet (absent in an IPv6-only network) and IPv6 subnet. */
  own?: string;
  own6?: string;
  previousMac?: string;
  previousMac6?: string;
  checkIntervalMs?: number;
  steps: Step[];
}

const input = JSON.parse(process.argv[2]!) as ScriptInput;
const logs: string[] = [];
const log: Logger = {
  info: (m) => logs.push(`I ${m}`), warn: (m) => logs.push(`W ${m}`), error: (m) => logs.push(`E ${m}`), debug: () => {},
};
const config = parseNetworkConfig(JSON.stringify(input.config));
const sys = await loadSys();
const nl = NetlinkSocket.open(sys);
const link = linkByName(nl, input.iface)!;
const ifaceAddr = config.enableIPv4 ? parseIPv4(addrList(nl, { dev: link.index, family: 4 })[0]!.local!) : 0;
const extAddr = input.publicIP ? parseIPv4(input.publicIP) : ifaceAddr;
const v6 = addrList(nl, { dev: link.index, family: 6 }).find((a) => a.scope === 0);
const ifaceAddr6 = v6 ? parseIPv6(v6.address!) : undefined;
const extAddr6 = input.publicIPv6 ? parseIPv6(input.publicIPv6) : ifaceAddr6;
const abort = new AbortController();

function mac(i: number): string {
  return `0a:${[(i >> 24) & 255, (i >> 16) & 255, (i >> 8) & 255, i & 255, 1].map((b) => b.toString(16).padStart(2, "0")).join(":")}`;
}

function lease(p: PeerSpec): Lease {
  const type = p.type === undefined ? config.backendType : p.type;
  const vxlan = type === "vxlan";
  return {
    ...(p.subnet ? { subnet: parseIPv4Net(p.subnet) } : {}),
    ...(p.subnet6 ? { ipv6Subnet: parseIPv6Net(p.subnet6) } : {}),
    expiration: 0,
    attrs: {
      publicIP: p.publicIP ? parseIPv4(p.publicIP) : 0,
      ...(p.publicIPv6 ? { publicIPv6: parseIPv6(p.publicIPv6) } : {}),
      ...(type ? { backendType: type } : {}),
      ...(vxlan && p.subnet ? { backendData: p.data !== undefined ? p.data : { VNI: 1, VtepMAC: p.mac } } : {}),
      ...(vxlan && p.subnet6 ? { backendV6Data: p.data6 !== undefined ? p.data6 : { VNI: 1, VtepMAC: p.mac6 } } : {}),
    },
  };
}

function generated(s: Extract<Step, { op: "generate" }>): PeerSpec[] {
  const base = parseIPv4(s.base);
  const pub = parseIPv4(s.pubBase);
  return Array.from({ length: s.count }, (_, i) => ({
    subnet: formatIPv4Net({ ip: (base + i * 2 ** (32 - s.len)) >>> 0, len: s.len }),
    publicIP: formatIPv4Net({ ip: pub + i, len: 32 }).slice(0, -3),
    mac: mac(i + 1),
  }));
}

const out: Record<string, unknown> = { steps: [] as unknown[] };
let network;
try {
  const backend = await getBackend(config.backendType);
  const own = {
    ...(input.own ? { subnet: parseIPv4Net(input.own) } : {}),
    ...(input.own6 ? { ipv6Subnet: parseIPv6Net(input.own6) } : {}),
  };
  const previousLease = input.previousMac || input.previousMac6
    ? {
      ...own, expiration: 0, attrs: {
        publicIP: extAddr, publicIPv6: extAddr6, backendType: "vxlan",
        ...(input.previousMac ? { backendData: { VNI: 1, VtepMAC: input.previousMac } } : {}),
        ...(input.previousMac6 ? { backendV6Data: { VNI: 1, VtepMAC: input.previousMac6 } } : {}),
      },
    }
    : undefined;
  network = await backend.createNetwork({
    config, log, metrics: new Metrics(), signal: abort.signal, checkIntervalMs: input.checkIntervalMs, previousLease,
    extIface: {
      name: input.iface, index: link.index, mtu: link.mtu!, ifaceAddr, extAddr,
      ...(config.enableIPv6 ? { ifaceAddr6, extAddr6 } : {}),
    },
  });
  out.mtu = network.mtu;
  out.leaseAttrs = network.leaseAttrs;
  await network.start({ ...own, expiration: 0, attrs: { publicIP: extAddr, publicIPv6: extAddr6, ...network.leaseAttrs } });
  for (const step of input.steps) {
    const t0 = performance.now();
    let result: unknown;
    switch (step.op) {
      case "reconcile":
        await network.reconcile(new Map(step.peers.map((p) => [leaseKey(lease(p)), lease(p)])));
        break;
      case "apply": {
        const events: LeaseEvent[] = [
          ...(step.added ?? []).map((p) => ({ type: "added" as const, lease: lease(p) })),
          ...(step.removed ?? []).map((p) => ({ type: "removed" as const, lease: lease(p) })),
        ];
        await network.apply(events);
        break;
      }
      case "generate": {
        const peers = generated(step);
        if (step.as === "reconcile") await network.reconcile(new Map(peers.map((p) => [leaseKey(lease(p)), lease(p)])));
        else await network.apply(peers.map((p) => ({ type: step.as === "apply" ? "added" : "removed", lease: lease(p) })));
        break;
      }
      case "wait":
        await new Promise((r) => setTimeout(r, step.ms));
        break;
      case "deleteDevice":
        linkDel(nl, step.name);
        break;
      case "deleteRoute":
        routeDel(nl, { dst: step.dst });
        break;
      case "describe":
        result = await network.describe?.();
        break;
    }
    (out.steps as unknown[]).push({ op: step.op, ms: Math.round((performance.now() - t0) * 10) / 10, ...(result ? { result } : {}) });
  }
} catch (e) {
  out.error = (e as Error).message;
} finally {
  await network?.close();
  abort.abort();
  nl.close();
}
out.logs = logs;
console.log(JSON.stringify(out));
