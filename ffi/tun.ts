/**
 * @module TUN devices: open a queue of a layer-3 TUN (no packet-info header, optionally with a
 * virtio_net_hdr before each packet and several queues), and negotiate the offloads that let
 * one read/write carry a 64 KiB TCP or UDP super-packet instead of one MTU-sized packet.
 *
 * The device a queue creates lives as long as one of its fds is open (it is not persistent), so
 * closing the last fd removes it, as flanneld's flannel0 does on exit.
 */
import {
  checkIfName, EINVAL, IFF_MULTI_QUEUE, IFF_NO_PI, IFF_TUN, IFF_VNET_HDR, ifreq, ifreqName, O_CLOEXEC,
  O_NONBLOCK, O_RDWR, structBuffer, TUN_F_CSUM, TUN_F_TSO4, TUN_F_TSO6, TUN_F_USO4, TUN_F_USO6,
  TUNSETIFF, TUNSETOFFLOAD, TUNSETPERSIST, TUNSETVNETHDRSZ,
} from "./linux.ts";
import { check, type Sys, SysError } from "./sys.ts";

export interface TunOptions {
  /** Interface name (1..15 bytes); a `%d` in it lets the kernel number it (`weft%d`). */
  name: string;
  /** IFF_MULTI_QUEUE: open the same name again for each further queue. */
  multiQueue?: boolean;
  /** IFF_VNET_HDR: each packet is preceded by a 10-byte virtio_net_hdr (see setTunOffload). */
  vnetHdr?: boolean;
  /** O_NONBLOCK: read returns -EAGAIN instead of blocking (use poll). */
  nonBlocking?: boolean;
  /**
   * TUNSETPERSIST: the device, its addresses and routes outlive the last fd (`ip tuntap add`'s
   * persistence); opening the name again attaches to it. Packets routed to it meanwhile are dropped.
   */
  persist?: boolean;
}

export interface Tun {
  /** The queue's file descriptor: one packet per read/write. The caller closes it. */
  fd: number;
  /** The name the kernel gave the device. */
  name: string;
}

/**
 * Creates (or attaches a queue to) a TUN device and returns its fd and name.
 *
 * Equivalent to: `ip tuntap add dev <name> mode tun [multi_queue] [vnet_hdr]` (without
 * `ip`'s persistence: the device goes away with its last fd).
 */
export function openTun(sys: Sys, options: TunOptions): Tun {
  checkIfName(options.name.replace("%d", "0"));
  let flags = IFF_TUN | IFF_NO_PI;
  if (options.multiQueue) flags |= IFF_MULTI_QUEUE;
  if (options.vnetHdr) flags |= IFF_VNET_HDR;
  const fd = check(
    sys.open("/dev/net/tun", O_RDWR | O_CLOEXEC | (options.nonBlocking ? O_NONBLOCK : 0)),
    "open /dev/net/tun (is the tun module loaded?)",
  );
  const req = ifreq(options.name, flags);
  const rc = sys.ioctl(fd, TUNSETIFF, req);
  if (rc < 0) {
    sys.close(fd);
    throw new SysError(-rc, `TUNSETIFF ${options.name} flags 0x${flags.toString(16)}`);
  }
  if (options.persist) {
    const prc = sys.ioctl(fd, TUNSETPERSIST, 1);
    if (prc < 0) {
      sys.close(fd);
      throw new SysError(-prc, `TUNSETPERSIST ${options.name}`);
    }
  }
  return { fd, name: ifreqName(req) };
}

/**
 * Asks the kernel to hand this TUN unsegmented, checksum-pending packets of the kinds in `flags`
 * (TUN_F_*; 0 turns offloads off). Returns false when the kernel refuses the set (EINVAL: an
 * unknown flag on an older kernel), true when accepted; other errors throw. Only meaningful on
 * a TUN opened with `vnetHdr`, whose header describes each super-packet.
 *
 * Visible as: `ethtool -k <dev>` then shows tx-checksumming and tcp-segmentation-offload on
 * (the device's features follow what its reader accepts).
 */
export function setTunOffload(sys: Sys, fd: number, flags: number): boolean {
  const rc = sys.ioctl(fd, TUNSETOFFLOAD, flags);
  if (rc === -EINVAL) return false;
  check(rc, `TUNSETOFFLOAD 0x${flags.toString(16)} on fd ${fd}`);
  return true;
}

/** TCP segmentation offloads (with the checksum offload they need), Linux ≥ 2.6.27. */
export const TUN_OFFLOAD_TCP = TUN_F_CSUM | TUN_F_TSO4 | TUN_F_TSO6;
/** UDP segmentation offloads, Linux ≥ 6.2. */
export const TUN_OFFLOAD_UDP = TUN_F_USO4 | TUN_F_USO6;

/**
 * Enables the largest set of offloads the kernel accepts, trying TCP+UDP, then TCP alone, then
 * none, and returns the TUN_F_* flags now in force (0 when the kernel takes none).
 */
export function enableTunOffloads(sys: Sys, fd: number): number {
  for (const flags of [TUN_OFFLOAD_TCP | TUN_OFFLOAD_UDP, TUN_OFFLOAD_TCP]) {
    if (setTunOffload(sys, fd, flags)) return flags;
  }
  setTunOffload(sys, fd, 0);
  return 0;
}

/**
 * Sets the size of the header before each packet on a `vnetHdr` TUN (10 by default:
 * virtio_net_hdr; 12 adds num_buffers). At least 10.
 */
export function setVnetHdrSize(sys: Sys, fd: number, size: number): void {
  if (!Number.isInteger(size) || size < 10) {
    throw new RangeError(`vnet header size ${size} is invalid (an integer of at least 10)`);
  }
  const arg = structBuffer(4);
  new DataView(arg.buffer).setInt32(0, size, true);
  check(sys.ioctl(fd, TUNSETVNETHDRSZ, arg), `TUNSETVNETHDRSZ ${size} on fd ${fd}`);
}
