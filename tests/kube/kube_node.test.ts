/**
 * @module Nodes as leases and the patches weft sends, byte-exact with flanneld's: the annotation
 * patch is what Go's strategicpatch.CreateTwoWayMergePatch makes of flanneld's edited Node (only
 * the changed annotations, keys sorted), the condition patch is CompleteLease's.
 */
import { describe, expect, test } from "bun:test";
import type { KubeNode } from "../../src/kube/types.ts";
import { encodeLeaseAttrs, leaseKey } from "../../src/lease/lease.ts";
import { parseIPv4, parseIPv6 } from "../../src/net/ip.ts";
import { kubeAnnotations } from "../../src/subnet/kube_annotations.ts";
import {
  isKubeManaged, networkUnavailablePatch, nodeToLease, ownNodeUpdate, storedNodeAttrs, storedNodePublicIP,
} from "../../src/subnet/kube_node.ts";

const names = kubeAnnotations("flannel.alpha.coreos.com");
const P = "flannel.alpha.coreos.com/";
const V4 = { enableIPv4: true, enableIPv6: false };
const node = (name: string, annotations: Record<string, string>, spec: KubeNode["spec"] = { podCIDR: "10.244.1.0/24" }): KubeNode =>
  ({ metadata: { name, annotations }, spec });
const vxlanAttrs = { publicIP: parseIPv4("192.168.77.11"), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: "c6:d2:32:6f:8f:44" } };
const advertisedVxlan = {
  [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}', [`${P}backend-type`]: "vxlan",
  [`${P}kube-subnet-manager`]: "true", [`${P}public-ip`]: "192.168.77.11",
};

describe("ownNodeUpdate()", () => {
  test("vxlan on a fresh Node: flanneld's patch, byte for byte", () => {
    const u = ownNodeUpdate(node("h1", { "node.alpha.kubernetes.io/ttl": "0" }), names, vxlanAttrs);
    expect(u.patch).toBe('{"metadata":{"annotations":{' +
      '"flannel.alpha.coreos.com/backend-data":"{\\"VNI\\":1,\\"VtepMAC\\":\\"c6:d2:32:6f:8f:44\\"}",' +
      '"flannel.alpha.coreos.com/backend-type":"vxlan",' +
      '"flannel.alpha.coreos.com/kube-subnet-manager":"true",' +
      '"flannel.alpha.coreos.com/public-ip":"192.168.77.11"}}}');
    expect(u.advertised).toEqual(vxlanAttrs);
  });

  test("host-gw writes backend-data \"null\", as flanneld's nil RawMessage marshals", () => {
    const u = ownNodeUpdate(node("h1", {}), names, { publicIP: parseIPv4("192.168.77.12"), backendType: "host-gw" });
    expect(u.patch).toBe('{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"null",' +
      '"flannel.alpha.coreos.com/backend-type":"host-gw","flannel.alpha.coreos.com/kube-subnet-manager":"true",' +
      '"flannel.alpha.coreos.com/public-ip":"192.168.77.12"}}}');
  });

  test("nothing changed since the last start: no patch", () => {
    expect(ownNodeUpdate(node("h1", advertisedVxlan), names, vxlanAttrs).patch).toBeUndefined();
  });

  test("only what changed is patched (a new VTEP MAC)", () => {
    const u = ownNodeUpdate(node("h1", advertisedVxlan), names, { ...vxlanAttrs, backendData: { VNI: 1, VtepMAC: "0a:00:00:00:00:01" } });
    expect(u.patch).toBe('{"metadata":{"annotations":{"flannel.alpha.coreos.com/backend-data":"{\\"VNI\\":1,\\"VtepMAC\\":\\"0a:00:00:00:00:01\\"}"}}}');
  });

  test("public-ip-overwrite replaces the advertised public IP", () => {
    const u = ownNodeUpdate(node("h1", { [`${P}public-ip-overwrite`]: "203.0.113.5" }), names, vxlanAttrs);
    expect(JSON.parse(u.patch!).metadata.annotations[`${P}public-ip`]).toBe("203.0.113.5");
    expect(u.advertised.publicIP).toBe(parseIPv4("203.0.113.5"));
    expect(u.notes).toEqual([`Overriding public ip with '203.0.113.5' from node annotation '${P}public-ip-overwrite'`]);
  });

  test("a public-ip-overwrite that is not an address is refused, naming node and annotation", () => {
    expect(() => ownNodeUpdate(node("h1", { [`${P}public-ip-overwrite`]: "nat-box" }), names, vxlanAttrs))
      .toThrow(`node "h1": annotation ${P}public-ip-overwrite "nat-box" is not an IPv4 address`);
  });

  test("dual-stack host-gw writes the v6 data and public IPv6 too", () => {
    const u = ownNodeUpdate(node("h1", {}), names, { publicIP: parseIPv4("192.168.77.12"), publicIPv6: parseIPv6("fd00::12"), backendType: "host-gw" });
    expect(JSON.parse(u.patch!).metadata.annotations).toEqual({
      [`${P}backend-data`]: "null", [`${P}backend-type`]: "host-gw", [`${P}kube-subnet-manager`]: "true",
      [`${P}public-ip`]: "192.168.77.12", [`${P}backend-v6-data`]: "null", [`${P}public-ipv6`]: "fd00::12",
    });
  });
});

describe("nodeToLease()", () => {
  test("a managed Node's podCIDR and annotations make the same lease etcd mode would", () => {
    const n = node("h2", advertisedVxlan, { podCIDR: "10.244.2.0/24", podCIDRs: ["10.244.2.0/24"] });
    expect(isKubeManaged(n, names)).toBe(true);
    const l = nodeToLease(n, names, V4);
    expect(leaseKey(l)).toBe("10.244.2.0-24");
    expect(encodeLeaseAttrs(l.attrs)).toBe('{"PublicIP":"192.168.77.11","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"c6:d2:32:6f:8f:44"}}');
    expect(l.expiration).toBeNull();
    expect(l.created).toBeUndefined();
    n.metadata.creationTimestamp = "2026-12-06T09:38:31Z";
    expect(nodeToLease(n, names, V4).created).toBe(BigInt(Date.parse("2026-12-06T09:38:31Z")));
  });

  test("dual stack: the IPv4 and IPv6 podCIDRs in either order", () => {
    const n = node("h2", { ...advertisedVxlan, [`${P}public-ipv6`]: "fd00::2", [`${P}backend-v6-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:02"}' },
      { podCIDR: "fd00:10:244:2::/64", podCIDRs: ["fd00:10:244:2::/64", "10.244.2.0/24"] });
    expect(leaseKey(nodeToLease(n, names, { enableIPv4: true, enableIPv6: true }))).toBe("10.244.2.0-24&fd00:10:244:2::-64");
  });

  test("a Node without the annotation is not managed", () => {
    expect(isKubeManaged(node("h3", {}), names)).toBe(false);
    expect(isKubeManaged(node("h3", { [`${P}kube-subnet-manager`]: "false" }), names)).toBe(false);
  });

  const bad: [string, KubeNode, string][] = [
    ["no podCIDR", node("h4", advertisedVxlan, {}), 'node "h4": has no IPv4 podCIDR yet'],
    ["three podCIDRs", node("h4", advertisedVxlan, { podCIDRs: ["10.244.4.0/24", "fd00::/64", "10.244.5.0/24"] }), "at most one IPv4 and one IPv6 CIDR"],
    ["a bad podCIDR", node("h4", advertisedVxlan, { podCIDR: "10.244.4/24" }), '"10.244.4/24" is not a valid IPv4 CIDR'],
    ["no public-ip", node("h4", { ...advertisedVxlan, [`${P}public-ip`]: "" }), `annotation ${P}public-ip "" is not an IPv4 address`],
    ["backend-data that is not JSON", node("h4", { ...advertisedVxlan, [`${P}backend-data`]: "{VNI" }), `annotation ${P}backend-data "{VNI" is not JSON`],
  ];
  for (const [what, n, msg] of bad) {
    test(`a Node with ${what} is no lease, and the error says why`, () => {
      expect(() => nodeToLease(n, names, V4)).toThrow(msg);
    });
  }
});

describe("stored values of our own Node", () => {
  test("storedNodeAttrs() gives back the VTEP MAC we advertised (flannel #1155)", () => {
    expect(storedNodeAttrs(node("h1", advertisedVxlan), names)?.backendData).toEqual({ VNI: 1, VtepMAC: "c6:d2:32:6f:8f:44" });
    expect(storedNodeAttrs(node("h1", {}), names)).toBeUndefined();
  });

  test("storedNodePublicIP() reads node-public-ip(v6) and names a bad one", () => {
    expect(storedNodePublicIP(node("h1", { [`${P}node-public-ip`]: "10.1.1.1", [`${P}node-public-ipv6`]: "fd00::9" }), names))
      .toEqual({ publicIP: parseIPv4("10.1.1.1"), publicIPv6: parseIPv6("fd00::9"), problems: [] });
    expect(storedNodePublicIP(node("h1", { [`${P}node-public-ip`]: "x" }), names).problems)
      .toEqual([`annotation ${P}node-public-ip "x" on node "h1" is not an IPv4 address; ignored`]);
  });
});

test("networkUnavailablePatch(): CompleteLease's condition, RFC 3339 seconds in UTC", () => {
  expect(networkUnavailablePatch(Date.parse("2026-12-06T09:38:31.789Z"))).toBe(
    '{"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","lastHeartbeatTime":"2026-12-06T09:38:31Z",' +
    '"lastTransitionTime":"2026-12-06T09:38:31Z","reason":"FlannelIsUp","message":"Flannel is running on this node"}]}}');
});
