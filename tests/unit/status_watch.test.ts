/** @module `/status` reports etcd as the lease watch sees it (issue #13 item 10), not only the last call's outcome. */
import { expect, test } from "bun:test";
import { WatchHealth } from "../../src/lease/watch_health.ts";
import { type AgentView, createStatusApp } from "../../src/status/app.ts";
import { Metrics } from "../../src/status/metrics.ts";

const T0 = Date.UTC(2026, 11, 6, 10, 0, 0);
const view = (over: Partial<AgentView>): AgentView => ({ ready: true, peers: new Map(), metrics: new Metrics(), ...over });
const etcd = async (v: AgentView) => (await (await createStatusApp(v).request("/status")).json()).etcd;

test("/status: etcd is ok only while the watch is healthy, with since when and the member", async () => {
  const health = new WatchHealth(T0);
  // Not started yet (the agent waits for its config or lease): the last call decides.
  expect(await etcd(view({ watchHealth: health }))).toMatchObject({ ok: true, error: null, watch: { healthy: false, error: null, since: "2026-12-06T10:00:00.000Z" } });
  expect(await etcd(view({ watchHealth: health, etcdError: "connection refused" }))).toMatchObject({ ok: false, error: "connection refused" });
  health.up(T0 + 1000, "192.0.2.1:2379");
  health.response(T0 + 2000, 1);
  expect(await etcd(view({ watchHealth: health }))).toMatchObject({
    ok: true, error: null,
    watch: { healthy: true, since: "2026-12-06T10:00:01.000Z", endpoint: "192.0.2.1:2379", lastEvent: "2026-12-06T10:00:02.000Z", lastProgress: null, error: null },
  });
  // The last unary call succeeded, but the watch is lost: not ok, and the watch's error is the reason.
  health.down(T0 + 5000, "etcdserver: no leader");
  expect(await etcd(view({ watchHealth: health }))).toMatchObject({
    ok: false, error: "etcdserver: no leader",
    watch: { healthy: false, since: "2026-12-06T10:00:05.000Z", endpoint: null, error: "etcdserver: no leader" },
  });
  // A failed call is reported first.
  expect(await etcd(view({ watchHealth: health, etcdError: "deadline exceeded" }))).toMatchObject({ ok: false, error: "deadline exceeded" });
});

test("/status without a watch (not started) reports the last call only", async () => {
  expect(await etcd(view({}))).toEqual({ ok: true, error: null, watch: null });
  expect(await etcd(view({ etcdError: "connection refused" }))).toEqual({ ok: false, error: "connection refused", watch: null });
});
