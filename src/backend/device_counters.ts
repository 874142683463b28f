/**
 * @module A device's traffic counters for the dashboard, read from
 * /sys/class/net/<dev>/statistics (the same numbers as `ip -s link show DEV`).
 */
import { readFileSync } from "node:fs";

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
