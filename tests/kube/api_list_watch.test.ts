/**
 * @module LIST and WATCH of Nodes on the test API server, as client-go's reflector and
 * informers use them: resourceVersion and resourceVersionMatch, limit/continue pages that show
 * one consistent state, field and label selectors, 410 Gone after compaction (HTTP 410 for a
 * list, an ERROR event for a watch), ADDED/MODIFIED/DELETED events with rising versions,
 * bookmarks, timeoutSeconds, sendInitialEvents, and an outage of the listener.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { KubeApiServer } from "../support/kube_api_server.ts";
import { call, watch } from "./kube_http.ts";

let api: KubeApiServer;
let admin: string;
const get = (path: string) => call(api, "GET", path, { token: admin });
const names = (list: any) => list.items.map((i: any) => i.metadata.name);

beforeAll(async () => {
  api = await KubeApiServer.start({ nodes: ["h1", "h2", "h3"] });
  admin = api.adminToken;
  // Let the node IPAM controller give h1..h3 their podCIDRs (MODIFIED events) before the tests.
  await api.podCidrsAssigned();
});
afterAll(async () => { await api?.stop(); });

describe("LIST", () => {
  test("a NodeList with the current resourceVersion; items carry no kind (the list does)", async () => {
    const { code, body } = await get("/api/v1/nodes");
    expect(code).toBe(200);
    expect([body.kind, body.apiVersion, body.metadata.resourceVersion]).toEqual(["NodeList", "v1", String(api.store.rv)]);
    expect(names(body)).toEqual(["h1", "h2", "h3"]);
    expect(body.items[0].kind).toBeUndefined();
    expect(body.items.map((i: any) => i.spec.podCIDR)).toEqual(["10.244.0.0/24", "10.244.1.0/24", "10.244.2.0/24"]);
  });

  test("limit/continue: pages of one, remainingItemCount, and every page shows the first page's state", async () => {
    const first = (await get("/api/v1/nodes?limit=1")).body;
    expect([names(first), first.metadata.remainingItemCount]).toEqual([["h1"], 2]);
    api.addNode("h0", { podCIDRs: ["10.244.9.0/24"] }); // sorts before h2, created after the first page
    api.deleteNode("h3");
    const second = (await get(`/api/v1/nodes?limit=1&continue=${first.metadata.continue}`)).body;
    expect([names(second), second.metadata.remainingItemCount, second.metadata.resourceVersion]).toEqual([["h2"], 1, first.metadata.resourceVersion]);
    const third = (await get(`/api/v1/nodes?limit=1&continue=${second.metadata.continue}`)).body;
    expect([names(third), third.metadata.continue]).toEqual([["h3"], undefined]);
    api.deleteNode("h0");
    api.addNode("h3", { podCIDRs: ["10.244.2.0/24"] });
  });

  test("a continue token older than the history is 410 Expired, with a token to go on inconsistently", async () => {
    const first = (await get("/api/v1/nodes?limit=1")).body;
    api.patchNode("h2", { metadata: { labels: { compacted: "yes" } } });
    api.compact();
    const { code, body } = await get(`/api/v1/nodes?limit=1&continue=${first.metadata.continue}`);
    expect([code, body.reason, body.code]).toEqual([410, "Expired", 410]);
    expect(body.message).toStartWith("The provided continue parameter is too old to display a consistent list result.");
    const rest = (await get(`/api/v1/nodes?continue=${body.metadata.continue}`)).body;
    expect(names(rest)).toEqual(["h2", "h3"]);
    expect(rest.items[0].metadata.labels.compacted).toBe("yes"); // the newer state: inconsistent, as announced
  });

  test("resourceVersionMatch=Exact lists an earlier state; compacted away it is 410; the other rules are 400 or 504", async () => {
    const before = (await get("/api/v1/nodes")).body.metadata.resourceVersion;
    api.patchNode("h1", { metadata: { labels: { exact: "later" } } });
    const exact = (await get(`/api/v1/nodes?resourceVersion=${before}&resourceVersionMatch=Exact`)).body;
    expect([exact.metadata.resourceVersion, exact.items[0].metadata.labels.exact]).toEqual([before, undefined]);
    const notOlder = (await get(`/api/v1/nodes?resourceVersion=${before}&resourceVersionMatch=NotOlderThan`)).body;
    expect(notOlder.items[0].metadata.labels.exact).toBe("later");
    api.compact();
    const gone = await get(`/api/v1/nodes?resourceVersion=${before}&resourceVersionMatch=Exact`);
    expect([gone.code, gone.body.reason, gone.body.message]).toEqual([410, "Expired", "The resourceVersion for the provided list is too old."]);
    expect((await get("/api/v1/nodes?resourceVersionMatch=Exact")).code).toBe(400);
    expect((await get("/api/v1/nodes?resourceVersion=0&resourceVersionMatch=Exact")).code).toBe(400);
    expect((await get("/api/v1/nodes?resourceVersion=abc")).code).toBe(400);
    const tooNew = await get(`/api/v1/nodes?resourceVersion=${api.store.rv + 100}`);
    expect([tooNew.code, tooNew.body.message]).toEqual([504, `Too large resource version: ${api.store.rv + 100}, current: ${api.store.rv}`]);
  });

  test("field and label selectors; an unknown field is 400", async () => {
    expect(names((await get("/api/v1/nodes?fieldSelector=metadata.name%3Dh2")).body)).toEqual(["h2"]);
    expect(names((await get("/api/v1/nodes?fieldSelector=metadata.name!%3Dh2")).body)).toEqual(["h1", "h3"]);
    expect(names((await get("/api/v1/nodes?labelSelector=exact%3Dlater")).body)).toEqual(["h1"]);
    expect(names((await get("/api/v1/nodes?labelSelector=!exact,kubernetes.io/os%20in%20(linux)")).body)).toEqual(["h2", "h3"]);
    expect(await get("/api/v1/nodes?fieldSelector=spec.podCIDR%3Dx")).toMatchObject({ code: 400, body: { message: "field label not supported: spec.podCIDR" } });
  });

  test("GET of a missing node is 404 NotFound with the apiserver's message", async () => {
    expect(await get("/api/v1/nodes/nope")).toMatchObject({ code: 404, body: { reason: "NotFound", message: 'nodes "nope" not found' } });
  });
});

describe("WATCH", () => {
  test("from a list's version: MODIFIED, ADDED (then MODIFIED with the podCIDR), DELETED, versions rising", async () => {
    const rv = (await get("/api/v1/nodes")).body.metadata.resourceVersion;
    const w = await watch(api, `/api/v1/nodes?watch=true&resourceVersion=${rv}`, admin);
    try {
      api.patchNode("h1", { metadata: { annotations: { "flannel.alpha.coreos.com/public-ip": "10.0.0.1" } } }, { subresource: "status" });
      api.addNode("h4");
      const events = [await w.next(), await w.next(), await w.next()];
      api.deleteNode("h4");
      events.push(await w.next());
      expect(events.map((e) => [e!.type, e!.object.metadata.name])).toEqual([["MODIFIED", "h1"], ["ADDED", "h4"], ["MODIFIED", "h4"], ["DELETED", "h4"]]);
      expect(events[0]!.object.metadata.annotations["flannel.alpha.coreos.com/public-ip"]).toBe("10.0.0.1");
      expect([events[1]!.object.spec.podCIDR, events[2]!.object.spec.podCIDR]).toEqual([undefined, "10.244.3.0/24"]);
      const rvs = events.map((e) => Number(e!.object.metadata.resourceVersion));
      expect(rvs).toEqual([...rvs].sort((a, b) => a - b));
      expect(rvs[0]).toBeGreaterThan(Number(rv));
      expect(events[0]!.object.kind).toBe("Node");
    } finally {
      w.close();
    }
  });

  test("without a resourceVersion: ADDED for every node first; with a field selector, only that node", async () => {
    const all = await watch(api, "/api/v1/nodes?watch=true", admin);
    expect([(await all.next())!.object.metadata.name, (await all.next())!.object.metadata.name, (await all.next())!.object.metadata.name]).toEqual(["h1", "h2", "h3"]);
    all.close();
    const one = await watch(api, "/api/v1/nodes?watch=true&fieldSelector=metadata.name%3Dh2", admin);
    expect(await one.next()).toMatchObject({ type: "ADDED", object: { metadata: { name: "h2" } } });
    api.patchNode("h1", { metadata: { labels: { unseen: "by-h2-watch" } } });
    api.patchNode("h2", { metadata: { labels: { seen: "yes" } } });
    expect(await one.next()).toMatchObject({ type: "MODIFIED", object: { metadata: { name: "h2", labels: { seen: "yes" } } } });
    one.close();
  });

  test("a label selector: a node entering it is ADDED, leaving it DELETED", async () => {
    const rv = api.store.rv;
    const w = await watch(api, `/api/v1/nodes?watch=true&resourceVersion=${rv}&labelSelector=role%3Dgw`, admin);
    api.patchNode("h3", { metadata: { labels: { role: "gw" } } });
    api.patchNode("h3", { metadata: { labels: { role: null } } }, { type: "merge" });
    expect((await w.next())!.type).toBe("ADDED");
    expect(await w.next()).toMatchObject({ type: "DELETED", object: { metadata: { name: "h3" } } });
    w.close();
  });

  test("from a compacted version: an ERROR event carrying a 410 Expired Status, then the end", async () => {
    const old = api.store.rv;
    api.patchNode("h1", { metadata: { labels: { bump: "1" } } });
    api.compact();
    const w = await watch(api, `/api/v1/nodes?watch=true&resourceVersion=${old - 1}`, admin);
    const e = await w.next();
    expect(e).toEqual({
      type: "ERROR",
      object: { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: `too old resource version: ${old - 1} (${api.store.compactedRv})`, reason: "Expired", code: 410 },
    });
    expect(await w.next()).toBeUndefined();
  });

  test("a bounded history compacts itself: watching from before it is 410", async () => {
    const small = await KubeApiServer.start({ nodes: ["a"], maxEvents: 3 });
    try {
      const start = small.store.rv;
      for (let i = 0; i < 5; i++) small.patchNode("a", { metadata: { labels: { i: String(i) } } });
      const w = await watch(small, `/api/v1/nodes?watch=true&resourceVersion=${start}`, small.adminToken);
      expect((await w.next())!.object.code).toBe(410);
      const w2 = await watch(small, `/api/v1/nodes?watch=true&resourceVersion=${small.store.rv - 2}`, small.adminToken);
      expect((await w2.next())!.object.metadata.labels.i).toBe("3");
      w2.close();
    } finally {
      await small.stop();
    }
  });

  test("bookmarks carry the newest version; sendInitialEvents ends with the initial-events-end bookmark", async () => {
    const rv = api.store.rv;
    const w = await watch(api, `/api/v1/nodes?watch=true&resourceVersion=${rv}&allowWatchBookmarks=true`, admin);
    api.patchNode("h2", { metadata: { labels: { b: "1" } } });
    expect((await w.next())!.type).toBe("MODIFIED");
    api.bookmarkWatches();
    expect(await w.next()).toEqual({ type: "BOOKMARK", object: { kind: "Node", apiVersion: "v1", metadata: { resourceVersion: String(api.store.rv) } } });
    w.close();
    const initial = await watch(api, "/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan", admin);
    const seen = [await initial.next(), await initial.next(), await initial.next(), await initial.next()];
    expect(seen.map((e) => e!.type)).toEqual(["ADDED", "ADDED", "ADDED", "BOOKMARK"]);
    expect(seen[3]!.object.metadata.annotations).toEqual({ "k8s.io/initial-events-end": "true" });
    initial.close();
    expect((await get("/api/v1/nodes?watch=true&sendInitialEvents=true")).code).toBe(400);
  });

  test("timeoutSeconds ends the stream cleanly", async () => {
    const w = await watch(api, `/api/v1/nodes?watch=true&resourceVersion=${api.store.rv}&timeoutSeconds=1`, admin);
    expect(await w.next()).toBeUndefined();
  });

  test("an outage: the listener stops (watches end, connections refused), comes back on the same port with the same state", async () => {
    const port = api.port;
    const w = await watch(api, `/api/v1/nodes?watch=true&resourceVersion=${api.store.rv}`, admin);
    await api.stopListener();
    expect(await w.next()).toBeUndefined();
    expect(await get("/api/v1/nodes").catch((e: Error) => e)).toBeInstanceOf(Error);
    api.patchNode("h1", { metadata: { labels: { during: "outage" } } });
    await api.startListener();
    expect(api.port).toBe(port);
    expect((await get("/api/v1/nodes/h1")).body.metadata.labels.during).toBe("outage");
  });
});
