/**
 * @module The test API server run as a process inside a network namespace (KubeApiProcess): it
 * listens on the namespace's address from the documented command line, a client inside the
 * namespace (curl) reaches it with the kubeconfig's URL and CA, and the test process drives it
 * through the loopback forwarder: nodes through the API, tokens and an outage through `/_test`.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { KUBE_API_ACCESS } from "../../src/kube/access.ts";
import { KubeApiProcess } from "../support/kube_api_server.ts";
import { addNetns, delNetns, isRoot, nsExec, uniqueName } from "../support/ns.ts";

let ns = "";
let api: KubeApiProcess;

beforeAll(async () => {
  if (!isRoot) return;
  ns = addNetns(uniqueName("kapi"));
  api = await KubeApiProcess.start({ netns: ns, listen: "127.0.0.1:6443", nodes: ["h1", "h2"], clusterCidr: "10.244.0.0/16,fd00:10:244::/56", nodeCidrMask: "24,64" });
});
afterAll(async () => {
  await api?.stop();
  if (ns) delNetns(ns);
});

test.skipIf(!isRoot)("inside the namespace: curl with the kubeconfig's CA and a flannel token lists the dual-stack Nodes", async () => {
  expect(api.url).toBe("https://127.0.0.1:6443");
  const token = await api.addServiceAccountToken("kube-flannel", "flannel", KUBE_API_ACCESS);
  const ca = join(api.kubeconfigFile, "..", "ca.crt");
  writeFileSync(ca, api.caCert);
  const curl = (path: string, t = token) => nsExec(ns, ["curl", "-sS", "--cacert", ca, "-H", `Authorization: Bearer ${t}`, `${api.url}${path}`]);
  let list: any;
  for (let i = 0; i < 200; i++) { // until the node IPAM controller has run
    list = JSON.parse(curl("/api/v1/nodes").stdout);
    if (list.items.every((n: any) => n.spec.podCIDRs)) break;
    await Bun.sleep(10);
  }
  expect(list.items.map((n: any) => n.spec.podCIDRs)).toEqual([["10.244.0.0/24", "fd00:10:244::/64"], ["10.244.1.0/24", "fd00:10:244:1::/64"]]);
  await api.restrictToken(token, [{ resource: "pods", verbs: ["get"] }]);
  expect(JSON.parse(curl("/api/v1/nodes").stdout).code).toBe(403);
  const next = await api.rotateToken(token);
  expect(JSON.parse(curl("/api/v1/namespaces/x/pods/p", token).stdout).code).toBe(401);
  expect(JSON.parse(curl("/api/v1/namespaces/x/pods/p", next).stdout)).toMatchObject({ code: 404, message: 'pods "p" not found' });
});

test.skipIf(!isRoot)("from the test process: nodes through the API, compaction and an outage through /_test", async () => {
  await api.addNode("h3");
  await api.patchNode("h3", { metadata: { annotations: { a: "b" } } }, { subresource: "status" });
  expect((await api.getNode("h3")).metadata.annotations).toEqual({ a: "b" });
  await api.deleteNode("h3");
  expect((await api.request("GET", "/api/v1/nodes/h3")).code).toBe(404);
  const rv = Number((await api.request("GET", "/api/v1/nodes")).body.metadata.resourceVersion);
  expect(await api.compact()).toBe(rv);
  await api.stopListener();
  expect(await api.request("GET", "/version").catch((e: Error) => e)).toBeInstanceOf(Error);
  await api.startListener();
  expect((await api.request("GET", "/api/v1/nodes")).body.items).toHaveLength(2); // the state outlived the outage
});
