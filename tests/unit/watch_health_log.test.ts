/**
 * @module LeaseWatcher with a WatchHealth over an in-process registry that can lose its
 * connection on demand: the health follows the stream, the loss and the return are each logged
 * once (retries that fail again only at -v 1), and the gauges reach `/metrics`.
 */
import { expect, test } from "bun:test";
import { encodeLeaseAttrs } from "../../src/lease/lease.ts";
import { LeaseWatcher } from "../../src/lease/watch.ts";
import { WatchHealth } from "../../src/lease/watch_health.ts";
import type { Logger } from "../../src/log.ts";
import { parseIPv4 } from "../../src/net/ip.ts";
import { MemoryRegistry } from "../../src/registry/memory.ts";
import type { WatchBatch } from "../../src/registry/types.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { waitFor } from "../support/agent.ts";

/** A MemoryRegistry whose watch and listing fail while `down`, ending open watches as a lost connection does. */
class FlakyRegistry extends MemoryRegistry {
  down = false;
  #open = new Set<AbortController>();

  fail(): void {
    this.down = true;
    for (const ac of this.#open) ac.abort();
  }

  override async listSubnets() {
    if (this.down) throw new Error("etcd unreachable");
    return super.listSubnets();
  }

  override async *watchSubnets(from: bigint, signal: AbortSignal): AsyncIterable<WatchBatch> {
    if (this.down) throw new Error("etcd unreachable");
    const ac = new AbortController();
    const stop = () => ac.abort();
    signal.addEventListener("abort", stop, { once: true });
    this.#open.add(ac);
    try {
      yield { revision: 0n, events: [], connected: true, endpoint: "192.0.2.1:2379" };
      yield* super.watchSubnets(from, ac.signal);
      if (!signal.aborted) throw new Error("connection lost");
    } finally {
      this.#open.delete(ac);
      signal.removeEventListener("abort", stop);
    }
  }
}

test("LeaseWatcher logs a lost watch once, its retries at -v 1, its return once, and keeps the health", async () => {
  const r = new FlakyRegistry(`{"Network":"10.5.0.0/16","Backend":{"Type":"alloc"}}`);
  const lines: string[] = [];
  const log: Logger = {
    info: (m) => lines.push(`I ${m}`), warn: (m) => lines.push(`W ${m}`), error: (m) => lines.push(`E ${m}`),
    debug: (level, m) => lines.push(`D${level} ${m}`),
  };
  const health = new WatchHealth();
  const metrics = new Metrics();
  const ac = new AbortController();
  const w = new LeaseWatcher({
    registry: r, ownKey: "10.5.1.0-24", log, metrics, signal: ac.signal, health, minBackoffMs: 5, maxBackoffMs: 10,
    onEvents: () => {},
  });
  const running = w.run();
  try {
    await waitFor(() => health.healthy, "the watch established");
    expect(health.state.endpoint).toBe("192.0.2.1:2379");
    expect(metrics.render()).toContain("weft_watch_healthy 1\n");
    await r.putSubnet("10.5.2.0-24", encodeLeaseAttrs({ publicIP: parseIPv4("192.0.2.2") }), 0);
    await waitFor(() => w.peers.size === 1, "the peer");
    expect(health.state.lastEventAt).toBeNumber();

    r.fail();
    await waitFor(() => lines.filter((l) => l.startsWith("D1 ")).length >= 3, "a few failed retries");
    expect(health.healthy).toBe(false);
    expect(health.state.error).toBe("etcd unreachable");
    expect(metrics.render()).toContain("weft_watch_healthy 0\n");

    r.down = false;
    await waitFor(() => health.healthy, "the watch back");
    const said = lines.filter((l) => !l.startsWith("D"));
    const healthyLine = /^I lease watch healthy on 192\.0\.2\.1:2379 \(after \d+\.\d s without\)$/;
    expect(said).toHaveLength(3);
    expect(said[0]).toMatch(healthyLine);
    expect(said[1]).toBe("W lease watch lost: connection lost; peers are not updated until it is back (retrying)");
    expect(said[2]).toMatch(healthyLine);
  } finally {
    ac.abort();
    await running;
    await r.close();
  }
});
