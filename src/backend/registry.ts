/**
 * @module Backends by name. A new backend adds its folder and one line here.
 */
import type { NetworkConfig } from "../config/network.ts";
import { allocBackend } from "./alloc.ts";
import type { Backend } from "./types.ts";

const BACKENDS = new Map<string, () => Promise<Backend>>([
  ["alloc", async () => allocBackend],
  ["udp", async () => (await import("./udp/udp_backend.ts")).udpBackend],
  ["vxlan", async () => (await import("./vxlan/index.ts")).vxlanBackend],
  ["host-gw", async () => (await import("./hostgw/index.ts")).hostgwBackend],
  ["extension", async () => (await import("./extension/index.ts")).extensionBackend],
  ["wireguard", async () => (await import("./wireguard/index.ts")).wireguardBackend],
]);

/** Types flanneld has that weft does not implement (this machine cannot test them). */
const NOT_SUPPORTED = new Set(["ipip", "ipsec", "gce", "aws-vpc", "ali-vpc", "tencent-vpc"]);

export async function getBackend(type: string): Promise<Backend> {
  const load = BACKENDS.get(type);
  if (load) return load();
  const known = [...BACKENDS.keys()].join(", ");
  if (NOT_SUPPORTED.has(type)) throw new Error(`backend type ${JSON.stringify(type)} is a flanneld backend weft does not support; weft supports: ${known}`);
  throw new Error(`unknown backend type ${JSON.stringify(type)} in Backend.Type; weft supports: ${known}`);
}

/**
 * Each backend's reader of its `Backend` object, loaded without the backend itself: the same
 * code `createNetwork()` runs, so `weft config set` stores only configs the agent accepts.
 */
const CONFIG_READERS = new Map<string, () => Promise<(backend: Record<string, unknown>) => unknown>>([
  ["udp", async () => (await import("./udp/udp_options.ts")).udpConfigReader],
  ["vxlan", async () => (await import("./vxlan/config.ts")).parseVxlanConfig],
  ["extension", async () => (await import("./extension/config.ts")).parseExtensionConfig],
  ["wireguard", async () => (await import("./wireguard/config.ts")).parseWireguardConfig],
]);

/**
 * Throws, naming the key, the value and what is allowed, when the agent would refuse the
 * config's backend: an unknown or unsupported type, or a bad backend-specific key.
 */
export async function validateBackendConfig(cfg: NetworkConfig): Promise<void> {
  if (!BACKENDS.has(cfg.backendType)) await getBackend(cfg.backendType); // throws the explanation
  const reader = await CONFIG_READERS.get(cfg.backendType)?.();
  reader?.(cfg.backend);
}

export function backendTypes(): string[] {
  return [...BACKENDS.keys()];
}
