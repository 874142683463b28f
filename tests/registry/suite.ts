/**
 * @module One conformance suite for every Registry (like hono's router suite) and the lease
 * policy on top of it: `registrySuite("memory", …)` and `registrySuite("etcd", …)` run the same
 * cases, so the in-memory registry can stand in for etcd in fast tests only because it passes.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { encodeLeaseAttrs, type LeaseEvent, leaseKey } from "../../src/lease/lease.ts";
import { acquireLease, renewLeaseLoop } from "../../src/lease/manager.ts";
import { LeaseWatcher } from "../../src/lease/watch.ts";
import { silentLogger } from "../../src/log.ts";
import { formatIPv4Net, parseIPv4 } from "../../src/net/ip.ts";
import { CompactedError, type Registry, type WatchBatch } from "../../src/registry/types.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { waitFor } from "../support/agent.ts";

export interface Harness {
  /** A fresh, empty registry (its own prefix). */
  registry(): Promise<Registry>;
  /** Puts records in one transaction (one revision). */
  putMany(r: Registry, records: [key: string, value: string][]): Promise<void>;
  /** Compacts history to now. */
  compact(): Promise<void>;
  /** Breaks open watches, as a lost connection does (etcd: restart the server). */
  interrupt(r: Registry): Promise<void>;
  /** The shortest TTL the store honours, seconds. */
  minTTL: number;
  teardown(): Promise<void>;
}

const CONFIG = `{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}`;
const cfg = parseNetworkConfig(CONFIG);
const value = (ip: string) => encodeLeaseAttrs({ publicIP: parseIPv4(ip) });


/** Collects watch batches in the background. */
function collect(r: Registry, from: bigint) {
  const ac = new AbortController();
  const batches: WatchBatch[] = [];
  let error: unknown;
  const done = (async () => {
    try { for await (const b of r.watchSubnets(from, ac.signal)) batches.push(b); } catch (e) { error = e; }
  })();
  return { batches, get error() { return error; }, stop: async () => { ac.abort(); await done; } };
}

export function registrySuite(name: string, make: () => Promise<Harness>): void {
  describe(`Registry conformance: ${name}`, () => {
    let h: Harness;
    beforeAll(async () => { h = await make(); });
    afterAll(async () => { await h?.teardown(); });

    test("config: absent, then stored", async () => {
      const r = await h.registry();
      expect(await r.getConfig()).toBeUndefined();
      await r.putConfig(CONFIG);
      expect(await r.getConfig()).toBe(CONFIG);
    });

    test("createSubnet() creates only when absent", async () => {
      const r = await h.registry();
      const a = await r.createSubnet("10.5.1.0-24", value("1.1.1.1"), 60);
      expect(a?.lease).toMatch(/^[1-9]\d*$/);
      expect(await r.createSubnet("10.5.1.0-24", value("2.2.2.2"), 60)).toBeUndefined();
      expect((await r.getSubnet("10.5.1.0-24"))?.value).toBe(value("1.1.1.1"));
    });

    test("putSubnet() with TTL 0 stores a reservation; with revokeLease revokes the old lease", async () => {
      const r = await h.registry();
      expect((await r.putSubnet("10.5.2.0-24", value("1.1.1.2"), 0)).lease).toBe("0");
      expect((await r.listSubnets()).records.find((x) => x.key === "10.5.2.0-24")?.lease).toBe("0");
      const first = await r.createSubnet("10.5.3.0-24", value("1.1.1.3"), 60);
      const second = await r.putSubnet("10.5.3.0-24", value("1.1.1.3"), 60, first!.lease);
      expect(second.lease).not.toBe(first!.lease);
      expect(await r.leaseTimeToLive(first!.lease)).toBe(-1);
      expect(await r.leaseTimeToLive(second.lease)).toBeGreaterThan(50);
      expect(await r.getSubnet("10.5.3.0-24")).toBeDefined();
    });

    test("an expired lease deletes its key and the watch sees the delete", async () => {
      const r = await h.registry();
      const { revision } = await r.listSubnets();
      const w = collect(r, revision + 1n);
      await r.createSubnet("10.5.4.0-24", value("1.1.1.4"), h.minTTL);
      await waitFor(async () => !(await r.getSubnet("10.5.4.0-24")), "expiry", (h.minTTL + 5) * 1000);
      await waitFor(() => w.batches.flatMap((b) => b.events).some((e) => e.type === "delete" && e.key === "10.5.4.0-24"), "delete event");
      await w.stop();
    }, 30_000);

    test("watch yields every event of one transaction, in order", async () => {
      const r = await h.registry();
      const { revision } = await r.listSubnets();
      const w = collect(r, revision + 1n);
      const keys = Array.from({ length: 150 }, (_, i) => `10.5.${10 + (i >> 4)}.${(i & 15) * 16}-28`);
      await h.putMany(r, keys.map((k) => [k, value("9.9.9.9")]));
      await waitFor(() => w.batches.flatMap((b) => b.events).length >= 150, "150 events");
      expect(w.batches.flatMap((b) => b.events).map((e) => (e.type === "put" ? e.record.key : e.key))).toEqual(keys);
      await w.stop();
    });

    test("watch from a compacted revision throws CompactedError", async () => {
      const r = await h.registry();
      const { revision } = await r.listSubnets();
      await r.putSubnet("10.5.5.0-24", value("1.1.1.5"), 0);
      await r.deleteSubnet("10.5.5.0-24");
      await h.compact();
      const w = collect(r, revision);
      await waitFor(() => w.error, "compaction error");
      expect(w.error).toBeInstanceOf(CompactedError);
      await w.stop();
    });

    describe("lease policy", () => {
      test("acquireLease() takes distinct subnets for racing hosts (a lost race retries)", async () => {
        const r = await h.registry();
        await r.putConfig(CONFIG);
        // Every host picks the first free candidate: all but one lose the first race.
        const hosts = await Promise.all(Array.from({ length: 8 }, (_, i) => acquireLease({
          registry: r, config: cfg, attrs: { publicIP: parseIPv4(`10.1.0.${i + 1}`) }, log: silentLogger, random: () => 0,
        })));
        const subnets = hosts.map((l) => formatIPv4Net(l.subnet!));
        expect(new Set(subnets).size).toBe(8);
        expect((await r.listSubnets()).records.length).toBe(8);
      });

      test("acquireLease() reuses our public IP's lease and keeps reservations lease-less", async () => {
        const r = await h.registry();
        const a = await acquireLease({ registry: r, config: cfg, attrs: { publicIP: parseIPv4("10.1.1.1") }, log: silentLogger });
        const again = await acquireLease({ registry: r, config: cfg, attrs: { publicIP: parseIPv4("10.1.1.1") }, log: silentLogger });
        expect(again.key).toBe(a.key);
        expect(await r.leaseTimeToLive(a.etcdLease!)).toBe(-1); // the replaced lease is revoked
        await r.putSubnet("10.5.200.0-24", value("10.1.1.2"), 0);
        const res = await acquireLease({ registry: r, config: cfg, attrs: { publicIP: parseIPv4("10.1.1.2"), backendType: "host-gw" }, log: silentLogger });
        expect(res.key).toBe("10.5.200.0-24");
        expect(res.expiration).toBeNull();
        const rec = await r.getSubnet("10.5.200.0-24");
        expect(rec?.lease).toBe("0");
        expect(rec?.value).toBe(encodeLeaseAttrs({ publicIP: parseIPv4("10.1.1.2"), backendType: "host-gw" }));
      });

      test("renewLeaseLoop() puts under a new lease and revokes the old one", async () => {
        const r = await h.registry();
        let lease = await acquireLease({ registry: r, config: cfg, attrs: { publicIP: parseIPv4("10.1.2.1") }, log: silentLogger, ttlSeconds: 6 });
        const first = lease.etcdLease!;
        const ac = new AbortController();
        const metrics = new Metrics();
        const loop = renewLeaseLoop({
          registry: r, current: () => lease, marginMs: 3_600_000, ttlSeconds: 6, log: silentLogger, metrics, signal: ac.signal,
          onRenewed: (l) => { lease = l; },
        });
        await waitFor(() => metrics.leaseRenewals >= 1, "a renewal", 15_000);
        ac.abort();
        await loop;
        expect(lease.etcdLease).not.toBe(first);
        expect(await r.leaseTimeToLive(first)).toBe(-1);
        expect((await r.getSubnet(lease.key))?.lease).toBe(lease.etcdLease);
      }, 20_000);

      test("LeaseWatcher: every event, updates, malformed records skipped, own key apart, resync after compaction", async () => {
        const r = await h.registry();
        await r.putSubnet("10.5.30.0-24", value("10.2.0.1"), 0);
        const own = await r.createSubnet("10.5.31.0-24", value("10.2.0.2"), 60);
        expect(own).toBeDefined();
        const events: LeaseEvent[] = [];
        const ownSeen: (string | undefined)[] = [];
        const metrics = new Metrics();
        const ac = new AbortController();
        let snapshot = -1;
        const w = new LeaseWatcher({
          registry: r, ownKey: "10.5.31.0-24", log: silentLogger, metrics, signal: ac.signal, minBackoffMs: 50,
          onEvents: (ev) => { events.push(...ev); },
          onSnapshot: (peers) => { snapshot = peers.size; },
          onOwnLease: (rec) => { ownSeen.push(rec?.value); },
        });
        const running = w.run();
        await waitFor(() => snapshot === 1, "snapshot");
        expect([...w.peers.keys()]).toEqual(["10.5.30.0-24"]); // the snapshot goes to onSnapshot, not onEvents
        expect(events).toEqual([]);

        // A burst in one transaction: every event handled (flanneld: only the first).
        const burst = Array.from({ length: 20 }, (_, i) => `10.5.${40 + i}.0-24`);
        await h.putMany(r, burst.map((k) => [k, value("10.2.1.1")]));
        await waitFor(() => w.peers.size === 21, "21 peers");
        // Unreadable records are skipped (and counted once), never fatal.
        await h.putMany(r, [["10.5.70.0-24", "{not json"], ["garbage-key", value("1.2.3.4")]]);
        await h.putMany(r, [["10.5.70.0-24", "{not json"]]);
        // Same subnet, new attributes: an added (update) event.
        await r.putSubnet("10.5.30.0-24", encodeLeaseAttrs({ publicIP: parseIPv4("10.2.0.1"), backendType: "host-gw" }), 0);
        await waitFor(() => events.some((e) => e.type === "added" && e.lease.attrs.backendType === "host-gw"), "update event");
        expect(metrics.errors.get("malformed_lease")).toBe(2);
        // Our own key goes to onOwnLease only.
        await r.deleteSubnet("10.5.31.0-24");
        await waitFor(() => ownSeen.includes(undefined), "own lease delete");

        // Missed changes across a compaction are found by the re-list.
        await h.interrupt(r);
        await r.deleteSubnet("10.5.40.0-24");
        await r.putSubnet("10.5.80.0-24", value("10.2.2.2"), 0);
        await h.compact();
        await waitFor(() => !w.peers.has("10.5.40.0-24") && w.peers.has("10.5.80.0-24"), "catch-up after compaction", 20_000);
        expect(events.filter((e) => e.type === "removed").map((e) => leaseKey(e.lease))).toContain("10.5.40.0-24");
        expect(events.some((e) => leaseKey(e.lease) === "10.5.31.0-24")).toBe(false);
        ac.abort();
        await running;
      }, 40_000);
    });
  });
}
