/**
 * @module subnet.env, the file flanneld writes for Docker and the CNI plugin (compat §5):
 * `KEY=value` lines, unquoted, in flannel's fixed order, written atomically (temp file + rename)
 * with mode 0644 in a 0755 directory; read back at the next start for the previous subnet.
 */
import { chmodSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";

/** The values of subnet.env. Subnets carry the host address (network address + 1). */
export interface SubnetEnv {
  /** FLANNEL_NETWORK, e.g. `10.42.0.0/16` (readers accept a comma list: v0.21–v0.22). */
  network?: string;
  /** FLANNEL_SUBNET, e.g. `10.42.0.1/24`. */
  subnet?: string;
  ipv6Network?: string;
  ipv6Subnet?: string;
  mtu?: number;
  ipMasq?: boolean;
}

/** Renders subnet.env in flanneld's exact order and format. */
export function formatSubnetEnv(env: SubnetEnv): string {
  const lines: string[] = [];
  if (env.network !== undefined) lines.push(`FLANNEL_NETWORK=${env.network}`);
  if (env.subnet !== undefined) lines.push(`FLANNEL_SUBNET=${env.subnet}`);
  if (env.ipv6Network !== undefined) lines.push(`FLANNEL_IPV6_NETWORK=${env.ipv6Network}`);
  if (env.ipv6Subnet !== undefined) lines.push(`FLANNEL_IPV6_SUBNET=${env.ipv6Subnet}`);
  if (env.mtu !== undefined) lines.push(`FLANNEL_MTU=${env.mtu}`);
  if (env.ipMasq !== undefined) lines.push(`FLANNEL_IPMASQ=${env.ipMasq}`);
  return lines.map((l) => `${l}\n`).join("");
}

/**
 * Parses subnet.env text: each line split at its first `=`; unknown keys and blank lines are
 * ignored (the file is shared with other tools). `FLANNEL_IPMASQ` is true only when exactly
 * `true`, as flannel's CNI plugin reads it.
 */
export function parseSubnetEnv(text: string): SubnetEnv & { raw: Record<string, string> } {
  const raw: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const eq = line.indexOf("=");
    if (eq <= 0) continue;
    raw[line.slice(0, eq).trim()] = line.slice(eq + 1).trim();
  }
  const out: SubnetEnv & { raw: Record<string, string> } = { raw };
  if (raw.FLANNEL_NETWORK) out.network = raw.FLANNEL_NETWORK;
  if (raw.FLANNEL_SUBNET) out.subnet = raw.FLANNEL_SUBNET;
  if (raw.FLANNEL_IPV6_NETWORK) out.ipv6Network = raw.FLANNEL_IPV6_NETWORK;
  if (raw.FLANNEL_IPV6_SUBNET) out.ipv6Subnet = raw.FLANNEL_IPV6_SUBNET;
  if (raw.FLANNEL_MTU && /^\d+$/.test(raw.FLANNEL_MTU)) out.mtu = Number(raw.FLANNEL_MTU);
  if (raw.FLANNEL_IPMASQ !== undefined) out.ipMasq = raw.FLANNEL_IPMASQ === "true";
  return out;
}

/** Reads and parses `path`; undefined when the file does not exist. */
export function readSubnetEnv(path: string): ReturnType<typeof parseSubnetEnv> | undefined {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new Error(`cannot read subnet file ${path}: ${(e as Error).message}`);
  }
  return parseSubnetEnv(text);
}

/**
 * Writes `path` atomically: a temp file beside it, mode 0644 whatever the umask, then rename.
 * When any step fails the temp file is removed, so a full disk leaves no `<path>.<pid>.tmp`.
 */
export function writeSubnetEnv(path: string, env: SubnetEnv): void {
  const dir = dirname(path);
  mkdirSync(dir, { recursive: true, mode: 0o755 });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(tmp, formatSubnetEnv(env), { mode: 0o644 });
    chmodSync(tmp, 0o644);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw e;
  }
}
