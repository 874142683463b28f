/** @module Byte-exact tests of ffi/linux.ts's structure packers against the x86_64/arm64 layouts. */
import { describe, expect, test } from "bun:test";
import {
  AF_INET, AF_INET6, AF_NETLINK, cmsgLen, cmsgSpace, findCmsgInt, IFF_NO_PI, IFF_TUN, ifreq, ifreqFlags,
  ifreqInt, ifreqName, mmsgLen, MSGHDR_SIZE, parseSockaddr, POLLIN, pollRevents, putCmsgInt, setIovec, setMsghdr,
  setPollfd, SOL_UDP, sockaddrIn, sockaddrIn6, sockaddrNl, structBuffer, TUNGETIFF, TUNSETIFF, TUNSETOFFLOAD,
  TUNSETVNETHDRSZ, UDP_GRO, UDP_SEGMENT,
} from "../../ffi/linux.ts";
import { parseIPv4, parseIPv6 } from "../../src/net/ip.ts";

const bytes = (b: Uint8Array) => [...b];
const hex = (s: string) => [...s.replace(/\s+/g, "").matchAll(/../g)].map((m) => parseInt(m[0], 16));

describe("sockaddrs", () => {
  test("sockaddrIn() is family (host order), port and address (network order), 8 zero bytes", () => {
    expect(bytes(sockaddrIn(parseIPv4("127.0.0.1"), 8285))).toEqual(hex("0200 205d 7f000001 0000000000000000"));
  });

  test("sockaddrIn6() puts flowinfo 0, the address and the scope id", () => {
    expect(bytes(sockaddrIn6(parseIPv6("2001:db8::1"), 8472, 3))).toEqual(
      hex("0a00 2118 00000000 20010db8000000000000000000000001 03000000"),
    );
  });

  test("sockaddrNl() is family, pad, pid and groups in host order", () => {
    expect(bytes(sockaddrNl(1234, 0x11))).toEqual(hex("1000 0000 d2040000 11000000"));
  });

  test("sockaddrIn() writes at an offset of a caller's buffer", () => {
    const buf = new Uint8Array(20).fill(0xee);
    sockaddrIn(parseIPv4("10.0.0.1"), 1, buf, 4);
    expect(bytes(buf)).toEqual(hex("eeeeeeee 0200 0001 0a000001 0000000000000000"));
  });

  test("parseSockaddr() reads back what the packers wrote", () => {
    expect(parseSockaddr(sockaddrIn(parseIPv4("10.1.2.3"), 8285))).toEqual({ family: AF_INET, ip: parseIPv4("10.1.2.3"), port: 8285 });
    expect(parseSockaddr(sockaddrIn6(parseIPv6("fe80::1"), 53, 7))).toEqual({ family: AF_INET6, ip: parseIPv6("fe80::1"), port: 53, scopeId: 7 });
    expect(parseSockaddr(sockaddrNl(9, 1))).toEqual({ family: AF_NETLINK, pid: 9, groups: 1 });
  });

  test("errors name the value and the range", () => {
    expect(() => sockaddrIn(0, 65536)).toThrow("port 65536 is out of range (0..65535)");
    expect(() => sockaddrIn(0, 1, new Uint8Array(8))).toThrow("sockaddr_in needs 16 bytes at offset 0, buffer has 8");
    expect(() => parseSockaddr(new Uint8Array([1, 0]))).toThrow("sockaddr family 1 is not supported");
  });
});

describe("ifreq", () => {
  test("ifreq() is the NUL-padded name then the flags as a host-order short, 40 bytes", () => {
    const req = ifreq("flannel0", IFF_TUN | IFF_NO_PI);
    expect(bytes(req)).toEqual([
      ...hex("666c616e6e656c30 0000000000000000"), ...hex("0110"), ...new Array(22).fill(0),
    ]);
    expect(ifreqName(req)).toBe("flannel0");
    expect(ifreqFlags(req)).toBe(0x1001);
  });

  test("ifreqInt() reads the union as an int (ifr_mtu)", () => {
    const req = ifreq("lo");
    new DataView(req.buffer).setInt32(16, 65536, true);
    expect(ifreqInt(req)).toBe(65536);
  });

  test("ifreq() rejects names the kernel would", () => {
    expect(() => ifreq("")).toThrow('interface name "" is invalid (1..15 bytes');
    expect(() => ifreq("a234567890123456")).toThrow('interface name "a234567890123456" is invalid');
    expect(() => ifreq("a/b")).toThrow("is invalid");
    expect(ifreqName(ifreq("a23456789012345"))).toBe("a23456789012345");
  });
});

describe("iovec, msghdr, mmsghdr, cmsg, pollfd", () => {
  test("setIovec() is base then length, both 64-bit host order", () => {
    const buf = structBuffer(16);
    setIovec(buf, 0, 0x1122334455667788n, 1400);
    expect(bytes(buf)).toEqual(hex("8877665544332211 7805000000000000"));
  });

  test("setMsghdr() lays out the 56-byte struct msghdr", () => {
    const buf = structBuffer(64).fill(0xee);
    setMsghdr(buf, 0, {
      name: 0x1000n, nameLen: 16, iov: 0x2000n, iovLen: 1, control: 0x3000n, controlLen: 24, flags: 0x40,
    });
    expect(bytes(buf.subarray(0, MSGHDR_SIZE))).toEqual(hex(
      "0010000000000000 10000000 00000000 0020000000000000 0100000000000000" +
      "0030000000000000 1800000000000000 40000000 00000000",
    ));
    expect(bytes(buf.subarray(MSGHDR_SIZE))).toEqual(new Array(8).fill(0xee)); // msg_len untouched
  });

  test("mmsgLen() reads msg_len at offset 56 of each 64-byte mmsghdr", () => {
    const vec = structBuffer(128);
    new DataView(vec.buffer).setUint32(64 + 56, 1400, true);
    expect(mmsgLen(vec, 0)).toBe(0);
    expect(mmsgLen(vec, 1)).toBe(1400);
  });

  test("putCmsgInt() writes a UDP_SEGMENT cmsg with a u16, padded to CMSG_SPACE", () => {
    const buf = structBuffer(24).fill(0xee);
    expect(putCmsgInt(buf, 0, SOL_UDP, UDP_SEGMENT, 1400, 2)).toBe(24);
    expect(bytes(buf)).toEqual(hex("1200000000000000 11000000 67000000 7805 000000000000"));
    expect(cmsgSpace(4)).toBe(24);
    expect(cmsgLen(4)).toBe(20);
  });

  test("findCmsgInt() walks the control messages and returns -1 when absent", () => {
    const buf = structBuffer(48);
    putCmsgInt(buf, 0, 0, 8, 7); // IP_PKTINFO-like first
    putCmsgInt(buf, 24, SOL_UDP, UDP_GRO, 1448);
    expect(findCmsgInt(buf, 0, 48, SOL_UDP, UDP_GRO)).toBe(1448);
    expect(findCmsgInt(buf, 0, 24, SOL_UDP, UDP_GRO)).toBe(-1);
    expect(findCmsgInt(buf, 0, 48, SOL_UDP, UDP_SEGMENT)).toBe(-1);
    putCmsgInt(buf, 0, SOL_UDP, UDP_SEGMENT, 1000, 2);
    expect(findCmsgInt(buf, 0, 48, SOL_UDP, UDP_SEGMENT)).toBe(1000);
  });

  test("setPollfd() is fd, events, revents = 0; pollRevents() reads revents", () => {
    const buf = structBuffer(16).fill(0xee);
    setPollfd(buf, 1, 5, POLLIN);
    expect(bytes(buf)).toEqual([...new Array(8).fill(0xee), ...hex("05000000 0100 0000")]);
    buf[14] = 0x11;
    expect(pollRevents(buf, 1)).toBe(0x11);
  });
});

test("TUN ioctl numbers match linux/if_tun.h", () => {
  expect([TUNSETIFF, TUNSETOFFLOAD, TUNSETVNETHDRSZ, TUNGETIFF]).toEqual([0x400454ca, 0x400454d0, 0x400454d8, 0x800454d2]);
});
