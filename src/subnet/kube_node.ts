/**
 * @module Nodes as leases, and the patches that advertise ours (compat §11), as pure functions:
 *   - a peer Node is a lease when it carries `kube-subnet-manager: "true"` and a podCIDR: its
 *     subnet(s) from `spec.podCIDRs` (or `spec.podCIDR`), its attributes from the annotations;
 *   - our annotations are patched exactly as flanneld patches them: a strategic-merge patch of
 *     the annotations that changed (`{"metadata":{"annotations":{…}}}`, keys sorted as Go's
 *     two-way merge patch writes them), the backend data as the JSON string flanneld writes
 *     (`"null"` for host-gw), `public-ip(v6)-overwrite` replacing the public IP;
 *   - `NetworkUnavailable=False`, reason `FlannelIsUp`, the condition flanneld patches.
 */
import { marshalGoJson } from "../cni/go_json.ts";
import { type Lease, type LeaseAttrs, goJSON } from "../lease/lease.ts";
import {
  type IPv4Net, type IPv6Net, formatIPv4, formatIPv6, parseIPv4Net, parseIPv6Net, tryParseIPv4, tryParseIPv6,
} from "../net/ip.ts";
import type { KubeNode } from "../kube/types.ts";
import type { KubeAnnotations } from "./kube_annotations.ts";

/** Which address families the network config enables. */
export interface Families {
  enableIPv4: boolean;
  enableIPv6: boolean;
}

/** A Node whose podCIDRs or annotations do not make a lease; the message names node and field. */
export class NodeLeaseError extends Error {
  constructor(readonly node: string, message: string) {
    super(`node ${JSON.stringify(node)}: ${message}`);
    this.name = "NodeLeaseError";
  }
}

/** True when a flannel-compatible agent runs on the Node (`kube-subnet-manager: "true"`). */
export function isKubeManaged(node: KubeNode, names: KubeAnnotations): boolean {
  return node.metadata.annotations?.[names.kubeSubnetManager] === "true";
}

/**
 * The Node's pod CIDRs per family, as flannel reads them: `spec.podCIDRs` (one or two, dual
 * stack) else `spec.podCIDR`; none assigned yet → `{}`. Throws NodeLeaseError for more than two
 * or an unparsable one.
 */
export function nodePodCIDRs(node: KubeNode): { v4?: IPv4Net; v6?: IPv6Net } {
  const name = node.metadata.name;
  const list = node.spec?.podCIDRs?.length ? node.spec.podCIDRs : node.spec?.podCIDR ? [node.spec.podCIDR] : [];
  if (list.length > 2) throw new NodeLeaseError(name, `spec.podCIDRs ${JSON.stringify(list)}: at most one IPv4 and one IPv6 CIDR (dual stack)`);
  const out: { v4?: IPv4Net; v6?: IPv6Net } = {};
  for (const c of list) {
    try {
      if (c.includes(":")) out.v6 ??= parseIPv6Net(c, "spec.podCIDRs entry");
      else out.v4 ??= parseIPv4Net(c, "spec.podCIDRs entry");
    } catch (e) {
      throw new NodeLeaseError(name, (e as Error).message);
    }
  }
  return out;
}

/** A backend-data annotation as a value: "" and "null" are none; anything else must be JSON. */
function annotationJSON(node: KubeNode, key: string): unknown {
  const text = node.metadata.annotations?.[key];
  if (text === undefined || text === "" || text === "null") return undefined;
  try {
    return JSON.parse(text) ?? undefined;
  } catch {
    throw new NodeLeaseError(node.metadata.name, `annotation ${key} ${JSON.stringify(text.slice(0, 80))} is not JSON`);
  }
}

/**
 * A peer's lease from its Node (flannel's nodeToLease): per enabled family the podCIDR, the
 * public IP and the backend data; the backend type. Throws NodeLeaseError naming what is wrong.
 * Call only for a managed Node (isKubeManaged).
 */
export function nodeToLease(node: KubeNode, names: KubeAnnotations, families: Families): Lease {
  const name = node.metadata.name;
  const ann = node.metadata.annotations ?? {};
  const cidrs = nodePodCIDRs(node);
  const attrs: LeaseAttrs = { publicIP: 0 };
  const lease: Lease = { attrs, expiration: null };
  if (families.enableIPv4) {
    if (!cidrs.v4) throw new NodeLeaseError(name, "has no IPv4 podCIDR yet");
    const ip = tryParseIPv4(ann[names.publicIP] ?? "");
    if (ip === undefined) throw new NodeLeaseError(name, `annotation ${names.publicIP} ${JSON.stringify(ann[names.publicIP] ?? "(missing)")} is not an IPv4 address`);
    attrs.publicIP = ip;
    attrs.backendData = annotationJSON(node, names.backendData);
    lease.subnet = cidrs.v4;
  }
  if (families.enableIPv6) {
    if (!cidrs.v6) throw new NodeLeaseError(name, "has no IPv6 podCIDR yet");
    const ip = tryParseIPv6(ann[names.publicIPv6] ?? "");
    if (ip === undefined) throw new NodeLeaseError(name, `annotation ${names.publicIPv6} ${JSON.stringify(ann[names.publicIPv6] ?? "(missing)")} is not an IPv6 address`);
    attrs.publicIPv6 = ip;
    attrs.backendV6Data = annotationJSON(node, names.backendV6Data);
    lease.ipv6Subnet = cidrs.v6;
  }
  const type = ann[names.backendType];
  if (type) attrs.backendType = type;
  if (attrs.backendData === undefined) delete attrs.backendData;
  if (attrs.backendV6Data === undefined) delete attrs.backendV6Data;
  // When the Node was made (ms): the older of two leases claiming one subnet wins (admission).
  const created = Date.parse(node.metadata.creationTimestamp ?? "");
  if (Number.isFinite(created)) lease.created = BigInt(created);
  return lease;
}

/**
 * What this host advertised on its Node before (flannel's GetStoredMacAddresses, read as JSON):
 * the backend type and data, so a restarted vxlan keeps its VTEP MAC (flannel #1155). Undefined
 * when the Node carries none.
 */
export function storedNodeAttrs(node: KubeNode, names: KubeAnnotations): LeaseAttrs | undefined {
  const ann = node.metadata.annotations ?? {};
  if (ann[names.backendData] === undefined && ann[names.backendV6Data] === undefined) return undefined;
  const attrs: LeaseAttrs = { publicIP: tryParseIPv4(ann[names.publicIP] ?? "") ?? 0 };
  const v6 = tryParseIPv6(ann[names.publicIPv6] ?? "");
  if (v6 !== undefined) attrs.publicIPv6 = v6;
  if (ann[names.backendType]) attrs.backendType = ann[names.backendType];
  try {
    const d = annotationJSON(node, names.backendData);
    if (d !== undefined) attrs.backendData = d;
    const d6 = annotationJSON(node, names.backendV6Data);
    if (d6 !== undefined) attrs.backendV6Data = d6;
  } catch {
    return undefined; // garbled: start afresh, the new values are patched over it
  }
  return attrs;
}

/** `node-public-ip(v6)`: the public IP an administrator set for the Node (problems named). */
export function storedNodePublicIP(node: KubeNode, names: KubeAnnotations): { publicIP?: number; publicIPv6?: bigint; problems: string[] } {
  const ann = node.metadata.annotations ?? {};
  const out: { publicIP?: number; publicIPv6?: bigint; problems: string[] } = { problems: [] };
  const v4 = ann[names.nodePublicIP], v6 = ann[names.nodePublicIPv6];
  if (v4) {
    const ip = tryParseIPv4(v4);
    if (ip === undefined) out.problems.push(`annotation ${names.nodePublicIP} ${JSON.stringify(v4)} on node ${JSON.stringify(node.metadata.name)} is not an IPv4 address; ignored`);
    else out.publicIP = ip;
  }
  if (v6) {
    const ip = tryParseIPv6(v6);
    if (ip === undefined) out.problems.push(`annotation ${names.nodePublicIPv6} ${JSON.stringify(v6)} on node ${JSON.stringify(node.metadata.name)} is not an IPv6 address; ignored`);
    else out.publicIPv6 = ip;
  }
  return out;
}

/** Backend data as flanneld writes it into the annotation: compact JSON, `null` for none. */
export function backendDataText(data: unknown): string {
  return data === undefined || data === null ? "null" : goJSON(data);
}

/** What acquiring our lease writes to our Node. */
export interface OwnNodeUpdate {
  /** The strategic-merge patch for `nodes/{name}/status`, or undefined when nothing changes. */
  patch?: string;
  /** The attributes peers will read (public IPs after `public-ip(v6)-overwrite`). */
  advertised: LeaseAttrs;
  /** Lines to log (an overwrite applied). */
  notes: string[];
}

/**
 * The annotations flanneld writes in AcquireLease, and the patch of those that change. Throws
 * NodeLeaseError when an overwrite annotation is not an address of its family.
 */
export function ownNodeUpdate(node: KubeNode, names: KubeAnnotations, attrs: LeaseAttrs): OwnNodeUpdate {
  const name = node.metadata.name;
  const cur = node.metadata.annotations ?? {};
  const want: Record<string, string> = { ...cur };
  const notes: string[] = [];
  const type = attrs.backendType ?? "";
  const bd = backendDataText(attrs.backendData), v6bd = backendDataText(attrs.backendV6Data);
  const advertised: LeaseAttrs = { ...attrs };
  /** `public-ip(v6)-overwrite`, when set: written as our public IP, and returned parsed. */
  const overwrite = <T>(family: "ip" | "ipv6", key: string, overKey: string, parse: (s: string) => T | undefined): T | undefined => {
    const over = cur[overKey];
    if (!over) return undefined;
    const ip = parse(over);
    if (ip === undefined) throw new NodeLeaseError(name, `annotation ${overKey} ${JSON.stringify(over)} is not an IPv${family === "ip" ? 4 : 6} address`);
    if (cur[key] !== over) notes.push(`Overriding public ${family} with '${over}' from node annotation '${overKey}'`);
    want[key] = over;
    return ip;
  };
  want[names.backendType] = type;
  // flanneld writes the IPv4 data unless vxlan has none (IPv6-only vxlan).
  if ((type === "vxlan" && bd !== "null") || (type === "wireguard" && bd !== "null") || type !== "vxlan") {
    want[names.backendData] = bd;
    const ip = overwrite("ip", names.publicIP, names.publicIPOverwrite, tryParseIPv4);
    if (ip !== undefined) advertised.publicIP = ip;
    else want[names.publicIP] = formatIPv4(attrs.publicIP);
  }
  const hasV6 = attrs.publicIPv6 !== undefined;
  if ((type === "vxlan" && v6bd !== "null") || (type === "wireguard" && v6bd !== "null" && hasV6) ||
    ((type === "host-gw" || type === "extension") && hasV6)) {
    want[names.backendV6Data] = v6bd;
    const ip = overwrite("ipv6", names.publicIPv6, names.publicIPv6Overwrite, tryParseIPv6);
    if (ip !== undefined) advertised.publicIPv6 = ip;
    else if (hasV6) want[names.publicIPv6] = formatIPv6(attrs.publicIPv6!);
  }
  want[names.kubeSubnetManager] = "true";
  const changed: Record<string, string> = {};
  for (const [k, v] of Object.entries(want)) if (cur[k] !== v) changed[k] = v;
  const patch = Object.keys(changed).length ? marshalGoJson({ metadata: { annotations: changed } }) : undefined;
  return { patch, advertised, notes };
}

/** Go's `metav1.Time` JSON: RFC 3339 in UTC, whole seconds. */
export function kubeTime(ms: number): string {
  return new Date(Math.floor(ms / 1000) * 1000).toISOString().replace(/\.000Z$/, "Z");
}

/**
 * flanneld's CompleteLease patch (strategic merge on `nodes/{name}/status`; conditions merge by
 * `type`), fields in NodeCondition's order.
 */
export function networkUnavailablePatch(nowMs: number): string {
  const t = kubeTime(nowMs);
  const condition = new Map<string, string>([
    ["type", "NetworkUnavailable"], ["status", "False"], ["lastHeartbeatTime", t], ["lastTransitionTime", t],
    ["reason", "FlannelIsUp"], ["message", "Flannel is running on this node"],
  ]);
  return `{"status":{"conditions":${marshalGoJson([condition])}}}`;
}
