/**
 * @module ICMP echo to a peer's overlay address, for the diagnosis of a peer whose weft agent does
 * not answer: the kernel answers echo on vxlan's and udp's `<net>/32` whoever runs the host (weft
 * stopped with its data path in place, or flanneld), so an answer says the overlay path itself
 * works. A raw socket (the agent has CAP_NET_RAW beside CAP_NET_ADMIN, as flanneld's DaemonSet
 * grants); without the permission the check is simply left out. Used once per diagnosis, never per
 * probe. The packet builder and parser are pure (tests/unit/health_probe.test.ts).
 */
import { AF_INET, EAGAIN, F_GETFL, F_SETFL, IPPROTO_ICMP, MSG_DONTWAIT, O_NONBLOCK, SOCK_CLOEXEC, SOCK_RAW, sockaddrIn } from "../../ffi/linux.ts";
import { loadSys } from "../../ffi/sys.ts";
import { parseIPv4 } from "../net/ip.ts";

const ECHO_REQUEST = 8;
const ECHO_REPLY = 0;

/** The Internet checksum (RFC 1071) of `b`. */
export function inetChecksum(b: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < b.length; i += 2) sum += (b[i]! << 8) | (b[i + 1] ?? 0);
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** An ICMP echo request (type 8) with `id`, `seq` and 8 bytes of payload "weft-hc\0". */
export function encodeEchoRequest(id: number, seq: number): Uint8Array {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  b[0] = ECHO_REQUEST;
  v.setUint16(4, id);
  v.setUint16(6, seq);
  b.set(new TextEncoder().encode("weft-hc\0"), 8);
  v.setUint16(2, inetChecksum(b));
  return b;
}

/** The source of an IPv4 packet holding the echo reply to (`id`, `seq`), or undefined for anything else. */
export function parseEchoReply(packet: Uint8Array, id: number, seq: number): number | undefined {
  if (packet.length < 20 || packet[0]! >> 4 !== 4) return undefined;
  const ihl = (packet[0]! & 0x0f) * 4;
  if (packet.length < ihl + 8 || packet[9] !== IPPROTO_ICMP) return undefined;
  const v = new DataView(packet.buffer, packet.byteOffset, packet.byteLength);
  if (packet[ihl] !== ECHO_REPLY || v.getUint16(ihl + 4) !== id || v.getUint16(ihl + 6) !== seq) return undefined;
  return v.getUint32(12);
}

/** Sends two echo requests to `addr`, `waitMs / 2` apart; "answers", "silent", or undefined without permission. */
export async function pingOverlay(addr: string, waitMs: number): Promise<"answers" | "silent" | undefined> {
  const sys = await loadSys();
  const fd = sys.socket(AF_INET, SOCK_RAW | SOCK_CLOEXEC, IPPROTO_ICMP);
  if (fd < 0) return undefined; // EPERM without CAP_NET_RAW
  try {
    sys.fcntl(fd, F_SETFL, sys.fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    const ip = parseIPv4(addr, "overlay address");
    const id = (Math.random() * 0x10000) & 0xffff;
    const buf = new Uint8Array(1500);
    for (let seq = 1; seq <= 2; seq++) {
      const req = encodeEchoRequest(id, seq);
      sys.sendto(fd, req, req.byteLength, MSG_DONTWAIT, sockaddrIn(ip, 0));
      await new Promise((r) => setTimeout(r, waitMs / 2));
      for (;;) {
        const n = sys.recvfrom(fd, buf, buf.byteLength, MSG_DONTWAIT, null);
        if (n < 0) { if (n === -EAGAIN) break; break; }
        for (let s = 1; s <= seq; s++) if (parseEchoReply(buf.subarray(0, n), id, s) === ip) return "answers";
      }
    }
    return "silent";
  } finally {
    sys.close(fd);
  }
}
