/**
 * @module Does the peer's agent answer on the underlay? One request from a connected, non-blocking
 * UDP socket to `<public IP>:<probe port>`: a connected socket also learns of the ICMP errors the
 * probe draws (port unreachable: the host is up but nothing listens; host/net unreachable: the
 * host is gone), which node:dgram does not report. Used only when a peer goes down, never per probe.
 */
import { AF_INET, EAGAIN, MSG_DONTWAIT, O_NONBLOCK, F_GETFL, F_SETFL, SOCK_CLOEXEC, SOCK_DGRAM, sockaddrIn } from "../../ffi/linux.ts";
import { loadSys } from "../../ffi/sys.ts";
import { parseIPv4 } from "../net/ip.ts";
import type { UnderlayResult } from "./cause.ts";
import { decodeProbe, encodeProbe, REPLY, REQUEST, SMALL_PROBE_BYTES } from "./probe_packet.ts";

const ECONNREFUSED = 111;
const EHOSTUNREACH = 113;
const ENETUNREACH = 101;

/** Sends two requests `waitMs / 2` apart and reads what came back after `waitMs`. */
export async function checkUnderlay(publicIP: string, port: number, waitMs: number): Promise<UnderlayResult> {
  const sys = await loadSys();
  const fd = sys.socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  if (fd < 0) throw new Error(`underlay check of ${publicIP}:${port}: socket failed (errno ${-fd})`);
  try {
    sys.fcntl(fd, F_SETFL, sys.fcntl(fd, F_GETFL, 0) | O_NONBLOCK);
    const rc = sys.connect(fd, sockaddrIn(parseIPv4(publicIP, "peer public IP"), port));
    if (rc === -EHOSTUNREACH || rc === -ENETUNREACH) return "unreachable";
    const token = (Math.random() * 2 ** 32) >>> 0;
    const req = encodeProbe({ type: REQUEST, mtu: false, seq: 0, token, size: SMALL_PROBE_BYTES });
    const buf = new Uint8Array(2048);
    let refused = false, unreachable = false;
    const drain = (): UnderlayResult | undefined => {
      for (;;) {
        const n = sys.recvfrom(fd, buf, buf.byteLength, MSG_DONTWAIT, null);
        if (n >= 0) {
          const p = decodeProbe(buf.subarray(0, n));
          if (p?.type === REPLY && p.token === token) return "answers";
          continue;
        }
        if (n === -ECONNREFUSED) refused = true;
        else if (n === -EHOSTUNREACH || n === -ENETUNREACH) unreachable = true;
        else if (n === -EAGAIN) return undefined;
        else return undefined;
      }
    };
    for (let i = 0; i < 2; i++) {
      const s = sys.sendto(fd, req, req.byteLength, MSG_DONTWAIT, null);
      if (s === -ECONNREFUSED) refused = true;
      else if (s === -EHOSTUNREACH || s === -ENETUNREACH) unreachable = true;
      await new Promise((r) => setTimeout(r, waitMs / 2));
      if (drain() === "answers") return "answers";
    }
    return refused ? "refused" : unreachable ? "unreachable" : "silent";
  } finally {
    sys.close(fd);
  }
}
