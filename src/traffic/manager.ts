/**
 * @module The resync loop that keeps flanneld's rules in place after start-up: every
 * `--iptables-resync` seconds each rule set is checked against the kernel (one read per table)
 * and any set that is not intact is rewritten whole, in order, as flanneld does with `-C` and
 * iptables-restore. Failures are logged and counted, never thrown; the next tick retries. Rules
 * are left in place when the loop stops (restarts cause no downtime).
 */
import { sleep } from "../lease/manager.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../status/metrics.ts";
import { type RuleEngine, type RuleSpec, describeSpec } from "./spec.ts";

/** What `/status` shows about the firewall rules. */
export interface TrafficDescription {
  engine: "iptables" | "nftables";
  randomFully: boolean;
  rules: string[];
  resyncSeconds: number;
  checks: number;
  rebuilds: number;
  lastCheck?: string;
  lastError?: string;
}

export class TrafficManager {
  #checks = 0;
  #rebuilds = 0;
  #lastCheck?: Date;
  #lastError?: string;

  constructor(
    private readonly engine: RuleEngine,
    private readonly specs: readonly RuleSpec[],
    private readonly opts: { resyncSeconds: number; randomFully: boolean; log: Logger; metrics: Metrics; signal: AbortSignal },
  ) {
    opts.metrics.register("weft_traffic_rule_rebuilds_total", {
      type: "counter", help: "Rule sets rewritten because a resync found a flannel rule missing or out of order.",
      samples: () => [[{}, this.#rebuilds]],
    });
  }

  /** Checks and repairs the rules every resyncSeconds until the signal aborts. Never throws. */
  async run(): Promise<void> {
    if (this.specs.length === 0) return;
    while (await sleep(this.opts.resyncSeconds * 1000, this.opts.signal)) await this.resync();
  }

  /** One check-and-repair pass (what each tick of `run` does). Never throws. */
  async resync(): Promise<void> {
    const { engine, specs, opts } = this;
    try {
      const states = await engine.check(specs);
      this.#checks++;
      this.#lastCheck = new Date();
      const broken = specs.filter((_, i) => !states[i]!.ok);
      if (broken.length === 0) return;
      const why = states.flatMap((s, i) => (s.ok ? [] : [`${describeSpec(specs[i]!)}: ${s.reason}`]));
      opts.log.info(`Some ${engine.name} rules are missing; deleting and recreating rules (${why.join("; ")})`);
      await engine.install(broken);
      this.#rebuilds += broken.length;
      this.#lastError = undefined;
    } catch (e) {
      this.#lastError = (e as Error).message;
      opts.metrics.error(engine.name);
      opts.log.error(`Failed to ensure ${engine.name} rules: ${this.#lastError}`);
    }
  }

  describe(): TrafficDescription {
    return {
      engine: this.engine.name,
      randomFully: this.opts.randomFully,
      rules: this.specs.map(describeSpec),
      resyncSeconds: this.opts.resyncSeconds,
      checks: this.#checks,
      rebuilds: this.#rebuilds,
      ...(this.#lastCheck ? { lastCheck: this.#lastCheck.toISOString() } : {}),
      ...(this.#lastError ? { lastError: this.#lastError } : {}),
    };
  }
}
