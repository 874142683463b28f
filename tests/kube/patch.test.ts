/**
 * @module The test API server's three patch types as pure functions, against fixtures: JSON
 * patch (RFC 6902, with RFC 6901 escapes, as `kubectl patch --type json` sends), merge patch (RFC
 * 7386's own examples) and strategic merge patch (Node conditions merged by `type`, the
 * directives, flannel's annotation and NetworkUnavailable patches).
 */
import { describe, expect, test } from "bun:test";
import { applyJsonPatch } from "../support/kube/json_patch.ts";
import { applyMergePatch } from "../support/kube/merge_patch.ts";
import { NODE_PATCH_SCHEMA, applyStrategicMergePatch } from "../support/kube/strategic_merge.ts";

// `any`: results are checked by value, field by field.
const smp = (original: unknown, patch: unknown): any => applyStrategicMergePatch(original, patch, NODE_PATCH_SCHEMA);

const ready = { type: "Ready", status: "True", reason: "KubeletReady" };
const node = {
  metadata: { name: "h1", annotations: { keep: "me", "flannel.alpha.coreos.com/public-ip": "10.0.0.1" }, finalizers: ["a", "b"] },
  spec: { podCIDR: "10.244.1.0/24", podCIDRs: ["10.244.1.0/24"], taints: [{ key: "x", effect: "NoSchedule" }] },
  status: { conditions: [ready], addresses: [{ type: "InternalIP", address: "10.0.0.1" }, { type: "Hostname", address: "h1" }] },
};

describe("strategic merge patch (Node)", () => {
  test("flannel's annotation patch (CreateTwoWayMergePatch of annotations) adds and changes keys, keeps the others", () => {
    const patch = { metadata: { annotations: { "flannel.alpha.coreos.com/backend-data": "{\"VNI\":1,\"VtepMAC\":\"0a:58:0a:f4:01:00\"}", "flannel.alpha.coreos.com/public-ip": "10.0.0.9" } } };
    expect(smp(node, patch).metadata).toEqual({
      name: "h1", finalizers: ["a", "b"],
      annotations: { keep: "me", "flannel.alpha.coreos.com/public-ip": "10.0.0.9", "flannel.alpha.coreos.com/backend-data": "{\"VNI\":1,\"VtepMAC\":\"0a:58:0a:f4:01:00\"}" },
    });
  });

  test("flannel's NetworkUnavailable patch adds a condition beside Ready, and a second one replaces it by type", () => {
    const up = { type: "NetworkUnavailable", status: "False", reason: "FlannelIsUp", message: "Flannel is running on this node" };
    const once = smp(node, { status: { conditions: [up] } });
    expect((once.status as typeof node.status).conditions).toEqual([ready, up]);
    const twice = smp(once, { status: { conditions: [{ type: "NetworkUnavailable", status: "True", reason: "NoRoute" }] } });
    expect((twice.status as typeof node.status).conditions).toEqual([ready, { ...up, status: "True", reason: "NoRoute" }]);
  });

  test("status.addresses merge by type; lists without a strategy (spec.taints) are replaced; podCIDRs merge as a set", () => {
    const out = smp(node, {
      status: { addresses: [{ type: "ExternalIP", address: "192.0.2.1" }, { type: "InternalIP", address: "10.0.0.2" }] },
      spec: { taints: [{ key: "y", effect: "NoExecute" }], podCIDRs: ["10.244.1.0/24", "fd00::/64"] },
    }) as typeof node;
    expect(out.status.addresses).toEqual([{ type: "InternalIP", address: "10.0.0.2" }, { type: "Hostname", address: "h1" }, { type: "ExternalIP", address: "192.0.2.1" }]);
    expect(out.spec.taints).toEqual([{ key: "y", effect: "NoExecute" }]);
    expect(out.spec.podCIDRs).toEqual(["10.244.1.0/24", "fd00::/64"]);
  });

  test("directives: $patch delete and replace in a list, $deleteFromPrimitiveList, $setElementOrder, $retainKeys, null", () => {
    const two = smp(node, { status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] } });
    expect(smp(two, { status: { conditions: [{ type: "Ready", $patch: "delete" }] } }).status.conditions)
      .toEqual([{ type: "NetworkUnavailable", status: "False" }]);
    expect(smp(two, { status: { conditions: [{ $patch: "replace" }, { type: "X", status: "True" }] } }).status.conditions)
      .toEqual([{ type: "X", status: "True" }]);
    expect((smp(node, { metadata: { "$deleteFromPrimitiveList/finalizers": ["a"] } }).metadata as typeof node.metadata).finalizers).toEqual(["b"]);
    expect((smp(two, { status: { "$setElementOrder/conditions": [{ type: "NetworkUnavailable" }, { type: "Ready" }] } }).status as typeof node.status).conditions.map((c) => c.type))
      .toEqual(["NetworkUnavailable", "Ready"]);
    expect(smp({ spec: { a: 1, b: 2, c: 3 } }, { spec: { $retainKeys: ["a", "d"], d: 4 } })).toEqual({ spec: { a: 1, d: 4 } });
    expect(smp(node, { metadata: { annotations: { keep: null } } }).metadata).toMatchObject({ annotations: { "flannel.alpha.coreos.com/public-ip": "10.0.0.1" } });
    expect(smp(node, { metadata: { annotations: { $patch: "replace", only: "this" } } }).metadata).toMatchObject({ annotations: { only: "this" } });
    expect(smp(node, { spec: { $patch: "delete" } }).spec).toBeUndefined();
  });

  test("a list element without the merge key is refused, naming the key; the input is never changed", () => {
    const before = structuredClone(node);
    expect(() => smp(node, { status: { conditions: [{ status: "True" }] } })).toThrow(/does not contain declared merge key: type/);
    expect(() => smp(node, [1])).toThrow(/must be a JSON object/);
    smp(node, { metadata: { annotations: { keep: null } }, status: { conditions: [{ type: "Ready", status: "False" }] } });
    expect(node).toEqual(before);
  });
});

describe("JSON merge patch (RFC 7386 appendix A)", () => {
  const cases: [unknown, unknown, unknown][] = [
    [{ a: "b" }, { a: "c" }, { a: "c" }],
    [{ a: "b" }, { b: "c" }, { a: "b", b: "c" }],
    [{ a: "b" }, { a: null }, {}],
    [{ a: "b", b: "c" }, { a: null }, { b: "c" }],
    [{ a: ["b"] }, { a: "c" }, { a: "c" }],
    [{ a: "c" }, { a: ["b"] }, { a: ["b"] }],
    [{ a: { b: "c" } }, { a: { b: "d", c: null } }, { a: { b: "d" } }],
    [{ a: [{ b: "c" }] }, { a: [1] }, { a: [1] }],
    [["a", "b"], ["c", "d"], ["c", "d"]],
    [{ a: "b" }, ["c"], ["c"]],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: "b", c: null }, { a: "b" }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }],
  ];
  test.each(cases)("%j + %j", (target, patch, result) => {
    expect(applyMergePatch(target, patch)).toEqual(result);
  });
});

describe("JSON patch (RFC 6902)", () => {
  const doc = { metadata: { annotations: { "a/b": "1", "c~d": "2" }, labels: { x: "y" } }, list: [1, 2] };

  test("add, remove, replace, move, copy and test, with ~1 and ~0 escapes and '-' for the end of a list", () => {
    const out: unknown = applyJsonPatch(doc, [
      { op: "test", path: "/metadata/annotations/a~1b", value: "1" },
      { op: "add", path: "/metadata/annotations/flannel.alpha.coreos.com~1public-ip", value: "10.0.0.1" },
      { op: "replace", path: "/metadata/annotations/c~0d", value: "3" },
      { op: "remove", path: "/metadata/labels/x" },
      { op: "add", path: "/list/-", value: 3 },
      { op: "add", path: "/list/0", value: 0 },
      { op: "copy", from: "/list/3", path: "/metadata/labels/n" },
      { op: "move", from: "/metadata/annotations/a~1b", path: "/moved" },
    ]);
    expect(out).toEqual({
      metadata: { annotations: { "c~d": "3", "flannel.alpha.coreos.com/public-ip": "10.0.0.1" }, labels: { n: 3 } },
      list: [0, 1, 2, 3],
      moved: "1",
    });
    expect(doc.metadata.labels).toEqual({ x: "y" }); // the input is unchanged
  });

  test("failures name the operation's path: a failed test, a missing path, an unknown op, a bad index", () => {
    expect(() => applyJsonPatch(doc, [{ op: "test", path: "/list/0", value: 9 }])).toThrow("testing value /list/0 failed");
    expect(() => applyJsonPatch(doc, [{ op: "replace", path: "/nope/x", value: 1 }])).toThrow("doc is missing path: /nope/x");
    expect(() => applyJsonPatch(doc, [{ op: "remove", path: "/metadata/nope" }])).toThrow("doc is missing path: /metadata/nope");
    expect(() => applyJsonPatch(doc, [{ op: "frob", path: "/a" }])).toThrow(/"frob" is not one of add, remove/);
    expect(() => applyJsonPatch(doc, [{ op: "add", path: "/list/7", value: 1 }])).toThrow(/out of bounds/);
    expect(() => applyJsonPatch(doc, { op: "add" })).toThrow(/must be an array/);
  });
});
