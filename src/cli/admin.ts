/**
 * @module Admin subcommands, so users need no etcdctl: `weft config get|set FILE|-`,
 * `weft leases list [--json]`, `weft leases reserve SUBNET PUBLIC-IP`, `weft leases release
 * SUBNET`. They talk to the same Registry as the agent and validate before they write.
 */
import { readFileSync } from "node:fs";
import { validateBackendConfig } from "../backend/registry.ts";
import { parseNetworkConfig } from "../config/network.ts";
import { encodeLeaseAttrs, leaseBackendType, leaseKey, subnetKey } from "../lease/lease.ts";
import { recordToLease } from "../lease/manager.ts";
import { formatIPv4, formatIPv4Net, formatIPv6, formatIPv6Net, parseIPv4, parseIPv4Net, parseIPv6Net, tryParseIPv4 } from "../net/ip.ts";
import type { Registry } from "../registry/types.ts";
import { UsageError } from "./go_flags.ts";
import { fileErrorReason } from "../file_error.ts";

export interface Io {
  out: (text: string) => void;
  err: (text: string) => void;
  readStdin: () => string;
}

export const ADMIN_USAGE = `Usage:
  weft config get                       print the network config
  weft config set FILE|-                validate and store the network config
  weft leases list [--json]             list subnet leases
  weft leases reserve SUBNET PUBLIC-IP  reserve SUBNET (e.g. 10.5.34.0/24) for the host with PUBLIC-IP
  weft leases release SUBNET            delete the lease or reservation of SUBNET (IPv4 or IPv6)
  weft docker-opts [-f FILE] [-d FILE] [-i] [-c] [-m] [-k KEY]
Each takes the agent's etcd flags (--etcd-endpoints, --etcd-prefix, TLS and auth).
`;

/** The file `weft config set FILE` stores, or an error naming it and what went wrong. */
function readConfigFile(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch (e) {
    throw new UsageError(`cannot read the network config file ${path}: ${fileErrorReason(e)} (give a JSON file, or - for standard input)`);
  }
}

/** Runs one admin command; returns the exit code. */
export async function runAdmin(registry: Registry, args: string[], io: Io): Promise<number> {
  const [group, verb, ...rest] = args;
  const want = (n: number, form: string) => {
    if (rest.length !== n) throw new UsageError(`usage: weft ${group} ${verb} ${form}`);
  };
  if (group === "config" && verb === "get") {
    want(0, "");
    const text = await registry.getConfig();
    if (text === undefined) { io.err("no network config is stored (use: weft config set FILE)\n"); return 1; }
    io.out(text.endsWith("\n") ? text : `${text}\n`);
    return 0;
  }
  if (group === "config" && verb === "set") {
    want(1, "FILE|-");
    const text = rest[0] === "-" ? io.readStdin() : readConfigFile(rest[0]!);
    const cfg = parseNetworkConfig(text); // throws with the field, the value and the rule
    await validateBackendConfig(cfg); // the backend's own reader: what the agent will run
    await registry.putConfig(text.trim());
    const v6 = cfg.ipv6Network ? `, IPv6Network ${formatIPv6Net(cfg.ipv6Network)}, IPv6SubnetLen ${cfg.ipv6SubnetLen}` : "";
    io.err(`network config stored: Network ${cfg.network ? formatIPv4Net(cfg.network) : "-"}, SubnetLen ${cfg.network ? cfg.subnetLen : "-"}${v6}, backend ${cfg.backendType}\n`);
    return 0;
  }
  if (group === "leases" && verb === "list") {
    const json = rest.includes("--json");
    if (rest.some((a) => a !== "--json")) throw new UsageError("usage: weft leases list [--json]");
    const { records } = await registry.listSubnets();
    // udp and alloc leases carry no BackendType (flanneld leaves it out): name the network's.
    const netType = await registry.getConfig().then((t) => (t === undefined ? undefined : parseNetworkConfig(t).backendType)).catch(() => undefined);
    const untyped = netType === "udp" || netType === "alloc" ? netType : null;
    const rows = [];
    for (const r of records) {
      const l = recordToLease(r, (key, why) => io.err(`skipping ${key}: ${why}\n`));
      if (!l) continue;
      const ttl = r.lease === "0" ? null : await registry.leaseTimeToLive(r.lease).catch(() => -1);
      rows.push({
        subnet: l.subnet ? formatIPv4Net(l.subnet) : null,
        ipv6Subnet: l.ipv6Subnet ? formatIPv6Net(l.ipv6Subnet) : null,
        key: leaseKey(l),
        publicIP: formatIPv4(l.attrs.publicIP),
        publicIPv6: l.attrs.publicIPv6 !== undefined ? formatIPv6(l.attrs.publicIPv6) : null,
        /** null: a reservation no host has used yet (it advertises nothing). */
        backendType: leaseBackendType(l.attrs) || untyped,
        /** ISO time, or null for a reservation (never expires) or an expired lease. */
        expiration: ttl === null || ttl < 0 ? null : new Date(Date.now() + ttl * 1000).toISOString(),
        reservation: r.lease === "0",
        expired: ttl !== null && ttl < 0,
        value: JSON.parse(r.value),
      });
    }
    if (json) {
      io.out(`${JSON.stringify(rows, null, 2)}\n`);
    } else {
      // IPv6 columns only when some lease has an IPv6 subnet (dual stack or IPv6-only).
      const v6 = rows.some((r) => r.ipv6Subnet);
      const table = [
        ["SUBNET", "PUBLIC IP", ...(v6 ? ["IPV6 SUBNET", "PUBLIC IPV6"] : []), "BACKEND", "EXPIRES"],
        ...rows.map((r) => [
          r.subnet ?? "-", r.publicIP, ...(v6 ? [r.ipv6Subnet ?? "-", r.publicIPv6 ?? "-"] : []), r.backendType ?? "-",
          r.reservation ? "never (reservation)" : r.expired ? "expired" : r.expiration!,
        ]),
      ];
      const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
      io.out(table.map((row) => row.map((c, i) => c.padEnd(widths[i]!)).join("  ").trimEnd()).join("\n") + "\n");
    }
    return 0;
  }
  if (group === "leases" && verb === "reserve") {
    want(2, "SUBNET PUBLIC-IP");
    const subnet = parseIPv4Net(rest[0]!, "SUBNET", true);
    const publicIP = parseIPv4(rest[1]!, "PUBLIC-IP");
    const cfgText = await registry.getConfig();
    if (cfgText !== undefined) {
      const cfg = parseNetworkConfig(cfgText);
      if (cfg.network && (subnet.len !== cfg.subnetLen || subnet.ip < cfg.subnetMin || subnet.ip > cfg.subnetMax)) {
        throw new UsageError(`SUBNET ${rest[0]} does not fit the network config: it must be a /${cfg.subnetLen} between ${formatIPv4(cfg.subnetMin)} and ${formatIPv4(cfg.subnetMax)}`);
      }
    }
    const key = subnetKey(subnet);
    const existing = await registry.getSubnet(key);
    let attrs = { publicIP } as Parameters<typeof encodeLeaseAttrs>[0];
    if (existing) {
      const l = recordToLease(existing, () => {});
      if (l && l.attrs.publicIP !== publicIP) {
        throw new UsageError(`SUBNET ${rest[0]} is leased to ${formatIPv4(l.attrs.publicIP)}, not ${rest[1]}: release it first`);
      }
      if (l) attrs = { ...l.attrs, publicIP };
    }
    await registry.putSubnet(key, encodeLeaseAttrs(attrs), 0);
    io.err(`reserved ${formatIPv4Net(subnet)} for ${rest[1]}\n`);
    return 0;
  }
  if (group === "leases" && verb === "release") {
    want(1, "SUBNET");
    // An IPv4 subnet matches a key's first part, an IPv6 one its `&v6-len` part (IPv6-only leases too).
    const isV4 = tryParseIPv4(rest[0]!.split("/")[0]!) !== undefined;
    const text = isV4 ? formatIPv4Net(parseIPv4Net(rest[0]!, "SUBNET", true)) : formatIPv6Net(parseIPv6Net(rest[0]!, "SUBNET", true));
    const v4key = isV4 ? subnetKey(parseIPv4Net(text)) : "";
    const v6part = isV4 ? "" : `&${text.replace("/", "-")}`;
    const { records } = await registry.listSubnets();
    const match = records.filter((r) => (isV4 ? r.key === v4key || r.key.startsWith(`${v4key}&`) : r.key.endsWith(v6part)));
    if (match.length === 0) { io.err(`no lease for ${text}\n`); return 1; }
    for (const r of match) await registry.deleteSubnet(r.key);
    io.err(`released ${text}\n`);
    return 0;
  }
  throw new UsageError(`unknown command: weft ${args.join(" ")}\n${ADMIN_USAGE}`);
}
