/**
 * @module The test API server's authentication and authorization, over HTTPS: bearer tokens,
 * client certificates signed by its CA (and one that is not), anonymous requests, 401 and 403 as
 * `Status` objects with RBAC's wording, a flannel service account limited to KUBE_API_ACCESS,
 * a restricted token, a rotated token, and the admin-only `/_test` controls.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KUBE_API_ACCESS } from "../../src/kube/access.ts";
import { KubeApiServer } from "../support/kube_api_server.ts";
import { TestPki } from "../support/kube/pki.ts";
import { call } from "./kube_http.ts";

let api: KubeApiServer;
let flannel: string;
const SA = "system:serviceaccount:kube-flannel:flannel";

beforeAll(async () => {
  api = await KubeApiServer.start({ nodes: ["h1", "h2"] });
  flannel = api.addServiceAccountToken("kube-flannel", "flannel", KUBE_API_ACCESS);
  api.addPod("kube-flannel", "kube-flannel-ds-x1", "h1");
});
afterAll(async () => { await api?.stop(); });

const status401 = { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: "Unauthorized", reason: "Unauthorized", code: 401 };

describe("authentication", () => {
  test("an unknown bearer token is 401 Unauthorized, as a Status", async () => {
    expect(await call(api, "GET", "/api/v1/nodes", { token: "not-a-token" })).toEqual({ code: 401, body: status401 });
    expect((await call(api, "GET", "/version", { token: "not-a-token" })).code).toBe(401);
  });

  test("no credentials is system:anonymous: /version and /healthz open, the rest 403", async () => {
    expect((await call(api, "GET", "/version")).body.gitVersion).toMatch(/^v1\.\d+\.\d+/);
    expect(await call(api, "GET", "/healthz")).toEqual({ code: 200, body: "ok" });
    const nodes = await call(api, "GET", "/api/v1/nodes");
    expect(nodes.code).toBe(403);
    expect(nodes.body.message).toBe('nodes is forbidden: User "system:anonymous" cannot list resource "nodes" in API group "" at the cluster scope');
    expect((await call(api, "GET", "/api")).body.message).toBe('forbidden: User "system:anonymous" cannot get path "/api"');
  });

  test("a client certificate from the server's CA names the user (CN) and groups (O); system:masters may do anything", async () => {
    const admin = api.clientCert("alice", ["system:masters"]);
    expect((await call(api, "GET", "/api/v1/nodes/h1", { cert: admin })).body.metadata.name).toBe("h1");
    const bob = api.clientCert("bob", ["devs"]);
    const denied = await call(api, "GET", "/api/v1/nodes/h1", { cert: bob });
    expect(denied.body.message).toBe('nodes "h1" is forbidden: User "bob" cannot get resource "nodes" in API group "" at the cluster scope');
    api.setUserRules("bob", [{ resource: "nodes", verbs: ["get"] }]);
    expect((await call(api, "GET", "/api/v1/nodes/h1", { cert: bob })).code).toBe(200);
  });

  test("a client certificate from another CA is 401, even for system:masters", async () => {
    const other = new TestPki();
    try {
      const forged = other.clientCert("mallory", ["system:masters"]);
      expect(await call(api, "GET", "/api/v1/nodes", { cert: forged })).toEqual({ code: 401, body: status401 });
    } finally {
      other.remove();
    }
  });
});

describe("authorization (RBAC-like rules per user)", () => {
  test("flannel's service account with KUBE_API_ACCESS can do what flanneld does", async () => {
    expect((await call(api, "GET", "/api/v1/nodes?limit=500", { token: flannel })).code).toBe(200);
    expect((await call(api, "GET", "/api/v1/nodes/h1?resourceVersion=0", { token: flannel })).code).toBe(200);
    expect((await call(api, "GET", "/api/v1/namespaces/kube-flannel/pods/kube-flannel-ds-x1", { token: flannel })).body.spec.nodeName).toBe("h1");
    const patch = { metadata: { annotations: { "flannel.alpha.coreos.com/kube-subnet-manager": "true" } } };
    const patched = await call(api, "PATCH", "/api/v1/nodes/h1/status", { token: flannel, body: patch, contentType: "application/strategic-merge-patch+json" });
    expect(patched.code).toBe(200);
    expect(patched.body.metadata.annotations["flannel.alpha.coreos.com/kube-subnet-manager"]).toBe("true");
  });

  test("…and nothing else: a denied verb is 403 naming the user, verb, resource, name and scope", async () => {
    const nodePatch = await call(api, "PATCH", "/api/v1/nodes/h1", { token: flannel, body: {}, contentType: "application/merge-patch+json" });
    expect(nodePatch).toEqual({
      code: 403,
      body: {
        kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", reason: "Forbidden", code: 403,
        message: `nodes "h1" is forbidden: User "${SA}" cannot patch resource "nodes" in API group "" at the cluster scope`,
        details: { name: "h1", kind: "nodes" },
      },
    });
    expect((await call(api, "DELETE", "/api/v1/nodes/h2", { token: flannel })).body.message)
      .toBe(`nodes "h2" is forbidden: User "${SA}" cannot delete resource "nodes" in API group "" at the cluster scope`);
    expect((await call(api, "GET", "/api/v1/namespaces/default/pods", { token: flannel })).body.message)
      .toBe(`pods is forbidden: User "${SA}" cannot list resource "pods" in API group "" in the namespace "default"`);
  });

  test("a restricted token: the patch of nodes/status is 403 with kube-apiserver's message; a single-node watch names the node", async () => {
    const token = api.addServiceAccountToken("kube-flannel", "flannel-ro", KUBE_API_ACCESS);
    api.restrictToken(token, [{ resource: "nodes", verbs: ["get", "list"] }]);
    const denied = await call(api, "PATCH", "/api/v1/nodes/h1/status", { token, body: { metadata: { annotations: { a: "b" } } }, contentType: "application/strategic-merge-patch+json" });
    expect(denied.code).toBe(403);
    expect(denied.body.message).toBe('nodes "h1" is forbidden: User "system:serviceaccount:kube-flannel:flannel-ro" cannot patch resource "nodes/status" in API group "" at the cluster scope');
    const watch = await call(api, "GET", "/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dh2", { token });
    expect(watch.body.message).toBe('nodes "h2" is forbidden: User "system:serviceaccount:kube-flannel:flannel-ro" cannot watch resource "nodes" in API group "" at the cluster scope');
    expect(api.getNode("h1")!.metadata.annotations?.a).toBeUndefined(); // nothing was written
  });

  test("a rotated token: the old one is 401 at once, the new one works", async () => {
    const token = api.addServiceAccountToken("kube-flannel", "rotating", KUBE_API_ACCESS);
    expect((await call(api, "GET", "/api/v1/nodes", { token })).code).toBe(200);
    const next = api.rotateToken(token);
    expect((await call(api, "GET", "/api/v1/nodes", { token })).code).toBe(401);
    expect((await call(api, "GET", "/api/v1/nodes", { token: next })).code).toBe(200);
  });

  test("in-cluster files (token, ca.crt, namespace) and KUBERNETES_SERVICE_HOST/PORT reach the server as the account", async () => {
    const dir = mkdtempSync(join(tmpdir(), "weft-kube-sa-"));
    try {
      const env = api.writeServiceAccountDir(dir, flannel);
      expect(env).toEqual({ KUBERNETES_SERVICE_HOST: "127.0.0.1", KUBERNETES_SERVICE_PORT: String(api.port) });
      expect(readFileSync(join(dir, "namespace"), "utf8")).toBe("kube-flannel");
      const res = await fetch(`https://${env.KUBERNETES_SERVICE_HOST}:${env.KUBERNETES_SERVICE_PORT}/api/v1/nodes/h1`, {
        headers: { authorization: `Bearer ${readFileSync(join(dir, "token"), "utf8")}` }, tls: { ca: readFileSync(join(dir, "ca.crt"), "utf8") },
      });
      expect(res.status).toBe(200);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("the /_test controls answer the admin only", async () => {
    expect(await call(api, "POST", "/_test/tokens", { token: api.adminToken, body: { user: "carol", rules: [{ resource: "pods", verbs: ["get"] }] } }))
      .toMatchObject({ code: 200, body: { token: expect.any(String) } });
    const denied = await call(api, "POST", "/_test/compact", { token: flannel, body: {} });
    expect(denied.body.message).toBe(`forbidden: User "${SA}" cannot post path "/_test/compact"`);
    expect((await call(api, "POST", "/_test/frobnicate", { token: api.adminToken, body: {} })).code).toBe(404);
    expect((await call(api, "POST", "/_test/tokens", { token: api.adminToken, body: { user: "" } })).body.message).toMatch(/"user" must be a non-empty string/);
  });
});
