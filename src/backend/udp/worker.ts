/**
 * @module The udp backend's packet worker (a Worker thread): loads its own syscall layer and
 * Wasm core, warms the forwarding code up on loopback (warm_up.ts), then runs one PacketLoop
 * until the control log says stop. Blocking poll/read/
 * recvmmsg happen here, never on the main thread, which keeps serving etcd, netlink and HTTP.
 *
 * Messages: in, one `WorkerInit`; out, `{ type: "ready" }` once the loop runs, then
 * `{ type: "stopped" }` or `{ type: "error", message }` when it ends. The fds belong to the main
 * thread, which closes them after the worker has stopped.
 */
import { loadSys } from "../../../ffi/sys.ts";
import { loadCore } from "../../core/loader.ts";
import { ControlReader } from "./control_log.ts";
import { LoopTrace } from "./loop_trace.ts";
import { PacketLoop, type PacketLoopOptions } from "./packet_loop.ts";
import { warmUp } from "./warm_up.ts";
import { statsRow } from "./worker_stats.ts";

/** What the main thread sends a worker to start it. */
export interface WorkerInit {
  type: "init";
  index: number;
  wasm: ArrayBuffer;
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  options: PacketLoopOptions;
  /** For a restarted worker: ControlLog.attach()'s records, applied before the log. */
  snapshot?: Int32Array;
}

export type WorkerReport =
  /** `warmUp`: why the JIT warm-up was skipped, when it was. */
  | { type: "ready"; warmUpSkipped?: string } | { type: "stopped" } | { type: "error"; message: string }
  /** A stage-timing summary (WEFT_UDP_TRACE). */
  | { type: "trace"; summary: string };

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: WorkerReport): void; close(): void };

self.onmessage = async (e: MessageEvent) => {
  const init = e.data as WorkerInit;
  if (init?.type !== "init") return;
  self.onmessage = null;
  try {
    const sys = await loadSys();
    const core = await loadCore(init.wasm);
    let warmUpSkipped: string | undefined;
    try {
      if (init.options.warmUp !== false) warmUp(sys, core, init.options);
    } catch (err) {
      warmUpSkipped = (err as Error)?.message ?? String(err);
    }
    const trace = init.options.trace ? new LoopTrace((summary) => self.postMessage({ type: "trace", summary })) : null;
    const control = new ControlReader(init.control, init.index);
    if (init.snapshot) control.applySnapshot(core, init.snapshot);
    const loop = new PacketLoop(sys, core, init.options, control, statsRow(init.stats, init.index), trace);
    self.postMessage({ type: "ready", warmUpSkipped });
    loop.run();
    loop.publish();
    trace?.flush(performance.now(), true);
    self.postMessage({ type: "stopped" });
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error)?.stack ?? String(err) });
  }
  self.close();
};
