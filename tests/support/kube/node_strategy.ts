/**
 * @module What the apiserver's node registry does to a Node on create and update
 * (pkg/registry/core/node/strategy.go, validation.ValidateNode/ValidateNodeUpdate), the part a
 * flannel-like client meets: an update of `nodes/{name}` keeps the old status; an update of
 * `nodes/{name}/status` keeps the old spec but applies metadata (so flannel patches its
 * annotations through the status subresource); `spec.podCIDR` and `spec.podCIDRs` are kept in
 * step and may only go from unset to set; labels and annotations are maps of strings.
 */
import { isIP } from "node:net";
import { badRequest, conflict, invalid } from "./status.ts";
import type { KubeObject } from "./store.ts";

const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

type Spec = { podCIDR?: string; podCIDRs?: string[]; [k: string]: unknown };

function isCidr(s: unknown): boolean {
  if (typeof s !== "string") return false;
  const [ip, len, ...rest] = s.split("/");
  const family = isIP(ip ?? "");
  return rest.length === 0 && family !== 0 && /^\d{1,3}$/.test(len ?? "") && Number(len) <= (family === 4 ? 32 : 128);
}

/** API conversion keeps podCIDR == podCIDRs[0] (core/v1 conversion: podCIDRs win when both are set). */
function syncPodCidrs(spec: Spec): void {
  if (spec.podCIDRs?.length) spec.podCIDR = spec.podCIDRs[0];
  else if (spec.podCIDR) spec.podCIDRs = [spec.podCIDR];
  if (spec.podCIDR === "") delete spec.podCIDR;
  if (spec.podCIDRs && spec.podCIDRs.length === 0) delete spec.podCIDRs;
}

function validate(node: KubeObject): { field: string; message: string }[] {
  const errors: { field: string; message: string }[] = [];
  const name = node.metadata.name;
  if (!name) errors.push({ field: "metadata.name", message: "Required value: name or generateName is required" });
  else if (name.length > 253 || !DNS_SUBDOMAIN.test(name)) {
    errors.push({ field: "metadata.name", message: `Invalid value: "${name}": a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character` });
  }
  for (const field of ["labels", "annotations"] as const) {
    const map = node.metadata[field];
    if (map === undefined) continue;
    if (typeof map !== "object" || map === null || Array.isArray(map)) errors.push({ field: `metadata.${field}`, message: "Invalid value: must be a map of strings" });
    else for (const [k, v] of Object.entries(map)) if (typeof v !== "string") errors.push({ field: `metadata.${field}[${k}]`, message: `Invalid value: ${JSON.stringify(v)}: must be a string` });
  }
  const spec = (node.spec ?? {}) as Spec;
  for (const [i, c] of (spec.podCIDRs ?? []).entries()) {
    if (!isCidr(c)) errors.push({ field: `spec.podCIDRs[${i}]`, message: `Invalid value: ${JSON.stringify(c)}: must be a valid CIDR` });
  }
  if ((spec.podCIDRs?.length ?? 0) > 2) errors.push({ field: "spec.podCIDRs", message: "Invalid value: may specify no more than one CIDR for each IP family" });
  if (spec.podCIDRs?.length === 2 && isIP(spec.podCIDRs[0]!.split("/")[0]!) === isIP(spec.podCIDRs[1]!.split("/")[0]!)) {
    errors.push({ field: "spec.podCIDRs", message: "Invalid value: may specify no more than one CIDR for each IP family" });
  }
  return errors;
}

/** The Node as stored on create (`nodes` POST): kind set, podCIDRs synced, validated (422). */
export function prepareNodeCreate(body: unknown): KubeObject {
  if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("the body of a Node must be a JSON object");
  const node = structuredClone(body) as KubeObject;
  if (node.kind !== undefined && node.kind !== "Node") throw badRequest(`the body's kind is ${JSON.stringify(node.kind)}, expected "Node"`);
  node.kind = "Node";
  node.apiVersion = "v1";
  node.metadata = { ...(node.metadata ?? {}) } as KubeObject["metadata"];
  for (const f of ["uid", "resourceVersion", "creationTimestamp", "selfLink"]) delete node.metadata[f];
  node.spec = { ...(node.spec ?? {}) };
  node.status = { ...(node.status ?? {}) };
  syncPodCidrs(node.spec as Spec);
  const errors = validate(node);
  if (errors.length) throw invalid("Node", node.metadata.name ?? "", errors);
  return node;
}

/**
 * The Node to store when `next` replaces `old` through `nodes/{name}` (subresource "") or
 * `nodes/{name}/status` ("status"). Throws 409 on a stale metadata.resourceVersion, 422 on an
 * invalid result.
 */
export function prepareNodeUpdate(old: KubeObject, next: KubeObject, subresource: "" | "status"): KubeObject {
  if (typeof next !== "object" || next === null || Array.isArray(next)) throw badRequest("the body of a Node must be a JSON object");
  const rv = next.metadata?.resourceVersion;
  if (rv !== undefined && rv !== "" && rv !== old.metadata.resourceVersion) throw conflict("nodes", old.metadata.name);
  const out = structuredClone(next);
  out.kind = "Node";
  out.apiVersion = "v1";
  const meta = out.metadata && typeof out.metadata === "object" ? out.metadata : ({} as KubeObject["metadata"]);
  if (meta.name !== undefined && meta.name !== old.metadata.name) {
    throw invalid("Node", old.metadata.name, [{ field: "metadata.name", message: `Invalid value: ${JSON.stringify(meta.name)}: field is immutable` }]);
  }
  out.metadata = { ...meta, name: old.metadata.name, uid: old.metadata.uid, creationTimestamp: old.metadata.creationTimestamp, resourceVersion: old.metadata.resourceVersion };
  if (subresource === "status") out.spec = structuredClone(old.spec);
  else out.status = structuredClone(old.status);
  out.spec = { ...(out.spec ?? {}) };
  syncPodCidrs(out.spec as Spec);
  const errors = validate(out);
  const before = (old.spec ?? {}) as Spec, after = out.spec as Spec;
  if ((before.podCIDRs?.length ?? 0) > 0 && JSON.stringify(before.podCIDRs) !== JSON.stringify(after.podCIDRs)) {
    errors.push({ field: "spec.podCIDRs", message: "Forbidden: node updates may not change podCIDR except from \"\" to valid" });
  }
  if (errors.length) throw invalid("Node", old.metadata.name, errors);
  return out;
}

/**
 * A Node as a kubelet registers it: hostname/os/arch labels, Ready, an InternalIP when given,
 * and nodeInfo with the kubelet version (kubectl's VERSION column).
 */
export function registeredNode(name: string, opts: { internalIP?: string; labels?: Record<string, string>; annotations?: Record<string, string>; podCIDRs?: string[] } = {}): KubeObject {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  return {
    apiVersion: "v1",
    kind: "Node",
    metadata: {
      name,
      labels: { "kubernetes.io/hostname": name, "kubernetes.io/os": "linux", "kubernetes.io/arch": "amd64", "beta.kubernetes.io/os": "linux", "beta.kubernetes.io/arch": "amd64", ...opts.labels },
      ...(opts.annotations ? { annotations: { ...opts.annotations } } : {}),
    },
    spec: opts.podCIDRs?.length ? { podCIDR: opts.podCIDRs[0], podCIDRs: [...opts.podCIDRs] } : {},
    status: {
      conditions: [
        { type: "Ready", status: "True", lastHeartbeatTime: now, lastTransitionTime: now, reason: "KubeletReady", message: "kubelet is posting ready status" },
      ],
      addresses: [...(opts.internalIP ? [{ type: "InternalIP", address: opts.internalIP }] : []), { type: "Hostname", address: name }],
      nodeInfo: { kubeletVersion: "v1.28.15", kubeProxyVersion: "v1.28.15", operatingSystem: "linux", architecture: "amd64", osImage: "Debian GNU/Linux 12 (bookworm)", kernelVersion: "", containerRuntimeVersion: "containerd://1.7.0", machineID: "", systemUUID: "", bootID: "" },
    },
  };
}
