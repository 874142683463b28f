/**
 * @module The wireguard backend's two threads talk through this: the main thread publishes the
 * whole desired state of one device (its addresses, every peer with key, endpoint and allowed
 * subnets) as a versioned JSON document in a SharedArrayBuffer; the packet worker, blocked in
 * poll() most of the time and so deaf to postMessage, looks at the version once per turn (one
 * atomic load) and, when it moved, reads the document and applies the difference.
 *
 * State rather than operations: a restarted worker reads the same document and is whole again;
 * the main thread never waits for the worker.
 *
 * Layout (Int32Array over the buffer): [0] version (even: stable, odd: being written), [1] stop
 * request, [2] byte length of the document, then the UTF-8 document from byte 16. A reader that
 * sees the version change while copying retries (a seqlock).
 */

/** One peer of a device, as the worker programs it. */
export interface WgPeerConfig {
  /** The core's peer id (the route value); stable while the lease lives. */
  readonly id: number;
  /** The lease's key, for logs and status. */
  readonly lease: string;
  /** Base64 public key, from the lease's BackendData. */
  readonly publicKey: string;
  /** Where to send: the peer's PublicIP(v6) and port from its lease. */
  readonly endpoint: { readonly ip: string; readonly port: number };
  /** Allowed IPs: the peer's IPv4 subnet [network as u32, prefix length], when it has one here. */
  readonly subnet4?: readonly [number, number];
  /** Its IPv6 subnet [network as hex string, prefix length], when it has one here. */
  readonly subnet6?: readonly [string, number];
}

/** The whole state of one device. */
export interface WgDeviceState {
  /** Base64 preshared key for every peer, or null. */
  readonly psk: string | null;
  /** Persistent keepalive to every peer, ms (0: off). */
  readonly keepaliveMs: number;
  /** The cluster network the routes live in, and the lease size (for the core's route table). */
  readonly cluster?: { readonly network: number; readonly networkLen: number; readonly subnetLen: number };
  /** Source of ICMP errors written into the TUN (IPv4 as u32; IPv6 as hex). */
  readonly tunAddr4?: number;
  readonly tunAddr6?: string;
  /** Our own lease subnets: the only sources egress forwards. */
  readonly own4?: readonly [number, number];
  readonly own6?: readonly [string, number];
  readonly peers: readonly WgPeerConfig[];
}

const HEADER = 16;
const enc = new TextEncoder();
const dec = new TextDecoder();

/** The writer side (main thread). */
export class WgStateWriter {
  readonly buffer: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #bytes: Uint8Array;

  /** A channel whose document may grow to `capacity` bytes (peers cost about 250 bytes each). */
  constructor(capacity = 4 << 20) {
    this.buffer = new SharedArrayBuffer(HEADER + capacity);
    this.#w = new Int32Array(this.buffer, 0, HEADER / 4);
    this.#bytes = new Uint8Array(this.buffer, HEADER);
  }

  /** Publishes `state`; throws when it does not fit (naming the peer count). */
  publish(state: WgDeviceState): void {
    const doc = enc.encode(JSON.stringify(state));
    if (doc.length > this.#bytes.length) {
      throw new RangeError(`wireguard backend: the state of ${state.peers.length} peers takes ${doc.length} bytes; the channel holds ${this.#bytes.length}`);
    }
    const v = Atomics.load(this.#w, 0);
    Atomics.store(this.#w, 0, v + 1); // odd: being written
    this.#bytes.set(doc);
    Atomics.store(this.#w, 2, doc.length);
    Atomics.store(this.#w, 0, v + 2);
  }

  /** Asks the worker to return from its loop. */
  stop(): void {
    Atomics.store(this.#w, 1, 1);
  }
}

/** The reader side (packet worker). */
export class WgStateReader {
  readonly #w: Int32Array;
  readonly #bytes: Uint8Array;
  #seen = 0;

  constructor(buffer: SharedArrayBuffer) {
    this.#w = new Int32Array(buffer, 0, HEADER / 4);
    this.#bytes = new Uint8Array(buffer, HEADER);
  }

  get stopping(): boolean {
    return Atomics.load(this.#w, 1) !== 0;
  }

  /** The new state when the version moved since the last call, else null. One atomic load when nothing changed. */
  poll(): WgDeviceState | null {
    const v = Atomics.load(this.#w, 0);
    if (v === this.#seen || v === 0) return null;
    for (;;) {
      const before = Atomics.load(this.#w, 0);
      if (before & 1) continue; // being written: the writer finishes in microseconds
      const len = Atomics.load(this.#w, 2);
      const text = dec.decode(this.#bytes.slice(0, len));
      if (Atomics.load(this.#w, 0) !== before) continue;
      this.#seen = before;
      return JSON.parse(text) as WgDeviceState;
    }
  }
}
