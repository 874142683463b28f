/**
 * @module The cross-platform userspace API of WireGuard (wireguard.com/xplatform), read-only: a
 * Unix socket per device at `/var/run/wireguard/<device>.sock`, where `wg` looks for a userspace
 * device (as it finds wireguard-go's), so `wg show flannel-wg` and `wg showconf` work on a weft
 * host as on a flanneld host. `get=1` answers the device as wireguard-go does (same keys, same
 * order); `set=1` is refused with EPERM (`wg set` says "Operation not permitted") because weft
 * configures its peers from the leases, as flanneld does, and a peer set by hand would be undone.
 *
 * The answer is a pure function of a snapshot (`uapiGet`); the socket (`serveUapi`) is the edge.
 *
 * @example
 *   uapiGet({ privateKey, listenPort: 51820, psk: null, keepaliveSeconds: 0, peers: [] })
 *   // "private_key=<hex>\nlisten_port=51820\nerrno=0\n\n"
 */
import { chmodSync, mkdirSync, unlinkSync } from "node:fs";
import { type Server, type Socket, connect, createServer } from "node:net";
import { dirname } from "node:path";
import type { Logger } from "../../log.ts";

/** Where `wg` and wireguard-go look for a userspace device's socket. */
export const UAPI_DIR = "/var/run/wireguard";

export interface UapiPeer {
  /** Base64 public key. */
  publicKey: string;
  /** `ip:port` or `[ipv6]:port`. */
  endpoint: string;
  /** Wall clock of the last handshake, ms since the epoch; 0: none yet. */
  lastHandshakeMs: number;
  rxBytes: number;
  txBytes: number;
  /** Allowed IPs as CIDRs. */
  allowedIPs: string[];
}

export interface UapiDevice {
  /** Base64 private key. */
  privateKey: string;
  listenPort: number;
  /** Base64 preshared key of every peer, or null. */
  psk: string | null;
  keepaliveSeconds: number;
  peers: UapiPeer[];
}

/** EPERM, negated as wireguard-go's `errno=` lines carry it. */
const EPERM = -1;
/** EINVAL, likewise. */
const EINVAL = -22;

const hex = (base64: string) => Buffer.from(base64, "base64").toString("hex");

/** The answer to `get=1`: wireguard-go's IpcGetOperation, key for key, ending in `errno=0`. */
export function uapiGet(d: UapiDevice): string {
  const lines = [`private_key=${hex(d.privateKey)}`, `listen_port=${d.listenPort}`];
  const psk = d.psk ? hex(d.psk) : "0".repeat(64);
  for (const p of d.peers) {
    const sec = Math.floor(p.lastHandshakeMs / 1000);
    lines.push(
      `public_key=${hex(p.publicKey)}`, `preshared_key=${psk}`, "protocol_version=1", `endpoint=${p.endpoint}`,
      `last_handshake_time_sec=${sec}`, `last_handshake_time_nsec=${(p.lastHandshakeMs - sec * 1000) * 1_000_000}`,
      `tx_bytes=${p.txBytes}`, `rx_bytes=${p.rxBytes}`, `persistent_keepalive_interval=${d.keepaliveSeconds}`,
      ...p.allowedIPs.map((a) => `allowed_ip=${a}`),
    );
  }
  return `${lines.join("\n")}\nerrno=0\n\n`;
}

/** What one request asks, from its first line: the operation, or why it cannot be served. */
export type UapiRequest = { op: "get" } | { op: "set" } | { op: "invalid"; line: string };

export function uapiRequest(firstLine: string): UapiRequest {
  if (firstLine === "get=1") return { op: "get" };
  if (firstLine === "set=1") return { op: "set" };
  return { op: "invalid", line: firstLine };
}

/** The reply to a request: `get` the device, `set` refused, anything else invalid. */
export function uapiReply(req: UapiRequest, device: () => UapiDevice): string {
  if (req.op === "get") return uapiGet(device());
  return `errno=${req.op === "set" ? EPERM : EINVAL}\n\n`;
}

/** Requests are a line and key=value lines up to an empty line; longer ones are not `wg`'s. */
const MAX_REQUEST = 1 << 20;

/**
 * Serves `device`'s UAPI at `path` until close(). Resolves undefined (and warns) when the path
 * cannot be served: another process answers there (a wireguard-go or a second agent for the same
 * device name), or the directory cannot be made. Never throws: `wg show` is a convenience.
 */
export async function serveUapi(path: string, name: string, device: () => UapiDevice, log: Logger): Promise<{ close(): void } | undefined> {
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
  } catch (e) {
    log.warn(`wireguard: no 'wg show ${name}': cannot make ${dirname(path)}: ${(e as Error).message}`);
    return undefined;
  }
  if (await answers(path)) {
    log.warn(`wireguard: no 'wg show ${name}': ${path} is served by another process (a wireguard-go or another agent with a device of that name)`);
    return undefined;
  }
  try { unlinkSync(path); } catch { /* none left from before */ }
  let refusedSet = false;
  const server: Server = createServer((sock: Socket) => {
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("error", () => sock.destroy());
    sock.on("data", (chunk: string) => {
      buf += chunk;
      if (buf.length > MAX_REQUEST) { sock.destroy(); return; }
      for (let end = buf.indexOf("\n\n"); end >= 0; end = buf.indexOf("\n\n")) {
        const request = buf.slice(0, end);
        buf = buf.slice(end + 2);
        const req = uapiRequest(request.split("\n", 1)[0]!);
        if (req.op === "set" && !refusedSet) {
          refusedSet = true;
          log.warn(`wireguard: 'wg set ${name}' refused (EPERM): weft configures ${name}'s peers from the leases, as flanneld does`);
        }
        sock.write(uapiReply(req, device));
        if (req.op === "invalid") { sock.end(); return; }
      }
    });
  });
  const listening = await new Promise<boolean>((resolve) => {
    server.once("error", (e) => {
      log.warn(`wireguard: no 'wg show ${name}': cannot listen on ${path}: ${(e as Error).message}`);
      resolve(false);
    });
    server.listen(path, () => resolve(true));
  });
  if (!listening) return undefined;
  server.on("error", () => {}); // a client's trouble is that connection's, handled above
  try { chmodSync(path, 0o600); } catch { /* the directory's mode still guards it */ }
  return {
    close() {
      server.close();
      try { unlinkSync(path); } catch { /* gone already */ }
    },
  };
}

/** Whether something accepts connections at `path` (a live server, not a stale file). */
function answers(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once("connect", () => { s.destroy(); resolve(true); });
    s.once("error", () => resolve(false));
  });
}
