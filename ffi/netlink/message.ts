/**
 * @module The netlink message frame (struct nlmsghdr) and the kernel's NLMSG_ERROR reply: encode
 * one request, split a received buffer into messages, read an error/ack with its extended-ack
 * text. Pure functions over Uint8Array; every rtnetlink builder in this folder ends in
 * `encodeMessage`.
 */
import { type Attr, align4, attrsSize, encodeAttrs, parseAttrs, readString, readU32 } from "./attr.ts";
import {
  NLM_F_ACK_TLVS, NLM_F_CAPPED, NLMSG_ERROR, NLMSG_HDRLEN, NLMSGERR_ATTR_MSG, NLMSGERR_ATTR_OFFS,
} from "./constants.ts";

/** One received message; `payload` is a view of what follows the header. */
export interface NetlinkMessage {
  readonly type: number;
  readonly flags: number;
  readonly seq: number;
  readonly pid: number;
  readonly payload: Uint8Array;
}

/**
 * One request: `type`, `flags`, then the fixed family header (`fixed`, e.g. an ifinfomsg) and
 * attributes. `seq` and `pid` default to 0; the socket sets `seq` with `setSeq` before sending.
 */
export function encodeMessage(
  type: number, flags: number, fixed: Uint8Array, attrs: readonly Attr[] = [], seq = 0, pid = 0,
): Uint8Array {
  const fixedLen = align4(fixed.length);
  const len = NLMSG_HDRLEN + fixedLen + attrsSize(attrs);
  const out = new Uint8Array(len);
  const view = new DataView(out.buffer);
  view.setUint32(0, len, true);
  view.setUint16(4, type, true);
  view.setUint16(6, flags, true);
  view.setUint32(8, seq >>> 0, true);
  view.setUint32(12, pid >>> 0, true);
  out.set(fixed, NLMSG_HDRLEN);
  encodeAttrs(attrs, out, NLMSG_HDRLEN + fixedLen);
  return out;
}

/** Header fields of an encoded message (for summaries and tests). */
export function messageHeader(msg: Uint8Array, off = 0): { len: number; type: number; flags: number; seq: number; pid: number } {
  const view = new DataView(msg.buffer, msg.byteOffset + off, NLMSG_HDRLEN);
  return {
    len: view.getUint32(0, true), type: view.getUint16(4, true), flags: view.getUint16(6, true),
    seq: view.getUint32(8, true), pid: view.getUint32(12, true),
  };
}

/** Writes the sequence number of the encoded message at `msg[off]`. */
export function setSeq(msg: Uint8Array, seq: number, off = 0): void {
  new DataView(msg.buffer, msg.byteOffset + off, NLMSG_HDRLEN).setUint32(8, seq >>> 0, true);
}

/**
 * Splits `buf[0, len)` (one recv's worth) into messages. Throws on a truncated or malformed
 * header, which means the buffer was too small or the stream is corrupt.
 */
export function parseMessages(buf: Uint8Array, len = buf.length): NetlinkMessage[] {
  const out: NetlinkMessage[] = [];
  const view = new DataView(buf.buffer, buf.byteOffset, len);
  let off = 0;
  while (off + NLMSG_HDRLEN <= len) {
    const msgLen = view.getUint32(off, true);
    if (msgLen < NLMSG_HDRLEN || off + msgLen > len) {
      throw new RangeError(`netlink: message at offset ${off} claims ${msgLen} bytes but ${len - off} remain`);
    }
    out.push({
      type: view.getUint16(off + 4, true), flags: view.getUint16(off + 6, true),
      seq: view.getUint32(off + 8, true), pid: view.getUint32(off + 12, true),
      payload: buf.subarray(off + NLMSG_HDRLEN, off + msgLen),
    });
    off += align4(msgLen);
  }
  return out;
}

/** An NLMSG_ERROR reply: errno 0 is an ack. */
export interface NetlinkErrorReply {
  /** Positive errno, 0 for success. */
  readonly errno: number;
  /** Header of the request this answers. */
  readonly requestType: number;
  readonly requestSeq: number;
  /** The whole echoed request when the socket did not set NETLINK_CAP_ACK, else only its header. */
  readonly echo: Uint8Array;
  /** NETLINK_EXT_ACK text, e.g. "Nexthop has invalid gateway". */
  readonly extAck?: string;
  /** NETLINK_EXT_ACK: byte offset in the request of the attribute at fault. */
  readonly extAckOffset?: number;
}

/** Reads the payload of an NLMSG_ERROR message. */
export function parseErrorReply(msg: NetlinkMessage): NetlinkErrorReply {
  if (msg.type !== NLMSG_ERROR) throw new TypeError(`netlink: message type ${msg.type} is not NLMSG_ERROR (${NLMSG_ERROR})`);
  const p = msg.payload;
  if (p.length < 4 + NLMSG_HDRLEN) throw new RangeError(`netlink: NLMSG_ERROR payload of ${p.length} bytes is shorter than 20`);
  const view = new DataView(p.buffer, p.byteOffset, p.length);
  const raw = view.getInt32(0, true);
  const errno = raw === 0 ? 0 : -raw; // not -0: an ack compares equal with toBe(0)
  const echoLen = msg.flags & NLM_F_CAPPED ? NLMSG_HDRLEN : Math.min(view.getUint32(4, true), p.length - 4);
  const echo = p.subarray(4, 4 + echoLen);
  const reply: { -readonly [K in keyof NetlinkErrorReply]: NetlinkErrorReply[K] } = {
    errno, requestType: view.getUint16(8, true), requestSeq: view.getUint32(12, true), echo,
  };
  if (msg.flags & NLM_F_ACK_TLVS) {
    const tlvs = parseAttrs(p, 4 + align4(echoLen));
    const text = tlvs.get(NLMSGERR_ATTR_MSG);
    if (text) reply.extAck = readString(text);
    const offs = tlvs.get(NLMSGERR_ATTR_OFFS);
    if (offs && offs.length >= 4) reply.extAckOffset = readU32(offs);
  }
  return reply;
}
