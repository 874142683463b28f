/**
 * @module The discovery documents clients read before they ask for anything: `/version`, `/api`
 * (APIVersions), `/apis` (APIGroupList: no groups here, only the core group is served) and
 * `/api/v1` (APIResourceList: nodes, nodes/status, pods — with the short names and
 * verbs kubectl resolves `get no`, `patch --subresource=status` with). kubectl ≥ 1.26 asks for
 * the aggregated form first (`as=APIGroupDiscoveryList`) with plain JSON as its fallback; this
 * server answers the plain form, with a plain `Content-Type`, which is what tells kubectl to
 * fall back.
 */

export const VERSION = {
  major: "1", minor: "28", gitVersion: "v1.28.15", gitCommit: "0000000000000000000000000000000000000000", gitTreeState: "clean",
  buildDate: "2024-10-22T00:00:00Z", goVersion: "go1.22.8", compiler: "gc", platform: "linux/amd64",
};

/** `/api`: the core group's versions, and the address clients should use. */
export function apiVersions(serverAddress: string): Record<string, unknown> {
  return { kind: "APIVersions", versions: ["v1"], serverAddressByClientCIDRs: [{ clientCIDR: "0.0.0.0/0", serverAddress }] };
}

export const API_GROUP_LIST = { kind: "APIGroupList", apiVersion: "v1", groups: [] };

const READ_WRITE = ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"];

export const CORE_V1_RESOURCES = {
  kind: "APIResourceList",
  groupVersion: "v1",
  resources: [
    { name: "nodes", singularName: "node", namespaced: false, kind: "Node", verbs: READ_WRITE, shortNames: ["no"] },
    { name: "nodes/status", singularName: "", namespaced: false, kind: "Node", verbs: ["get", "patch", "update"] },
    { name: "pods", singularName: "pod", namespaced: true, kind: "Pod", verbs: ["create", "delete", "get", "list", "watch"], shortNames: ["po"], categories: ["all"] },
  ],
};
