/**
 * @module Kernel parameters through /proc/sys, as `sysctl` reads and writes them. Network keys
 * (net.*) belong to the network namespace of the process that opens the file.
 */
import { readFileSync, writeFileSync } from "node:fs";

/**
 * The /proc/sys path of a key. Dotted names map dots to slashes (`net.ipv4.ip_forward`); a
 * name containing a slash is taken as a path as-is, so interface names with dots work
 * (`net/ipv4/conf/eth0.100/forwarding`), as `sysctl` treats them.
 */
export function sysctlPath(name: string): string {
  const rel = name.includes("/") ? name.replace(/^\/+/, "") : name.replaceAll(".", "/");
  if (rel === "" || rel.split("/").some((part) => part === "" || part === "." || part === "..")) {
    throw new TypeError(`sysctl name ${JSON.stringify(name)} is invalid (e.g. net.ipv4.ip_forward or net/ipv4/conf/eth0.100/forwarding)`);
  }
  return `/proc/sys/${rel}`;
}

/**
 * The value of a kernel parameter, without the trailing newline.
 *
 * Equivalent to: `sysctl -n <name>`.
 */
export function readSysctl(name: string): string {
  const path = sysctlPath(name);
  try {
    return readFileSync(path, "utf8").replace(/\n$/, "");
  } catch (e) {
    throw new Error(`Cannot read sysctl ${name} (${path}): ${(e as Error).message}`);
  }
}

/**
 * Sets a kernel parameter.
 *
 * Equivalent to: `sysctl -w <name>=<value>`.
 */
export function writeSysctl(name: string, value: string | number): void {
  const path = sysctlPath(name);
  try {
    writeFileSync(path, `${value}\n`);
  } catch (e) {
    throw new Error(`Cannot set sysctl ${name}=${value} (${path}): ${(e as Error).message}`);
  }
}
