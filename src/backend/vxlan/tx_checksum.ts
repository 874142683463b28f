/**
 * @module Switching tx checksum offload of a device, as `ethtool -K DEV tx-checksum-ip-generic
 * off` does: the SIOCETHTOOL ioctl on an AF_INET socket with ETHTOOL_SFEATURES, the feature's
 * bit found by name in the ETH_SS_FEATURES string set (its index differs between kernels).
 *
 * Why (compat §13, flannel #1243/#1279, PR #1929): on kernels with the vxlan UDP checksum bug,
 * packets to ClusterIPs over flannel.1 got bad checksums and took ~63 s to connect. Current
 * kernels compute them correctly, so weft leaves offload on unless the Backend object says
 * `"DisableTxChecksumOffload": true`; the vxlan network re-applies it whenever it recreates the
 * device.
 *
 * Structures (x86_64 and arm64 alike):
 *   struct ifreq            40 { char name[16]; void *ifr_data @16 }
 *   struct ethtool_sset_info   { u32 cmd; u32 reserved; u64 sset_mask @8; u32 data[] @16 }
 *   struct ethtool_gstrings    { u32 cmd; u32 string_set @4; u32 len @8; u8 data[len*32] @12 }
 *   struct ethtool_gfeatures   { u32 cmd; u32 size @4; { u32 available, requested, active, never_changed }[size] @8 }
 *   struct ethtool_sfeatures   { u32 cmd; u32 size @4; { u32 valid, requested }[size] @8 }
 */
import { AF_INET, SOCK_CLOEXEC, SOCK_DGRAM, ifreq, structBuffer } from "../../../ffi/linux.ts";
import { type Sys, check } from "../../../ffi/sys.ts";

const SIOCETHTOOL = 0x8946;
const ETHTOOL_GSTRINGS = 0x1b;
const ETHTOOL_GSSET_INFO = 0x37;
const ETHTOOL_GFEATURES = 0x3a;
const ETHTOOL_SFEATURES = 0x3b;
const ETH_SS_FEATURES = 4;
const ETH_GSTRING_LEN = 32;

/** The feature `ethtool -K DEV tx off` turns off on a vxlan device (NETIF_F_HW_CSUM). */
export const TX_CHECKSUM_FEATURE = "tx-checksum-ip-generic";

function withSocket<T>(sys: Sys, f: (fd: number) => T): T {
  const fd = check(sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0), "ethtool: socket(AF_INET)");
  try {
    return f(fd);
  } finally {
    sys.close(fd);
  }
}

/** One SIOCETHTOOL call with `data` as the ethtool command structure. */
function ethtool(sys: Sys, fd: number, dev: string, data: Uint8Array, what: string): void {
  const req = ifreq(dev);
  new DataView(req.buffer).setBigUint64(16, sys.addressOf(data), true);
  check(sys.ioctl(fd, SIOCETHTOOL, req), `ethtool ${what} on ${dev}`);
}

/** The bit index of a feature name (`ethtool -k` lists them in this order). */
function featureIndex(sys: Sys, fd: number, dev: string, name: string): { index: number; count: number } {
  const info = structBuffer(20);
  const iv = new DataView(info.buffer);
  iv.setUint32(0, ETHTOOL_GSSET_INFO, true);
  iv.setBigUint64(8, 1n << BigInt(ETH_SS_FEATURES), true);
  ethtool(sys, fd, dev, info, "GSSET_INFO");
  const count = iv.getUint32(16, true);
  const strings = structBuffer(12 + count * ETH_GSTRING_LEN);
  const sv = new DataView(strings.buffer);
  sv.setUint32(0, ETHTOOL_GSTRINGS, true);
  sv.setUint32(4, ETH_SS_FEATURES, true);
  sv.setUint32(8, count, true);
  ethtool(sys, fd, dev, strings, "GSTRINGS");
  const decoder = new TextDecoder();
  for (let i = 0; i < count; i++) {
    const s = strings.subarray(12 + i * ETH_GSTRING_LEN, 12 + (i + 1) * ETH_GSTRING_LEN);
    const end = s.indexOf(0);
    if (decoder.decode(s.subarray(0, end < 0 ? s.length : end)) === name) return { index: i, count };
  }
  throw new Error(`ethtool: ${dev} has no feature named ${JSON.stringify(name)}`);
}

/** An ethtool_[gs]features buffer with `cmd` and room for `count` feature bits in blocks of `blockBytes`. */
function featuresBuffer(cmd: number, count: number, blockBytes: number): { buf: Uint8Array; v: DataView } {
  const blocks = Math.ceil(count / 32);
  const buf = structBuffer(8 + blocks * blockBytes);
  const v = new DataView(buf.buffer);
  v.setUint32(0, cmd, true);
  v.setUint32(4, blocks, true);
  return { buf, v };
}

/** Equivalent to: `ethtool -k DEV | grep tx-checksum-ip-generic` (true when active). */
export function txChecksumOffload(sys: Sys, dev: string): boolean {
  return withSocket(sys, (fd) => {
    const { index, count } = featureIndex(sys, fd, dev, TX_CHECKSUM_FEATURE);
    const { buf, v } = featuresBuffer(ETHTOOL_GFEATURES, count, 16);
    ethtool(sys, fd, dev, buf, "GFEATURES");
    const active = v.getUint32(8 + (index >> 5) * 16 + 8, true);
    return (active & (1 << (index & 31))) !== 0;
  });
}

/** Equivalent to: `ethtool -K DEV tx-checksum-ip-generic on|off`. */
export function setTxChecksumOffload(sys: Sys, dev: string, on: boolean): void {
  withSocket(sys, (fd) => {
    const { index, count } = featureIndex(sys, fd, dev, TX_CHECKSUM_FEATURE);
    const { buf, v } = featuresBuffer(ETHTOOL_SFEATURES, count, 8);
    const off = 8 + (index >> 5) * 8;
    const bit = (1 << (index & 31)) >>> 0;
    v.setUint32(off, bit, true); // valid: only this feature changes
    v.setUint32(off + 4, on ? bit : 0, true);
    ethtool(sys, fd, dev, buf, `SFEATURES ${TX_CHECKSUM_FEATURE} ${on ? "on" : "off"}`);
  });
}
