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
import type { Family, Sample } from "../../status/metrics.ts";
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
 * The udp data path's Prometheus families over `read()`'s latest sums: datagrams and bytes per
 * direction, send errors, spoofed datagrams, ICMP unreachables, and drops per direction and
 * reason (the core's verdicts; a bounded label set).
 */
export function udpFamilies(read: () => UdpStats): [string, Family][] {
  const dirs = (f: (s: UdpStats, d: "tx" | "rx") => number) => () => {
    const s = read();
    return [[{ direction: "tx" }, f(s, "tx")], [{ direction: "rx" }, f(s, "rx")]] as const;
  };
  const one = (f: (s: UdpStats) => number) => () => [[{}, f(read())]] as const;
  return [
    ["weft_udp_datagrams_total", { type: "counter", help: "Datagrams sent to (tx) and received from (rx) peers.", samples: dirs((s, d) => s[d].packets) }],
    ["weft_udp_payload_bytes_total", { type: "counter", help: "Payload bytes sent (tx) and received (rx).", samples: dirs((s, d) => s[d].bytes) }],
    ["weft_udp_send_errors_total", { type: "counter", help: "Datagrams the kernel refused to send.", samples: one((s) => s.tx.errors) }],
    ["weft_udp_spoofed_datagrams_total", { type: "counter", help: "Datagrams dropped: sender is no peer, or inner source outside its subnet.", samples: one((s) => s.spoofed) }],
    ["weft_udp_icmp_unreachable_total", { type: "counter", help: "ICMP net-unreachable replies written into flannel0.", samples: one((s) => s.icmpUnreachable) }],
    ["weft_udp_dropped_packets_total", {
      type: "counter", help: "Packets dropped by the data path, by direction (egress: from flannel0, ingress: from peers) and reason.",
      samples: () => {
        const s = read();
        const out: Sample[] = [];
        for (let v = 1; v < L.VERDICT_COUNT; v++) {
          const reason = VERDICT_NAMES[v]!;
          out.push([{ direction: "egress", reason }, s.egressDrops[reason] ?? 0], [{ direction: "ingress", reason }, s.ingressDrops[reason] ?? 0]);
        }
        return out;
      },
    }],
  ];
}
