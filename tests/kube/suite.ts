/**
 * @module The multi-host suite in kube mode, run per backend and runtime by the `cluster_*.test.ts`
 * files beside it: three hosts as network namespaces, each a Node of the test Kubernetes API
 * server (tests/support/kube_api_server.ts, in this process, reached by the agents on the
 * underlay), agents with `--kube-subnet-mgr`, two containers each; one cluster shared by the
 * tests in order:
 *
 *  1. every container reaches every container on the other hosts (ICMP and TCP); subnet.env is
 *     the podCIDR; the Nodes carry flanneld's annotations and NetworkUnavailable=False;
 *  2. a Node joins: routed on every host within 1 s of its annotations landing, its containers
 *     answering every host within 1 s of being made;
 *  3. an agent restarts: same VTEP MAC, no peer route or neighbour re-made, no ping lost; after a
 *     reboot (vxlan device gone) the MAC comes back from the Node's annotation (flannel #1155);
 *  4. `public-ip-overwrite` is what peers route to; `node-public-ip` picks the advertised address;
 *  5. a Node deleted: its routes, neighbours and FDB entries go from every host;
 *  6. the API server goes away for 10 s: no ping lost; a Node added meanwhile is routed, and
 *     then its deletion removes it, once the server is back;
 *  7. a watch answered 410 Gone (history compacted during an outage): re-list, no route churn;
 *  8. a rotated service account token: the agent stays authenticated;
 *  9. a Node without a podCIDR: the agent waits, saying why, then starts once one is assigned;
 * 10. a token without `patch nodes/status`: the agent exits 1 naming the verb and the resource.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync, writeFileSync } from "node:fs";
import type { KubeObject } from "../support/kube/store.ts";
import { weftCommand } from "../support/agent.ts";
import {
  Cluster, type Container, type Host, type Runtime, exec, ip, ipMonitor, startEchoServer, startNetlinkWatch, startPinger,
  waitFor, wallMs,
} from "../support/netns.ts";
import { churn, expectFullMesh, expectRestartWithoutChurn, lostAfterFirstReply, peerEntries, vtepMac, ECHO_PORT } from "../multihost/suite.ts";

const P = "flannel.alpha.coreos.com/";

const annotations = (o: KubeObject | undefined): Record<string, string> => ((o?.metadata as { annotations?: Record<string, string> } | undefined)?.annotations ?? {});
const podCIDR = (o: KubeObject | undefined): string => ((o?.spec as { podCIDR?: string } | undefined)?.podCIDR ?? "");

/**
 * Runs the kube-mode suite for `backend` with agents under `runtime`. `controlPlane: false`
 * leaves out tests 6–10, which exercise the subnet manager alone (the same for every backend).
 */
export function kubeSuite(backend: "vxlan" | "host-gw", runtime: Runtime, controlPlane = true): void {
  describe(`kube mode, ${backend}, 3 hosts, agents as ${runtime}`, () => {
    let c: Cluster;
    const servers: { stop(): void }[] = [];
    const serve = async (ctrs: Container[]) => { for (const x of ctrs) servers.push(await startEchoServer(x.ns, ECHO_PORT)); };
    const routedEverywhere = (subnet: string, hosts: Host[]) => hosts.every((h) => peerEntries(h, subnet).routes === 1);

    beforeAll(async () => {
      c = await Cluster.create({ hosts: 3, backend, runtime, containersPerHost: 2, kube: true });
      await serve(c.containers);
      await waitFor(() => c.hosts.every((h) => c.peerRoutes(h).length === 2), 10_000, "peer routes on every host");
    }, 90_000);

    afterAll(async () => {
      for (const s of servers) s.stop();
      await c?.destroy();
    }, 30_000);

    test("every container reaches every other host's; subnet.env is the podCIDR; the Nodes say so", async () => {
      await expectFullMesh(c);
      for (const h of c.hosts) {
        const node = c.api.getNode(h.name);
        expect(h.subnet).toBe(podCIDR(node));
        const a = annotations(node);
        expect([a[`${P}kube-subnet-manager`], a[`${P}backend-type`], a[`${P}public-ip`]]).toEqual(["true", backend, h.ip]);
        expect(a[`${P}backend-data`]).toBe(backend === "vxlan" ? `{"VNI":1,"VtepMAC":"${vtepMac(h)}"}` : "null");
        const cond = ((node!.status as { conditions: { type: string; status: string; reason?: string; message?: string }[] }).conditions)
          .find((x) => x.type === "NetworkUnavailable");
        expect(cond).toMatchObject({ status: "False", reason: "FlannelIsUp", message: "Flannel is running on this node" });
        const status = await c.status(h);
        expect([status.source, status.etcd.ok, status.peers.length]).toEqual(["kube", true, 2]);
      }
    }, 60_000);

    test("a Node that joins is routed everywhere within 1 s of its annotations landing, its containers reached within 1 s", async () => {
      const peers = [...c.hosts];
      const watches = await Promise.all(peers.map((h) => startNetlinkWatch(h.ns)));
      const pingers = peers.map((h) => startPinger(h.containers[0]!.ns, [], 10, 500));
      let annotatedAt = 0;
      const unsubscribe = c.api.store.subscribe((e) => {
        if (!annotatedAt && e.resource === "nodes" && e.type === "MODIFIED" && annotations(e.object)[`${P}kube-subnet-manager`] === "true" &&
          !peers.some((h) => h.name === (e.object.metadata as { name: string }).name)) annotatedAt = wallMs();
      });
      try {
        const h = c.addHostNamespace();
        const subnet = podCIDR(c.api.getNode(h.name));
        await c.startAgent(h);
        const ctrs = c.addContainers(h, 2);
        // Pinged from when it exists: echoes sent before would leave a failed ARP entry on the
        // new host that delays the first reply by the kernel's retransmit time, not ours.
        const made = wallMs();
        for (const p of pingers) p.add(ctrs[0]!.ip);
        await serve(ctrs);
        const routed = await Promise.all(watches.map((w) => w.until((e) => e.k === "route" && e.a === "new" && e.dst === subnet, 5000)));
        const reached = await Promise.all(pingers.map((p) => waitFor(() => p.events.find((e) => e.ip === ctrs[0]!.ip && e.rtt !== undefined), 5000, `ping reply from ${ctrs[0]!.ip}`, 5)));
        expect(annotatedAt).toBeGreaterThan(0);
        // The routes follow the Node's annotations (the agent's patch, in acquireLease); the
        // container can answer only once it exists, which the harness does after subnet.env
        // (the agent's traffic rules come first: ~0.7 s of iptables on this machine).
        const routeMs = routed.map((e) => e.t - annotatedAt);
        const reachMs = reached.map((e) => e.t - made);
        console.log(`[kube ${backend}/${runtime}] join ${subnet}: route on each peer ${routeMs.map((x) => x.toFixed(1)).join(", ")} ms after the Node's annotations landed, ` +
          `first ping reply from each peer ${reachMs.map((x) => x.toFixed(1)).join(", ")} ms after its containers were made ` +
          `(${(made - annotatedAt).toFixed(0)} ms after the annotations)`);
        for (const ms of [...routeMs, ...reachMs]) expect(ms).toBeLessThanOrEqual(1000);
      } finally {
        unsubscribe();
        for (const w of watches) await w.stop();
        for (const p of pingers) await p.stop();
      }
    }, 60_000);

    test("an agent restart re-makes no peer route or neighbour anywhere and loses no ping", async () => {
      await expectRestartWithoutChurn(c, c.hosts[1]!);
    }, 60_000);

    if (backend === "vxlan") {
      test("after a reboot (flannel.1 gone) the agent takes its VTEP MAC back from its Node: peers change nothing", async () => {
        const h = c.hosts[1]!;
        const mac = vtepMac(h);
        const peers = c.hosts.filter((x) => x !== h);
        const monitors = await Promise.all(peers.map((x) => ipMonitor(x.ns, ["route", "neigh"])));
        await c.stopAgent(h);
        ip(h.ns, "link", "del", "flannel.1");
        await c.startAgent(h);
        expect(vtepMac(h)).toBe(mac);
        await Bun.sleep(1000);
        const lines = (await Promise.all(monitors.map((m) => m.stop()))).flat();
        expect(churn(lines, c.hosts)).toEqual([]);
        await expectFullMesh(c);
      }, 60_000);
    }

    test("public-ip-overwrite is the address every peer routes to", async () => {
      const h = c.hosts[2]!;
      const alias = `${Cluster.UNDERLAY}.${100 + c.hosts.indexOf(h)}`;
      ip(h.ns, "addr", "add", `${alias}/24`, "dev", "eth0");
      c.api.patchNode(h.name, { metadata: { annotations: { [`${P}public-ip-overwrite`]: alias } } });
      await c.stopAgent(h);
      await c.startAgent(h);
      expect(annotations(c.api.getNode(h.name))[`${P}public-ip`]).toBe(alias);
      const subnet = h.subnet;
      await waitFor(() => c.hosts.filter((x) => x !== h).every((x) => {
        if (backend === "host-gw") return exec(x.ns, ["ip", "route", "show", subnet]).stdout.includes(`via ${alias}`);
        return exec(x.ns, ["bridge", "fdb", "show", "dev", "flannel.1"]).stdout.includes(`dst ${alias}`);
      }), 5000, `peers to reach ${h.name} at ${alias}`);
      await expectFullMesh(c);
    }, 60_000);

    test("node-public-ip chooses the address this host advertises (as --public-ip would)", async () => {
      const h = c.hosts[0]!;
      const alias = `${Cluster.UNDERLAY}.${100 + c.hosts.indexOf(h)}`;
      ip(h.ns, "addr", "add", `${alias}/24`, "dev", "eth0");
      c.api.patchNode(h.name, { metadata: { annotations: { [`${P}node-public-ip`]: alias } } });
      await c.stopAgent(h);
      await c.startAgent(h);
      expect(annotations(c.api.getNode(h.name))[`${P}public-ip`]).toBe(alias);
      const subnet = h.subnet;
      await waitFor(() => c.hosts.filter((x) => x !== h).every((x) => {
        if (backend === "host-gw") return exec(x.ns, ["ip", "route", "show", subnet]).stdout.includes(`via ${alias}`);
        return exec(x.ns, ["bridge", "fdb", "show", "dev", "flannel.1"]).stdout.includes(`dst ${alias}`);
      }), 5000, `peers to reach ${h.name} at ${alias}`);
      await expectFullMesh(c);
    }, 60_000);

    test("a deleted Node's routes, neighbours and FDB entries go from every host", async () => {
      const gone = c.hosts[3]!; // the host that joined
      const subnet = gone.subnet;
      const mac = vtepMac(gone);
      const peers = c.hosts.filter((x) => x !== gone);
      for (const p of peers) expect(peerEntries(p, subnet, mac)).toEqual({ routes: 1, neighs: mac ? 1 : 0, fdbs: mac ? 1 : 0 });
      await c.stopAgent(gone);
      c.api.deleteNode(gone.name);
      await waitFor(() => peers.every((p) => {
        const e = peerEntries(p, subnet, mac);
        return e.routes + e.neighs + e.fdbs === 0;
      }), 5000, `${subnet}'s entries to go from every peer`);
      await c.removeHost(gone);
    }, 60_000);

    if (!controlPlane) return;

    test("the API server away for 10 s: no ping lost; a Node added and deleted meanwhile is applied when it returns", async () => {
      const pingers = c.containers.map((from) => startPinger(from.ns, c.containers.filter((t) => t.host !== from.host).map((t) => t.ip), 50));
      await waitFor(() => pingers.every((p) => p.events.some((e) => e.rtt !== undefined)), 15_000, "first replies");
      await c.kubeExpose!.pause();
      // A Node (no agent of ours: another flannel) comes while the API is unreachable for the agents.
      c.api.addNode("ghost", { podCIDRs: ["10.244.250.0/24"], annotations: {
        [`${P}kube-subnet-manager`]: "true", [`${P}backend-type`]: backend, [`${P}public-ip`]: `${Cluster.UNDERLAY}.250`,
        [`${P}backend-data`]: backend === "vxlan" ? '{"VNI":1,"VtepMAC":"0a:58:0a:f4:fa:01"}' : "null",
      } });
      await Bun.sleep(10_000);
      expect(c.hosts.every((h) => peerEntries(h, "10.244.250.0/24").routes === 0)).toBe(true);
      await c.kubeExpose!.resume();
      await waitFor(() => routedEverywhere("10.244.250.0/24", c.hosts), 15_000, "the ghost Node's routes after the outage");
      c.api.deleteNode("ghost");
      await waitFor(() => c.hosts.every((h) => peerEntries(h, "10.244.250.0/24").routes === 0), 5000, "the ghost's routes to go");
      let replies = 0;
      for (const p of pingers) {
        const { events } = await p.stop();
        replies += events.filter((e) => e.rtt !== undefined).length;
        expect(lostAfterFirstReply(events)).toEqual([]);
      }
      console.log(`[kube ${backend}/${runtime}] API server away 10 s: ${replies} ping replies, none lost`);
      for (const h of c.hosts) expect(h.running).toBe(true);
    }, 60_000);

    test("a watch answered 410 Gone re-lists without re-making any route", async () => {
      const monitors = await Promise.all(c.hosts.map((x) => ipMonitor(x.ns, ["route", "neigh"])));
      const relists = c.hosts.map((h) => h.log.split("re-listing").length);
      await c.kubeExpose!.pause();
      c.api.patchNode(c.hosts[0]!.name, { metadata: { annotations: { "example.com/unrelated": String(Date.now()) } } });
      c.api.compact();
      await c.kubeExpose!.resume();
      await waitFor(() => c.hosts.every((h, i) => h.log.split("re-listing").length > relists[i]!), 15_000, "every agent to re-list after 410");
      await Bun.sleep(500);
      const lines = (await Promise.all(monitors.map((m) => m.stop()))).flat();
      expect(churn(lines, c.hosts)).toEqual([]);
    }, 60_000);

    test("a rotated service account token keeps the agent authenticated", async () => {
      const h = c.hosts[0]!;
      const old = readFileSync(h.tokenFile, "utf8").trim();
      writeFileSync(h.tokenFile, c.api.rotateToken(old)); // as the kubelet rotates the projected token
      c.api.endWatches(); // every watch must authenticate again
      c.api.addNode("ghost2", { podCIDRs: ["10.244.251.0/24"], annotations: {
        [`${P}kube-subnet-manager`]: "true", [`${P}backend-type`]: backend, [`${P}public-ip`]: `${Cluster.UNDERLAY}.251`,
        [`${P}backend-data`]: backend === "vxlan" ? '{"VNI":1,"VtepMAC":"0a:58:0a:f4:fb:01"}' : "null",
      } });
      await waitFor(() => peerEntries(h, "10.244.251.0/24").routes === 1, 10_000, `${h.name} to see a Node added after its token rotated`);
      c.api.deleteNode("ghost2");
      await waitFor(() => peerEntries(h, "10.244.251.0/24").routes === 0, 5000, "ghost2's route to go");
      expect(h.running).toBe(true);
    }, 60_000);

    test("a Node without a podCIDR: the agent waits, saying why, and starts once one is assigned", async () => {
      const h = c.addHostNamespace(false);
      const starting = c.startAgent(h);
      await waitFor(() => h.log.includes(`node "${h.name}" has no IPv4 podCIDR assigned yet`), 10_000, "the waiting line");
      expect(h.log).toContain("--allocate-node-cidrs");
      expect(h.running).toBe(true);
      // weft doctor, with the agent's own flags, names the cause; the API server runs in this
      // process, so the doctor is spawned without blocking it.
      const doctor = async () => {
        const p = Bun.spawn(["ip", "netns", "exec", h.ns, ...weftCommand("binary", ["doctor", "--json", "--kube-subnet-mgr", `--kubeconfig-file=${h.kubeconfig}`, `--net-config-path=${c.netConfPath}`, `--subnet-file=${h.subnetFile}`])],
          { env: { ...process.env, NODE_NAME: h.name }, stdout: "pipe", stderr: "pipe" });
        const [out, code] = await Promise.all([new Response(p.stdout).text(), p.exited]);
        const podCidr = (JSON.parse(out) as { findings: { id: string; severity: string; title: string; evidence: string[]; fix?: string }[] }).findings.find((f) => f.id === "pod-cidr");
        return { code, podCidr };
      };
      const before = await doctor();
      expect(before.code).toBe(1);
      expect(before.podCidr).toMatchObject({ severity: "error", title: `this host's Node ${h.name} has no usable podCIDR` });
      expect(before.podCidr!.fix).toContain("--allocate-node-cidrs");
      c.api.assignPodCidrs(h.name);
      await starting;
      expect(h.subnet).toBe(podCIDR(c.api.getNode(h.name)));
      expect((await doctor()).podCidr).toMatchObject({ severity: "ok", title: `Node ${h.name} has podCIDR ${h.subnet}` });
      await waitFor(() => routedEverywhere(h.subnet, c.hosts.filter((x) => x !== h)), 5000, "its routes on every peer");
      await c.stopAgent(h);
      c.api.deleteNode(h.name);
      await c.removeHost(h);
    }, 60_000);

    test("a token without patch on nodes/status: the agent exits 1 naming the verb and the resource", async () => {
      const h = c.addHostNamespace();
      c.registerNode(h, { rules: [{ resource: "nodes", verbs: ["get", "list", "watch"] }] });
      const err = await c.startAgent(h).then(() => undefined, (e: Error) => e);
      expect(err?.message).toContain("exited (1) before ready");
      expect(h.log).toContain('weft needs verb "patch" on resource "nodes/status"');
      c.api.deleteNode(h.name);
      await c.removeHost(h);
    }, 60_000);
  });
}
