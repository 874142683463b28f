/**
 * @module Server-side printing: a `Table` (meta.k8s.io) for Nodes, which is what `kubectl get`
 * asks for first (`Accept: application/json;as=Table;v=v1;g=meta.k8s.io, …`): the columns a real
 * apiserver prints for Nodes (NAME STATUS ROLES AGE VERSION, and the wide ones), each row with
 * the object's metadata (`includeObject=Metadata`, the default) or the whole object.
 */
import type { KubeObject } from "./store.ts";

/** The Table form a client accepts (`as=Table;g=meta.k8s.io;v=v1|v1beta1`), if any. */
export function acceptedTableVersion(accept: string | undefined): string | undefined {
  for (const part of (accept ?? "").split(",")) {
    const params = Object.fromEntries(part.split(";").slice(1).map((p) => p.trim().split("=") as [string, string]));
    if (params.as === "Table" && params.g === "meta.k8s.io" && (params.v === "v1" || params.v === "v1beta1")) return `meta.k8s.io/${params.v}`;
  }
  return undefined;
}

const NODE_COLUMNS = [
  { name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 },
  { name: "Status", type: "string", format: "", description: "The status of the node", priority: 0 },
  { name: "Roles", type: "string", format: "", description: "The roles of the node", priority: 0 },
  { name: "Age", type: "string", format: "", description: "CreationTimestamp is a timestamp representing the server time when this object was created.", priority: 0 },
  { name: "Version", type: "string", format: "", description: "Kubelet Version reported by the node.", priority: 0 },
  { name: "Internal-IP", type: "string", format: "", description: "List of addresses reachable to the node. Queried from cloud provider, if available.", priority: 1 },
  { name: "External-IP", type: "string", format: "", description: "List of addresses reachable to the node. Queried from cloud provider, if available.", priority: 1 },
  { name: "OS-Image", type: "string", format: "", description: "OS Image reported by the node from /etc/os-release (e.g. Debian GNU/Linux 7 (wheezy)).", priority: 1 },
  { name: "Kernel-Version", type: "string", format: "", description: "Kernel Version reported by the node from 'uname -r' (e.g. 3.16.0-0.bpo.4-amd64).", priority: 1 },
  { name: "Container-Runtime", type: "string", format: "", description: "ContainerRuntime Version reported by the node through runtime remote API (e.g. containerd://1.4.2).", priority: 1 },
];

const GENERIC_COLUMNS = [
  { name: "Name", type: "string", format: "name", description: "Name must be unique within a namespace.", priority: 0 },
  { name: "Created At", type: "date", format: "", description: "CreationTimestamp is a timestamp representing the server time when this object was created.", priority: 0 },
];

/** kubectl's short age: 45s, 12m, 5h, 3d (k8s.io/apimachinery/pkg/util/duration.HumanDuration, simplified). */
export function humanAge(created: string | undefined, now = Date.now()): string {
  if (!created) return "<unknown>";
  const s = Math.max(0, Math.floor((now - Date.parse(created)) / 1000));
  if (s < 120) return `${s}s`;
  const m = Math.floor(s / 60);
  if (m < 10) return `${m}m${s % 60 ? `${s % 60}s` : ""}`;
  if (m < 180) return `${m}m`;
  const h = Math.floor(m / 60);
  if (h < 48) return `${h}h`;
  return `${Math.floor(h / 24)}d`;
}

function nodeCells(n: KubeObject): unknown[] {
  const status = (n.status ?? {}) as { conditions?: { type: string; status: string }[]; addresses?: { type: string; address: string }[]; nodeInfo?: Record<string, string> };
  const ready = status.conditions?.find((c) => c.type === "Ready");
  const states = [ready?.status === "True" ? "Ready" : ready?.status === "False" ? "NotReady" : "Unknown"];
  if ((n.spec as { unschedulable?: boolean } | undefined)?.unschedulable) states.push("SchedulingDisabled");
  const roles = Object.keys(n.metadata.labels ?? {}).filter((l) => l.startsWith("node-role.kubernetes.io/")).map((l) => l.slice("node-role.kubernetes.io/".length)).sort();
  const address = (type: string) => status.addresses?.find((a) => a.type === type)?.address ?? "<none>";
  const info = status.nodeInfo ?? {};
  return [n.metadata.name, states.join(","), roles.join(",") || "<none>", humanAge(n.metadata.creationTimestamp), info.kubeletVersion ?? "",
    address("InternalIP"), address("ExternalIP"), info.osImage || "<unknown>", info.kernelVersion || "<unknown>", info.containerRuntimeVersion || "<unknown>"];
}

function rowObject(o: KubeObject, include: string, apiVersion: string): unknown {
  if (include === "None") return undefined;
  if (include === "Object") return o;
  return { kind: "PartialObjectMetadata", apiVersion, metadata: o.metadata };
}

/** A Table of `objects` of `resource`, with `resourceVersion`/`continue` from the list. */
export function renderTable(resource: string, objects: KubeObject[], apiVersion: string, includeObject: string | null, listMeta: Record<string, unknown> = {}): Record<string, unknown> {
  const include = includeObject ?? "Metadata";
  const nodes = resource === "nodes";
  return {
    kind: "Table",
    apiVersion,
    metadata: listMeta,
    columnDefinitions: nodes ? NODE_COLUMNS : GENERIC_COLUMNS,
    rows: objects.map((o) => {
      const object = rowObject(o, include, apiVersion);
      return { cells: nodes ? nodeCells(o) : [o.metadata.name, o.metadata.creationTimestamp], ...(object ? { object } : {}) };
    }),
  };
}
