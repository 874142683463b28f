/** The published health summary (byte-exact) and the whole-cluster matrix assembled from them. */
import { expect, test } from "bun:test";
import { newPeerState } from "../../src/health/peer_state.ts";
import { type Summary, buildMatrix, cellOf, decodeSummary, encodeSummary } from "../../src/health/summary.ts";
import { MemoryRegistry } from "../../src/registry/memory.ts";

test("encodeSummary() is compact JSON, decodeSummary() takes it back and refuses anything else", () => {
  const s = { at: 1_796_000_000, peers: { "10.244.2.0/24": "u", "10.244.3.0/24": "d", "10.244.4.0/24": "m", "10.244.5.0/24": "?" } } as const;
  const text = encodeSummary(s);
  expect(text).toBe('{"v":1,"at":1796000000,"peers":{"10.244.2.0/24":"u","10.244.3.0/24":"d","10.244.4.0/24":"m","10.244.5.0/24":"?"}}');
  expect(decodeSummary(text)).toEqual(s);
  for (const bad of ["", "null", "[]", '{"v":2,"at":1,"peers":{}}', '{"v":1,"at":"1","peers":{}}', '{"v":1,"at":1,"peers":[]}']) expect(decodeSummary(bad)).toBeUndefined();
  // Unknown cells are dropped, not trusted.
  expect(decodeSummary('{"v":1,"at":1,"peers":{"a":"u","b":"<img>"}}')).toEqual({ at: 1, peers: { a: "u" } });
});

test("cellOf(): reachable, unreachable, MTU black hole, not yet answered", () => {
  const s = newPeerState(0);
  expect(cellOf(s)).toBe("?");
  s.state = "up";
  expect(cellOf(s)).toBe("u");
  s.mtuOk = false;
  expect(cellOf(s)).toBe("m");
  s.state = "down";
  expect(cellOf(s)).toBe("d");
});

test("buildMatrix(): row = who probes, column = who is probed; missing and stale summaries are dots", () => {
  const hosts = ["10.244.1.0/24", "10.244.2.0/24", "10.244.3.0/24"];
  const m = buildMatrix(hosts, new Map<string, Summary>([
    ["10.244.1.0/24", { at: 100, peers: { "10.244.2.0/24": "u", "10.244.3.0/24": "d" } }],
    ["10.244.2.0/24", { at: 100, peers: { "10.244.1.0/24": "u" } }],
    ["10.244.3.0/24", { at: 10, peers: { "10.244.1.0/24": "u", "10.244.2.0/24": "u" } }], // stale
  ]), 100, 60);
  expect(m).toEqual({ hosts, rows: ["-ud", "u-.", "..-"] });
});

test("MemoryRegistry keeps health summaries apart from the subnets, until their TTL", async () => {
  const r = new MemoryRegistry();
  await r.putHealth("10.244.1.0-24", "x", 60);
  await r.putHealth("10.244.2.0-24", "y", 0);
  expect([...(await r.listHealth())]).toEqual([["10.244.1.0-24", "x"]]);
  expect((await r.listSubnets()).records).toEqual([]);
  await r.close();
});
