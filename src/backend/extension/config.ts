/**
 * @module The extension Backend object (compat §2.2, flannel Documentation/extension.md):
 * `PreStartupCommand`, `PostStartupCommand`, `SubnetAddCommand`, `SubnetRemoveCommand`, each a
 * shell command (string, optional), keys case-insensitive as Go reads them.
 */
import { getCI } from "../../config/json_ci.ts";

export interface ExtensionConfig {
  /** Runs before the lease; its trimmed output becomes the lease's BackendData (a JSON string). */
  readonly preStartup?: string;
  /** Runs once the lease is held: NETWORK, SUBNET, IPV6SUBNET, PUBLIC_IP, PUBLIC_IPV6. */
  readonly postStartup?: string;
  /** Per peer lease of type extension: SUBNET, PUBLIC_IP (…V6), its BackendData on stdin. */
  readonly subnetAdd?: string;
  readonly subnetRemove?: string;
}

const KEYS = { preStartup: "PreStartupCommand", postStartup: "PostStartupCommand", subnetAdd: "SubnetAddCommand", subnetRemove: "SubnetRemoveCommand" } as const;

/**
 * Reads the Backend object of an extension network. Throws naming the key and value.
 *
 * @example
 *   parseExtensionConfig({ Type: "extension", SubnetAddCommand: "ip route add $SUBNET via $PUBLIC_IP" }).subnetAdd
 *   // → "ip route add $SUBNET via $PUBLIC_IP"
 */
export function parseExtensionConfig(backend: Record<string, unknown>): ExtensionConfig {
  const out: Record<string, string> = {};
  for (const [field, key] of Object.entries(KEYS)) {
    const v = getCI(backend, key);
    if (v === undefined || v === null || v === "") continue;
    if (typeof v !== "string") throw new TypeError(`invalid extension backend config: Backend.${key} ${JSON.stringify(v)} must be a shell command (a string)`);
    out[field] = v;
  }
  return out as ExtensionConfig;
}
