/** Round trips of the netlink attribute tree and the message frame, and robustness on random bytes. */
import { describe, expect, test } from "bun:test";
import {
  attrsSize, be16Attr, be32Attr, bytesAttr, encodeAttrs, flagAttr, nestedAttr, parseAttrs, readBe16, readString,
  readU16, readU32, readU8, stringAttr, u16Attr, u32Attr, u8Attr, zeroTerminatedAttr,
} from "../../ffi/netlink/attr.ts";
import { encodeMessage, messageHeader, parseErrorReply, parseMessages, setSeq } from "../../ffi/netlink/message.ts";
import { parseLink } from "../../ffi/netlink/link.ts";
import { parseRoute } from "../../ffi/netlink/route.ts";
import { parseNeigh } from "../../ffi/netlink/neigh.ts";
import { parseAddr } from "../../ffi/netlink/addr.ts";
import { buildRoute } from "../../ffi/netlink/route.ts";

describe("attributes", () => {
  test("encodeAttrs() then parseAttrs() gives every value back, nested ones too", () => {
    const attrs = [
      u8Attr(1, 0xab), u16Attr(2, 0xbeef), u32Attr(3, 0xdeadbeef), be16Attr(4, 8472), be32Attr(5, 0x0a000001),
      zeroTerminatedAttr(6, "flannel.1"), stringAttr(7, "vxlan"), flagAttr(8), bytesAttr(9, Uint8Array.of(1, 2, 3)),
      nestedAttr(10, [u32Attr(1, 7), nestedAttr(2, [stringAttr(1, "deep")])]),
    ];
    const buf = new Uint8Array(attrsSize(attrs));
    expect(encodeAttrs(attrs, buf, 0)).toBe(buf.length);
    const a = parseAttrs(buf);
    expect(readU8(a.get(1)!)).toBe(0xab);
    expect(readU16(a.get(2)!)).toBe(0xbeef);
    expect(readU32(a.get(3)!)).toBe(0xdeadbeef);
    expect(readBe16(a.get(4)!)).toBe(8472);
    expect([...a.get(5)!]).toEqual([10, 0, 0, 1]);
    expect(readString(a.get(6)!)).toBe("flannel.1");
    expect(a.get(6)!.length).toBe(10);
    expect(readString(a.get(7)!)).toBe("vxlan");
    expect(a.get(8)!.length).toBe(0);
    expect([...a.get(9)!]).toEqual([1, 2, 3]);
    const nest = parseAttrs(a.get(10)!);
    expect(readU32(nest.get(1)!)).toBe(7);
    expect(readString(parseAttrs(nest.get(2)!).get(1)!)).toBe("deep");
  });

  test("leaf builders reject values outside their width, naming the type", () => {
    expect(() => u8Attr(3, 256)).toThrow("u8 (type 3) value 256 must be an integer in 0..255");
    expect(() => u32Attr(3, -1)).toThrow(RangeError);
    expect(() => be16Attr(15, 70000)).toThrow("0..65535");
  });
});

describe("messages", () => {
  test("encodeMessage() frames a request that parseMessages() reads back", () => {
    const msg = encodeMessage(24, 0x505, Uint8Array.of(2, 24), [u32Attr(4, 9)], 77, 0);
    expect(messageHeader(msg)).toEqual({ len: 16 + 4 + 8, type: 24, flags: 0x505, seq: 77, pid: 0 });
    setSeq(msg, 78);
    const [m] = parseMessages(msg);
    expect(m).toMatchObject({ type: 24, flags: 0x505, seq: 78 });
    expect([...m!.payload.subarray(0, 4)]).toEqual([2, 24, 0, 0]);
  });

  test("parseMessages() splits a buffer holding several messages", () => {
    const a = buildRoute("replace", { dst: "10.244.1.0/24", gw: "10.0.0.2" });
    const b = buildRoute("del", { dst: "10.244.2.0/24" });
    const buf = new Uint8Array(a.length + b.length);
    buf.set(a); buf.set(b, a.length);
    expect(parseMessages(buf).map((m) => m.type)).toEqual([24, 25]);
  });

  test("parseMessages() refuses a length past the buffer", () => {
    const msg = encodeMessage(24, 0, new Uint8Array(12));
    expect(() => parseMessages(msg, msg.length - 4)).toThrow("claims 28 bytes but 24 remain");
  });

  test("parsers survive random bytes (no hang, only RangeError/TypeError)", () => {
    let seed = 12345;
    const rnd = () => (seed = (seed * 1103515245 + 12345) >>> 0) >>> 16;
    for (let i = 0; i < 2000; i++) {
      const p = Uint8Array.from({ length: rnd() % 96 }, () => rnd() & 0xff);
      const msg = { type: 16, flags: 0, seq: 0, pid: 0, payload: p };
      for (const parse of [parseLink, parseRoute, parseNeigh, parseAddr, parseErrorReply]) {
        try { parse({ ...msg, type: parse === parseErrorReply ? 2 : 16 }); } catch (e) {
          expect(e instanceof RangeError || e instanceof TypeError).toBe(true);
        }
      }
    }
  });
});
