/**
 * @module The agent's counters and gauges, rendered in Prometheus text format for `/metrics`.
 * Plain fields, so hot code increments a number and nothing else.
 */

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
  /** Peer leases refused now, by reason (set by the peer admission; every reason listed, 0 included). */
  readonly peerLeasesRefused = new Map<string, number>();
  /** Peer leases programmed but flagged now (a duplicate PublicIP), by reason. */
  readonly peerLeasesFlagged = new Map<string, number>();
  /** Extra gauges that backends register: name -> (help, read). */
  readonly gauges = new Map<string, { help: string; read: () => number }>();
  readonly startedAt = Date.now();

  error(kind: string): void {
    this.errors.set(kind, (this.errors.get(kind) ?? 0) + 1);
  }

  /** Prometheus exposition format, version 0.0.4. */
  render(): string {
    const out: string[] = [];
    const metric = (name: string, type: string, help: string, value: number | string) => {
      out.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`, `${name} ${value}`);
    };
    metric("weft_lease_expiration_timestamp_seconds", "gauge", "Expiry of this host's subnet lease (0: reservation or none).", this.leaseExpirationSeconds);
    metric("weft_peers", "gauge", "Peer leases known.", this.peers);
    metric("weft_watch_events_total", "counter", "Lease watch events handled.", this.watchEvents);
    metric("weft_watch_reconnects_total", "counter", "Lease watch reconnections.", this.watchReconnects);
    metric("weft_watch_resyncs_total", "counter", "Full re-lists of the leases (compaction, periodic).", this.watchResyncs);
    metric("weft_lease_renewals_total", "counter", "Successful lease renewals.", this.leaseRenewals);
    metric("weft_lease_renewal_errors_total", "counter", "Failed lease renewal attempts.", this.leaseRenewalErrors);
    out.push("# HELP weft_errors_total Errors by kind.", "# TYPE weft_errors_total counter");
    for (const [kind, n] of this.errors) out.push(`weft_errors_total{kind="${kind}"} ${n}`);
    metric("weft_start_time_seconds", "gauge", "Start time of the agent.", Math.floor(this.startedAt / 1000));
    if (this.peerLeasesRefused.size > 0) {
      out.push("# HELP weft_peer_leases_refused Peer leases refused now (not programmed), by reason.", "# TYPE weft_peer_leases_refused gauge");
      for (const [reason, n] of this.peerLeasesRefused) out.push(`weft_peer_leases_refused{reason="${reason}"} ${n}`);
    }
    if (this.peerLeasesFlagged.size > 0) {
      out.push("# HELP weft_peer_leases_flagged Peer leases programmed but flagged now (e.g. a duplicate PublicIP), by reason.", "# TYPE weft_peer_leases_flagged gauge");
      for (const [reason, n] of this.peerLeasesFlagged) out.push(`weft_peer_leases_flagged{reason="${reason}"} ${n}`);
    }
    for (const [name, g] of this.gauges) metric(name, "gauge", g.help, g.read());
    return `${out.join("\n")}\n`;
  }
}
