/**
 * @module The nftables applier: writes every rule set in one `nft -f -` transaction, reads them
 * back with one `nft list table` per family, and removes flannel's tables. flanneld never checks
 * its nft rules after writing them (§12.11); this engine is checked on every resync tick like
 * the iptables one.
 */
import type { Family, RuleEngine, RuleSpec, RuleState } from "./spec.ts";
import { NFT_RANDOM_FULLY_PROBE, nftInstallScript, nftRemoveAllScript, nftState, nftTable, parseNftTable } from "./nft_rules.ts";
import { type ToolRunner, runToolOk } from "./tools.ts";

/**
 * Whether the kernel takes `masquerade fully-random`, as flannel checks it: a check-only
 * transaction (`nft -c -f -`, nothing is committed). Throws when `nft` itself is missing.
 */
export async function probeNftRandomFully(run: ToolRunner): Promise<boolean> {
  const r = await run(["nft", "-c", "-f", "-"], NFT_RANDOM_FULLY_PROBE);
  if (r.code === 127) throw new Error(`nft not found: EnableNFTables needs the nft tool in PATH (${r.stderr.trim()})`);
  return r.code === 0;
}

export class NftEngine implements RuleEngine {
  readonly name = "nftables";

  constructor(private readonly run: ToolRunner) {}

  /** Equivalent to: `nft -f - < script` (one atomic transaction). */
  async install(specs: readonly RuleSpec[]): Promise<void> {
    const script = nftInstallScript(specs);
    if (script !== "") await runToolOk(this.run, ["nft", "-f", "-"], script);
  }

  /** Equivalent to: `nft list table ip flannel-ipv4` (and ip6 flannel-ipv6) compared with the sets. */
  async check(specs: readonly RuleSpec[]): Promise<RuleState[]> {
    const listed = new Map<Family, Map<string, string[]> | undefined>();
    for (const s of specs) {
      if (listed.has(s.family)) continue;
      const { family, table } = nftTable(s.family);
      const r = await this.run(["nft", "list", "table", family, table]);
      if (r.code === 127) throw new Error(`nft not found (${r.stderr.trim()})`);
      // A missing table is a non-zero exit ("No such file or directory"): rebuild it.
      listed.set(s.family, r.code === 0 ? parseNftTable(r.stdout) : undefined);
    }
    return specs.map((s) => nftState(s, listed.get(s.family)));
  }

  /** Nothing to do: each install flushes its chains, so the previous lease's rules go with it. */
  async remove(_specs: readonly RuleSpec[]): Promise<void> {}

  /** Equivalent to: `nft delete table ip flannel-ipv4; nft delete table ip6 flannel-ipv6` (those present). */
  async removeAll(): Promise<void> {
    const script = nftRemoveAllScript(await runToolOk(this.run, ["nft", "list", "tables"]));
    if (script !== "") await runToolOk(this.run, ["nft", "-f", "-"], script);
  }
}
