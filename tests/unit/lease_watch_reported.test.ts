/**
 * @module LeaseWatcher's memory of malformed leases (issue #13 item 9): each key and value is
 * logged once, a new value again, a deleted or repaired key is forgotten, and a huge value
 * reaches the log only as an excerpt (over the in-memory registry); messages about a peer's
 * values quote at most an excerpt of them.
 */
import { expect, test } from "bun:test";
import { parseVxlanLeaseData } from "../../src/backend/vxlan/lease_data.ts";
import { LeaseValueError, decodeLeaseAttrs, showValue } from "../../src/lease/lease.ts";
import { LeaseWatcher } from "../../src/lease/watch.ts";
import { createLogger } from "../../src/log.ts";
import { MemoryRegistry } from "../../src/registry/memory.ts";
import { Metrics } from "../../src/status/metrics.ts";
import { waitFor } from "../support/agent.ts";

test("LeaseWatcher reports a malformed lease once per value, forgets deleted and repaired keys, and logs only an excerpt of a huge value", async () => {
  const r = new MemoryRegistry();
  let log = "";
  const metrics = new Metrics();
  const ac = new AbortController();
  let synced = false;
  const w = new LeaseWatcher({
    registry: r, ownKey: "10.5.1.0-24", log: createLogger((t) => (log += t)), metrics, signal: ac.signal,
    onEvents: () => {}, onSnapshot: () => { synced = true; },
  });
  const running = w.run();
  const reports = () => log.split("\n").filter((l) => l.includes("ignoring malformed lease")).length;
  try {
    await waitFor(() => synced, "snapshot");
    const key = "10.5.9.0-24";
    await r.putSubnet(key, "{not json A", 0);
    await waitFor(() => reports() === 1, "first report");
    await r.putSubnet(key, "{not json A", 0); // the same value again: not logged again
    await r.putSubnet("10.5.10.0-24", `{"PublicIP":"10.1.1.1"}`, 0); // a marker after it
    await waitFor(() => w.peers.size === 1, "marker");
    expect(reports()).toBe(1);
    await r.putSubnet(key, "{not json B", 0); // a new value: logged
    await waitFor(() => reports() === 2, "second report");
    await r.deleteSubnet(key); // forgotten: the old value is news again
    await r.putSubnet(key, "{not json B", 0);
    await waitFor(() => reports() === 3, "report after delete");
    await r.putSubnet(key, `{"PublicIP":"10.1.1.2"}`, 0); // repaired: forgotten too
    await r.putSubnet(key, "{not json B", 0);
    await waitFor(() => reports() === 4, "report after repair");

    const huge = `{"PublicIP":"${"9".repeat(1 << 20)}"}`;
    await r.putSubnet(key, huge, 0);
    await waitFor(() => reports() === 5, "report of a 1 MB value");
    const line = log.split("\n").find((l) => l.includes("is not an IPv4 address") || l.includes("characters)"))!;
    expect(line).toContain("characters)");
    expect(line.length).toBeLessThan(600);
    expect(metrics.errors.get("malformed_lease")).toBe(5);
  } finally {
    ac.abort();
    await running;
  }
});

test("messages about a peer's huge values quote an excerpt and the length", () => {
  const huge = "9".repeat(1 << 20);
  expect(showValue("10.1.2.3")).toBe(`"10.1.2.3"`);
  expect(showValue(huge)).toBe(`"${"9".repeat(79)}… (${(1 << 20) + 2} characters)`);
  const err = (() => { try { decodeLeaseAttrs("10.5.9.0-24", JSON.stringify({ PublicIP: huge })); } catch (e) { return e as LeaseValueError; } })()!;
  expect(err.message).toBe(`lease 10.5.9.0-24: PublicIP "${"9".repeat(79)}… (1048578 characters) is not an IPv4 address`);
  expect(String(parseVxlanLeaseData({ VtepMAC: huge })).length).toBeLessThan(200);
  expect(String(parseVxlanLeaseData(huge)).length).toBeLessThan(200);
});
