/**
 * @module The contract of a weft core: the exported functions (identical in the Wasm core and
 * the TypeScript reference) and the typed views of its fixed memory regions. Memory layout and
 * ring protocol: asm/index.ts and asm/layout.ts.
 */

/** The scalar functions; all return numbers (errors as negative ERR_* codes). */
export interface CoreExports {
  /** LAYOUT_VERSION of the implementation; also the trivial call used to measure call cost. */
  layoutVersion(): number;
  /** OPT_VNET_HDR: TUN reads and writes carry a 10-byte virtio_net_hdr. */
  setOptions(flags: number): void;
  /** Source address of ICMP unreachable replies (the lease's TUN address, as flanneld). */
  setTunAddr4(addr: number): void;
  /** Same for ICMPv6, from ARG[0..16]. */
  setTunAddr6(): void;
  /** Egress forwards only IPv4 packets from `subnet/len`, our lease (len 0, the default: any). */
  setOwnSubnet4(subnet: number, len: number): number;
  /** Egress forwards only IPv6 packets from ARG[0..16]/len (len 0, the default: any). */
  setOwnSubnet6(len: number): number;
  /** Installs or replaces `prefix/len -> value` (value 0..ROUTE_VALUE_MAX, usually a peer id). */
  route4Insert(prefix: number, len: number, value: number): number;
  /** Removes `prefix/len` (ERR_NOT_FOUND when absent). */
  route4Delete(prefix: number, len: number): number;
  /** Longest-prefix match: the value, or NO_ROUTE (-1). */
  route4Lookup(addr: number): number;
  /** Looks up `count` u32 addresses at LOOKUP_IN into i32 LOOKUP_OUT; returns matches. */
  route4LookupBatch(count: number): number;
  /** route4Insert for the IPv6 prefix at ARG[0..16]. */
  route6Insert(len: number, value: number): number;
  route6Delete(len: number): number;
  /** Lookup of the IPv6 address at ARG[0..16]. */
  route6Lookup(): number;
  /** Looks up `count` 16-byte addresses at LOOKUP_IN into LOOKUP_OUT; returns matches. */
  route6LookupBatch(count: number): number;
  /** Direct-index fast path for flannel's `network/networkLen` split into `/subnetLen` leases. */
  setClusterNetwork(network: number, networkLen: number, subnetLen: number): number;
  /** Removes every route; peers and options stay. */
  routeClear(): void;
  /**
   * Sets peer `id` (< PEER_CAP): public `ip`:`port` (0: no public IPv4), lease subnet
   * `subnet4/len4`; clears its IPv6 subnet and public IPv6.
   */
  peerSet(id: number, ip: number, port: number, subnet4: number, len4: number): number;
  /** Sets peer `id`'s IPv6 subnet ARG[0..16]/len6. */
  peerSetSubnet6(id: number, len6: number): number;
  /**
   * Sets peer `id`'s public IPv6 ARG[0..16] (datagrams from it are accepted); `via6` non-zero
   * sends to it over IPv6 (egress descriptors then carry 0.0.0.0 and the host reads PUBLIC6).
   */
  peerSetPublic6(id: number, via6: number): number;
  peerDelete(id: number): number;
  /** TUN -> UDP over EG_IN_DESC[start, start+count); returns descriptors consumed. */
  egress(start: number, count: number): number;
  egressUdpCount(): number;
  egressTunCount(): number;
  /** UDP -> TUN over IN_IN_DESC[start, start+count); returns descriptors consumed. */
  ingress(start: number, count: number): number;
  ingressTunCount(): number;
}

/** Views of the fixed regions (they never detach: the memory never grows). */
export interface CoreRegions {
  arg: Uint8Array;
  counters: Uint32Array;
  lookupIn: Uint8Array;
  lookupIn4: Uint32Array;
  lookupOut: Int32Array;
  egInDesc: Uint8Array;
  egUdpDesc: Uint8Array;
  egTunDesc: Uint8Array;
  inInDesc: Uint8Array;
  inTunDesc: Uint8Array;
  peers: Uint8Array;
  egIn: Uint8Array;
  egOut: Uint8Array;
  egTun: Uint8Array;
  inIn: Uint8Array;
  inOut: Uint8Array;
  /** WireGuard transport (asm/wg_transport.ts): sessions, seal/open descriptors, verdict counters. */
  wgSessions: Uint8Array;
  wgSealDesc: Uint8Array;
  wgOpenDesc: Uint8Array;
  wgCounters: Uint32Array;
}

/**
 * The WireGuard transport and its primitives (asm/wg_transport.ts, asm/crypto_api.ts); only the
 * Wasm core has them. Host code uses them through src/core/wg_transport.ts.
 */
export interface WgCoreExports {
  /** Installs session `slot`: send key ARG[0..32], receive key ARG[32..64]; 0 or ERR_INVALID. */
  wgSessionSet(slot: number, localIndex: number, remoteIndex: number): number;
  wgSessionDelete(slot: number): number;
  /** Seals WG_SEAL_DESC[start, start+count) padding up to `mtu` (0: to 16); returns processed. */
  wgSeal(start: number, count: number, mtu: number): number;
  /** Opens WG_OPEN_DESC[start, start+count) in place; returns processed. */
  wgOpen(start: number, count: number): number;
  /** Raw primitives for vectors and benchmarks: key ARG[0..32], nonce ARG[32..44]; WV_* codes. */
  chacha20XorAt(counter: number, src: number, len: number, dst: number): number;
  poly1305At(src: number, len: number, dst: number): number;
  aeadSealAt(aad: number, aadLen: number, src: number, len: number, dst: number): number;
  aeadOpenAt(aad: number, aadLen: number, ct: number, len: number, dst: number): number;
  /** 1: ChaCha20 four blocks at a time in Wasm SIMD (default); 0: scalar. */
  setChaChaSimd(on: number): void;
}

export interface Core extends CoreExports {
  /** "wasm" or "reference". */
  readonly kind: string;
  /** The whole memory (MEMORY_BYTES), with byte and DataView access over it. */
  readonly buffer: ArrayBuffer;
  readonly bytes: Uint8Array;
  readonly view: DataView;
  readonly regions: CoreRegions;
  /** The WireGuard transport exports (Wasm core only). */
  readonly wg?: WgCoreExports;
}
