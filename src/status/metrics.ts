/**
 * @module The agent's counters and gauges, rendered in Prometheus text format for `/metrics`.
 * Plain fields for the agent's own numbers, so hot code increments a number and nothing else;
 * parts that own their numbers (a backend's data path, the firewall rules) register a family
 * whose samples are read at scrape time. Names follow Prometheus' conventions: a `weft_` prefix,
 * base units in the name (`_bytes`, `_seconds`), `_total` on counters, bounded label sets.
 */

/** One sample of a family: its labels (may be empty) and value. */
export type Sample = readonly [labels: Readonly<Record<string, string>>, value: number];

/** A metric family read at scrape time. */
export interface Family {
  readonly type: "counter" | "gauge";
  readonly help: string;
  readonly samples: () => readonly Sample[];
}

/** `{a="x",b="y"}` with Prometheus' escaping, or "" without labels. */
export function formatLabels(labels: Readonly<Record<string, string>>): string {
  const parts = Object.entries(labels).map(([k, v]) => `${k}="${v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n")}"`);
  return parts.length ? `{${parts.join(",")}}` : "";
}

export class Metrics {
  leaseExpirationSeconds = 0;
  peers = 0;
  watchEvents = 0;
  watchReconnects = 0;
  watchResyncs = 0;
  leaseRenewals = 0;
  leaseRenewalErrors = 0;
  /** Errors by kind: etcd, netlink, malformed_lease, subnet_file, iptables … */
  errors = new Map<string, number>();
  /** Families that parts of the agent register: name -> (type, help, samples). */
  readonly families = new Map<string, Family>();
  readonly startedAt = Date.now();

  error(kind: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  /** Registers (or replaces) a family read at scrape time; `name` must follow the conventions. */
  register(name: string, family: Family): void {
    if (!/^weft_[a-z0-9_]+$/.test(name) || (family.type === "counter") !== name.endsWith("_total")) {
      throw new RangeError(`metric name ${JSON.stringify(name)}: must be weft_[a-z0-9_]+, ending in _total exactly when it is a counter`);
    }
    this.families.set(name, family);
  }

  /** Removes the families whose names start with `prefix` (a backend closing). */
  unregister(prefix: string): void {
    for (const name of [...this.families.keys()]) if (name.startsWith(prefix)) this.families.delete(name);
  }

  /** Prometheus exposition format, version 0.0.4. */
  render(): string {
    const out: string[] = [];
    const family = (name: string, type: string, help: string, samples: readonly Sample[]) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
      for (const [labels, value] of samples) out.push(`${name}${formatLabels(labels)} ${Number.isFinite(value) ? value : 0}`);
    };
    const one = (name: string, type: string, help: string, value: number) => family(name, type, help, [[{}, value]]);
    one("weft_lease_expiration_timestamp_seconds", "gauge", "Expiry of this host's subnet lease (0: reservation or none).", this.leaseExpirationSeconds);
    one("weft_peers", "gauge", "Peer leases known.", this.peers);
    one("weft_watch_events_total", "counter", "Lease watch events handled.", this.watchEvents);
    one("weft_watch_reconnects_total", "counter", "Lease watch reconnections.", this.watchReconnects);
    one("weft_watch_resyncs_total", "counter", "Full re-lists of the leases (compaction, periodic).", this.watchResyncs);
    one("weft_lease_renewals_total", "counter", "Successful lease renewals.", this.leaseRenewals);
    one("weft_lease_renewal_errors_total", "counter", "Failed lease renewal attempts.", this.leaseRenewalErrors);
    family("weft_errors_total", "counter", "Errors by kind.", [...this.errors].map(([kind, n]) => [{ kind }, n] as const));
    one("weft_start_time_seconds", "gauge", "Start time of the agent.", Math.floor(this.startedAt / 1000));
    for (const [name, f] of this.families) {
      let samples: readonly Sample[];
      try {
        samples = f.samples();
      } catch {
        samples = []; // a part that cannot read its numbers now: no samples, never a failed scrape
      }
      family(name, f.type, f.help, samples);
    }
    return `${out.join("\n")}\n`;
  }
}
