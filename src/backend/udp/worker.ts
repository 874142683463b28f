/**
 * @module The udp backend's packet worker (a Worker thread): loads its own syscall layer and
 * Wasm core, then runs one PacketLoop until the control log says stop. Blocking poll/read/
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
import { statsRow } from "./worker_stats.ts";

/** What the main thread sends a worker to start it. */
export interface WorkerInit {
  type: "init";
  index: number;
  wasm: ArrayBuffer;
  control: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  options: PacketLoopOptions;
}

export type WorkerReport =
  | { type: "ready" } | { type: "stopped" } | { type: "error"; message: string }
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
    const trace = init.options.trace ? new LoopTrace((summary) => self.postMessage({ type: "trace", summary })) : null;
    const loop = new PacketLoop(sys, core, init.options, new ControlReader(init.control, init.index), statsRow(init.stats, init.index), trace);
    self.postMessage({ type: "ready" });
    loop.run();
    loop.publish();
    trace?.flush(performance.now(), true);
    self.postMessage({ type: "stopped" });
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error)?.stack ?? String(err) });
  }
  self.close();
};
