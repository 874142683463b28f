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
 * A record is written before head moves past it; the writer never laps the slowest attached
 * reader (append() waits, asynchronously, for room).
 *
 * Restarting a reader: the log wraps, so a new core cannot replay it from record 0. The writer
 * keeps the state its records add up to (cluster, TUN address, peers by id, routes by prefix);
 * `detach(i)` stops waiting for a dead worker, `attach(i)` returns that state as records for
 * `applySnapshot()` and moves the reader's tail to the head, so the new core gets the state,
 * then every record after it, exactly once.
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
  /** Readers append() does not wait for (dead workers). */
  readonly #detached = new Set<number>();
  /** The state the records appended so far add up to. */
  #cluster?: ControlOp;
  #tunAddr?: ControlOp;
  readonly #peers = new Map<number, ControlOp>();
  readonly #routes = new Map<string, ControlOp>();

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

  /** Stops waiting for reader `i` (its worker died); attach() brings it back. */
  detach(i: number): void {
    this.#detached.add(i);
  }

  /**
   * Brings reader `i` back for a new core: returns the state appended so far as encoded records
   * (for applySnapshot) and sets the reader's tail to the head, so it continues after them.
   */
  attach(i: number): Int32Array {
    const ops = [this.#cluster, this.#tunAddr, ...this.#peers.values(), ...this.#routes.values()].filter((o) => o !== undefined);
    const out = new Int32Array(ops.length * RECORD_WORDS);
    ops.forEach((o, k) => encode(out, k * RECORD_WORDS, o));
    Atomics.store(this.#w, 2 + i, this.head);
    this.#detached.delete(i);
    return out;
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
      this.#remember(op);
      head++;
      done++;
    }
    Atomics.store(w, 0, head);
    return done;
  }

  #slowest(): number {
    let min = Infinity;
    for (let i = 0; i < this.#readers; i++) if (!this.#detached.has(i)) min = Math.min(min, this.tail(i));
    return min === Infinity ? Atomics.load(this.#w, 0) : min;
  }

  /** Folds `o` into the state attach() hands out. */
  #remember(o: ControlOp): void {
    switch (o.op) {
      case "peerSet": this.#peers.set(o.id, o); break;
      case "peerDelete": this.#peers.delete(o.id); break;
      case "routeInsert": this.#routes.set(`${o.prefix}/${o.len}`, o); break;
      case "routeDelete": this.#routes.delete(`${o.prefix}/${o.len}`); break;
      case "cluster": this.#cluster = o; break;
      case "tunAddr": this.#tunAddr = o; break;
    }
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

  /** Applies the records attach() returned (before the first applyTo); returns how many. */
  applySnapshot(core: CoreExports, records: Int32Array): number {
    const n = records.length / RECORD_WORDS;
    for (let k = 0; k < n; k++) if (applyRecord(core, records, k * RECORD_WORDS) < 0) this.failures++;
    return n;
  }

  /** Applies every record appended since the last call to `core`; returns how many. */
  applyTo(core: CoreExports): number {
    const w = this.#w;
    const head = Atomics.load(w, 0);
    if (head === this.#tail) return 0;
    const start = this.#tail;
    for (let t = start; t < head; t++) {
      if (applyRecord(core, w, HEADER + (t % RECORDS) * RECORD_WORDS) < 0) this.failures++;
    }
    this.#tail = head;
    Atomics.store(w, 2 + this.index, head);
    return head - start;
  }
}

/** Applies the record at `r` of `w` to `core`; returns the core's result code. */
function applyRecord(core: CoreExports, w: Int32Array, r: number): number {
  const a = w[r + 1]!, b = w[r + 2]!, c = w[r + 3]!, d = w[r + 4]!, e = w[r + 5]!;
  switch (w[r]) {
    case OP_PEER_SET: return core.peerSet(a, b >>> 0, c, d >>> 0, e);
    case OP_PEER_DELETE: return core.peerDelete(a);
    case OP_ROUTE_INSERT: return core.route4Insert(a >>> 0, b, c);
    case OP_ROUTE_DELETE: return core.route4Delete(a >>> 0, b);
    case OP_CLUSTER: return core.setClusterNetwork(a >>> 0, b, c);
    case OP_TUN_ADDR: core.setTunAddr4(a >>> 0); return 0;
  }
  return 0;
}
