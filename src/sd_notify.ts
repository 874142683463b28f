/**
 * @module systemd readiness (compat §9: flanneld sends `READY=1` once subnet.env is written and
 * the peer watch starts). A datagram on the AF_UNIX socket named by $NOTIFY_SOCKET (a path, or
 * `@name` for the abstract namespace), as sd_notify(3). Without $NOTIFY_SOCKET it does nothing.
 */
import { AF_UNIX, SOCK_CLOEXEC, SOCK_DGRAM } from "../ffi/linux.ts";
import { check, loadSys } from "../ffi/sys.ts";

/** The sockaddr_un for `$NOTIFY_SOCKET` (abstract names start with a NUL byte, no terminator). */
export function notifySockaddr(path: string): Uint8Array {
  const name = new TextEncoder().encode(path.startsWith("@") ? `\0${path.slice(1)}` : path);
  if (name.length === 0 || name.length > 107) {
    throw new RangeError(`NOTIFY_SOCKET ${JSON.stringify(path)} must be 1 to 107 bytes long`);
  }
  const addr = new Uint8Array(2 + name.length + (path.startsWith("@") ? 0 : 1)); // sun_family + sun_path
  new DataView(addr.buffer).setUint16(0, AF_UNIX, true);
  addr.set(name, 2);
  return addr;
}

/** Sends `state` (e.g. "READY=1") to systemd. Returns false when not run by systemd. */
export async function sdNotify(state: string, env: Record<string, string | undefined> = process.env): Promise<boolean> {
  const path = env.NOTIFY_SOCKET;
  if (!path) return false;
  const sys = await loadSys();
  const fd = check(sys.socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0), "socket(AF_UNIX) for sd_notify");
  try {
    const msg = new TextEncoder().encode(state);
    check(sys.sendto(fd, msg, msg.length, 0, notifySockaddr(path)), `sd_notify to ${path}`);
    return true;
  } finally {
    sys.close(fd);
  }
}
