/**
 * @module KubeSubnetManager against the test Kubernetes API server (tests/support/kube_api_server.ts,
 * HTTPS, tokens, RBAC, list/watch/410) over the real client: the lease from the podCIDR (waiting
 * for it, refusing one outside Network), the annotations and the NetworkUnavailable condition as
 * they land on the Node, the VTEP MAC kept across restarts, peers from list + watch (adds,
 * changes, deletes, a 410 re-list without events, an outage caught up), token rotation and a
 * denied verb. The kernel side (routes on peers) is tests/kube/cluster*.test.ts.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { KUBE_API_ACCESS } from "../../src/kube/access.ts";
import type { Lease, LeaseEvent } from "../../src/lease/lease.ts";
import { encodeLeaseAttrs, leaseKey } from "../../src/lease/lease.ts";
import { createLogger, type Logger } from "../../src/log.ts";
import { parseIPv4 } from "../../src/net/ip.ts";
import { KubeSubnetManager } from "../../src/subnet/kube.ts";
import { LeaseAcquireError, type PeerSink } from "../../src/subnet/types.ts";
import { KubeApiServer } from "../support/kube_api_server.ts";

const P = "flannel.alpha.coreos.com/";
const dir = mkdtempSync(join(tmpdir(), "weft-kube-mgr-"));
const netConf = join(dir, "net-conf.json");
writeFileSync(netConf, JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "vxlan" } }));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const vxlan = (mac: string, ip = "192.168.77.11") => ({ publicIP: parseIPv4(ip), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: mac } });

/** A logger whose lines the test can read. */
function logLines(): { log: Logger; lines: string[] } {
  const lines: string[] = [];
  return { log: createLogger((t) => lines.push(t)), lines };
}

/** The sink the agent would be: records the snapshots and each batch of events. */
function sink(): { s: PeerSink; snapshots: Map<string, Lease>[]; batches: LeaseEvent[][] } {
  const snapshots: Map<string, Lease>[] = [];
  const batches: LeaseEvent[][] = [];
  return {
    s: { snapshot: async (p) => { snapshots.push(new Map(p)); }, events: async (e) => { batches.push([...e]); } },
    snapshots, batches,
  };
}

async function until<T>(f: () => T, what: string, ms = 5000): Promise<NonNullable<T>> {
  const end = Date.now() + ms;
  for (;;) {
    const v = f();
    if (v) return v as NonNullable<T>;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}

let api: KubeApiServer;
beforeAll(async () => {
  api = await KubeApiServer.start({ nodes: ["h1", "h2", "h3"], allocateNodeCidrs: true, bookmarkIntervalMs: 60_000 });
});
afterAll(() => api.stop());

/** A manager for `node` using a kubeconfig with `token` (default: the DaemonSet's rules). */
function manager(node: string, opts: { token?: string; tokenFile?: string; log?: Logger; pod?: { namespace: string; name: string }; server?: KubeApiServer; netConf?: string } = {}) {
  const api_ = opts.server ?? api;
  const file = join(dir, `kubeconfig-${node}-${Math.random().toString(36).slice(2)}`);
  const token = opts.tokenFile ? undefined : opts.token ?? api_.addServiceAccountToken("kube-flannel", "flannel", KUBE_API_ACCESS);
  api_.writeKubeconfig(file, opts.tokenFile ? { tokenFile: opts.tokenFile } : { token });
  return KubeSubnetManager.fromFlags({
    "kube-api-url": "", "kubeconfig-file": file, "kube-annotation-prefix": "flannel.alpha.coreos.com",
    "net-config-path": opts.netConf ?? netConf, "set-node-network-unavailable": true,
  }, opts.pod ? { POD_NAME: opts.pod.name, POD_NAMESPACE: opts.pod.namespace } : { NODE_NAME: node }, opts.log ?? logLines().log);
}

describe("our lease", () => {
  test("acquireLease() patches flanneld's annotations and gives the podCIDR as the lease", async () => {
    const m = manager("h1");
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    const lease = (await m.acquireLease({ config, attrs: vxlan("0a:00:00:00:00:01") }, ac.signal))!;
    const node = api.getNode("h1")!;
    const spec = node.spec as { podCIDR: string };
    expect(lease.key).toBe(spec.podCIDR.replace("/", "-"));
    const ann = (node.metadata as { annotations: Record<string, string> }).annotations;
    expect([ann[`${P}backend-data`], ann[`${P}backend-type`], ann[`${P}kube-subnet-manager`], ann[`${P}public-ip`]])
      .toEqual(['{"VNI":1,"VtepMAC":"0a:00:00:00:00:01"}', "vxlan", "true", "192.168.77.11"]);
    await m.close();
  });

  test("a restart finds the VTEP MAC it advertised (storedLease) and patches nothing when nothing changed", async () => {
    const m = manager("h1");
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    const stored = await m.storedLease();
    expect(stored?.attrs.backendData).toEqual({ VNI: 1, VtepMAC: "0a:00:00:00:00:01" });
    const rv = api.getNode("h1")!.metadata.resourceVersion;
    await m.acquireLease({ config, attrs: stored!.attrs }, ac.signal);
    expect(api.getNode("h1")!.metadata.resourceVersion).toBe(rv);
    await m.close();
  });

  test("without a podCIDR it waits, saying which node and why, and goes on once one is assigned", async () => {
    const { log, lines } = logLines();
    // A cluster whose controller manager assigns no podCIDRs (no --allocate-node-cidrs).
    const bare = await KubeApiServer.start({ nodes: ["late"], allocateNodeCidrs: false });
    const m = manager("late", { log, server: bare });
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    const p = m.acquireLease({ config, attrs: vxlan("0a:00:00:00:00:09") }, ac.signal);
    await until(() => lines.find((l) => l.includes('node "late" has no IPv4 podCIDR assigned yet')), "the waiting line");
    expect(lines.join("")).toContain("--allocate-node-cidrs");
    bare.assignPodCidrs("late");
    const lease = (await p)!;
    expect(lease.key).toBe((bare.getNode("late")!.spec as { podCIDR: string }).podCIDR.replace("/", "-"));
    await m.close();
    await bare.stop();
  });

  test("a podCIDR outside Network is a LeaseAcquireError naming both", async () => {
    api.addNode("stray", { podCIDRs: ["10.9.0.0/24"] } as never);
    const m = manager("stray");
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    const err = await m.acquireLease({ config, attrs: vxlan("0a:00:00:00:00:08") }, ac.signal).catch((e) => e);
    expect(err).toBeInstanceOf(LeaseAcquireError);
    expect(err.message).toContain('node "stray"');
    expect(err.message).toContain("podCIDR 10.9.0.0/24 is outside the Network 10.244.0.0/16");
    api.deleteNode("stray");
    await m.close();
  });

  test("a token without patch on nodes/status: a LeaseAcquireError naming the verb and the resource", async () => {
    const token = api.addServiceAccountToken("kube-flannel", "limited", [{ resource: "nodes", verbs: ["get", "list", "watch"] }]);
    const m = manager("h3", { token });
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    const err = await m.acquireLease({ config, attrs: vxlan("0a:00:00:00:00:03") }, ac.signal).catch((e) => e);
    expect(err).toBeInstanceOf(LeaseAcquireError);
    expect(err.message).toContain('weft needs verb "patch" on resource "nodes/status"');
    await m.close();
  });

  test("in-cluster: the service account's token and CA, and the API from KUBERNETES_SERVICE_HOST/PORT", async () => {
    const sa = mkdtempSync(join(dir, "sa-"));
    const env = api.writeServiceAccountDir(sa, api.addServiceAccountToken("kube-flannel", "flannel", KUBE_API_ACCESS));
    const m = KubeSubnetManager.fromFlags({
      "kube-api-url": "", "kubeconfig-file": "", "kube-annotation-prefix": "flannel.alpha.coreos.com",
      "net-config-path": netConf, "set-node-network-unavailable": true,
    }, { ...env, NODE_NAME: "h2" }, logLines().log, { serviceAccountDir: sa });
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    const lease = (await m.acquireLease({ config, attrs: vxlan("0a:00:00:00:00:02", "192.168.77.12") }, ac.signal))!;
    expect(lease.key).toBe((api.getNode("h2")!.spec as { podCIDR: string }).podCIDR.replace("/", "-"));
    expect(m.health.error).toBeUndefined();
    await m.close();
  });

  test("the node name from POD_NAME/POD_NAMESPACE (the Pod's spec.nodeName)", async () => {
    api.addPod("kube-flannel", "kube-flannel-ds-x1", "h2");
    const m = manager("unused", { pod: { namespace: "kube-flannel", name: "kube-flannel-ds-x1" } });
    await m.networkConfig(new AbortController().signal);
    expect(m.nodeName).toBe("h2");
    await m.close();
  });
});

describe("peers", () => {
  test("list + watch: adds, changes, deletes; a 410 re-list and an outage make no spurious events", async () => {
    // h2 advertises as another agent would; h3 runs no agent (not a peer).
    api.patchNode("h2", { metadata: { annotations: {
      [`${P}kube-subnet-manager`]: "true", [`${P}backend-type`]: "vxlan", [`${P}public-ip`]: "192.168.77.12",
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:02"}',
    } } }, { subresource: "status" });
    const { log, lines } = logLines();
    const m = manager("h1", { log });
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    await m.acquireLease({ config, attrs: vxlan("0a:00:00:00:00:01") }, ac.signal);
    const { s, snapshots, batches } = sink();
    const running = m.run(s, ac.signal);
    await until(() => snapshots.length, "the first snapshot");
    const h2 = (api.getNode("h2")!.spec as { podCIDR: string }).podCIDR.replace("/", "-");
    expect([...snapshots[0]!.keys()]).toEqual([h2]);
    expect(encodeLeaseAttrs(snapshots[0]!.get(h2)!.attrs)).toBe('{"PublicIP":"192.168.77.12","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:02"}}');
    await until(() => (api.getNode("h1")!.status as { conditions?: { type: string; reason?: string }[] }).conditions?.find((c) => c.type === "NetworkUnavailable" && c.reason === "FlannelIsUp"), "NetworkUnavailable=False");
    await until(() => m.health.watch?.healthy, "the watch healthy in /status");
    expect(m.health.watch!.state.endpoint).toBe(new URL(api.url).host);

    // h3 gets an agent: added.
    api.patchNode("h3", { metadata: { annotations: {
      [`${P}kube-subnet-manager`]: "true", [`${P}backend-type`]: "vxlan", [`${P}public-ip`]: "192.168.77.13",
      [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:03"}',
    } } }, { subresource: "status" });
    const added = await until(() => batches.flat().find((e) => e.type === "added" && e.lease.attrs.publicIP === parseIPv4("192.168.77.13")), "h3 added");
    const h3 = leaseKey(added.lease);

    // An annotation weft does not read: no event. A new VTEP MAC: an update (added).
    const before = batches.length;
    api.patchNode("h2", { metadata: { annotations: { "example.com/unrelated": "x" } } });
    api.patchNode("h2", { metadata: { annotations: { [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:22"}' } } }, { subresource: "status" });
    const changed = await until(() => batches.slice(before).flat().find((e) => e.type === "added"), "h2's new MAC");
    expect(batches.length - before).toBe(1);
    expect((changed.lease.attrs.backendData as { VtepMAC: string }).VtepMAC).toBe("0a:00:00:00:00:22");

    // While the API is away, the Node changes and history is compacted: the watch resumed from
    // the last version seen gets 410 Gone; the re-list finds nothing a peer needs, so no events.
    const quiet = batches.length;
    await api.stopListener();
    api.patchNode("h2", { metadata: { annotations: { "example.com/unrelated": "y" } } });
    api.compact();
    await api.startListener();
    await until(() => lines.find((l) => l.includes("re-listing")), "the re-list after 410");
    await until(() => api.watchCount > 0, "a new watch");
    await Bun.sleep(200);
    expect(batches.length).toBe(quiet);
    expect(snapshots.length).toBe(1);

    // An outage: the peers stay; a Node deleted meanwhile is removed once the API is back.
    await api.stopListener();
    api.deleteNode("h3");
    await Bun.sleep(300);
    expect(m.peers.has(h3)).toBe(true);
    expect(m.health.error).toBeDefined();
    expect(m.health.watch?.healthy).toBe(false);
    await api.startListener();
    const removed = await until(() => batches.slice(quiet).flat().find((e) => e.type === "removed"), "h3 removed after the outage");
    expect(leaseKey(removed.lease)).toBe(h3);
    expect([...m.peers.keys()]).toEqual([h2]);
    await until(() => m.health.error === undefined, "health back");

    ac.abort();
    await running;
    await m.close();
    api.addNode("h3");
  });

  test("alloc (someone else routes): no watch, an empty snapshot, run() lasts until aborted", async () => {
    const allocConf = join(dir, "net-conf-alloc.json");
    writeFileSync(allocConf, JSON.stringify({ Network: "10.244.0.0/16", Backend: { Type: "alloc" } }));
    const m = manager("h1", { netConf: allocConf });
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    await m.acquireLease({ config, attrs: { publicIP: parseIPv4("192.168.77.11"), backendType: "alloc" } }, ac.signal);
    const watches = api.watchCount;
    const { s, snapshots } = sink();
    let ended = false;
    const running = m.run(s, ac.signal).then(() => { ended = true; });
    await until(() => snapshots.length, "the snapshot");
    expect(snapshots[0]!.size).toBe(0);
    await Bun.sleep(200);
    expect([ended, api.watchCount]).toEqual([false, watches]);
    ac.abort();
    await running;
    await m.close();
  });

  test("a rotated service account token keeps the manager authenticated", async () => {
    const tokenFile = join(dir, "sa-token");
    const token = api.addServiceAccountToken("kube-flannel", "rotating", KUBE_API_ACCESS);
    writeFileSync(tokenFile, token);
    const m = manager("h1", { tokenFile });
    const ac = new AbortController();
    const config = (await m.networkConfig(ac.signal))!;
    await m.acquireLease({ config, attrs: vxlan("0a:00:00:00:00:01") }, ac.signal);
    const { s, snapshots, batches } = sink();
    const running = m.run(s, ac.signal);
    await until(() => snapshots.length, "the first snapshot");
    writeFileSync(tokenFile, api.rotateToken(token)); // kubelet writes the new token; the old one is dead
    api.endWatches(); // the next watch must authenticate again
    api.patchNode("h2", { metadata: { annotations: { [`${P}backend-data`]: '{"VNI":1,"VtepMAC":"0a:00:00:00:00:2f"}' } } }, { subresource: "status" });
    await until(() => batches.flat().find((e) => (e.lease.attrs.backendData as { VtepMAC?: string })?.VtepMAC === "0a:00:00:00:00:2f"), "the change seen with the new token");
    ac.abort();
    await running;
    await m.close();
  });
});
