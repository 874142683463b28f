/**
 * @module A push-to-pull bridge for watches: callbacks `push` items or errors, and one consumer
 * iterates them in order until its signal aborts (an error ends the iteration by throwing).
 */

export class EventQueue<T> {
  #items: (T | Error)[] = [];
  #wake?: () => void;

  push(item: T | Error): void {
    this.#items.push(item);
    this.#wake?.();
  }

  /** Yields items in order; throws the first error; returns when `signal` aborts. */
  async *drain(signal: AbortSignal): AsyncGenerator<T> {
    const onAbort = () => this.#wake?.();
    signal.addEventListener("abort", onAbort);
    try {
      while (!signal.aborted) {
        const next = this.#items.shift();
        if (next === undefined) {
          await new Promise<void>((r) => (this.#wake = r));
          this.#wake = undefined;
          continue;
        }
        if (next instanceof Error) throw next;
        yield next;
      }
    } finally {
      signal.removeEventListener("abort", onAbort);
    }
  }
}
