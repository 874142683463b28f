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
 *   [HEADER ..)    RECORDS records of RECORD_WORDS words: op, then up to 7 arguments (an IPv6
 *                  address as 4 words, most significant first, written into the core's ARG)
 * A record is written before head moves past it; the writer never laps the slowest attached
 * reader (append() waits, asynchronously, for room).
 *
 * Restarting a reader: the log wraps, so a new core cannot replay it from record 0. The writer
 * keeps the state its records add up to (cluster, TUN and own addresses, peers by id with their
 * IPv6 settings after them, routes by prefix);
 * `detach(i)` stops waiting for a dead worker, `attach(i)` returns that state as records for
 * `applySnapshot()` and moves the reader's tail to the head, so the new core gets the state,
 * then every record after it, exactly once.
 */
import type { Core } from "../../core/types.ts";
import type { CoreOp } from "./peer_table.ts";

const RECORD_WORDS = 8;
const RECORDS = 16384;
const HEADER = 16;
const MAX_READERS = HEADER - 2;

const OP_PEER_SET = 1, OP_PEER_DELETE = 2, OP_ROUTE_INSERT = 3, OP_ROUTE_DELETE = 4, OP_CLUSTER = 5, OP_TUN_ADDR = 6;
const OP_PEER_SUBNET6 = 7, OP_PEER_PUBLIC6 = 8, OP_ROUTE6_INSERT = 9, OP_ROUTE6_DELETE = 10, OP_TUN_ADDR6 = 11;
const OP_OWN_SUBNET4 = 12, OP_OWN_SUBNET6 = 13;

/** Operations beyond the peer table's: network-wide settings. */
export type ControlOp =
  | CoreOp
  | { readonly op: "cluster"; readonly network: number; readonly networkLen: number; readonly subnetLen: number }
  | { readonly op: "tunAddr"; readonly addr: number }
  | { readonly op: "tunAddr6"; readonly addr: bigint }
  /** Our lease's subnets: egress forwards only packets from them (len 0: no check). */
  | { readonly op: "ownSubnet4"; readonly subnet: number; readonly len: number }
  | { readonly op: "ownSubnet6"; readonly prefix: bigint; readonly len: number };

/** The writer side; lives on the main thread. */
export class ControlLog {
  readonly buffer: SharedArrayBuffer;
  readonly #w: Int32Array;
  #readers: number;
  /** Readers append() does not wait for (dead workers). */
  readonly #detached = new Set<number>();
  /** The state the records appended so far add up to. */
  #cluster?: ControlOp;
  /** tunAddr, tunAddr6, ownSubnet4, ownSubnet6: the last of each. */
  readonly #settings = new Map<string, ControlOp>();
  /** Per peer id: its peerSet, then its peerSubnet6/peerPublic6 (which peerSet clears). */
  readonly #peers = new Map<number, ControlOp[]>();
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
    const ops = [this.#cluster, ...this.#settings.values(), ...[...this.#peers.values()].flat(), ...this.#routes.values()]
      .filter((o) => o !== undefined);
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
      case "peerSet": this.#peers.set(o.id, [o]); break;
      case "peerSubnet6": case "peerPublic6": {
        const list = this.#peers.get(o.id);
        if (list) list.splice(0, list.length, ...list.filter((x) => x.op !== o.op), o);
        break;
      }
      case "peerDelete": this.#peers.delete(o.id); break;
      case "routeInsert": this.#routes.set(`${o.prefix}/${o.len}`, o); break;
      case "routeDelete": this.#routes.delete(`${o.prefix}/${o.len}`); break;
      case "route6Insert": this.#routes.set(`6:${o.prefix}/${o.len}`, o); break;
      case "route6Delete": this.#routes.delete(`6:${o.prefix}/${o.len}`); break;
      case "cluster": this.#cluster = o; break;
      case "tunAddr": case "tunAddr6": case "ownSubnet4": case "ownSubnet6": this.#settings.set(o.op, o); break;
    }
  }
}

/** Writes the 4 words of IPv6 address `a` (most significant first) at `at`. */
function put6(w: Int32Array, at: number, a: bigint): void {
  for (let k = 0; k < 4; k++) w[at + k] = Number((a >> BigInt(96 - 32 * k)) & 0xffffffffn) | 0;
}

function encode(w: Int32Array, at: number, o: ControlOp): void {
  w.fill(0, at, at + RECORD_WORDS);
  switch (o.op) {
    case "peerSet": w.set([OP_PEER_SET, o.id, o.ip | 0, o.port, o.subnet | 0, o.len], at); break;
    case "peerSubnet6": w.set([OP_PEER_SUBNET6, o.id, o.len], at); put6(w, at + 3, o.prefix); break;
    case "peerPublic6": w.set([OP_PEER_PUBLIC6, o.id, o.via6 ? 1 : 0], at); put6(w, at + 3, o.ip); break;
    case "peerDelete": w.set([OP_PEER_DELETE, o.id], at); break;
    case "routeInsert": w.set([OP_ROUTE_INSERT, o.prefix | 0, o.len, o.id], at); break;
    case "routeDelete": w.set([OP_ROUTE_DELETE, o.prefix | 0, o.len], at); break;
    case "route6Insert": w.set([OP_ROUTE6_INSERT, o.id, o.len], at); put6(w, at + 3, o.prefix); break;
    case "route6Delete": w.set([OP_ROUTE6_DELETE, 0, o.len], at); put6(w, at + 3, o.prefix); break;
    case "cluster": w.set([OP_CLUSTER, o.network | 0, o.networkLen, o.subnetLen], at); break;
    case "tunAddr": w.set([OP_TUN_ADDR, o.addr | 0], at); break;
    case "tunAddr6": w.set([OP_TUN_ADDR6], at); put6(w, at + 3, o.addr); break;
    case "ownSubnet4": w.set([OP_OWN_SUBNET4, o.subnet | 0, o.len], at); break;
    case "ownSubnet6": w.set([OP_OWN_SUBNET6, 0, o.len], at); put6(w, at + 3, o.prefix); break;
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
  applySnapshot(core: Core, records: Int32Array): number {
    const n = records.length / RECORD_WORDS;
    for (let k = 0; k < n; k++) if (applyRecord(core, records, k * RECORD_WORDS) < 0) this.failures++;
    return n;
  }

  /** Applies every record appended since the last call to `core`; returns how many. */
  applyTo(core: Core): number {
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

/** Copies the IPv6 address in words r+3..r+6 of `w` into the core's ARG (network order). */
function arg6(core: Core, w: Int32Array, r: number): void {
  const arg = core.regions.arg;
  for (let k = 0; k < 4; k++) {
    const v = w[r + 3 + k]!;
    arg[4 * k] = v >>> 24; arg[4 * k + 1] = v >>> 16; arg[4 * k + 2] = v >>> 8; arg[4 * k + 3] = v;
  }
}

/** Applies the record at `r` of `w` to `core`; returns the core's result code. */
function applyRecord(core: Core, w: Int32Array, r: number): number {
  const a = w[r + 1]!, b = w[r + 2]!, c = w[r + 3]!, d = w[r + 4]!, e = w[r + 5]!;
  switch (w[r]) {
    case OP_PEER_SET: return core.peerSet(a, b >>> 0, c, d >>> 0, e);
    case OP_PEER_SUBNET6: arg6(core, w, r); return core.peerSetSubnet6(a, b);
    case OP_PEER_PUBLIC6: arg6(core, w, r); return core.peerSetPublic6(a, b);
    case OP_PEER_DELETE: return core.peerDelete(a);
    case OP_ROUTE_INSERT: return core.route4Insert(a >>> 0, b, c);
    case OP_ROUTE_DELETE: return core.route4Delete(a >>> 0, b);
    case OP_ROUTE6_INSERT: arg6(core, w, r); return core.route6Insert(b, a);
    case OP_ROUTE6_DELETE: arg6(core, w, r); return core.route6Delete(b);
    case OP_CLUSTER: return core.setClusterNetwork(a >>> 0, b, c);
    case OP_TUN_ADDR: core.setTunAddr4(a >>> 0); return 0;
    case OP_TUN_ADDR6: arg6(core, w, r); core.setTunAddr6(); return 0;
    case OP_OWN_SUBNET4: return core.setOwnSubnet4(a >>> 0, b);
    case OP_OWN_SUBNET6: arg6(core, w, r); return core.setOwnSubnet6(b);
  }
  return 0;
}
