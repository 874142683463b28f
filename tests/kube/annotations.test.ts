/** @module kubeAnnotations(): flannel's prefix rules, with flannel's own test table. */
import { describe, expect, test } from "bun:test";
import { kubeAnnotations } from "../../src/subnet/kube_annotations.ts";

describe("kubeAnnotations()", () => {
  // flannel pkg/subnet/kube/annotations_test.go's cases.
  const ok: [string, string][] = [
    ["flannel.alpha.coreos.com", "flannel.alpha.coreos.com/backend-type"],
    ["flannel.alpha.coreos.com/", "flannel.alpha.coreos.com/backend-type"],
    ["flannel.alpha.coreos.com/prefix", "flannel.alpha.coreos.com/prefix-backend-type"],
    ["flannel.alpha.coreos.com/prefix-", "flannel.alpha.coreos.com/prefix-backend-type"],
    ["org.com", "org.com/backend-type"],
    ["org9.com", "org9.com/backend-type"],
    ["org.com/9", "org.com/9-backend-type"],
  ];
  for (const [prefix, want] of ok) {
    test(`${prefix} names ${want}`, () => expect(kubeAnnotations(prefix).backendType).toBe(want));
  }
  for (const prefix of ["org", "org/", "org/prefix", "org.COM", "org.com/PREFIX", "a.b/c/d"]) {
    test(`refuses ${prefix} with an error naming the flag and the value`, () => {
      expect(() => kubeAnnotations(prefix)).toThrow(`--kube-annotation-prefix ${JSON.stringify(prefix)}`);
    });
  }

  test("names every annotation flanneld reads or writes", () => {
    expect(kubeAnnotations("flannel.alpha.coreos.com")).toEqual({
      kubeSubnetManager: "flannel.alpha.coreos.com/kube-subnet-manager",
      backendData: "flannel.alpha.coreos.com/backend-data",
      backendV6Data: "flannel.alpha.coreos.com/backend-v6-data",
      backendType: "flannel.alpha.coreos.com/backend-type",
      publicIP: "flannel.alpha.coreos.com/public-ip",
      publicIPv6: "flannel.alpha.coreos.com/public-ipv6",
      nodePublicIP: "flannel.alpha.coreos.com/node-public-ip",
      nodePublicIPv6: "flannel.alpha.coreos.com/node-public-ipv6",
      publicIPOverwrite: "flannel.alpha.coreos.com/public-ip-overwrite",
      publicIPv6Overwrite: "flannel.alpha.coreos.com/public-ipv6-overwrite",
    });
  });
});
