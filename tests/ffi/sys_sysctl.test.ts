/** @module sysctl names to /proc/sys paths, reads, and errors that name the key (writes: tun_namespace.test.ts). */
import { expect, test } from "bun:test";
import { readSysctl, sysctlPath, writeSysctl } from "../../ffi/sysctl.ts";

test("sysctlPath() maps dots to slashes and takes slashed names as paths", () => {
  expect(sysctlPath("net.ipv4.ip_forward")).toBe("/proc/sys/net/ipv4/ip_forward");
  expect(sysctlPath("net/ipv4/conf/eth0.100/forwarding")).toBe("/proc/sys/net/ipv4/conf/eth0.100/forwarding");
  expect(sysctlPath("/net/ipv4/ip_forward")).toBe("/proc/sys/net/ipv4/ip_forward");
});

test("sysctlPath() rejects names that escape /proc/sys or are empty", () => {
  expect(() => sysctlPath("")).toThrow('sysctl name "" is invalid');
  expect(() => sysctlPath("net/../../etc/passwd")).toThrow('sysctl name "net/../../etc/passwd" is invalid');
  expect(() => sysctlPath("net..ipv4")).toThrow("is invalid");
});

test("readSysctl() returns the value without its newline", () => {
  expect(readSysctl("kernel.ostype")).toBe("Linux");
});

test("readSysctl() and writeSysctl() errors name the key and the path", () => {
  expect(() => readSysctl("net.ipv4.weft_missing")).toThrow("Cannot read sysctl net.ipv4.weft_missing (/proc/sys/net/ipv4/weft_missing)");
  expect(() => writeSysctl("kernel.weft_missing", 1)).toThrow("Cannot set sysctl kernel.weft_missing=1 (/proc/sys/kernel/weft_missing)");
});
