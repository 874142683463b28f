/**
 * @module The Node annotations flannel's kube subnet manager reads and writes (compat §11), named
 * from `--kube-annotation-prefix` with flannel's rules: a prefix without a slash gets one; one
 * that ends in neither `/` nor `-` gets a `-`; at most one slash; and flannel's (unanchored)
 * pattern `fqdn/[0-9a-z-_]*`. So `flannel.alpha.coreos.com` names
 * `flannel.alpha.coreos.com/backend-data`, and `example.com/weft` names `example.com/weft-backend-data`.
 */

/** The full annotation names under one prefix. */
export interface KubeAnnotations {
  /** `kube-subnet-manager`: "true" on every Node a flannel (or weft) agent runs on. */
  kubeSubnetManager: string;
  backendData: string;
  backendV6Data: string;
  backendType: string;
  publicIP: string;
  publicIPv6: string;
  /** Read: an administrator's public IP for the Node's tunnel (used as --public-ip at start). */
  nodePublicIP: string;
  nodePublicIPv6: string;
  /** Read: the public IP to advertise instead of ours (NAT). */
  publicIPOverwrite: string;
  publicIPv6Overwrite: string;
}

/** The annotation names for `prefix`; throws RangeError naming the flag for a bad prefix. */
export function kubeAnnotations(prefix: string): KubeAnnotations {
  const bad = (why: string) => new RangeError(`--kube-annotation-prefix ${JSON.stringify(prefix)}: ${why}`);
  const slashes = prefix.split("/").length - 1;
  if (slashes > 1) throw bad("the prefix can contain at most one slash");
  let p = slashes === 0 ? `${prefix}/` : prefix;
  if (!p.endsWith("/") && !p.endsWith("-")) p += "-";
  // flannel's pattern, unanchored at the start as flannel has it.
  if (!/(?:[a-z0-9_-]+\.)+[a-z0-9_-]+\/(?:[a-z0-9_-]+-)?$/.test(p)) {
    throw bad("the prefix must be in the format fqdn/[0-9a-z-_]* (lower-case), e.g. flannel.alpha.coreos.com");
  }
  return {
    kubeSubnetManager: `${p}kube-subnet-manager`,
    backendData: `${p}backend-data`,
    backendV6Data: `${p}backend-v6-data`,
    backendType: `${p}backend-type`,
    publicIP: `${p}public-ip`,
    publicIPv6: `${p}public-ipv6`,
    nodePublicIP: `${p}node-public-ip`,
    nodePublicIPv6: `${p}node-public-ipv6`,
    publicIPOverwrite: `${p}public-ip-overwrite`,
    publicIPv6Overwrite: `${p}public-ipv6-overwrite`,
  };
}
