/**
 * @module Conversions between the text weft's callers use (IP addresses, CIDR prefixes, MAC
 * addresses) and the bytes netlink carries, with errors that name the field and the value.
 * Addresses go through src/net/ip.ts; families are the kernel's AF_INET / AF_INET6.
 */
import {
  formatIPv4, formatIPv6, ipv4FromBytes, ipv4ToBytes, ipv6FromBytes, ipv6ToBytes, maskV4, maskV6, parseIP,
} from "../../src/net/ip.ts";
import { AF_INET, AF_INET6 } from "./constants.ts";

/** An address as the kernel carries it. */
export interface IpBytes { readonly family: number; readonly bytes: Uint8Array }
/** A prefix as the kernel carries it (host bits cleared). */
export interface PrefixBytes extends IpBytes { readonly len: number }

/** `"10.0.0.1"` or `"fd00::1"` to family and bytes; `what` names the field in errors. */
export function ipToBytes(s: string, what: string): IpBytes {
  const ip = parseIP(s, what);
  return ip.family === 4
    ? { family: AF_INET, bytes: ipv4ToBytes(ip.ip) }
    : { family: AF_INET6, bytes: ipv6ToBytes(ip.ip) };
}

/** 4 or 16 bytes to text ("10.0.0.1", "fd00::1"). */
export function bytesToIp(b: Uint8Array): string {
  if (b.length === 4) return formatIPv4(ipv4FromBytes(b));
  if (b.length === 16) return formatIPv6(ipv6FromBytes(b));
  throw new RangeError(`netlink: an address of ${b.length} bytes is neither IPv4 (4) nor IPv6 (16)`);
}

/**
 * `"10.244.1.0/24"` (or a bare address, meaning /32 or /128) to family, masked bytes and length.
 * Host bits are cleared, as the kernel requires for route destinations.
 */
export function prefixToBytes(s: string, what: string): PrefixBytes {
  const slash = s.indexOf("/");
  const ip = parseIP(slash < 0 ? s : s.slice(0, slash), what);
  const max = ip.family === 4 ? 32 : 128;
  const lenText = slash < 0 ? String(max) : s.slice(slash + 1);
  const len = Number(lenText);
  if (!/^\d{1,3}$/.test(lenText) || len > max) {
    throw new TypeError(`${what} ${JSON.stringify(s)} has prefix length ${JSON.stringify(lenText)}; allowed is 0..${max}`);
  }
  return ip.family === 4
    ? { family: AF_INET, len, bytes: ipv4ToBytes((ip.ip & maskV4(len)) >>> 0) }
    : { family: AF_INET6, len, bytes: ipv6ToBytes(ip.ip & maskV6(len)) };
}

/** `"0a:58:0a:f4:01:00"` to 6 bytes. */
export function macToBytes(s: string, what: string): Uint8Array {
  const parts = s.split(":");
  if (parts.length !== 6 || parts.some((p) => !/^[0-9a-fA-F]{2}$/.test(p))) {
    throw new TypeError(`${what} ${JSON.stringify(s)} is not a MAC address (six hex pairs, e.g. 0a:58:0a:f4:01:00)`);
  }
  return Uint8Array.from(parts, (p) => parseInt(p, 16));
}

/** Link-layer address bytes to lowercase colon text. */
export function bytesToMac(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, "0")).join(":");
}

/** Family name for messages. */
export function familyName(family: number): string {
  return family === AF_INET ? "inet" : family === AF_INET6 ? "inet6" : `family ${family}`;
}
