/**
 * @module The lease watch's health, as a small state object: the watcher reports what happens to
 * its stream (established, a response, an error), and the status server and `/metrics` read it.
 * "Healthy" means a watch stream is established on an etcd member that has a leader (the watch
 * requires one, so a partitioned member or a lost quorum ends it) and no error came since; an
 * unhealthy watch means the peers this host programs may be stale. Pure: time is passed in, and
 * each transition says whether it changed the state, so the caller logs once per change.
 */
import type { Family } from "../status/metrics.ts";

/** What `/status` shows of the watch (times in ms since the epoch). */
export interface WatchHealthState {
  healthy: boolean;
  /** When `healthy` last changed (the start, before the first change). */
  since: number;
  /** Why it is unhealthy: the last error (none while it has not failed yet: starting). */
  error?: string;
  /** The etcd member serving the watch stream, e.g. `192.0.2.1:2379`, while healthy. */
  endpoint?: string;
  /** The last response of the stream that carried events. */
  lastEventAt?: number;
  /** The last progress notification (a response without events: etcd is alive, nothing changed). */
  lastProgressAt?: number;
}

/** A change of `healthy`, for the log line. */
export interface WatchHealthChange {
  healthy: boolean;
  /** How long the previous state lasted, ms. */
  afterMs: number;
  error?: string;
  endpoint?: string;
}

export class WatchHealth {
  #state: WatchHealthState;

  constructor(now: number = Date.now()) {
    this.#state = { healthy: false, since: now };
  }

  /** A copy of the current state. */
  get state(): WatchHealthState {
    return { ...this.#state };
  }

  get healthy(): boolean {
    return this.#state.healthy;
  }

  /** The stream is established (etcd answered the create request); `endpoint` when known. */
  up(now: number, endpoint?: string): WatchHealthChange | undefined {
    const s = this.#state;
    if (endpoint !== undefined) s.endpoint = endpoint;
    if (s.healthy) return undefined;
    const change = { healthy: true, afterMs: now - s.since, endpoint: s.endpoint };
    s.healthy = true;
    s.since = now;
    s.error = undefined;
    return change;
  }

  /** A response arrived: with events (`events` > 0) or a progress notification. */
  response(now: number, events: number): void {
    if (events > 0) this.#state.lastEventAt = now;
    else this.#state.lastProgressAt = now;
  }

  /**
   * The stream failed, or re-establishing it did. Returns the change when the watch was healthy
   * (or starting and failed for the first time); a retry that fails again keeps the first
   * failure's time (`since`) and only updates `error`.
   */
  down(now: number, error: string): WatchHealthChange | undefined {
    const s = this.#state;
    const failing = !s.healthy && s.error !== undefined;
    s.error = error;
    s.endpoint = undefined;
    if (failing) return undefined;
    const change = { healthy: false, afterMs: now - s.since, error };
    s.healthy = false;
    s.since = now;
    return change;
  }

  /** Seconds since the last event or progress notification; undefined when none came yet. */
  lastResponseAgeSeconds(now: number): number | undefined {
    const s = this.#state;
    const last = Math.max(s.lastEventAt ?? 0, s.lastProgressAt ?? 0);
    if (last > 0) return (now - last) / 1000;
    return undefined;
  }
}

/** The watch's families for `/metrics`: health as 0/1 and timestamps (0: never), Prometheus style. */
export function watchHealthFamilies(health: WatchHealth): [string, Family][] {
  const seconds = (ms: number | undefined) => (ms === undefined ? 0 : Math.floor(ms / 1000));
  const gauge = (help: string, read: () => number): Family => ({ type: "gauge", help, samples: () => [[{}, read()]] });
  return [
    ["weft_watch_healthy", gauge("1 while the lease watch is established on an etcd member with a leader, else 0.", () => (health.healthy ? 1 : 0))],
    ["weft_watch_healthy_change_timestamp_seconds", gauge("When weft_watch_healthy last changed.", () => seconds(health.state.since))],
    ["weft_watch_last_event_timestamp_seconds", gauge("Last lease watch response with events (0: none yet).", () => seconds(health.state.lastEventAt))],
    ["weft_watch_last_progress_timestamp_seconds", gauge("Last progress notification of the lease watch (0: none yet).", () => seconds(health.state.lastProgressAt))],
  ];
}
