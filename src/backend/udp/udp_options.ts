/**
 * @module The udp backend's settings: `Backend.Port` from the network config (compat §2.2,
 * default 8285) and the data-path switches read from the environment, which exist to measure
 * what each offload contributes and to turn one off on a kernel that misbehaves:
 *
 *   WEFT_UDP_NO_VNET=1   no IFF_VNET_HDR on flannel0 (so no TSO/USO super-packets either)
 *   WEFT_UDP_NO_GSO=1    no UDP_SEGMENT on send (one datagram per message)
 *   WEFT_UDP_NO_GRO=1    no UDP_GRO on receive
 *   WEFT_UDP_WORKERS=N   packet workers, 1..8 (N > 1 opens flannel0 with IFF_MULTI_QUEUE)
 *   WEFT_UDP_SPIN_US=N   after traffic, busy-poll for up to N µs at SCHED_IDLE (0..1000000; 0 off)
 *   WEFT_UDP_NO_WARMUP=1 no JIT warm-up of the workers on loopback (warm_up.ts)
 *   WEFT_UDP_TRACE=1     time each packet-loop stage and log p50/p90 per stage after each burst
 *   WEFT_UDP_PREFER_IPV6=1  send to every peer that advertises a PublicIPv6 over the IPv6
 *                        underlay, not only to v6-only ones (peer_table.ts)
 *
 * and, for tests only, WEFT_TEST_UDP_WORKER_CRASH_AFTER=N: packet worker 0 throws after N
 * packets (once; the restarted worker does not), to show that traffic resumes.
 */
import { getCI } from "../../config/json_ci.ts";

/** flanneld's default udp port. */
export const UDP_DEFAULT_PORT = 8285;
export const UDP_MAX_WORKERS = 8;
/** Busy-poll window after traffic (µs); see PacketLoopOptions.spinUs. */
export const UDP_DEFAULT_SPIN_US = 0;
/** The longest busy-poll window (µs): one second. */
export const UDP_MAX_SPIN_US = 1_000_000;

export interface UdpOptions {
  /** UDP port of every host (we send to `<peer PublicIP>:<our Port>`, as flanneld). */
  port: number;
  /** Try IFF_VNET_HDR and TUN offloads. */
  vnetHdr: boolean;
  /** Try UDP GSO (UDP_SEGMENT) when sending. */
  gso: boolean;
  /** Try UDP GRO when receiving. */
  gro: boolean;
  /** Packet workers (one TUN queue and one socket each). */
  workers: number;
  /** Busy-poll window after traffic, µs (PacketLoopOptions.spinUs). */
  spinUs: number;
  /** Warm the workers' forwarding code up before traffic (warm_up.ts). */
  warmUp: boolean;
  /** Log per-stage timings of the packet loops (loop_trace.ts). */
  trace: boolean;
  /** Reach peers with a PublicIPv6 over IPv6 even when they have a PublicIP too. */
  preferIPv6: boolean;
  /** Tests only: worker 0's first thread throws after this many packets. */
  testCrashAfter?: number;
}

function envFlag(env: Record<string, string | undefined>, name: string): boolean {
  const v = env[name];
  return v !== undefined && v !== "" && v !== "0" && v.toLowerCase() !== "false";
}

/**
 * Reads `Backend.Port` (case-insensitive) and the WEFT_UDP_* switches. Throws a RangeError
 * naming the key and value when either is out of range.
 *
 * @example
 *   udpOptions({ Type: "udp", Port: 7890 }, {}).port; // 7890
 */
export function udpOptions(backend: Record<string, unknown>, env: Record<string, string | undefined>): UdpOptions {
  const rawPort = getCI(backend, "Port");
  let port = UDP_DEFAULT_PORT;
  if (rawPort !== undefined && rawPort !== null && rawPort !== 0) {
    if (typeof rawPort !== "number" || !Number.isInteger(rawPort) || rawPort < 1 || rawPort > 65535) {
      throw new RangeError(`udp backend: Backend.Port ${JSON.stringify(rawPort)} must be an integer port 1..65535 (0 or absent: ${UDP_DEFAULT_PORT})`);
    }
    port = rawPort;
  }
  let workers = 1;
  const w = env.WEFT_UDP_WORKERS;
  if (w !== undefined && w !== "") {
    workers = Number(w);
    if (!Number.isInteger(workers) || workers < 1 || workers > UDP_MAX_WORKERS) {
      throw new RangeError(`udp backend: WEFT_UDP_WORKERS=${JSON.stringify(w)} must be an integer 1..${UDP_MAX_WORKERS}`);
    }
  }
  let spinUs = UDP_DEFAULT_SPIN_US;
  const spin = env.WEFT_UDP_SPIN_US;
  if (spin !== undefined && spin !== "") {
    spinUs = Number(spin);
    if (!Number.isInteger(spinUs) || spinUs < 0 || spinUs > UDP_MAX_SPIN_US) {
      throw new RangeError(`udp backend: WEFT_UDP_SPIN_US=${JSON.stringify(spin)} must be an integer 0..${UDP_MAX_SPIN_US} (µs)`);
    }
  }
  const crash = env.WEFT_TEST_UDP_WORKER_CRASH_AFTER;
  const testCrashAfter = crash ? Number(crash) : undefined;
  if (testCrashAfter !== undefined && !(Number.isInteger(testCrashAfter) && testCrashAfter >= 0)) {
    throw new RangeError(`udp backend: WEFT_TEST_UDP_WORKER_CRASH_AFTER=${JSON.stringify(crash)} must be a whole number of packets`);
  }
  return {
    port,
    spinUs,
    vnetHdr: !envFlag(env, "WEFT_UDP_NO_VNET"),
    gso: !envFlag(env, "WEFT_UDP_NO_GSO"),
    gro: !envFlag(env, "WEFT_UDP_NO_GRO"),
    warmUp: !envFlag(env, "WEFT_UDP_NO_WARMUP"),
    trace: envFlag(env, "WEFT_UDP_TRACE"),
    preferIPv6: envFlag(env, "WEFT_UDP_PREFER_IPV6"),
    ...(testCrashAfter === undefined ? {} : { testCrashAfter }),
    workers,
  };
}

/** Reads only what the network config decides (`Backend.Port`): for `weft config set`. */
export function udpConfigReader(backend: Record<string, unknown>): UdpOptions {
  return udpOptions(backend, {});
}

/** CAP_SYS_NICE, the capability a SCHED_IDLE thread needs to become SCHED_OTHER again. */
const CAP_SYS_NICE = 23;

/**
 * Whether the process whose `/proc/<pid>/status` text is given holds CAP_SYS_NICE in its
 * effective set (the `CapEff:` line, hexadecimal). Busy-polling (spinUs) needs it: the packet
 * threads spin as SCHED_IDLE and must return to SCHED_OTHER to work.
 *
 * @example
 *   hasCapSysNice("CapEff:\t000001ffffffffff\n"); // true
 */
export function hasCapSysNice(procStatus: string): boolean {
  const m = /^CapEff:\s*([0-9a-fA-F]+)\s*$/m.exec(procStatus);
  return m !== null && ((BigInt(`0x${m[1]}`) >> BigInt(CAP_SYS_NICE)) & 1n) === 1n;
}
