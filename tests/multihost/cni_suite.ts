/**
 * @module The CNI plugin end to end: two hosts in namespaces run weft (vxlan); on each, a container is
 * created the way a container runtime does it — `dist/weft` invoked as the `flannel` CNI plugin,
 * delegating to Debian's real bridge and host-local plugins — and the containers reach each
 * other across hosts. DEL gives the address back and removes the veth. cni.test.ts runs it with
 * agents in etcd mode, tests/kube/cni.test.ts in kube mode (subnet.env from the Node's podCIDR).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { existsSync, mkdirSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { parseIPv4Net, containsV4, parseIPv4 } from "../../src/net/ip.ts";
import { cniExec, makeCniBinDir } from "../cni/cni_exec.ts";
import { Cluster, ROOT, ping, type Host } from "../support/netns.ts";
import { addNetns, delNetns, ip, ipJson, netnsPath } from "../support/ns.ts";

/** The suite, against agents in etcd mode or (`kube`) in kube mode. */
export function cniSuite(kube: boolean): void {
  describe(`CNI plugin, agents in ${kube ? "kube" : "etcd"} mode`, () => {
    let cluster: Cluster;
    const containers: string[] = [];
    let binDir: string;

    beforeAll(async () => {
      cluster = await Cluster.create({ hosts: 2, backend: "vxlan", containersPerHost: 0, kube });
      // The harness gives each host a cni0 for its own containers; here the bridge plugin makes it.
      for (const h of cluster.hosts) ip(h.ns, "link", "del", "cni0");
      binDir = join(cluster.dir, "cni-bin");
      mkdirSync(binDir);
      makeCniBinDir(binDir, join(ROOT, "dist", "weft"));
    }, 60_000);

    afterAll(async () => {
      for (const c of containers) delNetns(c);
      await cluster?.destroy();
    });

    function netconf(h: Host) {
      return {
        cniVersion: "0.3.1", name: "cbr0", type: "flannel",
        subnetFile: h.subnetFile, dataDir: join(h.dir, "cni-flannel"),
        ipam: { dataDir: join(h.dir, "cni-ipam") },
        delegate: { hairpinMode: true, isDefaultGateway: true },
      };
    }

    function add(h: Host, id: string) {
      const ns = `${cluster.id}-${id}`;
      addNetns(ns);
      containers.push(ns);
      const r = cniExec({ hostNs: h.ns, binDir, command: "ADD", containerId: id, netns: netnsPath(ns), config: netconf(h) });
      if (r.code !== 0) throw new Error(`CNI ADD on ${h.name} failed (${r.code}): ${r.stdout} ${r.stderr}`);
      return { ns, id, ip: (r.json.ips[0].address as string).split("/")[0]!, result: r.json };
    }

    test("containers made by the CNI plugin on two hosts get their host's addresses and reach each other", async () => {
      const [h1, h2] = cluster.hosts as [Host, Host];
      const a = add(h1, "ca");
      const b = add(h2, "cb");
      expect(containsV4(parseIPv4Net(h1.env!.subnet!), parseIPv4(a.ip))).toBe(true);
      expect(containsV4(parseIPv4Net(h2.env!.subnet!), parseIPv4(b.ip))).toBe(true);
      // The delegate got flannel's MTU and the route to the cluster network.
      const eth0 = ipJson<{ mtu: number }[]>(a.ns, "link", "show", "eth0")[0]!;
      expect(eth0.mtu).toBe(h1.env!.mtu!);
      const results = await ping(a.ns, [b.ip], { count: 3, intervalMs: 100 });
      expect(results.get(b.ip)!.received).toBeGreaterThan(0);
      const back = await ping(b.ns, [a.ip], { count: 3, intervalMs: 100 });
      expect(back.get(a.ip)!.received).toBeGreaterThan(0);

      // DEL: the veth goes and host-local forgets the address.
      const before = ipJson<{ ifname: string }[]>(h1.ns, "link", "show").filter((l) => l.ifname.startsWith("veth")).length;
      const del = cniExec({ hostNs: h1.ns, binDir, command: "DEL", containerId: "ca", netns: netnsPath(a.ns), config: netconf(h1) });
      expect(del.code).toBe(0);
      const after = ipJson<{ ifname: string }[]>(h1.ns, "link", "show").filter((l) => l.ifname.startsWith("veth")).length;
      expect(after).toBe(before - 1);
      const ipamDir = join(h1.dir, "cni-ipam", "cbr0");
      expect(existsSync(ipamDir) ? readdirSync(ipamDir).filter((f) => f === a.ip) : []).toEqual([]);
      expect(existsSync(join(h1.dir, "cni-flannel", "ca"))).toBe(false);
    }, 60_000);
  });
}

