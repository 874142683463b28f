/** The whole agent in process over the in-memory registry: fast checks of its flow. */
import { expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Agent } from "../../src/agent.ts";
import { createLogger } from "../../src/log.ts";
import type { HostNetwork } from "../../src/net/iface.ts";
import { MemoryRegistry } from "../../src/registry/memory.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { EtcdSubnetManager } from "../../src/subnet/etcd.ts";

const host: HostNetwork = {
  interfaces: [{ name: "eth0", index: 2, mtu: 1500, up: true, addrs: [{ family: 4, address: "192.168.9.9", prefixLen: 24, linkLocal: false }] }],
  routes4: [{ dst: 0, len: 0, gateway: 1, dev: "eth0", metric: 0 }],
};

test("Agent: waits for the config, leases, writes subnet.env, follows peers, stops cleanly", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-agent-"));
  const registry = new MemoryRegistry();
  let log = "";
  const logger = createLogger((t) => (log += t));
  const metrics = new Metrics();
  const agent = new Agent({
    manager: new EtcdSubnetManager({ registry, log: logger, metrics, renewMarginMinutes: 60, configRetryMs: 20 }),
    log: logger, metrics, hostNetwork: () => host,
    iface: { iface: [], ifaceRegex: [], ifaceCanReach: "", publicIP: "", publicIPv6: "" },
    subnetFile: join(dir, "subnet.env"), ipMasq: false, forwardRules: false, randomFullyDisabled: false, iptablesResyncSeconds: 5, healthzIP: "127.0.0.1", healthzPort: 0,
  });
  try {
    const done = agent.run();
    while (!log.includes("flannel config not found")) await Bun.sleep(5);
    await registry.putConfig(`{"Network":"10.7.0.0/16","Backend":{"Type":"alloc"}}`);
    while (!agent.ready) await Bun.sleep(5);
    const subnet = agent.lease!.subnet!;
    const env = readFileSync(join(dir, "subnet.env"), "utf8");
    expect(env).toMatch(/^FLANNEL_NETWORK=10\.7\.0\.0\/16\nFLANNEL_SUBNET=10\.7\.\d+\.1\/24\nFLANNEL_MTU=1500\nFLANNEL_IPMASQ=false\n$/);
    expect(subnet.len).toBe(24);
    await registry.putSubnet("10.7.200.0-24", `{"PublicIP":"192.168.9.10","PublicIPv6":null}`, 0);
    while (agent.peers.size < 1) await Bun.sleep(5);
    agent.stop();
    expect(await done).toBe(0);
    expect(log).toContain("Exiting cleanly...");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("Agent: a store that fails while the lease is acquired delays the start, it does not end it", async () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-agent-"));
  let failures = 3; // the first is met by the previous-lease lookup, which moves on without it
  class FlakyRegistry extends MemoryRegistry {
    override async listSubnets() {
      if (failures-- > 0) throw new Error("14 UNAVAILABLE: etcd is restarting");
      return super.listSubnets();
    }
  }
  const registry = new FlakyRegistry(`{"Network":"10.8.0.0/16","Backend":{"Type":"alloc"}}`);
  let log = "";
  const logger = createLogger((t) => (log += t));
  const metrics = new Metrics();
  const agent = new Agent({
    manager: new EtcdSubnetManager({ registry, log: logger, metrics, renewMarginMinutes: 60 }),
    log: logger, metrics, hostNetwork: () => host,
    iface: { iface: [], ifaceRegex: [], ifaceCanReach: "", publicIP: "", publicIPv6: "" },
    subnetFile: join(dir, "subnet.env"), ipMasq: false, forwardRules: false,
    randomFullyDisabled: false, iptablesResyncSeconds: 5, healthzIP: "127.0.0.1", healthzPort: 0,
  });
  try {
    const done = agent.run();
    const end = Date.now() + 10_000;
    while (!agent.ready && Date.now() < end) await Bun.sleep(20);
    expect(agent.ready).toBe(true);
    expect(log.match(/failed to acquire a lease \(retrying in \d+ s\): 14 UNAVAILABLE/g)?.length).toBe(2);
    agent.stop();
    expect(await done).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 15_000);
