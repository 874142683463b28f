/**
 * @module A periodic check for the backends (host-gw's 10 s route check, the vxlan device
 * watch): runs `tick` every `intervalMs` until the signal aborts or the returned stop function
 * is called. A tick that throws is logged, never fatal; ticks never overlap (they are
 * synchronous netlink work). The timer is unref'd so it never alone keeps the process up.
 */
import type { Logger } from "../log.ts";

/** Starts the loop; returns the function that stops it. */
export function startCheckLoop(opts: { signal: AbortSignal; intervalMs: number; log: Logger; what: string; tick: () => void }): () => void {
  const { signal, intervalMs, log, what, tick } = opts;
  if (signal.aborted) return () => {};
  const timer = setInterval(() => {
    try {
      tick();
    } catch (e) {
      log.error(`${what}: ${(e as Error).message ?? e}`);
    }
  }, intervalMs);
  (timer as { unref?: () => void }).unref?.();
  const stop = () => {
    clearInterval(timer);
    signal.removeEventListener("abort", stop);
  };
  signal.addEventListener("abort", stop, { once: true });
  return stop;
}
