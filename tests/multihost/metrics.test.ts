/**
 * @module `/metrics` of real agents (vxlan, two hosts in namespaces) read by a strict Prometheus
 * parser: the format and naming conventions hold, the data path's device counters move with
 * traffic, and every metric the shipped Grafana dashboard queries is one weft exports.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { udpFamilies } from "../../src/backend/udp/worker_stats.ts";
import { Cluster, ping } from "../support/netns.ts";
import { parsePrometheus } from "../support/prometheus.ts";

let c: Cluster;
beforeAll(async () => { c = await Cluster.create({ hosts: 2 }); }, 90_000);
afterAll(async () => { await c?.destroy(); });

async function scrape(h: Cluster["hosts"][number]) {
  return parsePrometheus(await (await c.fetch(h, "/metrics")).text());
}

test("a vxlan agent's /metrics: strict format, lease and readiness, device counters that move with traffic", async () => {
  const [h1, h2] = c.hosts;
  const before = await scrape(h1!);
  expect(before.problems).toEqual([]);
  expect(before.families.get("weft_ready")?.samples).toEqual([{ labels: {}, value: 1 }]);
  expect(before.families.get("weft_lease_info")?.samples).toEqual([{ labels: { subnet: h1!.subnet, ipv6_subnet: "", backend: "vxlan", source: "etcd" }, value: 1 }]);
  const tx = (f: ReturnType<typeof parsePrometheus>) => f.families.get("weft_device_transmit_packets_total")?.samples.find((s) => s.labels.device === "flannel.1")?.value ?? -1;
  const r = await ping(h1!.containers[0]!.ns, h2!.containers[0]!.ip, { count: 5, intervalMs: 20 });
  expect(r.get(h2!.containers[0]!.ip)?.received).toBe(5);
  const after = await scrape(h1!);
  expect(tx(after) - tx(before)).toBeGreaterThanOrEqual(5);
});

test("every metric the Grafana dashboard queries is exported by weft", async () => {
  const dashboard = readFileSync(join(import.meta.dir, "..", "..", "deploy", "monitoring", "grafana-dashboard.json"), "utf8");
  JSON.parse(dashboard); // valid JSON
  const used = new Set(dashboard.match(/weft_[a-z0-9_]+/g));
  const exported = new Set([...(await scrape(c.hosts[0]!)).families.keys(), ...udpFamilies(() => { throw new Error("unused"); }).map(([n]) => n)]);
  expect([...used].filter((n) => !exported.has(n))).toEqual([]);
});
