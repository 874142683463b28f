/**
 * @module flanneld's nftables rules as data (compat §7, flannel pkg/trafficmngr/nftables) and the
 * `nft -f -` scripts that install and remove them. Pure. Tables `flannel-ipv4` (ip) and
 * `flannel-ipv6` (ip6); chain `postrtg` (nat, postrouting, srcnat) for masquerading and `forward`
 * (filter, forward, filter) for the forward rules, with knftables' comments. Each chain is
 * declared, flushed and refilled in one transaction, so it is rewritten atomically.
 *
 * Masquerade rule 4 is `saddr != <cluster> daddr <pod> return`, mirroring iptables (§12.10);
 * flanneld writes `saddr != <pod> daddr <cluster>`, which makes rule 6 unreachable.
 */
import type { Family, RuleSpec, RuleState } from "./spec.ts";

/** The nft family and table of an address family. */
export function nftTable(family: Family): { family: "ip" | "ip6"; table: string } {
  return family === 4 ? { family: "ip", table: "flannel-ipv4" } : { family: "ip6", table: "flannel-ipv6" };
}

/** A base chain as knftables declares it. */
export interface NftChain {
  readonly name: "postrtg" | "forward";
  readonly type: "nat" | "filter";
  readonly hook: "postrouting" | "forward";
  readonly priority: "srcnat" | "filter";
  readonly comment: string;
}

export function nftChain(spec: RuleSpec): NftChain {
  return spec.kind === "masq"
    ? { name: "postrtg", type: "nat", hook: "postrouting", priority: "srcnat", comment: "chain to manage traffic masquerading by flannel" }
    : { name: "forward", type: "filter", hook: "forward", priority: "filter", comment: "chain to accept flannel traffic" };
}

/** The rule bodies of one set, in order, as written to `add rule`. */
export function nftRules(spec: RuleSpec): string[] {
  const ip = spec.family === 4 ? "ip" : "ip6";
  if (spec.kind === "forward") return [`${ip} saddr ${spec.network} accept`, `${ip} daddr ${spec.network} accept`];
  const { cluster, pod } = spec;
  const multicast = spec.family === 4 ? "224.0.0.0/4" : "ff00::/8";
  const masquerade = spec.randomFully ? "masquerade fully-random" : "masquerade";
  return [
    "meta mark 0x4000 return",
    `${ip} saddr ${pod} ${ip} daddr ${cluster} return`,
    `${ip} saddr ${cluster} ${ip} daddr ${pod} return`,
    `${ip} saddr != ${cluster} ${ip} daddr ${pod} return`,
    `${ip} saddr ${cluster} ${ip} daddr != ${multicast} ${masquerade}`,
    `${ip} saddr != ${cluster} ${ip} daddr ${cluster} ${masquerade}`,
  ];
}

/** How `nft list` prints a rule body we wrote (it widens marks to 8 hex digits). */
export function nftListed(rule: string): string {
  return rule.replace(/\bmeta mark 0x([0-9a-f]+)\b/, (_, hex: string) => `meta mark 0x${hex.padStart(8, "0")}`);
}

/**
 * The `nft -f -` transaction that (re)writes the given sets: per set, the table (idempotent),
 * the base chain, a flush of it and its rules in order. Empty string for no sets.
 */
export function nftInstallScript(specs: readonly RuleSpec[]): string {
  const lines: string[] = [];
  const tables = new Set<string>();
  for (const spec of specs) {
    const { family, table } = nftTable(spec.family);
    if (!tables.has(table)) {
      tables.add(table);
      lines.push(`add table ${family} ${table} { comment "rules for ${table}" ; }`);
    }
    const c = nftChain(spec);
    lines.push(`add chain ${family} ${table} ${c.name} { type ${c.type} hook ${c.hook} priority ${c.priority} ; comment "${c.comment}" ; }`);
    lines.push(`flush chain ${family} ${table} ${c.name}`);
    for (const rule of nftRules(spec)) lines.push(`add rule ${family} ${table} ${c.name} ${rule}`);
  }
  return lines.map((l) => `${l}\n`).join("");
}

/**
 * The rule lines of each chain in `nft list table …` output, trimmed, without the chain's
 * `comment`/`type` lines. Chain name → rule lines in order.
 */
export function parseNftTable(text: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  let rules: string[] | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    const open = /^chain (\S+) \{$/.exec(line);
    if (open) {
      rules = [];
      out.set(open[1]!, rules);
    } else if (line === "}") {
      rules = undefined;
    } else if (rules && line !== "" && !line.startsWith("comment ") && !line.startsWith("type ")) {
      rules.push(line);
    }
  }
  return out;
}

/** Whether one set is intact in its family's listed table (undefined: the table is absent). */
export function nftState(spec: RuleSpec, listed: Map<string, string[]> | undefined): RuleState {
  const { family, table } = nftTable(spec.family);
  const c = nftChain(spec);
  if (!listed) return { ok: false, reason: `table ${family} ${table} is missing` };
  const have = listed.get(c.name);
  if (!have) return { ok: false, reason: `chain ${family} ${table} ${c.name} is missing` };
  const want = nftRules(spec).map(nftListed);
  for (let i = 0; i < Math.max(have.length, want.length); i++) {
    if (have[i] !== want[i]) {
      return { ok: false, reason: want[i] === undefined ? `unexpected rule ${have[i]}` : `rule ${want[i]} is missing or out of order` };
    }
  }
  return { ok: true };
}

/**
 * The transaction deleting flannel's tables that `nft list tables` shows (the engine not in use,
 * and flanneld's clean-up). Empty string when there are none.
 */
export function nftRemoveAllScript(listTablesOutput: string): string {
  const ours = new Set([4, 6].map((f) => { const t = nftTable(f as Family); return `table ${t.family} ${t.table}`; }));
  return listTablesOutput.split("\n").map((l) => l.trim()).filter((l) => ours.has(l)).map((l) => `delete ${l}\n`).join("");
}

/** A check-only transaction (`nft -c`) that fails where `masquerade fully-random` is unsupported. */
export const NFT_RANDOM_FULLY_PROBE = [
  "add table ip weft-probe",
  "add chain ip weft-probe postrtg { type nat hook postrouting priority srcnat ; }",
  "add rule ip weft-probe postrtg ip saddr != 127.0.0.1 masquerade fully-random",
  "",
].join("\n");
