/**
 * @module An ordered log of core operations in a SharedArrayBuffer: the main thread appends
 * (peer and route changes, cluster network, TUN address), every packet worker replays it into
 * its own core between batches. A worker blocked in poll() cannot take postMessage events, but it
 * reads this log each time it wakes, so changes reach every core in order, before the next
 * packet it handles, with no message passing on the data path.
 *
 * Layout (Int32Array over the buffer):
 *   [0]            head: records appended so far (written last, with Atomics.store)
 *   [1]            stop: non-zero asks the workers to return
 *   [2 .. 2+W)     tail of worker w: records it has applied (its Atomics.store)
 *   [HEADER ..)    RECORDS records of RECORD_WORDS words: op, a, b, c, d, e
 * A record is written before head moves past it; the writer never laps the slowest reader
 * (append() waits, asynchronously, for room).
 */
import type { CoreExports } from "../../core/types.ts";
import type { CoreOp } from "./peer_table.ts";

const RECORD_WORDS = 8;
const RECORDS = 16384;
const HEADER = 16;
const MAX_READERS = HEADER - 2;

const OP_PEER_SET = 1, OP_PEER_DELETE = 2, OP_ROUTE_INSERT = 3, OP_ROUTE_DELETE = 4, OP_CLUSTER = 5, OP_TUN_ADDR = 6;

/** Operations beyond the peer table's: network-wide settings. */
export type ControlOp =
  | CoreOp
  | { readonly op: "cluster"; readonly network: number; readonly networkLen: number; readonly subnetLen: number }
  | { readonly op: "tunAddr"; readonly addr: number };

/** The writer side; lives on the main thread. */
export class ControlLog {
  readonly buffer: SharedArrayBuffer;
  readonly #w: Int32Array;
  #readers: number;

  /** A log for `readers` workers (1..14). */
  constructor(readers: number) {
    if (!Number.isInteger(readers) || readers < 1 || readers > MAX_READERS) {
      throw new RangeError(`ControlLog for ${readers} readers is invalid (1..${MAX_READERS})`);
    }
    this.#readers = readers;
    this.buffer = new SharedArrayBuffer((HEADER + RECORDS * RECORD_WORDS) * 4);
    this.#w = new Int32Array(this.buffer);
  }

  /** Records appended so far. */
  get head(): number {
    return Atomics.load(this.#w, 0);
  }

  /** The records worker `i` has applied. */
  tail(i: number): number {
    return Atomics.load(this.#w, 2 + i);
  }

  /** Asks the readers to stop (they see it at their next wake-up). */
  stop(): void {
    Atomics.store(this.#w, 1, 1);
  }

  /** Whether every reader has applied everything appended. */
  get drained(): boolean {
    const head = this.head;
    for (let i = 0; i < this.#readers; i++) if (this.tail(i) < head) return false;
    return true;
  }

  /**
   * Appends `ops` in order. When the slowest worker is a whole log behind, waits for it
   * (`alive()` false gives up: a dead worker never catches up); returns how many were appended.
   */
  async append(ops: readonly ControlOp[], alive: () => boolean = () => true): Promise<number> {
    const w = this.#w;
    let head = Atomics.load(w, 0);
    let done = 0;
    for (const op of ops) {
      while (head - this.#slowest() >= RECORDS) {
        if (!alive()) return done;
        Atomics.store(w, 0, head);
        await new Promise((r) => setTimeout(r, 1));
      }
      encode(w, HEADER + (head % RECORDS) * RECORD_WORDS, op);
      head++;
      done++;
    }
    Atomics.store(w, 0, head);
    return done;
  }

  #slowest(): number {
    let min = Infinity;
    for (let i = 0; i < this.#readers; i++) min = Math.min(min, this.tail(i));
    return min;
  }
}

function encode(w: Int32Array, at: number, o: ControlOp): void {
  switch (o.op) {
    case "peerSet": w.set([OP_PEER_SET, o.id, o.ip | 0, o.port, o.subnet | 0, o.len], at); break;
    case "peerDelete": w.set([OP_PEER_DELETE, o.id, 0, 0, 0, 0], at); break;
    case "routeInsert": w.set([OP_ROUTE_INSERT, o.prefix | 0, o.len, o.id, 0, 0], at); break;
    case "routeDelete": w.set([OP_ROUTE_DELETE, o.prefix | 0, o.len, 0, 0, 0], at); break;
    case "cluster": w.set([OP_CLUSTER, o.network | 0, o.networkLen, o.subnetLen, 0, 0], at); break;
    case "tunAddr": w.set([OP_TUN_ADDR, o.addr | 0, 0, 0, 0, 0], at); break;
  }
}

/** The reader side; one per worker, over the buffer the main thread posted. */
export class ControlReader {
  readonly #w: Int32Array;
  #tail: number;
  /** Core calls that returned an error code (a bug: the main thread plans valid operations). */
  failures = 0;

  constructor(buffer: SharedArrayBuffer, readonly index: number) {
    this.#w = new Int32Array(buffer);
    this.#tail = Atomics.load(this.#w, 2 + index);
  }

  /** Whether the main thread asked the workers to stop. */
  get stopping(): boolean {
    return Atomics.load(this.#w, 1) !== 0;
  }

  /** Applies every record appended since the last call to `core`; returns how many. */
  applyTo(core: CoreExports): number {
    const w = this.#w;
    const head = Atomics.load(w, 0);
    if (head === this.#tail) return 0;
    const start = this.#tail;
    for (let t = start; t < head; t++) {
      const r = HEADER + (t % RECORDS) * RECORD_WORDS;
      const a = w[r + 1]!, b = w[r + 2]!, c = w[r + 3]!, d = w[r + 4]!, e = w[r + 5]!;
      let rc = 0;
      switch (w[r]) {
        case OP_PEER_SET: rc = core.peerSet(a, b >>> 0, c, d >>> 0, e); break;
        case OP_PEER_DELETE: rc = core.peerDelete(a); break;
        case OP_ROUTE_INSERT: rc = core.route4Insert(a >>> 0, b, c); break;
        case OP_ROUTE_DELETE: rc = core.route4Delete(a >>> 0, b); break;
        case OP_CLUSTER: rc = core.setClusterNetwork(a >>> 0, b, c); break;
        case OP_TUN_ADDR: core.setTunAddr4(a >>> 0); break;
      }
      if (rc < 0) this.failures++;
    }
    this.#tail = head;
    Atomics.store(w, 2 + this.index, head);
    return head - start;
  }
}
