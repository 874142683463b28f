/**
 * @module What the etcd fault tests share: waiting for a peer to be programmed on hosts (and
 * timing it), reading an agent's view of its lease watch from `/status`, and a line per measured
 * figure so a run's log gives lost pings, detection and convergence times per fault.
 */
import type { Cluster, Host, PingEvent } from "../support/netns.ts";
import { waitFor, wallMs } from "../support/netns.ts";

/** The lease watch as an agent's `/status` reports it. */
export interface WatchView {
  ok: boolean;
  healthy: boolean;
  endpoint: string | null;
  error: string | null;
}

/** The agent's view of etcd from `/status`, or undefined when it does not answer. */
export async function watchView(c: Cluster, h: Host): Promise<WatchView | undefined> {
  try {
    const s = await c.status(h);
    return { ok: s.etcd.ok, healthy: s.etcd.watch?.healthy ?? false, endpoint: s.etcd.watch?.endpoint ?? null, error: s.etcd.error };
  } catch {
    return undefined;
  }
}

/** Whether `on` routes `subnet` (a peer's lease is programmed there). */
export function programmed(c: Cluster, on: Host, subnet: string): boolean {
  return c.peerRoutes(on).some((r) => r.dst === subnet);
}

/**
 * Waits until every host of `on` has (or, with `present` false, no longer has) a route to
 * `subnet`; returns each host's time in ms since `t0` (wall clock), and throws after `timeoutMs`.
 */
export async function whenProgrammed(c: Cluster, on: Host[], subnet: string, t0: number, timeoutMs: number, present = true): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  await waitFor(() => {
    for (const h of on) if (!seen.has(h.name) && programmed(c, h, subnet) === present) seen.set(h.name, wallMs() - t0);
    return seen.size === on.length;
  }, timeoutMs, `${subnet} ${present ? "programmed" : "removed"} on ${on.map((h) => h.name).join(", ")}`, 50).catch((e) => {
    throw new Error(`${(e as Error).message} (done: ${[...seen.keys()].join(", ") || "none"})\n${on.filter((h) => !seen.has(h.name)).map((h) => `--- ${h.name}\n${h.log.slice(-3000)}`).join("\n")}`);
  });
  return seen;
}

/**
 * Polls each host's `/status` until `pred` holds for its watch view; returns each host's time in
 * ms since `t0`.
 */
export async function whenWatch(c: Cluster, on: Host[], pred: (w: WatchView) => boolean, t0: number, timeoutMs: number, what: string): Promise<Map<string, number>> {
  const seen = new Map<string, number>();
  await waitFor(async () => {
    await Promise.all(on.filter((h) => !seen.has(h.name)).map(async (h) => {
      const w = await watchView(c, h);
      if (w && pred(w)) seen.set(h.name, wallMs() - t0);
    }));
    return seen.size === on.length;
  }, timeoutMs, `${what} on ${on.map((h) => h.name).join(", ")}`, 200).catch((e) => {
    const pending = on.filter((h) => !seen.has(h.name)).map((h) => `--- ${h.name}\n${watchLines(h).slice(-10).join("\n")}`);
    throw new Error(`${(e as Error).message} (done: ${[...seen.keys()].join(", ") || "none"})\n${pending.join("\n")}`);
  });
  return seen;
}

/** The agent's log lines about its lease watch (lost, healthy again, re-listing), oldest first. */
export function watchLines(h: Host, since = 0): string[] {
  return h.log.slice(since).split("\n").filter((l) => /lease watch/.test(l));
}

/** Echoes that got no reply. */
export function lost(events: readonly PingEvent[]): PingEvent[] {
  return events.filter((e) => e.rtt === undefined);
}

/** Prints one measured figure (`[fault] what: …`), the suite's report. */
export function report(fault: string, what: string, ms: Map<string, number> | number | string): void {
  const text = typeof ms === "string" ? ms
    : typeof ms === "number" ? `${(ms / 1000).toFixed(2)} s`
    : [...ms].map(([h, t]) => `${h} ${(t / 1000).toFixed(2)} s`).join(", ") + ` (max ${(Math.max(...ms.values()) / 1000).toFixed(2)} s)`;
  console.log(`[${fault}] ${what}: ${text}`);
}
