/**
 * @module The iptables applier: reads the kernel's rules with one `iptables-save -t TABLE` per
 * table and family, and writes them with one `iptables-restore --noflush [--wait]` transaction
 * per family (ip6tables-* for IPv6), as flanneld does. Checking by reading `iptables-save` once
 * instead of one `iptables -C` per rule costs one process per table rather than seven, and also
 * sees rule order and foreign rules inside our chains.
 */
import type { Family, RuleEngine, RuleSpec, RuleState } from "./spec.ts";
import {
  type SavedRuleset, iptablesInstallInput, iptablesRemoveAllInput, iptablesRemoveInput, iptablesState,
  iptablesTables, iptablesTools, parseIptablesSave,
} from "./iptables_rules.ts";
import { type ToolRunner, iptablesFeatures, parseIptablesVersion, runToolOk } from "./tools.ts";

/** What `iptables --version` says about a family's tools. */
export interface IptablesProbe {
  version: string;
  wait: boolean;
  randomFully: boolean;
}

/** Reads `iptables --version` (or ip6tables); throws when the tool is missing or unparsable. */
export async function probeIptables(run: ToolRunner, family: Family): Promise<IptablesProbe> {
  const tool = iptablesTools(family).iptables;
  const out = await runToolOk(run, [tool, "--version"]);
  const v = parseIptablesVersion(out);
  if (!v) throw new Error(`cannot read the version in '${tool} --version' output ${JSON.stringify(out.trim())}`);
  return { version: v.join("."), ...iptablesFeatures(v) };
}

export class IptablesEngine implements RuleEngine {
  readonly name = "iptables";

  /** `wait`: pass `--wait` to iptables-restore (iptables ≥ 1.6.2). */
  constructor(private readonly run: ToolRunner, private readonly wait: boolean) {}

  async install(specs: readonly RuleSpec[]): Promise<void> {
    for (const [family, group] of byFamily(specs)) {
      const saved = await this.#read(family, iptablesTables(group));
      await this.#restore(family, iptablesInstallInput(group, saved));
    }
  }

  async check(specs: readonly RuleSpec[]): Promise<RuleState[]> {
    const saved = new Map<Family, SavedRuleset>();
    for (const [family, group] of byFamily(specs)) saved.set(family, await this.#read(family, iptablesTables(group)));
    return specs.map((s) => iptablesState(s, saved.get(s.family)!));
  }

  async remove(specs: readonly RuleSpec[]): Promise<void> {
    for (const [family, group] of byFamily(specs)) {
      const saved = await this.#read(family, iptablesTables(group));
      await this.#restore(family, iptablesRemoveInput(group, saved));
    }
  }

  async removeAll(): Promise<void> {
    for (const family of [4, 6] as const) {
      const saved = await this.#read(family, ["nat", "filter"]);
      await this.#restore(family, iptablesRemoveAllInput(saved));
    }
  }

  /** Equivalent to: `iptables-save -t T` for each table, parsed. */
  async #read(family: Family, tables: readonly string[]): Promise<SavedRuleset> {
    const out: SavedRuleset = new Map();
    for (const table of tables) {
      const text = await runToolOk(this.run, [iptablesTools(family).save, "-t", table]);
      for (const [name, t] of parseIptablesSave(text)) out.set(name, t);
    }
    return out;
  }

  /** Equivalent to: `iptables-restore --noflush [--wait] < input` (nothing for empty input). */
  async #restore(family: Family, input: string): Promise<void> {
    if (input === "") return;
    const argv = [iptablesTools(family).restore, "--noflush", ...(this.wait ? ["--wait"] : [])];
    await runToolOk(this.run, argv, input);
  }
}

/** Specs grouped by family, families in first-seen order. */
function byFamily(specs: readonly RuleSpec[]): Map<Family, RuleSpec[]> {
  const out = new Map<Family, RuleSpec[]>();
  for (const s of specs) out.set(s.family, [...(out.get(s.family) ?? []), s]);
  return out;
}
