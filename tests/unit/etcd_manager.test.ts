/** The etcd subnet manager's own-lease policy, over the in-memory registry (no etcd, no agent). */
import { describe, expect, test } from "bun:test";
import { parseNetworkConfig } from "../../src/config/network.ts";
import type { Lease, LeaseEvent } from "../../src/lease/lease.ts";
import { createLogger, silentLogger } from "../../src/log.ts";
import { parseIPv4 } from "../../src/net/ip.ts";
import { MemoryRegistry } from "../../src/registry/memory.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { EtcdSubnetManager } from "../../src/subnet/etcd.ts";
import { acquireLease } from "../../src/lease/manager.ts";
import { EtcdUnavailableError } from "../../src/registry/etcd_errors.ts";
import { LeaseAcquireError, LeaseLostError, type PeerSink } from "../../src/subnet/types.ts";

const CONFIG = `{"Network":"10.9.0.0/16","Backend":{"Type":"alloc"}}`;
const config = parseNetworkConfig(CONFIG);
const attrs = { publicIP: parseIPv4("192.168.9.9") };

function manager(registry: MemoryRegistry, log = silentLogger) {
  return new EtcdSubnetManager({ registry, log, metrics: new Metrics(), renewMarginMinutes: 60, configRetryMs: 10 });
}

/** A sink that records what it is given. */
function recorder() {
  const seen: { snapshots: ReadonlyMap<string, Lease>[]; events: LeaseEvent[] } = { snapshots: [], events: [] };
  const sink: PeerSink = {
    snapshot: async (peers) => { seen.snapshots.push(new Map(peers)); },
    events: async (events) => { seen.events.push(...events); },
  };
  return { seen, sink };
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(5);
  }
}

describe("EtcdSubnetManager", () => {
  test("networkConfig() waits for a missing config and says so once", async () => {
    const registry = new MemoryRegistry();
    let log = "";
    const m = manager(registry, createLogger((t) => (log += t)));
    const got = m.networkConfig(new AbortController().signal);
    await Bun.sleep(50);
    await registry.putConfig(CONFIG);
    expect((await got)?.backendType).toBe("alloc");
    expect(log.match(/flannel config not found in etcd store/g)?.length).toBe(1);
  });

  test("networkConfig() resolves undefined when the signal aborts", async () => {
    const stop = new AbortController();
    const got = manager(new MemoryRegistry()).networkConfig(stop.signal);
    stop.abort();
    expect(await got).toBeUndefined();
  });

  test("acquireLease() throws LeaseAcquireError at once when the network is full", async () => {
    const small = parseNetworkConfig(`{"Network":"10.9.0.0/22","SubnetLen":24,"Backend":{"Type":"alloc"}}`);
    const registry = new MemoryRegistry(CONFIG);
    for (const n of [1, 2, 3]) await registry.putSubnet(`10.9.${n}.0-24`, `{"PublicIP":"192.168.9.${n}","PublicIPv6":null}`, 0);
    const p = manager(registry).acquireLease({ config: small, attrs }, new AbortController().signal);
    expect(p).rejects.toBeInstanceOf(LeaseAcquireError);
  });

  test("acquireLease(): etcd refusing the create (a member without a leader) is retried, not counted as a lost race", async () => {
    const registry = new MemoryRegistry(CONFIG);
    let refusals = 12; // more than the 10 races a start may lose
    const create = registry.createSubnet.bind(registry);
    registry.createSubnet = async (key, value, ttl) => {
      if (refusals-- > 0) throw new EtcdUnavailableError("etcd at http://10.0.0.1:2379 could not serve writing: no leader");
      return create(key, value, ttl);
    };
    let log = "";
    // The manager's backoff starts at 1 s: the direct call shows the contract without the waits.
    for (let i = 0; i < 12; i++) {
      const e = await acquireLease({ registry, config, attrs, log: createLogger((t) => (log += t)) }).catch((x) => x);
      expect(e).toBeInstanceOf(EtcdUnavailableError);
      expect(e).not.toBeInstanceOf(LeaseAcquireError);
    }
    const got = await acquireLease({ registry, config, attrs, log: silentLogger });
    expect(got.key).toMatch(/^10\.9\.\d+\.0-24$/);
    expect(log).not.toMatch(/attempt|max retries/);
  });

  test("acquireLease() gives up with LeaseAcquireError after 10 lost races", async () => {
    const registry = new MemoryRegistry(CONFIG);
    registry.createSubnet = async () => undefined; // another host won every time
    const e = await acquireLease({ registry, config, attrs, log: silentLogger }).catch((x) => x);
    expect(e).toBeInstanceOf(LeaseAcquireError);
    expect((e as Error).message).toBe("max retries reached trying to acquire a subnet: another host took each of the 10 subnets tried");
  });

  test("storedLease() finds the lease of this public IP, and never throws", async () => {
    const registry = new MemoryRegistry(CONFIG);
    await registry.putSubnet("10.9.7.0-24", `{"PublicIP":"192.168.9.9","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"0a:00:00:00:00:07"}}`, 0);
    const m = manager(registry);
    expect((await m.storedLease(attrs))?.attrs.backendData).toEqual({ VNI: 1, VtepMAC: "0a:00:00:00:00:07" });
    class Broken extends MemoryRegistry {
      override listSubnets(): never { throw new Error("down"); }
    }
    expect(await manager(new Broken()).storedLease(attrs)).toBeUndefined();
  });

  test("run() delivers a snapshot, then peer events; our own key never reaches the sink", async () => {
    const registry = new MemoryRegistry(CONFIG);
    await registry.putSubnet("10.9.100.0-24", `{"PublicIP":"192.168.9.100","PublicIPv6":null}`, 0);
    const m = manager(registry);
    const lease = (await m.acquireLease({ config, attrs }, new AbortController().signal))!;
    const { seen, sink } = recorder();
    const stop = new AbortController();
    const running = m.run(sink, stop.signal);
    await until(() => seen.snapshots.length === 1, "the snapshot");
    expect([...seen.snapshots[0]!.keys()]).toEqual(["10.9.100.0-24"]);
    await registry.putSubnet("10.9.101.0-24", `{"PublicIP":"192.168.9.101","PublicIPv6":null}`, 0);
    await registry.putSubnet(lease.key, `{"PublicIP":"192.168.9.9","PublicIPv6":null}`, 0); // our own: a re-put
    await until(() => seen.events.length === 1, "the added peer");
    expect(seen.events[0]!.type).toBe("added");
    expect(m.lease!.expiration).toBeNull(); // the re-put without a lease made it a reservation
    stop.abort();
    await running;
  });

  test("run() takes a deleted own lease back", async () => {
    const registry = new MemoryRegistry(CONFIG);
    const m = manager(registry);
    const lease = (await m.acquireLease({ config, attrs }, new AbortController().signal))!;
    const stop = new AbortController();
    const running = m.run(recorder().sink, stop.signal);
    await Bun.sleep(20);
    await registry.deleteSubnet(lease.key);
    await until(() => m.lease!.etcdLease !== lease.etcdLease, "the lease taken back");
    expect((await registry.getSubnet(lease.key))?.lease).toBe(m.lease!.etcdLease!);
    stop.abort();
    await running;
  });

  test("run() rejects with LeaseLostError when another host took our deleted subnet", async () => {
    class Racing extends MemoryRegistry {
      racing = false;
      override async createSubnet(key: string, value: string, ttl: number) {
        if (this.racing) await super.putSubnet(key, `{"PublicIP":"192.168.9.50","PublicIPv6":null}`, 0); // another host wins the race
        return super.createSubnet(key, value, ttl);
      }
    }
    const registry = new Racing(CONFIG);
    const m = manager(registry);
    const lease = (await m.acquireLease({ config, attrs }, new AbortController().signal))!;
    const running = m.run(recorder().sink, new AbortController().signal);
    await Bun.sleep(20);
    registry.racing = true;
    await registry.deleteSubnet(lease.key);
    expect(running).rejects.toBeInstanceOf(LeaseLostError);
    await running.catch(() => {});
  });
});
