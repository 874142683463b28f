/**
 * @module Writes to Nodes on the test API server: the three patch types by Content-Type, the
 * node registry's rules for `nodes/{name}` (status kept) and `nodes/{name}/status` (spec kept,
 * metadata applied — how flannel writes its annotations), podCIDR set once, optimistic
 * concurrency, no-op writes, create and delete, and the node IPAM controller's podCIDRs
 * (single and dual-stack, delayed, disabled).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { KubeApiServer } from "../support/kube_api_server.ts";
import { call, watch } from "./kube_http.ts";

let api: KubeApiServer;
const SMP = "application/strategic-merge-patch+json", MERGE = "application/merge-patch+json", JSONP = "application/json-patch+json";
const patch = (path: string, body: unknown, contentType: string) => call(api, "PATCH", path, { token: api.adminToken, body, contentType });

beforeAll(async () => {
  api = await KubeApiServer.start({ nodes: ["h1", "h2"] });
  await api.podCidrsAssigned();
});
afterAll(async () => { await api?.stop(); });

describe("PATCH", () => {
  test("strategic merge on nodes/{name}/status: annotations applied, conditions merged by type, spec changes ignored", async () => {
    const { code, body } = await patch("/api/v1/nodes/h1/status", {
      metadata: { annotations: { "flannel.alpha.coreos.com/backend-type": "vxlan" } },
      spec: { unschedulable: true },
      status: { conditions: [{ type: "NetworkUnavailable", status: "False", reason: "FlannelIsUp", message: "Flannel is running on this node" }] },
    }, SMP);
    expect(code).toBe(200);
    expect(body.metadata.annotations["flannel.alpha.coreos.com/backend-type"]).toBe("vxlan");
    expect(body.status.conditions.map((c: any) => `${c.type}=${c.status}`)).toEqual(["Ready=True", "NetworkUnavailable=False"]);
    expect(body.spec.unschedulable).toBeUndefined();
    expect(body.spec.podCIDR).toBe("10.244.0.0/24");
  });

  test("on nodes/{name}: spec and metadata applied, status changes ignored", async () => {
    const { body } = await patch("/api/v1/nodes/h2", { metadata: { labels: { zone: "a" } }, spec: { unschedulable: true }, status: { conditions: [{ type: "Ready", status: "False" }] } }, SMP);
    expect([body.metadata.labels.zone, body.spec.unschedulable, body.status.conditions[0].status]).toEqual(["a", true, "True"]);
  });

  test("merge patch replaces lists whole and deletes with null; JSON patch edits by pointer", async () => {
    const merged = (await patch("/api/v1/nodes/h1/status", { metadata: { annotations: { "flannel.alpha.coreos.com/backend-type": null } }, status: { conditions: [{ type: "Ready", status: "True" }] } }, MERGE)).body;
    expect(merged.metadata.annotations?.["flannel.alpha.coreos.com/backend-type"]).toBeUndefined();
    expect(merged.status.conditions).toEqual([{ type: "Ready", status: "True" }]);
    const jp = (await patch("/api/v1/nodes/h1", [
      { op: "add", path: "/metadata/annotations", value: {} },
      { op: "add", path: "/metadata/annotations/flannel.alpha.coreos.com~1public-ip", value: "192.0.2.7" },
    ], JSONP)).body;
    expect(jp.metadata.annotations).toEqual({ "flannel.alpha.coreos.com/public-ip": "192.0.2.7" });
  });

  test("refusals as Statuses: 415 for another Content-Type, 422 for a failed JSON-patch test or a podCIDR change, 400 for bad JSON, 409 for a stale resourceVersion", async () => {
    expect((await patch("/api/v1/nodes/h1", { metadata: {} }, "application/apply-patch+yaml")).body).toMatchObject({ code: 415, reason: "UnsupportedMediaType" });
    expect((await patch("/api/v1/nodes/h1", [{ op: "test", path: "/metadata/name", value: "h9" }], JSONP)).body).toMatchObject({ code: 422, details: { causes: [{ reason: "UnexpectedServerResponse", message: "testing value /metadata/name failed" }] } });
    const cidr = (await patch("/api/v1/nodes/h1", { spec: { podCIDRs: ["10.244.7.0/24"] } }, MERGE)).body;
    expect(cidr).toMatchObject({ code: 422, reason: "Invalid" });
    expect(cidr.message).toBe('Node "h1" is invalid: spec.podCIDRs: Forbidden: node updates may not change podCIDR except from "" to valid');
    const annotation = (await patch("/api/v1/nodes/h1", { metadata: { annotations: { n: 5 } } }, MERGE)).body;
    expect(annotation.message).toBe('Node "h1" is invalid: metadata.annotations[n]: Invalid value: 5: must be a string');
    expect((await call(api, "PATCH", "/api/v1/nodes/h1", { token: api.adminToken, body: "{not json", contentType: MERGE })).code).toBe(400);
    expect((await patch("/api/v1/nodes/h1", { status: { conditions: [{ status: "x" }] } }, SMP)).body.message).toMatch(/does not contain declared merge key: type/);
    const stale = (await patch("/api/v1/nodes/h1", { metadata: { resourceVersion: "1", labels: { x: "y" } } }, MERGE)).body;
    expect(stale).toMatchObject({ code: 409, reason: "Conflict", message: 'Operation cannot be fulfilled on nodes "h1": the object has been modified; please apply your changes to the latest version and try again' });
    expect((await patch("/api/v1/nodes/nope", {}, MERGE)).code).toBe(404);
  });

  test("a patch that changes nothing keeps the resourceVersion and sends no event", async () => {
    const before = api.getNode("h2")!;
    const rv = api.store.rv;
    const w = await watch(api, `/api/v1/nodes?watch=true&resourceVersion=${rv}`, api.adminToken);
    const { body } = await patch("/api/v1/nodes/h2", { metadata: { labels: { zone: "a" } } }, SMP);
    expect([body.metadata.resourceVersion, api.store.rv]).toEqual([before.metadata.resourceVersion, rv]);
    api.patchNode("h2", { metadata: { labels: { zone: "b" } } }); // the next event is this one, not the no-op
    expect((await w.next())!.object.metadata.labels.zone).toBe("b");
    w.close();
  });
});

describe("PUT, POST, DELETE", () => {
  test("PUT of nodes/{name}/status replaces status (spec kept); a name other than the URL's is 400", async () => {
    const node = api.getNode("h2")!;
    const put = await call(api, "PUT", "/api/v1/nodes/h2/status", { token: api.adminToken, body: { ...node, spec: {}, status: { ...node.status, phase: "Running" } } });
    expect([put.code, put.body.status.phase, put.body.spec.podCIDR]).toEqual([200, "Running", "10.244.1.0/24"]);
    expect((await call(api, "PUT", "/api/v1/nodes/h2", { token: api.adminToken, body: { ...node, metadata: { name: "h7" } } })).code).toBe(400);
  });

  test("POST creates (201; 409 AlreadyExists the second time; 422 for a bad name), DELETE answers a Success Status", async () => {
    const body = { apiVersion: "v1", kind: "Node", metadata: { name: "h5", labels: { a: "b" } } };
    const created = await call(api, "POST", "/api/v1/nodes", { token: api.adminToken, body });
    expect([created.code, created.body.metadata.name, typeof created.body.metadata.uid]).toEqual([201, "h5", "string"]);
    expect((await call(api, "POST", "/api/v1/nodes", { token: api.adminToken, body })).body).toMatchObject({ code: 409, reason: "AlreadyExists", message: 'nodes "h5" already exists' });
    expect((await call(api, "POST", "/api/v1/nodes", { token: api.adminToken, body: { metadata: { name: "Bad_Name" } } })).body).toMatchObject({ code: 422, reason: "Invalid" });
    const del = await call(api, "DELETE", "/api/v1/nodes/h5", { token: api.adminToken });
    expect(del).toEqual({ code: 200, body: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Success", details: { name: "h5", kind: "nodes", uid: created.body.metadata.uid }, code: 200 } });
    expect((await call(api, "DELETE", "/api/v1/nodes/h5", { token: api.adminToken })).code).toBe(404);
  });
});

describe("dryRun=All", () => {
  test("create, patch and delete are checked and answered, and nothing is written", async () => {
    const rv = api.store.rv;
    const created = await call(api, "POST", "/api/v1/nodes?dryRun=All", { token: api.adminToken, body: { metadata: { name: "dry" } } });
    const patched = await call(api, "PATCH", "/api/v1/nodes/h1?dryRun=All", { token: api.adminToken, body: { metadata: { labels: { dry: "run" } } }, contentType: MERGE });
    const removed = await call(api, "DELETE", "/api/v1/nodes/h2?dryRun=All", { token: api.adminToken });
    expect([created.code, patched.body.metadata.labels.dry, removed.body.status]).toEqual([201, "run", "Success"]);
    expect([api.store.rv, api.getNode("dry"), api.getNode("h1")!.metadata.labels!.dry, api.getNode("h2")?.metadata.name]).toEqual([rv, undefined, undefined, "h2"]);
    expect((await call(api, "PATCH", "/api/v1/nodes/h1?dryRun=Some", { token: api.adminToken, body: {}, contentType: MERGE })).code).toBe(400);
  });
});

describe("node IPAM (--allocate-node-cidrs)", () => {
  test("the next free /24 in turn, as the range allocator gives them; a Node created with podCIDRs keeps them", async () => {
    api.addNode("h6");
    await api.podCidrsAssigned(["h6"]);
    expect(api.getNode("h6")!.spec).toEqual({ podCIDR: "10.244.3.0/24", podCIDRs: ["10.244.3.0/24"] }); // h5 had .2
    api.addNode("h7", { podCIDRs: ["10.244.200.0/24"] });
    expect(api.getNode("h7")!.spec!.podCIDR).toBe("10.244.200.0/24");
  });

  test("dual-stack: one CIDR per family in spec.podCIDRs; with allocation off, none until assignPodCidrs", async () => {
    const dual = await KubeApiServer.start({ nodes: ["d1", "d2"], clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], nodeCidrMasks: [24, 64] });
    const off = await KubeApiServer.start({ nodes: ["o1"], allocateNodeCidrs: false });
    try {
      await dual.podCidrsAssigned();
      expect(dual.nodes().map((n) => n.spec!.podCIDRs)).toEqual([["10.244.0.0/24", "fd00:10:244::/64"], ["10.244.1.0/24", "fd00:10:244:1::/64"]]);
      // The controller would have run before start() resolved (it assigns in a microtask): it did not.
      expect(off.getNode("o1")!.spec).toEqual({});
      expect(off.assignPodCidrs("o1").spec!.podCIDR).toBe("10.244.0.0/24");
    } finally {
      await Promise.all([dual.stop(), off.stop()]);
    }
  });

  test("with cidrDelayMs the Node is first seen without a podCIDR, then MODIFIED with it", async () => {
    const slow = await KubeApiServer.start({ cidrDelayMs: 200 });
    try {
      const w = await watch(slow, `/api/v1/nodes?watch=true&resourceVersion=${slow.store.rv}`, slow.adminToken);
      slow.addNode("late");
      const added = await w.next();
      const modified = await w.next();
      expect([added!.type, added!.object.spec.podCIDR, modified!.type, modified!.object.spec.podCIDR]).toEqual(["ADDED", undefined, "MODIFIED", "10.244.0.0/24"]);
      w.close();
    } finally {
      await slow.stop();
    }
  });
});
