/**
 * @module The few Kubernetes object shapes weft reads (core/v1 Node, Pod; meta/v1 Status, watch
 * events), as the API server sends them in JSON. Only the fields weft uses are typed; the rest
 * is passed through untouched.
 */

export interface ObjectMeta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  creationTimestamp?: string;
  annotations?: Record<string, string>;
  labels?: Record<string, string>;
}

export interface NodeCondition {
  type: string;
  status: string;
  lastHeartbeatTime?: string;
  lastTransitionTime?: string;
  reason?: string;
  message?: string;
}

export interface KubeNode {
  apiVersion?: string;
  kind?: string;
  metadata: ObjectMeta;
  spec?: { podCIDR?: string; podCIDRs?: string[]; [k: string]: unknown };
  status?: { conditions?: NodeCondition[]; [k: string]: unknown };
}

export interface KubeNodeList {
  kind?: string;
  metadata: { resourceVersion?: string; continue?: string };
  items: KubeNode[];
}

export interface KubePod {
  metadata: ObjectMeta;
  spec?: { nodeName?: string };
}

/** meta/v1 Status: what the API server answers with on an error. */
export interface KubeStatus {
  kind: "Status";
  status?: string;
  message?: string;
  reason?: string;
  code?: number;
  details?: { name?: string; kind?: string; group?: string };
}

/** One event of a watch stream. */
export type WatchEvent =
  | { type: "ADDED" | "MODIFIED" | "DELETED"; object: KubeNode }
  | { type: "BOOKMARK"; object: { metadata: { resourceVersion?: string } } }
  | { type: "ERROR"; object: KubeStatus };
