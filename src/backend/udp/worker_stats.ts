/**
 * @module The packet workers' counters in a SharedArrayBuffer: each worker owns one row of
 * Float64 totals (exact up to 2^53) that it rewrites after every batch; the main thread sums
 * the rows for `describe()` and the Prometheus gauges. The core's own counters are u32 and
 * wrap; the worker folds their deltas into its row so nothing wraps here.
 *
 * Row layout: [0, COUNTER_COUNT) the core counters (asm/layout.ts: verdicts per direction at
 * C_EG + v and C_IN + v, datagrams, splits, ICMP, TUN writes, merges), then the host counters
 * named in HOST_COUNTERS.
 */
import * as L from "../../core/layout.ts";

/** Counters the worker keeps itself, in row order after the core's. */
export const HOST_COUNTERS = [
  "txPackets", "txBytes", "txMessages", "txSyscalls", "txErrors", "txGsoFallbacks",
  "rxPackets", "rxBytes", "rxMessages", "rxSyscalls", "rxTruncated", "rxErrors",
  "tunReads", "tunReadBytes", "tunReadErrors", "tunWrites", "tunWriteBytes", "tunWriteErrors",
  "polls", "controlFailures", "gsoOn",
] as const;
export type HostCounter = typeof HOST_COUNTERS[number];

const ROW = L.COUNTER_COUNT + HOST_COUNTERS.length;
const INDEX: Record<HostCounter, number> = Object.fromEntries(HOST_COUNTERS.map((n, i) => [n, L.COUNTER_COUNT + i])) as Record<HostCounter, number>;

/** Index of a host counter in a row (for hot code that adds to `row[i]`). */
export function hostIndex(name: HostCounter): number {
  return INDEX[name];
}

/** Verdict names by code, for drop counters (V_OK, code 0, is not a drop). */
export const VERDICT_NAMES = [
  "ok", "no_route", "ttl_expired", "too_short", "bad_version", "bad_header_length", "bad_total_length",
  "bad_checksum", "bad_vnet_hdr", "no_peer", "no_space", "unknown_source", "spoofed", "bad_descriptor",
] as const;

/** Allocates the shared rows for `workers` workers. */
export function createStatsBuffer(workers: number): SharedArrayBuffer {
  return new SharedArrayBuffer(workers * ROW * 8);
}

/** Worker `i`'s row. */
export function statsRow(buffer: SharedArrayBuffer, i: number): Float64Array {
  return new Float64Array(buffer, i * ROW * 8, ROW);
}

/** Folds a core's wrapping u32 counters into a row, remembering the last values in `last`. */
export function foldCoreCounters(counters: Uint32Array, last: Uint32Array, row: Float64Array): void {
  for (let i = 0; i < L.COUNTER_COUNT; i++) {
    const v = counters[i]!;
    const d = (v - last[i]!) >>> 0;
    if (d !== 0) {
      row[i] = row[i]! + d;
      last[i] = v;
    }
  }
}

/** The data path's totals, summed over workers. */
export interface UdpStats {
  tx: { packets: number; bytes: number; messages: number; syscalls: number; errors: number; gsoFallbacks: number };
  rx: { packets: number; bytes: number; messages: number; syscalls: number; truncated: number; errors: number };
  tun: { reads: number; readBytes: number; readErrors: number; writes: number; writeBytes: number; writeErrors: number };
  /** Egress (TUN -> UDP) drops by verdict name, zeros left out. */
  egressDrops: Record<string, number>;
  /** Ingress (UDP -> TUN) drops by verdict name, zeros left out. */
  ingressDrops: Record<string, number>;
  /** Datagrams from addresses that are no peer, plus inner sources outside the sender's subnet. */
  spoofed: number;
  /** ICMP unreachable replies written into the TUN. */
  icmpUnreachable: number;
  /** Super-packets split (TSO/USO from the TUN), segments merged (GRO into the TUN). */
  superSplit: number;
  segmentsMerged: number;
  polls: number;
  controlFailures: number;
  /** Workers still sending with UDP GSO. */
  gsoWorkers: number;
}

/** Sums the rows of `workers` workers. */
export function sumStats(buffer: SharedArrayBuffer, workers: number): UdpStats {
  const t = new Float64Array(ROW);
  for (let i = 0; i < workers; i++) {
    const row = statsRow(buffer, i);
    for (let k = 0; k < ROW; k++) t[k] = t[k]! + row[k]!;
  }
  const h = (n: HostCounter) => t[INDEX[n]]!;
  const drops = (base: number) => {
    const out: Record<string, number> = {};
    for (let v = 1; v < L.VERDICT_COUNT; v++) if (t[base + v]) out[VERDICT_NAMES[v]!] = t[base + v]!;
    return out;
  };
  return {
    tx: { packets: h("txPackets"), bytes: h("txBytes"), messages: h("txMessages"), syscalls: h("txSyscalls"), errors: h("txErrors"), gsoFallbacks: h("txGsoFallbacks") },
    rx: { packets: h("rxPackets"), bytes: h("rxBytes"), messages: h("rxMessages"), syscalls: h("rxSyscalls"), truncated: h("rxTruncated"), errors: h("rxErrors") },
    tun: { reads: h("tunReads"), readBytes: h("tunReadBytes"), readErrors: h("tunReadErrors"), writes: h("tunWrites"), writeBytes: h("tunWriteBytes"), writeErrors: h("tunWriteErrors") },
    egressDrops: drops(L.C_EG),
    ingressDrops: drops(L.C_IN),
    spoofed: t[L.C_IN + L.V_SPOOFED]! + t[L.C_IN + L.V_UNKNOWN_SOURCE]!,
    icmpUnreachable: t[L.C_EG_ICMP]!,
    superSplit: t[L.C_EG_SPLIT]!,
    segmentsMerged: t[L.C_IN_MERGED]!,
    polls: h("polls"),
    controlFailures: h("controlFailures"),
    gsoWorkers: h("gsoOn"),
  };
}

/**
 * Prometheus gauges (name -> help, read) over `read()`'s latest sums: traffic per direction,
 * drops per direction and verdict, spoofed datagrams.
 */
export function udpGauges(read: () => UdpStats): [string, { help: string; read: () => number }][] {
  const g: [string, { help: string; read: () => number }][] = [
    ["weft_udp_tx_packets", { help: "Datagrams sent to peers.", read: () => read().tx.packets }],
    ["weft_udp_tx_bytes", { help: "Payload bytes sent to peers.", read: () => read().tx.bytes }],
    ["weft_udp_rx_packets", { help: "Datagrams received from peers or others.", read: () => read().rx.packets }],
    ["weft_udp_rx_bytes", { help: "Payload bytes received.", read: () => read().rx.bytes }],
    ["weft_udp_tx_errors", { help: "Datagrams the kernel refused to send.", read: () => read().tx.errors }],
    ["weft_udp_spoofed_datagrams", { help: "Datagrams dropped: sender is no peer, or inner source outside its subnet.", read: () => read().spoofed }],
    ["weft_udp_icmp_unreachable", { help: "ICMP net-unreachable replies written into flannel0.", read: () => read().icmpUnreachable }],
  ];
  for (let v = 1; v < L.VERDICT_COUNT; v++) {
    const name = VERDICT_NAMES[v]!;
    g.push([`weft_udp_egress_dropped_${name}`, { help: `Packets from flannel0 dropped: ${name.replaceAll("_", " ")}.`, read: () => read().egressDrops[name] ?? 0 }]);
    g.push([`weft_udp_ingress_dropped_${name}`, { help: `Datagrams from peers dropped: ${name.replaceAll("_", " ")}.`, read: () => read().ingressDrops[name] ?? 0 }]);
  }
  return g;
}
