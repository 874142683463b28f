/**
 * @module Where `weft doctor` reads the network config and the leases, as the agent would in the
 * same mode: etcd (`<prefix>/config`, `<prefix>/subnets/`) or Kubernetes (`--net-config-path`,
 * the Nodes' podCIDRs and flannel annotations, and this host's own Node, whose missing podCIDR is
 * the commonest reason a kube-mode host never gets ready). Read-only.
 */
import { readFile } from "node:fs/promises";
import type { KubeClient } from "../kube/client.ts";
import type { Lease } from "../lease/lease.ts";
import { recordsToLeases } from "../lease/manager.ts";
import type { Registry } from "../registry/types.ts";
import { kubeAnnotations } from "../subnet/kube_annotations.ts";
import { isKubeManaged, nodePodCIDRs, nodeToLease } from "../subnet/kube_node.ts";
import { parseNetworkConfig } from "../config/network.ts";

/** This host's Node in kube mode: its name, and why it has no usable podCIDR (if so). */
export interface OwnNode {
  name: string;
  podCIDRs: string[];
  problem?: string;
}

export interface DoctorStore {
  readonly kind: "etcd" | "kube";
  /** The network config's text; undefined when there is none. Throws when it cannot be read. */
  config(): Promise<string | undefined>;
  /** Every lease, ours included. */
  leases(): Promise<Lease[]>;
  /** Kube mode: this host's Node. */
  ownNode?(): Promise<OwnNode>;
}

/** The etcd store over the agent's registry. */
export function etcdDoctorStore(registry: Registry): DoctorStore {
  return {
    kind: "etcd",
    config: () => registry.getConfig(),
    leases: async () => recordsToLeases((await registry.listSubnets()).records, () => {}),
  };
}

export interface KubeStoreOptions {
  client: KubeClient;
  netConfigPath: string;
  annotationPrefix: string;
  /** NODE_NAME, else the Pod's spec.nodeName (POD_NAME/POD_NAMESPACE). */
  nodeName?: string;
  pod?: { namespace: string; name: string };
}

/** The Kubernetes store: the config file, and the Nodes through the API as the kube manager reads them. */
export function kubeDoctorStore(o: KubeStoreOptions): DoctorStore {
  const names = kubeAnnotations(o.annotationPrefix);
  const families = async () => {
    try {
      const text = await readFile(o.netConfigPath, "utf8");
      const c = parseNetworkConfig(text);
      return { enableIPv4: c.enableIPv4, enableIPv6: c.enableIPv6 };
    } catch {
      return { enableIPv4: true, enableIPv6: false };
    }
  };
  return {
    kind: "kube",
    async config() {
      try {
        return await readFile(o.netConfigPath, "utf8");
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
        throw new Error(`cannot read ${o.netConfigPath} (--net-config-path): ${(e as Error).message}`);
      }
    },
    async leases() {
      const fam = await families();
      const out: Lease[] = [];
      let cont: string | undefined;
      do {
        const page = await o.client.listNodes({ limit: 500, ...(cont ? { continue: cont } : {}) });
        for (const node of page.items) {
          if (!isKubeManaged(node, names)) continue;
          try {
            out.push(nodeToLease(node, names, fam));
          } catch { /* a Node flannel could not use: the agent skips it too */ }
        }
        cont = page.metadata?.continue || undefined;
      } while (cont);
      return out;
    },
    async ownNode() {
      let name = o.nodeName;
      if (!name && o.pod) name = (await o.client.getPod(o.pod.namespace, o.pod.name)).spec?.nodeName;
      if (!name) return { name: "(unknown)", podCIDRs: [], problem: "no node name: set NODE_NAME (the manifests set it from spec.nodeName), or POD_NAME and POD_NAMESPACE" };
      const node = await o.client.getNode(name);
      const cidrs = nodePodCIDRs(node);
      const podCIDRs = [node.spec?.podCIDR, ...(node.spec?.podCIDRs ?? [])].filter((x): x is string => !!x);
      if (!cidrs.v4 && !cidrs.v6) {
        return { name, podCIDRs: [], problem: `node ${JSON.stringify(name)} has no spec.podCIDR: kube-controller-manager assigns one only with --allocate-node-cidrs and a --cluster-cidr` };
      }
      return { name, podCIDRs: [...new Set(podCIDRs)] };
    },
  };
}
