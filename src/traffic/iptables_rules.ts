/**
 * @module flanneld's iptables rules as data and the `iptables-restore --noflush` inputs that
 * install, check and remove them (compat §7, flannel pkg/trafficmngr/iptables). Pure: the kernel
 * state comes in as `iptables-save` text and goes out as restore text.
 *
 * Rule text is rendered exactly as `iptables-save` prints it (the `--comment` argument quoted, as
 * flannel's restore payload does), so "is this rule present" is a string comparison.
 */
import type { Family, ForwardSpec, MasqSpec, RuleSpec, RuleState } from "./spec.ts";

export const MASQ_COMMENT = "flanneld masq";
export const FORWARD_COMMENT = "flanneld forward";
/** kube-proxy's masquerade mark: such packets are left to kube-proxy (no double NAT). */
export const KUBE_PROXY_MARK = "0x4000/0x4000";
export const MASQ_CHAIN = "FLANNEL-POSTRTG";
export const FORWARD_CHAIN = "FLANNEL-FWD";

/** One rule: the chain it is appended to and its arguments, as `iptables -t TABLE -A CHAIN ARGS`. */
export interface IptablesRule {
  readonly table: "nat" | "filter";
  readonly chain: string;
  readonly args: readonly string[];
}

/** Where a rule set lives: our chain, the built-in chain that jumps to it, the shared comment. */
export interface IptablesChain {
  readonly table: "nat" | "filter";
  readonly chain: string;
  readonly parent: string;
  readonly comment: string;
}

export function iptablesChain(spec: RuleSpec): IptablesChain {
  return spec.kind === "masq"
    ? { table: "nat", chain: MASQ_CHAIN, parent: "POSTROUTING", comment: MASQ_COMMENT }
    : { table: "filter", chain: FORWARD_CHAIN, parent: "FORWARD", comment: FORWARD_COMMENT };
}

/** The rules of one set in flanneld's order: the jump from the built-in chain first. */
export function iptablesRules(spec: RuleSpec): IptablesRule[] {
  return spec.kind === "masq" ? masqRules(spec) : forwardRules(spec);
}

function masqRules(s: MasqSpec): IptablesRule[] {
  const c = ["-m", "comment", "--comment", MASQ_COMMENT];
  const multicast = s.family === 4 ? "224.0.0.0/4" : "ff00::/8";
  const masq = s.randomFully ? ["-j", "MASQUERADE", "--random-fully"] : ["-j", "MASQUERADE"];
  const r = (args: string[]): IptablesRule => ({ table: "nat", chain: MASQ_CHAIN, args });
  return [
    { table: "nat", chain: "POSTROUTING", args: [...c, "-j", MASQ_CHAIN] },
    r(["-m", "mark", "--mark", KUBE_PROXY_MARK, ...c, "-j", "RETURN"]),
    r(["-s", s.pod, "-d", s.cluster, ...c, "-j", "RETURN"]),
    r(["-s", s.cluster, "-d", s.pod, ...c, "-j", "RETURN"]),
    r(["!", "-s", s.cluster, "-d", s.pod, ...c, "-j", "RETURN"]),
    r(["-s", s.cluster, "!", "-d", multicast, ...c, ...masq]),
    r(["!", "-s", s.cluster, "-d", s.cluster, ...c, ...masq]),
  ];
}

function forwardRules(s: ForwardSpec): IptablesRule[] {
  const c = ["-m", "comment", "--comment", FORWARD_COMMENT];
  return [
    { table: "filter", chain: "FORWARD", args: [...c, "-j", FORWARD_CHAIN] },
    { table: "filter", chain: FORWARD_CHAIN, args: ["-s", s.network, ...c, "-j", "ACCEPT"] },
    { table: "filter", chain: FORWARD_CHAIN, args: ["-d", s.network, ...c, "-j", "ACCEPT"] },
  ];
}

/** `-A CHAIN args…` (or `-D …`) as one restore line, the `--comment` argument in double quotes. */
export function ruleLine(action: "-A" | "-D", rule: IptablesRule): string {
  const words = rule.args.map((a, i) => (i > 0 && rule.args[i - 1] === "--comment" ? `"${a}"` : a));
  return `${action} ${rule.chain} ${words.join(" ")}`;
}

// ---------------------------------------------------------------- iptables-save

/** One table of `iptables-save` output: its chains and, per chain, its `-A` lines in order. */
export interface SavedTable {
  readonly chains: Set<string>;
  readonly rules: Map<string, string[]>;
}

/** `iptables-save` output by table name. Tables not printed are absent. */
export type SavedRuleset = Map<string, SavedTable>;

/** Parses `iptables-save` / `ip6tables-save` output (any number of tables). */
export function parseIptablesSave(text: string): SavedRuleset {
  const out: SavedRuleset = new Map();
  let table: SavedTable | undefined;
  for (const raw of text.split("\n")) {
    const line = raw.trimEnd();
    if (line.startsWith("*")) {
      table = { chains: new Set(), rules: new Map() };
      out.set(line.slice(1), table);
    } else if (!table || line === "" || line.startsWith("#")) {
      continue;
    } else if (line.startsWith(":")) {
      table.chains.add(line.slice(1).split(" ")[0]!);
    } else if (line.startsWith("-A ")) {
      const chain = line.slice(3).split(" ")[0]!;
      const list = table.rules.get(chain) ?? [];
      list.push(line);
      table.rules.set(chain, list);
    } else if (line === "COMMIT") {
      table = undefined;
    }
  }
  return out;
}

function savedLines(saved: SavedRuleset, table: string, chain: string): string[] {
  return saved.get(table)?.rules.get(chain) ?? [];
}

/**
 * Whether one rule set is intact: our chain holds exactly its rules in order (stricter than
 * flanneld's per-rule `iptables -C`: a foreign or reordered rule also triggers a rebuild), and
 * the built-in chain jumps to it.
 */
export function iptablesState(spec: RuleSpec, saved: SavedRuleset): RuleState {
  const where = iptablesChain(spec);
  const [jump, ...rules] = iptablesRules(spec);
  if (!saved.get(where.table)?.chains.has(where.chain)) return { ok: false, reason: `chain ${where.table} ${where.chain} is missing` };
  if (!savedLines(saved, where.table, where.parent).includes(ruleLine("-A", jump!))) {
    return { ok: false, reason: `the jump from ${where.parent} to ${where.chain} is missing` };
  }
  const have = savedLines(saved, where.table, where.chain);
  const want = rules.map((r) => ruleLine("-A", r));
  for (let i = 0; i < Math.max(have.length, want.length); i++) {
    if (have[i] !== want[i]) {
      return { ok: false, reason: want[i] === undefined ? `unexpected rule ${have[i]}` : `rule ${want[i]} is missing or out of order` };
    }
  }
  return { ok: true };
}

// ---------------------------------------------------------------- restore inputs

/** Groups lines by table, tables in first-seen order, into `*table … COMMIT` blocks. */
function renderTables(blocks: ReadonlyArray<readonly [table: string, lines: readonly string[]]>): string {
  const byTable = new Map<string, string[]>();
  for (const [table, lines] of blocks) {
    if (lines.length === 0) continue;
    const list = byTable.get(table) ?? [];
    list.push(...lines);
    byTable.set(table, list);
  }
  let out = "";
  for (const [table, lines] of byTable) out += `*${table}\n${lines.join("\n")}\nCOMMIT\n`;
  return out;
}

/**
 * The `iptables-restore --noflush` input that (re)writes the given sets of one family.
 * `:CHAIN - [0:0]` creates our chain or, under `--noflush`, flushes it, so the chain's rules are
 * then appended in order. In the built-in chain every rule carrying our comment (earlier copies
 * of the jump, flanneld ≤ v0.19's rules) is emitted as `-D` before the jump is appended with `-A`,
 * as flanneld does for rules that exist. Empty string when there is nothing to write.
 */
export function iptablesInstallInput(specs: readonly RuleSpec[], saved: SavedRuleset): string {
  const declarations: Array<[string, string[]]> = [];
  const body: Array<[string, string[]]> = [];
  for (const spec of specs) {
    const where = iptablesChain(spec);
    const [jump, ...rules] = iptablesRules(spec);
    declarations.push([where.table, [`:${where.chain} - [0:0]`]]);
    const mark = `--comment "${where.comment}"`;
    const stale = savedLines(saved, where.table, where.parent).filter((l) => l.includes(mark));
    body.push([where.table, [
      ...stale.map((l) => `-D${l.slice(2)}`),
      ruleLine("-A", jump!),
      ...rules.map((r) => ruleLine("-A", r)),
    ]]);
  }
  return renderTables([...declarations, ...body]);
}

/**
 * The restore input deleting the rules of the given sets that are present (flanneld's teardown
 * of the previous subnet.env's rules): `-D` per present rule. Empty string when none is present.
 */
export function iptablesRemoveInput(specs: readonly RuleSpec[], saved: SavedRuleset): string {
  const blocks: Array<[string, string[]]> = [];
  for (const spec of specs) {
    const lines: string[] = [];
    for (const rule of iptablesRules(spec)) {
      const line = ruleLine("-A", rule);
      if (savedLines(saved, rule.table, rule.chain).includes(line)) lines.push(ruleLine("-D", rule));
    }
    blocks.push([iptablesChain(spec).table, lines]);
  }
  return renderTables(blocks);
}

/**
 * The restore input removing every flannel chain of one family (nft mode's clean-up, §12.11:
 * nat FLANNEL-POSTRTG and filter FLANNEL-FWD): each rule that jumps to one is deleted, then the
 * chain is flushed and deleted. Empty string when neither chain exists.
 */
export function iptablesRemoveAllInput(saved: SavedRuleset): string {
  const blocks: Array<[string, string[]]> = [];
  for (const [table, chain] of [["nat", MASQ_CHAIN], ["filter", FORWARD_CHAIN]] as const) {
    const t = saved.get(table);
    if (!t?.chains.has(chain)) continue;
    const jumps: string[] = [];
    for (const [from, lines] of t.rules) {
      if (from === chain) continue;
      for (const l of lines) if (l.endsWith(` -j ${chain}`) || l.includes(` -j ${chain} `)) jumps.push(`-D${l.slice(2)}`);
    }
    blocks.push([table, [...jumps, `-F ${chain}`, `-X ${chain}`]]);
  }
  return renderTables(blocks);
}

/** The tables a family's sets live in, for one `iptables-save -t` each. */
export function iptablesTables(specs: readonly RuleSpec[]): Array<"nat" | "filter"> {
  return [...new Set(specs.map((s) => iptablesChain(s).table))];
}

/** The userspace tools of a family. */
export function iptablesTools(family: Family): { iptables: string; save: string; restore: string } {
  const p = family === 4 ? "iptables" : "ip6tables";
  return { iptables: p, save: `${p}-save`, restore: `${p}-restore` };
}
