/**
 * @module A minimal WireGuard peer made of weft's handshake (noise.ts) over a node:dgram
 * socket, for the interop test: run inside a namespace, it answers or starts one handshake with
 * a real WireGuard peer, sends a keepalive when it initiated, and opens the first transport
 * packet the peer sends, which proves the derived keys. Not a backend: no timers, no TUN.
 *
 *   bun tests/wireguard/weft_peer.ts '<json PeerArgs>'
 *
 * Prints `{"event":"ready"}` once bound, `{"event":"session"}` once keys exist, and last a JSON
 * line with the outcome (PeerOutcome), when a transport packet was opened or `waitMs` passed.
 */
import { createSocket } from "node:dgram";
import { chacha20Poly1305 } from "../../src/backend/wireguard/aead.ts";
import { MESSAGE_TRANSPORT, Noise, type Session } from "../../src/backend/wireguard/noise.ts";

export interface PeerArgs {
  privateKey: string; // base64
  peerPublicKey: string;
  presharedKey?: string;
  listenPort: number;
  /** "ip:port" to initiate to; absent = only respond. */
  initiateTo?: string;
  waitMs: number;
  /** Answer as a responder under load: initiations without a valid MAC2 get a cookie reply. */
  underLoad?: boolean;
  /** End soon after the first refused handshake message instead of waiting out waitMs. */
  stopOnReject?: boolean;
}

export interface PeerOutcome {
  session: "initiator" | "responder" | null;
  keepaliveSent: boolean;
  /** The first transport packet opened: its counter and the inner IPv4 header's fields. */
  transport: { counter: string; length: number; ipVersion: number; protocol: number; src: string; dst: string } | null;
  /** Transport packets that did not open with our keys. */
  transportRejected: number;
  /** Cookie replies sent (only under load). */
  cookieReplies: number;
  rejected: Record<string, number>;
}

const args: PeerArgs = JSON.parse(process.argv[2]!);
const b64 = (s: string) => new Uint8Array(Buffer.from(s, "base64"));
const noise = new Noise({ privateKey: b64(args.privateKey) });
noise.addPeer({ publicKey: b64(args.peerPublicKey), presharedKey: args.presharedKey ? b64(args.presharedKey) : undefined });

const out: PeerOutcome = { session: null, keepaliveSent: false, transport: null, transportRejected: 0, cookieReplies: 0, rejected: noise.rejected };
let session: Session | null = null;
const sock = createSocket("udp4");
const say = (o: object) => console.log(JSON.stringify(o));

function finish(): void {
  say(out);
  sock.close();
  process.exit(0);
}

function addrBytes(address: string, port: number): Uint8Array {
  return Uint8Array.from([...address.split(".").map(Number), port & 0xff, port >> 8]);
}

function established(s: Session, host: string, port: number): void {
  session = s;
  // The first session names the outcome; a later one (the peer re-initiating) only replaces the keys.
  out.session ??= s.isInitiator ? "initiator" : "responder";
  if (s.isInitiator) {
    // A keepalive (an empty transport packet, counter 0) confirms the session to the responder.
    const pkt = new Uint8Array(16 + 16);
    const dv = new DataView(pkt.buffer);
    dv.setUint32(0, MESSAGE_TRANSPORT, true);
    dv.setUint32(4, s.remoteIndex, true);
    dv.setBigUint64(8, 0n, true);
    pkt.set(chacha20Poly1305.seal(s.sendKey, 0n, new Uint8Array(0), new Uint8Array(0)), 16);
    sock.send(pkt, port, host);
    out.keepaliveSent = true;
  }
  say({ event: "session" });
}

sock.on("message", (msg, rinfo) => {
  const bytes = new Uint8Array(msg.buffer, msg.byteOffset, msg.length);
  if (bytes.length >= 32 && bytes[0] === MESSAGE_TRANSPORT) {
    const dv = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
    const counter = dv.getBigUint64(8, true);
    const plain = session && dv.getUint32(4, true) === session.localIndex
      ? chacha20Poly1305.open(session.receiveKey, counter, bytes.subarray(16), new Uint8Array(0))
      : null;
    if (!plain) { out.transportRejected++; return; }
    if (plain.length === 0) return; // a keepalive: keep waiting for a packet with a header to show
    out.transport = {
      counter: counter.toString(), length: plain.length, ipVersion: plain[0]! >> 4, protocol: plain[9]!,
      src: Array.from(plain.subarray(12, 16)).join("."), dst: Array.from(plain.subarray(16, 20)).join("."),
    };
    finish();
    return;
  }
  const r = noise.receive(bytes, addrBytes(rinfo.address, rinfo.port), Date.now(), args.underLoad);
  if (r.kind === "cookie-reply") {
    sock.send(r.message, rinfo.port, rinfo.address);
    out.cookieReplies++;
  } else if (r.kind === "response") {
    sock.send(r.message, rinfo.port, rinfo.address);
    established(r.session, rinfo.address, rinfo.port);
  } else if (r.kind === "session") {
    established(r.session, rinfo.address, rinfo.port);
  } else if (r.kind === "rejected" && args.stopOnReject) {
    setTimeout(finish, 100);
  }
});

sock.bind(args.listenPort, () => {
  say({ event: "ready" });
  if (args.initiateTo) {
    const [host, port] = args.initiateTo.split(":");
    sock.send(noise.createInitiation(b64(args.peerPublicKey), Date.now()), Number(port), host);
  }
  setTimeout(finish, args.waitMs);
});
