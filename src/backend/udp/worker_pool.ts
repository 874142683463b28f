/**
 * @module The udp backend's packet workers, kept running: starts one Worker per TUN queue,
 * restarts one that dies, stops them all.
 *
 * A worker that throws (a bug in a rare path, a failed syscall) takes only its thread down: the
 * TUN queue and the socket belong to the main thread and stay open, so packets wait in their
 * queues. Restart, per worker:
 *  1. `ControlLog.detach(i)`, so appends stop waiting for the dead reader;
 *  2. after a backoff (RESTART_MIN_MS, doubling to RESTART_MAX_MS; back to the minimum once a
 *     worker ran STABLE_MS), check its fds are still open, then `ControlLog.attach(i)` for the
 *     state so far;
 *  3. a new Worker loads its own syscall layer and a new core from the same .wasm bytes, warms
 *     up, applies that state (all peers, routes, cluster network, TUN address), then follows
 *     the log from where the state ended.
 * Failures are counted (`weft_errors_total{kind="udp_worker"}`) and logged with the restart
 * delay; `restarts` says how often each worker came back.
 */
import type { Logger } from "../../log.ts";
import type { ControlLog } from "./control_log.ts";
import type { PacketLoopOptions } from "./packet_loop.ts";
import type { WorkerInit, WorkerReport } from "./worker.ts";

/** How long a worker may take to report ready (module load, Wasm compile, warm-up). */
export const WORKER_START_MS = 10_000;
const WORKER_STOP_MS = 2_000;
export const RESTART_MIN_MS = 100;
export const RESTART_MAX_MS = 10_000;
const STABLE_MS = 30_000;

export interface WorkerPoolDeps {
  /** worker.ts's URL (workerUrl()). */
  url: string;
  /** The core's .wasm bytes (each thread gets a copy). */
  wasm: Uint8Array;
  control: ControlLog;
  stats: SharedArrayBuffer;
  log: Logger;
  /** Counts one failure (the caller's error metric). */
  failed(): void;
  /** Whether `fd` is still open (a worker must not restart onto a closed fd). */
  fdOpen(fd: number): boolean;
  /** Logs a worker's stage-timing summary (WEFT_UDP_TRACE). */
  trace?(index: number, summary: string): void;
}

type State = "starting" | "running" | "stopped" | "failed";

/** One worker slot: the thread now, and its history. */
interface Slot {
  readonly index: number;
  readonly options: PacketLoopOptions;
  worker?: Worker;
  state: State;
  /** Resolves when the current thread stopped or failed. */
  done: Promise<void>;
  settle(): void;
  startedAt: number;
  restarts: number;
  backoffMs: number;
  timer?: ReturnType<typeof setTimeout>;
}

export class WorkerPool {
  readonly #deps: WorkerPoolDeps;
  readonly #slots: Slot[];
  #closed = false;

  /** One worker per entry of `options` (worker i runs options[i]); nothing starts before start(). */
  constructor(deps: WorkerPoolDeps, options: PacketLoopOptions[]) {
    this.#deps = deps;
    this.#slots = options.map((o, index) => ({
      index, options: o, state: "stopped", done: Promise.resolve(), settle: () => {}, startedAt: 0, restarts: 0, backoffMs: RESTART_MIN_MS,
    }));
  }

  /** Each worker's state ("starting", "running", "stopped", "failed"). */
  get states(): State[] {
    return this.#slots.map((s) => s.state);
  }

  /** How often each worker was restarted. */
  get restarts(): number[] {
    return this.#slots.map((s) => s.restarts);
  }

  /** Starts every worker; resolves once all run, throws when one fails or is too slow to start. */
  async start(): Promise<void> {
    for (const s of this.#slots) this.#spawn(s);
    await Promise.all(this.#slots.map(async (s) => {
      const end = Date.now() + WORKER_START_MS;
      while (s.state === "starting") {
        if (Date.now() > end) throw new Error(`udp backend: packet worker ${s.index} did not start within ${WORKER_START_MS} ms`);
        await new Promise((r) => setTimeout(r, 5));
      }
      if (s.state !== "running") throw new Error(`udp backend: packet worker ${s.index} failed to start (see the error above)`);
    }));
  }

  /** Stops every worker (ControlLog.stop() asks them) and ends their threads; no more restarts. */
  async stop(): Promise<void> {
    this.#closed = true;
    this.#deps.control.stop();
    await Promise.all(this.#slots.map(async (s) => {
      clearTimeout(s.timer);
      if (s.state === "starting" || s.state === "running") {
        await Promise.race([s.done, new Promise((r) => setTimeout(r, WORKER_STOP_MS))]);
      }
      s.worker?.terminate();
    }));
  }

  #spawn(s: Slot, snapshot?: Int32Array): void {
    const worker = new Worker(this.#deps.url, { type: "module" });
    s.worker = worker;
    s.state = "starting";
    s.done = new Promise<void>((r) => (s.settle = r));
    worker.onmessage = (e: MessageEvent) => {
      if (s.worker !== worker) return; // a thread already replaced
      const m = e.data as WorkerReport;
      if (m.type === "ready") {
        s.state = "running";
        s.startedAt = Date.now();
        if (m.warmUpSkipped) this.#deps.log.warn(`udp backend: packet worker ${s.index} runs without JIT warm-up (the first packets are slower): ${m.warmUpSkipped}`);
        if (s.restarts > 0) this.#deps.log.info(`udp backend: packet worker ${s.index} is back (restart ${s.restarts}), with every peer`);
      } else if (m.type === "stopped") {
        s.state = "stopped";
        s.settle();
      } else if (m.type === "error") {
        this.#failed(s, m.message);
      } else if (m.type === "trace") {
        this.#deps.trace?.(s.index, m.summary);
      }
    };
    worker.onerror = (e: ErrorEvent) => {
      if (s.worker === worker) this.#failed(s, e.message ?? String(e));
    };
    const wasm = this.#deps.wasm.slice().buffer;
    // The test-only crash applies to the first thread of a slot, never to a restarted one.
    const options = s.restarts > 0 ? { ...s.options, crashAfterPackets: undefined } : s.options;
    const init: WorkerInit = { type: "init", index: s.index, wasm, control: this.#deps.control.buffer, stats: this.#deps.stats, options, snapshot };
    worker.postMessage(init, [wasm]);
    if (snapshot) {
      // A restarted thread that never reports ready is ended and tried again.
      const end = setTimeout(() => {
        if (s.worker === worker && s.state === "starting") this.#failed(s, `did not start within ${WORKER_START_MS} ms`);
      }, WORKER_START_MS);
      void s.done.then(() => clearTimeout(end));
    }
  }

  #failed(s: Slot, message: string): void {
    if (s.state === "stopped" || s.state === "failed") return;
    const wasRunning = s.state === "running";
    s.state = "failed";
    s.settle();
    s.worker?.terminate();
    if (this.#closed && wasRunning) return; // stopping anyway
    this.#deps.control.detach(s.index);
    this.#deps.failed();
    if (this.#closed || (!wasRunning && s.restarts === 0)) {
      // The first start failed: start() reports it; nothing to restart.
      this.#deps.log.error(`udp backend: packet worker ${s.index} failed: ${message}`);
      return;
    }
    if (wasRunning && Date.now() - s.startedAt >= STABLE_MS) s.backoffMs = RESTART_MIN_MS;
    const delay = s.backoffMs;
    s.backoffMs = Math.min(RESTART_MAX_MS, s.backoffMs * 2);
    this.#deps.log.error(`udp backend: packet worker ${s.index} failed; restarting it in ${delay} ms (traffic on its queue waits meanwhile): ${message}`);
    s.timer = setTimeout(() => this.#restart(s), delay);
  }

  #restart(s: Slot): void {
    if (this.#closed) return;
    const closedFd = [s.options.tunFd, s.options.udpFd].find((fd) => !this.#deps.fdOpen(fd));
    if (closedFd !== undefined) {
      this.#deps.log.error(`udp backend: packet worker ${s.index} not restarted: its fd ${closedFd} was closed`);
      return;
    }
    s.restarts++;
    this.#spawn(s, this.#deps.control.attach(s.index));
  }
}
