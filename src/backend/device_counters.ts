/**
 * @module A device's traffic counters for the dashboard, read from
 * /sys/class/net/<dev>/statistics (the same numbers as `ip -s link show DEV`).
 */
import { readFileSync } from "node:fs";
import type { Family, Sample } from "../status/metrics.ts";

export interface DeviceCounters {
  rxBytes: number;
  rxPackets: number;
  txBytes: number;
  txPackets: number;
  rxDropped: number;
  txDropped: number;
}

/** Equivalent to: `ip -s link show DEV`; zeros when the device or file is missing. */
export function readDeviceCounters(dev: string): DeviceCounters {
  const read = (name: string): number => {
    try {
      return Number(readFileSync(`/sys/class/net/${dev}/statistics/${name}`, "utf8").trim()) || 0;
    } catch {
      return 0;
    }
  };
  return {
    rxBytes: read("rx_bytes"), rxPackets: read("rx_packets"), txBytes: read("tx_bytes"), txPackets: read("tx_packets"),
    rxDropped: read("rx_dropped"), txDropped: read("tx_dropped"),
  };
}

/**
 * Prometheus families for the counters of `devices()` (read at scrape time, labelled by device):
 * `weft_device_{receive,transmit}_{bytes,packets,dropped_packets}_total`. `dropped` counts what
 * the kernel counts as dropped on the device (e.g. an IPv6 router solicitation sent on a fresh
 * device with no route for it), not weft's own drops.
 */
export function deviceFamilies(devices: () => readonly string[]): [string, Family][] {
  const fam = (help: string, key: keyof DeviceCounters): Family => ({
    type: "counter", help,
    samples: () => devices().map((device): Sample => [{ device }, readDeviceCounters(device)[key]]),
  });
  return [
    ["weft_device_receive_bytes_total", fam("Bytes received on the data path's devices.", "rxBytes")],
    ["weft_device_receive_packets_total", fam("Packets received on the data path's devices.", "rxPackets")],
    ["weft_device_receive_dropped_packets_total", fam("Received packets the kernel dropped on the device.", "rxDropped")],
    ["weft_device_transmit_bytes_total", fam("Bytes sent on the data path's devices.", "txBytes")],
    ["weft_device_transmit_packets_total", fam("Packets sent on the data path's devices.", "txPackets")],
    ["weft_device_transmit_dropped_packets_total", fam("Packets to send that the kernel dropped on the device.", "txDropped")],
  ];
}
