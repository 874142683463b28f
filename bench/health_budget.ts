/**
 * @module The overlay health probes' budget, measured: three real vxlan hosts and enough
 * synthetic peer leases (PublicIPs in the underlay where no host answers) to make `--peers` peers,
 * probed at the agent's default schedule (10 s each, at most 50 probes/s; `--max-rate N` lowers
 * the cap to see the schedule stretch). Over a window after warm-up it reads, on h1, the probes
 * the agent counts (`weft_health_probes_sent_total`) and what left through flannel.1 and eth0 (the
 * kernel's counters), and prints them beside the stated budget. Asserts nothing.
 *
 *   bun bench/health_budget.ts [--peers 200] [--window 60] [--max-rate 50] [--runtime binary|bun]
 */
import { Cluster, type Host, type Runtime, ipJson } from "../tests/support/netns.ts";
import { parsePrometheus } from "../tests/support/prometheus.ts";
import { figure, fmt, printTable } from "./lib/figures.ts";
import { peerLease, startLeasePutter } from "./lib/peer_leases.ts";

const args = process.argv.slice(2);
const opt = (name: string, dflt: string) => { const i = args.indexOf(name); return i >= 0 ? args[i + 1]! : dflt; };
const PEERS = Number(opt("--peers", "200"));
const WINDOW_S = Number(opt("--window", "60"));
const MAX_RATE = Number(opt("--max-rate", "50"));
const runtime = opt("--runtime", "binary") as Runtime;

const c = await Cluster.create({
  hosts: 3, network: "10.0.0.0/8", subnetLen: 24, runtime, containersPerHost: 0,
  agentEnv: { WEFT_HEALTH_MAX_RATE: String(MAX_RATE) },
});
try {
  const [h1] = c.hosts as [Host];
  const real = new Set(c.hosts.map((h) => h.subnet));
  const fake = PEERS - (c.hosts.length - 1);
  const putter = await startLeasePutter(c);
  const leases = Array.from({ length: fake + 3 }, (_, i) => `10.${100 + (i >> 8)}.${i & 255}.0/24`).filter((s) => !real.has(s)).slice(0, fake)
    .map((s, i) => peerLease(s, `192.168.77.${100 + (i % 100)}`, "vxlan"));
  await putter.put(leases);
  const sent = async () => parsePrometheus(await (await c.fetch(h1, "/metrics")).text()).families.get("weft_health_probes_sent_total")?.samples[0]?.value ?? 0;
  const link = (h: Host, dev: string) => {
    const s = (ipJson(h.ns, "-s", "link", "show", dev)[0] as any).stats64.tx;
    return { packets: s.packets as number, bytes: s.bytes as number };
  };
  await Bun.sleep(15_000); // every peer probed once, the schedule settled
  const st = await c.status(h1);
  const t0 = performance.now();
  const [p0, f0, e0] = [await sent(), link(h1, "flannel.1"), link(h1, "eth0")];
  await Bun.sleep(WINDOW_S * 1000);
  const secs = (performance.now() - t0) / 1000;
  const [p1, f1, e1] = [await sent(), link(h1, "flannel.1"), link(h1, "eth0")];
  await putter.stop();
  const expectRate = Math.min(PEERS / 10, MAX_RATE);
  const rows = [
    ["peers probed (status)", String(st.peers.filter((p: any) => p.health).length), ""],
    ["budget, probes/s", fmt(expectRate), `min(peers/10 s, ${MAX_RATE})`],
    ["probes/s (agent's counter)", fmt((p1 - p0) / secs), ""],
    ["flannel.1 tx packets/s", fmt((f1.packets - f0.packets) / secs), "probes + replies to the 2 real peers"],
    ["flannel.1 tx bytes/s", fmt((f1.bytes - f0.bytes) / secs), "inner packets"],
    ["eth0 tx bytes/s", fmt((e1.bytes - e0.bytes) / secs), "VXLAN-encapsulated, plus ARP for absent hosts and etcd"],
  ];
  printTable([["figure", "value", "note"], ...rows]);
  figure("health_budget", `probes_per_s_${PEERS}_peers`, (p1 - p0) / secs, "1/s");
  figure("health_budget", `flannel_tx_bytes_per_s_${PEERS}_peers`, (f1.bytes - f0.bytes) / secs, "B/s");
} finally {
  await c.destroy();
}
