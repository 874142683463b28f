/**
 * @module When to probe whom, as a pure scheduler over a clock the caller passes: each peer every
 * `intervalMs` ± 20 % jitter (so hosts started together do not probe in step), stretched so the
 * whole host never sends more than `maxPerSecond` probes a second (a token bucket refilled at that
 * rate, holding one tick's worth), and every `mtuEvery`-th probe to a peer a full-size one.
 * Unanswered peers are probed on the same schedule: no retries, no bursts.
 *
 * Budget (defaults: 10 s, 50/s, every 6th full-size): n peers cost min(n / 10, 50) probes/s; at
 * 1000 peers that is 50/s, each peer then every 20 s.
 */

export interface ScheduleOptions {
  intervalMs: number;
  maxPerSecond: number;
  mtuEvery: number;
  /** Uniform in [0, 1): Math.random, or a seeded one in tests. */
  random?: () => number;
}

export interface Due {
  peer: string;
  mtu: boolean;
}

export class ProbeScheduler {
  readonly #next = new Map<string, { at: number; count: number }>();
  #tokens: number;
  #refilledAt: number;

  constructor(readonly opts: ScheduleOptions, now: number) {
    this.#tokens = 0;
    this.#refilledAt = now;
  }

  /** The interval in force for `n` peers: the base one, stretched to stay within the rate cap. */
  static intervalFor(n: number, opts: ScheduleOptions): number {
    return Math.max(opts.intervalMs, (n * 1000) / opts.maxPerSecond);
  }

  get size(): number {
    return this.#next.size;
  }

  #jitter(ms: number): number {
    return ms * (0.8 + 0.4 * (this.opts.random ?? Math.random)());
  }

  /** Makes the set of peers `peers`: new ones first probed within one interval, gone ones forgotten. */
  setPeers(peers: Iterable<string>, now: number): void {
    const want = new Set(peers);
    for (const p of this.#next.keys()) if (!want.has(p)) this.#next.delete(p);
    const interval = ProbeScheduler.intervalFor(want.size, this.opts);
    for (const p of want) {
      if (!this.#next.has(p)) this.#next.set(p, { at: now + (this.opts.random ?? Math.random)() * Math.min(interval, 2000), count: 0 });
    }
  }

  /** The probes to send at `now`, within the rate cap; the rest wait for the next call. */
  due(now: number, tickMs: number): Due[] {
    const rate = this.opts.maxPerSecond / 1000;
    this.#tokens = Math.min(this.#tokens + (now - this.#refilledAt) * rate, Math.max(1, tickMs * rate));
    this.#refilledAt = now;
    const interval = ProbeScheduler.intervalFor(this.#next.size, this.opts);
    const ready = [...this.#next].filter(([, s]) => s.at <= now).sort((a, b) => a[1].at - b[1].at);
    const out: Due[] = [];
    for (const [peer, s] of ready) {
      if (this.#tokens < 1) break;
      this.#tokens -= 1;
      s.count++;
      s.at = now + this.#jitter(interval);
      out.push({ peer, mtu: s.count % this.opts.mtuEvery === 0 });
    }
    return out;
  }
}
