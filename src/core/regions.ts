/**
 * @module Typed views of a core's fixed memory regions, shared by the Wasm loader and the
 * TypeScript reference so both expose the same layout.
 */
import * as L from "./layout.ts";
import type { CoreRegions } from "./types.ts";

/** Builds the region views over a core memory of MEMORY_BYTES. */
export function coreRegions(buffer: ArrayBuffer): CoreRegions {
  if (buffer.byteLength !== L.MEMORY_BYTES) {
    throw new RangeError(`core memory is ${buffer.byteLength} bytes; the layout needs exactly ${L.MEMORY_BYTES}`);
  }
  const u8 = (off: number, size: number) => new Uint8Array(buffer, off, size);
  return {
    arg: u8(L.ARG, 64),
    counters: new Uint32Array(buffer, L.COUNTERS, L.COUNTER_COUNT),
    lookupIn: u8(L.LOOKUP_IN, L.LOOKUP_CAP * 16),
    lookupIn4: new Uint32Array(buffer, L.LOOKUP_IN, L.LOOKUP_CAP),
    lookupOut: new Int32Array(buffer, L.LOOKUP_OUT, L.LOOKUP_CAP),
    egInDesc: u8(L.EG_IN_DESC, L.EG_IN_CAP * L.IN_DESC_SIZE),
    egUdpDesc: u8(L.EG_UDP_DESC, L.EG_UDP_CAP * L.UDP_DESC_SIZE),
    egTunDesc: u8(L.EG_TUN_DESC, L.EG_TUN_CAP * L.TUN_DESC_SIZE),
    inInDesc: u8(L.IN_IN_DESC, L.IN_IN_CAP * L.IN_DESC_SIZE),
    inTunDesc: u8(L.IN_TUN_DESC, L.IN_TUN_CAP * L.TUN_DESC_SIZE),
    peers: u8(L.PEERS, L.PEER_CAP * L.PEER_SIZE),
    egIn: u8(L.EG_IN, L.EG_IN_SIZE),
    egOut: u8(L.EG_OUT, L.EG_OUT_SIZE),
    egTun: u8(L.EG_TUN, L.EG_TUN_SIZE),
    inIn: u8(L.IN_IN, L.IN_IN_SIZE),
    inOut: u8(L.IN_OUT, L.IN_OUT_SIZE),
    wgSessions: u8(L.WG_SESSIONS, L.WG_SESSION_CAP * L.WG_SESSION_SIZE),
    wgSealDesc: u8(L.WG_SEAL_DESC, L.WG_SEAL_CAP * L.WG_DESC_SIZE),
    wgOpenDesc: u8(L.WG_OPEN_DESC, L.WG_OPEN_CAP * L.WG_DESC_SIZE),
    wgCounters: new Uint32Array(buffer, L.WG_COUNTERS, L.WG_COUNTER_COUNT),
  };
}
