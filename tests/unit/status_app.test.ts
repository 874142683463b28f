import { expect, test } from "bun:test";
import type { Lease } from "../../src/lease/lease.ts";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { parseIPv4, parseIPv4Net, parseIPv6, parseIPv6Net } from "../../src/net/ip.ts";
import { type AgentView, createStatusApp } from "../../src/status/app.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { deviceFamilies } from "../../src/backend/device_counters.ts";
import { parsePrometheus } from "../support/prometheus.ts";

const peer: Lease = {
  subnet: parseIPv4Net("10.5.2.0/24"), expiration: 0, etcdLease: "77",
  attrs: { publicIP: parseIPv4("192.168.0.2"), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: "aa:bb:cc:dd:ee:ff" } },
};
function view(over: Partial<AgentView> = {}): AgentView {
  return {
    ready: true,
    config: parseNetworkConfig(`{"Network":"10.5.0.0/16","Backend":{"Type":"vxlan"}}`),
    backendType: "vxlan",
    lease: { key: "10.5.1.0-24", subnet: parseIPv4Net("10.5.1.0/24"), attrs: { publicIP: parseIPv4("192.168.0.1") }, expiration: Date.UTC(2030, 0, 1), etcdLease: "5" },
    peers: new Map([["10.5.2.0-24", peer]]),
    metrics: new Metrics(),
    peerExpiration: () => Date.UTC(2030, 0, 2),
    ...over,
  };
}

test("/healthz and /readyz answer GET and HEAD, and 405 with Allow to any other method (flanneld: any)", async () => {
  const app = createStatusApp(view());
  for (const path of ["/healthz", "/readyz"]) {
    for (const method of ["GET", "HEAD"]) expect((await app.request(path, { method })).status).toBe(200);
    for (const method of ["POST", "PUT", "DELETE", "OPTIONS", "PATCH"]) {
      const r = await app.request(path, { method });
      expect([method, r.status, r.headers.get("allow")]).toEqual([method, 405, "GET, HEAD"]);
    }
  }
  expect(await (await app.request("/healthz")).text()).toBe("flanneld is running");
  expect(await (await app.request("/healthz", { method: "HEAD" })).text()).toBe("");
});

test("/readyz is 503 until ready", async () => {
  expect((await createStatusApp(view({ ready: false })).request("/readyz")).status).toBe(503);
  expect(await (await createStatusApp(view()).request("/readyz")).text()).toBe("flanneld is ready");
});

test("/status gives the lease, the network, the backend and the peers", async () => {
  const body = await (await createStatusApp(view()).request("/status")).json();
  expect(body).toMatchObject({
    lease: { subnet: "10.5.1.0/24", publicIP: "192.168.0.1", expiration: "2030-01-01T00:00:00.000Z", reservation: false },
    network: "10.5.0.0/16",
    backend: "vxlan",
    peers: [{ subnet: "10.5.2.0/24", publicIP: "192.168.0.2", backendType: "vxlan", expiration: "2030-01-02T00:00:00.000Z", backendData: { VNI: 1, VtepMAC: "aa:bb:cc:dd:ee:ff" } }],
  });
});

test("/status shows both families: IPv6 network, subnets, public IPv6 and BackendV6Data; IPv6-only peers sorted", async () => {
  const mac6 = "0a:00:00:00:00:06";
  const v6peer = (n: number): Lease => ({
    ipv6Subnet: parseIPv6Net(`fd10:0:0:${n}::/64`), expiration: 0,
    attrs: { publicIP: 0, publicIPv6: parseIPv6(`2001:db8::${n}`), backendType: "vxlan", backendV6Data: { VNI: 1, VtepMAC: mac6 } },
  });
  const body = await (await createStatusApp(view({
    config: parseNetworkConfig(`{"EnableIPv4":false,"EnableIPv6":true,"IPv6Network":"fd10::/48","Backend":{"Type":"vxlan"}}`),
    lease: {
      key: "0.0.0.0-0&fd10:0:0:1::-64", ipv6Subnet: parseIPv6Net("fd10:0:0:1::/64"), expiration: Date.UTC(2030, 0, 1), etcdLease: "5",
      attrs: { publicIP: 0, publicIPv6: parseIPv6("2001:db8::1") },
    },
    peers: new Map([["b", v6peer(31)], ["a", v6peer(2)]]),
  })).request("/status")).json();
  expect(body).toMatchObject({
    network: null, subnetLen: null, ipv6Network: "fd10::/48", ipv6SubnetLen: 64, publicIPv6: "2001:db8::1",
    lease: { key: "0.0.0.0-0&fd10:0:0:1::-64", subnet: null, ipv6Subnet: "fd10:0:0:1::/64", publicIPv6: "2001:db8::1" },
    peers: [
      { ipv6Subnet: "fd10:0:0:2::/64", publicIP: "0.0.0.0", publicIPv6: "2001:db8::2", backendData: null, backendV6Data: { VNI: 1, VtepMAC: mac6 } },
      { ipv6Subnet: "fd10:0:0:31::/64", publicIPv6: "2001:db8::31" },
    ],
  });
});

test("/metrics is Prometheus text", async () => {
  const m = new Metrics();
  m.peers = 3;
  m.watchEvents = 7;
  m.error("etcd");
  const r = await createStatusApp(view({ metrics: m })).request("/metrics");
  expect(r.headers.get("content-type")).toContain("text/plain; version=0.0.4");
  const text = await r.text();
  expect(text).toContain("# TYPE weft_peers gauge\nweft_peers 3\n");
  expect(text).toContain("weft_watch_events_total 7\n");
  expect(text).toContain('weft_errors_total{kind="etcd"} 1\n');
});

test("/metrics passes a strict format check, with registered families, labels and escaping", async () => {
  const m = new Metrics();
  m.error("etcd");
  m.register("weft_udp_dropped_packets_total", { type: "counter", help: "Drops.", samples: () => [[{ direction: "egress", reason: "no_route" }, 4], [{ direction: "ingress", reason: "ttl" }, 0]] });
  m.register("weft_lease_info", { type: "gauge", help: "Lease.", samples: () => [[{ subnet: 'a"b\\c', backend: "vxlan" }, 1]] });
  m.register("weft_broken", { type: "gauge", help: "Throws.", samples: () => { throw new Error("no"); } });
  for (const [name, f] of deviceFamilies(() => ["lo"])) m.register(name, f);
  const { families, problems } = parsePrometheus(await (await createStatusApp(view({ metrics: m })).request("/metrics")).text());
  expect(problems).toEqual([]);
  expect(families.get("weft_udp_dropped_packets_total")?.samples).toEqual([
    { labels: { direction: "egress", reason: "no_route" }, value: 4 }, { labels: { direction: "ingress", reason: "ttl" }, value: 0 },
  ]);
  expect(families.get("weft_lease_info")?.samples[0]?.labels.subnet).toBe('a"b\\c');
  expect(families.get("weft_broken")?.samples).toEqual([]);
  expect(families.get("weft_device_receive_packets_total")?.samples[0]?.labels).toEqual({ device: "lo" });
});

test("Metrics.register() refuses names against the conventions", () => {
  const m = new Metrics();
  expect(() => m.register("weft_drops", { type: "counter", help: "", samples: () => [] })).toThrow("ending in _total exactly when it is a counter");
  expect(() => m.register("weft_up_total", { type: "gauge", help: "", samples: () => [] })).toThrow("ending in _total");
  expect(() => m.register("Weft-x", { type: "gauge", help: "", samples: () => [] })).toThrow("must be weft_");
});
