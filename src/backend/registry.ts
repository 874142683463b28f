/**
 * @module Backends by name. A new backend adds its folder and one line here.
 */
import { allocBackend } from "./alloc.ts";
import type { Backend } from "./types.ts";

const BACKENDS = new Map<string, () => Promise<Backend>>([
  ["alloc", async () => allocBackend],
  ["udp", async () => (await import("./udp/udp_backend.ts")).udpBackend],
  ["vxlan", async () => (await import("./vxlan/index.ts")).vxlanBackend],
  ["host-gw", async () => (await import("./hostgw/index.ts")).hostgwBackend],
]);

/** Types flanneld has that weft does not implement (this machine cannot test them). */
const NOT_SUPPORTED = new Set(["ipip", "wireguard", "ipsec", "extension", "gce", "aws-vpc", "ali-vpc", "tencent-vpc"]);

export async function getBackend(type: string): Promise<Backend> {
  const load = BACKENDS.get(type);
  if (load) return load();
  const known = [...BACKENDS.keys()].join(", ");
  if (NOT_SUPPORTED.has(type)) throw new Error(`backend type ${JSON.stringify(type)} is a flanneld backend weft does not support; weft supports: ${known}`);
  throw new Error(`unknown backend type ${JSON.stringify(type)} in Backend.Type; weft supports: ${known}`);
}

export function backendTypes(): string[] {
  return [...BACKENDS.keys()];
}
