/**
 * @module The node's WireGuard private key, persisted as flanneld keeps it: `/run/flannel/wgkey`
 * (or `$WIREGUARD_KEY_FILE`), base64 as `wg genkey` writes it, mode 0400. Made once, when the file
 * is missing, and reused on every later start, so a restart keeps the public key in the lease
 * and the peers keep their configuration. A file that exists but does not hold a key is an error
 * naming the file, never silently replaced: that would change the node's identity.
 *
 * @example
 *   const { privateKey, publicKey, created } = loadOrCreateKey(keyFilePath(process.env));
 */
import { closeSync, mkdirSync, openSync, readFileSync, writeSync } from "node:fs";
import { dirname } from "node:path";
import { formatKey, parseKey } from "./wg_key.ts";
import { generatePrivateKey, publicKeyOf } from "./x25519.ts";

/** Where flanneld keeps the key when WIREGUARD_KEY_FILE is not set. */
export const DEFAULT_KEY_FILE = "/run/flannel/wgkey";

/** The key file's path: `WIREGUARD_KEY_FILE` if set, else /run/flannel/wgkey. */
export function keyFilePath(env: Record<string, string | undefined>): string {
  const v = env.WIREGUARD_KEY_FILE;
  if (v === undefined) return DEFAULT_KEY_FILE;
  if (v === "") throw new Error("WIREGUARD_KEY_FILE is set but empty: give the key file's path, or unset it to use /run/flannel/wgkey");
  return v;
}

export interface NodeKey {
  readonly privateKey: Uint8Array;
  readonly publicKey: Uint8Array;
  readonly path: string;
  /** True when this call made the key (the file did not exist). */
  readonly created: boolean;
}

/** Reads the private key at `path`, or makes one there (mode 0400, parent made 0755) if none exists. */
export function loadOrCreateKey(path: string): NodeKey {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code !== "ENOENT") throw new Error(`cannot read the WireGuard key file ${path}: ${(e as Error).message}`);
    return create(path);
  }
  try {
    const privateKey = parseKey(text, "the content");
    return { privateKey, publicKey: publicKeyOf(privateKey), path, created: false };
  } catch (e) {
    throw new Error(`the WireGuard key file ${path} does not hold a private key: ${(e as Error).message}. ` +
      "Put a key there ('wg genkey > FILE') or remove the file to have a new one made (the node's public key then changes)");
  }
}

function create(path: string): NodeKey {
  const privateKey = generatePrivateKey();
  try {
    mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
    // O_EXCL: two agents starting at once must not each write a different key.
    const fd = openSync(path, "wx", 0o400);
    try {
      writeSync(fd, formatKey(privateKey));
    } finally {
      closeSync(fd);
    }
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return loadOrCreateKey(path);
    throw new Error(`cannot write the WireGuard key file ${path}: ${(e as Error).message}`);
  }
  return { privateKey, publicKey: publicKeyOf(privateKey), path, created: true };
}
