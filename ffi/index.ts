/**
 * @module The syscall layer in one import: the runtime-neutral `Sys` (loaded for Bun or Deno),
 * Linux constants and structure packers, TUN devices, UDP sockets with batched I/O, sysctls.
 * Netlink lives in `ffi/netlink/`.
 */
export { check, errnoName, loadSys, type Sys, SysError } from "./sys.ts";
export * from "./linux.ts";
export { enableTunOffloads, openTun, setTunOffload, setVnetHdrSize, type Tun, TUN_OFFLOAD_TCP, TUN_OFFLOAD_UDP, type TunOptions } from "./tun.ts";
export {
  enableUdpGro, localPort, openUdpSocket, probeUdpGso, setBuffers, UDP_BUFFER_BYTES, UdpBatch, type UdpSocketOptions,
} from "./udp.ts";
export { readSysctl, sysctlPath, writeSysctl } from "./sysctl.ts";
