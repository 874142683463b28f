/**
 * @module tests/support/wireguard_go.ts alone, before weft's wireguard backend is tried against
 * it: two flanneld-like wireguard-go hosts on one real etcd (a Cluster with no weft agents) write
 * their leases as flanneld v0.20.2 does, configure flannel-wg as flanneld does, find each other
 * through etcd and carry ICMP between their containers; a third joins later and is followed by
 * the watch, and its peer goes when its lease goes. Two behaviours of the reference that
 * tests/wireguard/backend_interop.test.ts expects weft to match, shown here between two
 * wireguard-go hosts: a packet whose inner source is outside the sender's allowed IPs is dropped
 * by the receiver; after one side restarts (sessions lost, same key), the other side's traffic
 * resumes once it initiates again on its own timer (KeepaliveTimeout + RekeyTimeout, 15 s).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { Cluster, exec, inEchos, ipJson, ping, pingFrom, startPinger, waitFor } from "../support/netns.ts";
import { ip, isRoot } from "../support/ns.ts";
import { type FlannelWgHost, flannelWgHost, hasWireguardGo, wgGenKey } from "../support/wireguard_go.ts";

const NETWORK = "10.81.0.0/16";

describe.skipIf(!isRoot || !hasWireguardGo)("wireguard-go as a flanneld-like host", () => {
  let c: Cluster;
  let a: FlannelWgHost, b: FlannelWgHost;
  const psk = wgGenKey(); // a PSK is 32 random bytes in base64, as `wg genpsk` prints

  beforeAll(async () => {
    c = await Cluster.create({ label: "wgp", hosts: 0, backend: "alloc", network: NETWORK, backendOptions: { PSK: psk, PersistentKeepaliveInterval: 5 } });
    a = await flannelWgHost(c);
    b = await flannelWgHost(c);
  }, 30_000);

  afterAll(async () => {
    await a?.stop();
    await b?.stop();
    await c?.destroy();
  });

  test("the lease is flanneld v0.20.2's: key <prefix>/subnets/a.b.c.d-24, LeaseAttrs JSON with only PublicKey in BackendData", async () => {
    const raw = await c.etcd.client().get(a.leaseKey).string();
    expect(a.leaseKey).toBe(`/coreos.com/network/subnets/${a.subnet.replace("/", "-")}`);
    expect(raw).toBe(`{"PublicIP":"${a.host.ip}","PublicIPv6":null,"BackendType":"wireguard","BackendData":{"PublicKey":"${a.publicKey}"}}`);
    // Bound to an etcd lease of 24 h, as flanneld's createSubnet grants.
    const etcdLease = (await c.etcd.client().get(a.leaseKey).exec()).kvs[0]!.lease;
    expect(etcdLease).not.toBe("0");
  });

  test("flannel-wg as flanneld makes it: MTU 1420, the lease address /32, Network routed with scope link", () => {
    const link = ipJson(a.host.ns, "link", "show", "flannel-wg")[0]!;
    expect(link.mtu).toBe(1420);
    const addrs = (ipJson(a.host.ns, "-4", "addr", "show", "flannel-wg")[0]!.addr_info as { local: string; prefixlen: number }[]);
    expect(addrs.map((x) => `${x.local}/${x.prefixlen}`)).toEqual([a.subnet.replace("/24", "/32")]);
    const route = ipJson(a.host.ns, "route", "show", NETWORK)[0]!;
    expect(route).toMatchObject({ dst: NETWORK, dev: "flannel-wg", scope: "link" });
    expect(a.wg.wg("show", "flannel-wg", "listen-port").trim()).toBe("51820");
  });

  test("each has the other as its one peer: key, endpoint PublicIP:51820, allowed IPs its subnet, PSK, keepalive", () => {
    for (const [x, y] of [[a, b], [b, a]] as const) {
      const peers = x.wg.peers();
      expect(peers.length).toBe(1);
      expect(peers[0]).toMatchObject({ publicKey: y.publicKey, endpoint: `${y.host.ip}:51820`, allowedIps: [y.subnet], presharedKey: psk, persistentKeepalive: 5 });
    }
  });

  test("ICMP between their containers, both ways; both record the handshake", async () => {
    const ab = (await ping(a.container.ns, b.container.ip, { count: 3, intervalMs: 50 })).get(b.container.ip)!;
    const ba = (await ping(b.container.ns, a.container.ip, { count: 3, intervalMs: 50 })).get(a.container.ip)!;
    expect(ab.received).toBeGreaterThanOrEqual(2); // the first may wait on the handshake
    expect(ba.received).toBe(3);
    expect(a.wg.peer(b.publicKey)!.latestHandshake).toBeGreaterThan(0);
    expect(b.wg.peer(a.publicKey)!.latestHandshake).toBeGreaterThan(0);
  }, 20_000);

  test("a host that joins later is added by the watch; its peer goes when its lease goes", async () => {
    const d = await flannelWgHost(c);
    try {
      await waitFor(() => a.wg.peer(d.publicKey) && b.wg.peer(d.publicKey), 5000, "the watch to add the new host");
      const r = (await ping(d.container.ns, [a.container.ip, b.container.ip], { count: 3, intervalMs: 50 }));
      for (const x of r.values()) expect(x.received).toBeGreaterThanOrEqual(2);
      await c.etcd.client().delete().key(d.leaseKey);
      await waitFor(() => !a.wg.peer(d.publicKey) && !b.wg.peer(d.publicKey), 5000, "the watch to remove the host");
      expect(a.errors).toEqual([]);
    } finally {
      await d.stop();
    }
  }, 30_000);

  test("reference: wireguard-go drops a packet whose inner source is outside the sender's allowed IPs", async () => {
    const target = b.container;
    const own = a.subnet.split("/")[0]!;
    const e0 = inEchos(target.ns);
    expect(pingFrom(a.host.ns, own, target.ip)).toBe(3);
    expect(inEchos(target.ns) - e0).toBe(3);
    const spoofed = "10.81.250.250"; // inside the network, in no lease of a's
    ip(a.host.ns, "addr", "add", `${spoofed}/32`, "dev", "lo");
    try {
      const rx0 = b.wg.peer(a.publicKey)!.rxBytes;
      const e1 = inEchos(target.ns);
      expect(pingFrom(a.host.ns, spoofed, target.ip)).toBe(0);
      expect(inEchos(target.ns) - e1).toBe(0);
      // It did arrive, encrypted and authentic: b opened it, then refused its source.
      expect(b.wg.peer(a.publicKey)!.rxBytes - rx0).toBeGreaterThanOrEqual(3 * 32);
    } finally {
      ip(a.host.ns, "addr", "del", `${spoofed}/32`, "dev", "lo");
    }
  }, 20_000);

  test("reference: after a host restarts (same key, no keepalive), its peer's echoes are answered again (usually once the peer re-initiates on its timer)", async () => {
    // With a keepalive a restarted host handshakes at once (a keepalive is sent when a peer is
    // set); without, nothing happens until the other side gives up on its old session.
    const x = await flannelWgHost(c, { keepalive: 0 });
    const y = await flannelWgHost(c, { keepalive: 0 });
    try {
      await ping(x.container.ns, y.container.ip, { count: 2, intervalMs: 50 }); // a session exists
      await y.restart();
      expect(y.wg.peer(x.publicKey)!.latestHandshake).toBe(0);
      const pinger = startPinger(x.container.ns, [y.container.ip], 200, 1000);
      const t0 = Date.now();
      await waitFor(() => pinger.events.some((e) => e.rtt !== undefined), 30_000, "x's echoes to be answered again");
      const s = (Date.now() - t0) / 1000;
      await pinger.stop();
      console.log(`wireguard-go after its peer restarted: answered again after ${s.toFixed(1)} s`);
      // Usually about 15 s (x keeps its old session until KeepaliveTimeout + RekeyTimeout); at once
      // when x's last handshake was still unconfirmed, so the time is printed, not asserted.
      expect(s).toBeLessThan(30);
    } finally {
      await x.stop();
      await y.stop();
    }
  }, 40_000);
});
