/**
 * @module The Kubernetes API surface weft uses in kube mode, and no more: the RBAC rules of
 * flannel's ClusterRole (`kube-flannel.yml`). The client refuses any request this list does not
 * name, so the manifest test can check the ClusterRole against what the agent really does.
 */

/** One RBAC rule: a resource (subresources as `nodes/status`) and the verbs used on it. */
export interface KubeApiAccess {
  resource: string;
  verbs: string[];
}

/** Every resource and verb weft's Kubernetes client may use (core API group ""). */
export const KUBE_API_ACCESS: KubeApiAccess[] = [
  // Our own Node (podCIDR, stored annotations) and every peer's (list + watch).
  { resource: "nodes", verbs: ["get", "list", "watch"] },
  // Annotations and the NetworkUnavailable condition go through the status subresource.
  { resource: "nodes/status", verbs: ["patch"] },
  // The node name from POD_NAME/POD_NAMESPACE when NODE_NAME is unset.
  { resource: "pods", verbs: ["get"] },
];

/** True when `verb` on `resource` is in KUBE_API_ACCESS. */
export function kubeAccessAllowed(verb: string, resource: string): boolean {
  return KUBE_API_ACCESS.some((a) => a.resource === resource && a.verbs.includes(verb));
}
