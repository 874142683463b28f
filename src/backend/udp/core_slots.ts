/**
 * @module Where a packet loop's batches live in the core's memory, and the two TUN moves every
 * loop makes (the udp backend's PacketLoop, the wireguard backend's WgLoop): TUN reads go into
 * fixed slots of EG_IN, one packet each (a TSO super-packet with its virtio_net_hdr when offloads
 * are on, else one MTU); received datagrams into fixed slots of IN_IN, each after VNET_HDR_LEN
 * bytes of headroom the core may write a header into; TUN writes name their bytes by offset into
 * the core's memory. Nothing is allocated per packet.
 */
import * as L from "../../core/layout.ts";
import { EAGAIN, EINTR } from "../../../ffi/linux.ts";
import type { Sys } from "../../../ffi/sys.ts";
import { hostIndex } from "./worker_stats.ts";

const align = (n: number, a: number) => Math.ceil(n / a) * a;

const C = {
  tunReads: hostIndex("tunReads"), tunReadBytes: hostIndex("tunReadBytes"), tunReadErrors: hostIndex("tunReadErrors"),
  tunWrites: hostIndex("tunWrites"), tunWriteBytes: hostIndex("tunWriteBytes"), tunWriteErrors: hostIndex("tunWriteErrors"),
};

/** TUN read slots in EG_IN: `views[i]` is handed to read(), `offs[i]` goes into its descriptor. */
export interface EgressSlots {
  readonly views: readonly Uint8Array[];
  readonly offs: Uint32Array;
  /** How many packets one turn reads at most. */
  readonly batch: number;
}

export function egressSlots(bytes: Uint8Array, vnetHdr: boolean, ifaceMtu: number): EgressSlots {
  const stride = vnetHdr ? align(L.VNET_HDR_LEN + 65535, 64) : align(Math.max(ifaceMtu, 1500), 64);
  const batch = Math.min(vnetHdr ? 64 : 256, Math.floor(L.EG_IN_SIZE / stride), L.EG_IN_CAP);
  const offs = new Uint32Array(batch);
  const views: Uint8Array[] = [];
  for (let i = 0; i < batch; i++) {
    offs[i] = L.EG_IN + i * stride;
    views.push(bytes.subarray(offs[i]!, offs[i]! + stride));
  }
  return { views, offs, batch };
}

/** Receive slots in IN_IN, for a UdpBatch: slot i starts at IN_IN + i * stride + VNET_HDR_LEN. */
export interface IngressSlots {
  readonly slots: readonly Uint8Array[];
  readonly stride: number;
  /** How many messages one recvmmsg takes at most. */
  readonly batch: number;
}

/** A received message is one datagram of at most the underlay MTU, or with UDP GRO a train of 64 KiB. */
export function ingressSlots(bytes: Uint8Array, gro: boolean, ifaceMtu: number): IngressSlots {
  const stride = align(L.VNET_HDR_LEN + (gro ? 65535 : Math.max(ifaceMtu, 1500)), 64);
  const batch = Math.min(gro ? 64 : 256, Math.floor(L.IN_IN_SIZE / stride), L.IN_IN_CAP);
  const slots: Uint8Array[] = [];
  for (let i = 0; i < batch; i++) {
    const base = L.IN_IN + i * stride;
    slots.push(bytes.subarray(base + L.VNET_HDR_LEN, base + stride));
  }
  return { slots, stride, batch };
}

/**
 * Reads packets from TUN `fd` into slots from..to-1 until it has no more, filling their EG_IN_DESC
 * descriptors; returns the slot after the last filled. Counts into the stats `row`.
 */
export function readTun(sys: Sys, fd: number, s: EgressSlots, u32: Uint32Array, row: Float64Array, from: number, to: number): number {
  let n = from;
  while (n < to) {
    const r = sys.read(fd, s.views[n]!);
    if (r <= 0) {
      if (r < 0 && r !== -EAGAIN && r !== -EINTR) row[C.tunReadErrors]!++;
      break;
    }
    const dw = (L.EG_IN_DESC + n * L.IN_DESC_SIZE) >>> 2;
    u32[dw] = s.offs[n]!;
    u32[dw + 1] = r;
    row[C.tunReadBytes] = row[C.tunReadBytes]! + r;
    n++;
  }
  row[C.tunReads] = row[C.tunReads]! + (n - from);
  return n;
}

/** Writes `count` TUN descriptors {off, len} found at `ring` into TUN `fd`. Counts into `row`. */
export function writeTun(sys: Sys, fd: number, bytes: Uint8Array, u32: Uint32Array, row: Float64Array, ring: number, count: number): void {
  for (let i = 0; i < count; i++) {
    const dw = (ring + i * L.TUN_DESC_SIZE) >>> 2;
    const off = u32[dw]!, len = u32[dw + 1]!;
    if (sys.write(fd, bytes, len, off) < 0) {
      row[C.tunWriteErrors]!++;
    } else {
      row[C.tunWrites]!++;
      row[C.tunWriteBytes] = row[C.tunWriteBytes]! + len;
    }
  }
}
