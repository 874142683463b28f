/**
 * @module Overlay health probes on host-gw and udp (two hosts each, in namespaces): every peer
 * answers through its backend's path, with the full-size check, and a blocked encapsulation port
 * (udp's 8285) is named as the cause; and vxlan agents under Deno, with 8472 blocked (node:dgram
 * and the ffi underlay check there). vxlan under Bun and the other faults: health.test.ts.
 */
import { afterAll, expect, test } from "bun:test";
import { Cluster, exec, waitFor } from "../support/netns.ts";

const clusters: Cluster[] = [];
afterAll(async () => { await Promise.all(clusters.map((c) => c.destroy())); });

async function peerHealth(c: Cluster, from: number, to: number): Promise<any> {
  const st = await c.status(c.hosts[from]!);
  return st.peers.find((p: any) => p.subnet === c.hosts[to]!.subnet)?.health;
}

for (const [backend, runtime] of [["host-gw", "binary"], ["udp", "binary"], ["vxlan", "deno"]] as const) {
  test(`${backend} (${runtime}): peers reachable through the overlay with the full-size check`, async () => {
    const c = await Cluster.create({ hosts: 2, backend, runtime, agentEnv: { WEFT_HEALTH_INTERVAL_MS: "400" }, agentArgs: ["--iptables-forward-rules=false"] });
    clusters.push(c);
    for (const [a, b] of [[0, 1], [1, 0]] as const) {
      await waitFor(async () => { const h = await peerHealth(c, a, b); return h?.state === "up" && h.mtuOk === true; }, 20_000, `${backend}: h${a + 1} sees h${b + 1} up`, 100)
        .catch(async (e) => { throw new Error(`${(e as Error).message}: ${JSON.stringify(await peerHealth(c, a, b))}`); });
    }
    const h = await peerHealth(c, 0, 1);
    const net = c.hosts[1]!.subnet.split("/")[0]!.split(".").map(Number);
    // host-gw has no overlay device: the peer's containers' gateway (cni0, .1); udp: flannel0's <net>/32.
    expect(h.overlayAddr).toBe(`${net.slice(0, 3).join(".")}.${net[3]! + (backend === "host-gw" ? 1 : 0)}`);
    if (backend !== "host-gw") {
      const port = backend === "udp" ? "8285" : "8472";
      const rule = ["INPUT", "-i", "eth0", "-p", "udp", "--dport", port, "-j", "DROP"];
      exec(c.hosts[1]!.ns, ["iptables", "-w", "-I", ...rule]);
      try {
        await waitFor(async () => new RegExp(`UDP ${port}`).test((await peerHealth(c, 0, 1))?.cause ?? ""), 20_000, `${backend}: cause names UDP ${port}`, 100);
      } finally {
        exec(c.hosts[1]!.ns, ["iptables", "-w", "-D", ...rule]);
      }
      await waitFor(async () => (await peerHealth(c, 0, 1))?.state === "up", 20_000, `${backend}: up again`, 100);
    }
  }, 90_000);
}

for (const backend of ["vxlan", "host-gw"] as const) {
  test(`${backend} dual stack: each peer probed over IPv4 and over IPv6 (flannel-v6.N / the v6 gateway), full-size included`, async () => {
    const c = await Cluster.create({ hosts: 2, backend, ipv6Network: "fd10::/48", agentEnv: { WEFT_HEALTH_INTERVAL_MS: "400" }, agentArgs: ["--iptables-forward-rules=false"] });
    clusters.push(c);
    for (const [a, b] of [[0, 1], [1, 0]] as const) {
      await waitFor(async () => {
        const h = await peerHealth(c, a, b);
        return h?.state === "up" && h.mtuOk === true && h.ipv6?.state === "up" && h.ipv6.mtuOk === true;
      }, 20_000, `${backend}: h${a + 1} sees h${b + 1} up over both families`, 100)
        .catch(async (e) => { throw new Error(`${(e as Error).message}: ${JSON.stringify(await peerHealth(c, a, b))}\n${c.hosts[a]!.log.slice(-2000)}`); });
    }
    const st = await c.status(c.hosts[0]!);
    const peer = st.peers.find((p: any) => p.subnet === c.hosts[1]!.subnet);
    const v6net = peer.ipv6Subnet.split("/")[0] as string;
    expect(peer.health.ipv6.overlayAddr).toBe(backend === "host-gw" ? v6net.replace(/::$/, "::1") : v6net);
  }, 90_000);
}
