/**
 * @module Per-stage timing of a packet loop, for finding where a sparse round trip spends its
 * time (`WEFT_UDP_TRACE=1`; off by default, and then the loop pays one null check per stage).
 *
 * Every wake-up that handles packets records how long each stage took (µs, `performance.now()`)
 * into fixed rings, bucketed by how long that direction had been quiet: "sparse" when the
 * previous packet in the same direction came ≥ SPARSE_MS before (echoes 10 ms apart), else
 * "dense" (echoes 1 ms apart, bulk traffic). After a second without traffic the loop hands a
 * summary (p50/p90 per stage and bucket) to `sink`, and starts over.
 */

/** The stages, in the order a round trip meets them on one host. */
export const TRACE_STAGES = [
  /** poll() returned for the TUN: to the first read() call. */
  "egWake",
  /** The read() that returned the packet(s). */
  "tunRead",
  /** The read() calls after it (the last one says EAGAIN). */
  "tunReadMore",
  /** core.egress(). */
  "egCore",
  /** UdpSender.send(). */
  "udpSend",
  /** poll() returned to the datagram sent. */
  "egTotal",
  /** poll() returned for the socket: to the recvmmsg() call. */
  "inWake",
  "udpRecv",
  /** Turning the received messages into the core's descriptors (JS). */
  "inDesc",
  /** core.ingress(). */
  "inCore",
  /** The TUN write()s. */
  "tunWrite",
  /** poll() returned to the last TUN write done. */
  "inTotal",
  /** From the end of a wake-up's work to the next poll() call (stats, control log). */
  "tail",
  /** From a datagram sent to the next datagram received (the rest of the round trip). */
  "away",
] as const;
export type TraceStage = typeof TRACE_STAGES[number];

/** A direction quiet this long (ms) before a packet makes that packet's samples "sparse". */
export const SPARSE_MS = 3;
const RING = 4096;
const IDLE_FLUSH_MS = 1000;

const STAGE_INDEX = Object.fromEntries(TRACE_STAGES.map((s, i) => [s, i])) as Record<TraceStage, number>;

/** Index of a stage (hot code keeps these in constants). */
export function traceStage(name: TraceStage): number {
  return STAGE_INDEX[name];
}

export class LoopTrace {
  /** [bucket][stage] rings of µs, and how many were written to each. */
  readonly #rings: Float64Array[][];
  readonly #counts: Uint32Array[];
  readonly #sink: (summary: string) => void;
  #lastEgress = 0;
  #lastIngress = 0;
  #lastSent = 0;
  #lastActivity = 0;
  #pending = false;
  /** The bucket (0 sparse, 1 dense) of the wake-up being timed. */
  bucket = 1;

  constructor(sink: (summary: string) => void) {
    this.#sink = sink;
    this.#rings = [0, 1].map(() => TRACE_STAGES.map(() => new Float64Array(RING)));
    this.#counts = [0, 1].map(() => new Uint32Array(TRACE_STAGES.length));
  }

  /** Starts timing an egress wake-up at `now` (ms); sets `bucket`. */
  egressStart(now: number): void {
    this.bucket = now - this.#lastEgress >= SPARSE_MS ? 0 : 1;
    this.#lastEgress = now;
  }

  /** Starts timing an ingress wake-up at `now`; records "away" when a datagram left lately. */
  ingressStart(now: number): void {
    this.bucket = now - this.#lastIngress >= SPARSE_MS ? 0 : 1;
    this.#lastIngress = now;
    if (this.#lastSent > 0 && now - this.#lastSent < 50) this.add(STAGE_INDEX.away, now - this.#lastSent);
    this.#lastSent = 0;
  }

  /** A datagram left at `now`. */
  sent(now: number): void {
    this.#lastSent = now;
  }

  /** Records `ms` for stage `i` in the current bucket. */
  add(i: number, ms: number): void {
    const c = this.#counts[this.bucket]!;
    this.#rings[this.bucket]![i]![c[i]! % RING] = ms * 1000;
    c[i]!++;
    this.#pending = true;
  }

  /** Marks traffic at `now`. */
  active(now: number): void {
    this.#lastActivity = now;
  }

  /** Hands the summary to the sink once traffic stopped for a second (or when `force`). */
  flush(now: number, force = false): void {
    if (!this.#pending || (!force && now - this.#lastActivity < IDLE_FLUSH_MS)) return;
    this.#sink(this.summary());
    for (const c of this.#counts) c.fill(0);
    this.#pending = false;
  }

  /** "sparse: egWake n=… p50 … p90 …; …" per bucket, stages without samples left out. */
  summary(): string {
    const parts: string[] = [];
    ["sparse", "dense"].forEach((name, b) => {
      const stages: string[] = [];
      TRACE_STAGES.forEach((stage, i) => {
        const n = this.#counts[b]![i]!;
        if (n === 0) return;
        const s = this.#rings[b]![i]!.slice(0, Math.min(n, RING)).sort();
        const q = (p: number) => s[Math.min(s.length - 1, Math.floor(s.length * p))]!.toFixed(1);
        stages.push(`${stage} n=${n} p50=${q(0.5)} p90=${q(0.9)}`);
      });
      if (stages.length) parts.push(`${name}: ${stages.join(", ")}`);
    });
    return parts.join(" | ");
  }
}
