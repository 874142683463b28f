/**
 * @module The wireguard backend's packet worker (a Worker thread): loads its own syscall layer
 * and Wasm core and runs one WgLoop until the state channel says stop. One worker per device:
 * a session's send counter must have one writer, so a device's packets go through one core.
 *
 * Messages: in, one `WgWorkerInit`; out, `{ type: "ready" }` once the loop runs, `{ type:
 * "status", status }` about once a second while something changes, then `{ type: "stopped" }` or
 * `{ type: "error", message }`. The fds belong to the main thread, which closes them after the
 * worker has stopped.
 */
import { loadSys } from "../../../ffi/sys.ts";
import { loadCore } from "../../core/loader.ts";
import { statsRow } from "../udp/worker_stats.ts";
import { timerSettings } from "./peer_session.ts";
import { WgStateReader } from "./wg_channel.ts";
import { WgLoop, type WgLoopOptions, type WgLoopStatus } from "./wg_loop.ts";

export interface WgWorkerInit {
  type: "init";
  wasm: Uint8Array;
  state: SharedArrayBuffer;
  stats: SharedArrayBuffer;
  options: WgLoopOptions;
  /** WEFT_TEST_WG_TIMERS's text in a test run (never in a release build). */
  timers?: string;
}

export type WgWorkerReport =
  | { type: "ready" } | { type: "stopped" } | { type: "error"; message: string } | { type: "status"; status: WgLoopStatus };

declare const self: { onmessage: ((e: MessageEvent) => void) | null; postMessage(m: WgWorkerReport): void; close(): void };

self.onmessage = async (e: MessageEvent) => {
  const init = e.data as WgWorkerInit;
  if (init?.type !== "init") return;
  self.onmessage = null;
  try {
    const sys = await loadSys();
    const core = await loadCore(init.wasm);
    const loop = new WgLoop(sys, core, init.options, new WgStateReader(init.state), statsRow(init.stats, 0),
      (status) => self.postMessage({ type: "status", status }), timerSettings(init.timers));
    self.postMessage({ type: "ready" });
    loop.run();
    loop.publish();
    loop.reportStatus();
    self.postMessage({ type: "stopped" });
  } catch (err) {
    self.postMessage({ type: "error", message: (err as Error)?.stack ?? String(err) });
  }
  self.close();
};
