import { expect, test } from "bun:test";
import { WatchHealth, watchHealthFamilies } from "../../src/lease/watch_health.ts";

const T0 = Date.UTC(2026, 11, 6, 10, 0, 0);

test("WatchHealth starts unhealthy without an error, and the first failure is a change", () => {
  const h = new WatchHealth(T0);
  expect(h.state).toEqual({ healthy: false, since: T0 });
  expect(h.down(T0 + 500, "connection refused")).toEqual({ healthy: false, afterMs: 500, error: "connection refused" });
  // A retry failing again is no change: `since` stays at the first failure, the error is the latest.
  expect(h.down(T0 + 1500, "deadline exceeded")).toBeUndefined();
  expect(h.state).toEqual({ healthy: false, since: T0 + 500, error: "deadline exceeded" });
});

test("WatchHealth.up() is a change once, keeps the endpoint, and down() forgets it", () => {
  const h = new WatchHealth(T0);
  expect(h.up(T0 + 2000, "192.0.2.1:2379")).toEqual({ healthy: true, afterMs: 2000, endpoint: "192.0.2.1:2379" });
  expect(h.up(T0 + 3000, "192.0.2.2:2379")).toBeUndefined(); // re-established elsewhere: still healthy
  expect(h.state).toEqual({ healthy: true, since: T0 + 2000, endpoint: "192.0.2.2:2379" });
  expect(h.down(T0 + 9000, "etcdserver: no leader")).toEqual({ healthy: false, afterMs: 7000, error: "etcdserver: no leader" });
  expect(h.state).toEqual({ healthy: false, since: T0 + 9000, error: "etcdserver: no leader" });
  expect(h.down(T0 + 9500, "etcdserver: no leader")).toBeUndefined();
  expect(h.up(T0 + 12_000)).toEqual({ healthy: true, afterMs: 3000, endpoint: undefined });
  expect(h.state.error).toBeUndefined();
});

test("WatchHealth tells events from progress notifications and ages the newest", () => {
  const h = new WatchHealth(T0);
  expect(h.lastResponseAgeSeconds(T0)).toBeUndefined();
  h.up(T0);
  h.response(T0 + 1000, 3);
  h.response(T0 + 4000, 0);
  expect(h.state).toMatchObject({ lastEventAt: T0 + 1000, lastProgressAt: T0 + 4000 });
  expect(h.lastResponseAgeSeconds(T0 + 6500)).toBe(2.5);
  h.response(T0 + 7000, 1);
  expect(h.lastResponseAgeSeconds(T0 + 7000)).toBe(0);
});

test("watchHealthFamilies() reads 0/1 and whole-second timestamps (0 for never)", () => {
  const h = new WatchHealth(T0);
  const read = () => Object.fromEntries(watchHealthFamilies(h).map(([name, f]) => [name, f.samples()[0]![1]]));
  expect(read()).toEqual({
    weft_watch_healthy: 0,
    weft_watch_healthy_change_timestamp_seconds: T0 / 1000,
    weft_watch_last_event_timestamp_seconds: 0,
    weft_watch_last_progress_timestamp_seconds: 0,
  });
  h.up(T0 + 1500);
  h.response(T0 + 2999, 1);
  expect(read()).toEqual({
    weft_watch_healthy: 1,
    weft_watch_healthy_change_timestamp_seconds: T0 / 1000 + 1,
    weft_watch_last_event_timestamp_seconds: T0 / 1000 + 2,
    weft_watch_last_progress_timestamp_seconds: 0,
  });
});
