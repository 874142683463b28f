/**
 * @module The thin edge around PeerAdmission that the agent puts between where peer leases come
 * from (the etcd watch, the Kubernetes subnet manager) and the backend: admits and refuses, logs
 * each refusal and flag once (a warning naming the lease, the reason and the rule) and each later
 * admission, and keeps the gauges `weft_peer_leases_refused{reason}` and
 * `weft_peer_leases_flagged{reason}` current.
 */
import type { Logger } from "../log.ts";
import type { Metrics } from "../status/metrics.ts";
import { type AdmissionChange, type AdmissionOptions, type Flag, PeerAdmission, type Refusal } from "./admission.ts";
import type { Lease, LeaseEvent } from "./lease.ts";

export interface PeerGateOptions extends AdmissionOptions {
  readonly log: Logger;
  readonly metrics: Metrics;
}

export class PeerGate {
  readonly #admission: PeerAdmission;

  constructor(readonly opts: PeerGateOptions) {
    this.#admission = new PeerAdmission(opts);
    const byReason = (counts: () => Iterable<[string, number]>) => () => [...counts()].map(([reason, n]) => [{ reason }, n] as const);
    opts.metrics.register("weft_peer_leases_refused", {
      type: "gauge", help: "Peer leases refused now (not programmed), by reason.", samples: byReason(() => this.#admission.counts()),
    });
    opts.metrics.register("weft_peer_leases_flagged", {
      type: "gauge", help: "Peer leases programmed but flagged now (e.g. a duplicate PublicIP), by reason.", samples: byReason(() => this.#admission.flagCounts()),
    });
  }

  /** The refused peer leases by key, with the reason (for `/status`). */
  get refused(): ReadonlyMap<string, Refusal> {
    return this.#admission.refused;
  }

  /** The admitted peer leases flagged (a duplicate PublicIP), by key (for `/status`). */
  get flagged(): ReadonlyMap<string, Flag> {
    return this.#admission.flagged;
  }

  /** The admitted peer leases by key. */
  get admitted(): ReadonlyMap<string, Lease> {
    return this.#admission.admitted;
  }

  /** A full view of the peers in, the admitted ones out (for the backend's reconcile). */
  snapshot(peers: ReadonlyMap<string, Lease>): ReadonlyMap<string, Lease> {
    const r = this.#admission.snapshot(peers);
    this.#report(r);
    return r.peers;
  }

  /** Peer events in, the events the backend must apply out. */
  apply(events: readonly LeaseEvent[]): LeaseEvent[] {
    const r = this.#admission.apply(events);
    this.#report(r);
    return r.events;
  }

  #report(change: AdmissionChange): void {
    const { log, metrics } = this.opts;
    for (const r of change.refused) {
      metrics.error("refused_lease");
      log.warn(`refusing peer lease ${r.key} (${r.reason}): ${r.message}; it is not programmed while this lasts`);
    }
    for (const f of change.flagged) {
      metrics.error("flagged_lease");
      log.warn(`peer lease ${f.key} (${f.reason}): ${f.message}; programmed all the same, as flanneld does: ` +
        `it displaces none of that peer's kernel entries, but its traffic goes to that host (the udp backend holds it back)`);
    }
    for (const { was } of change.admitted) log.info(`admitting peer lease ${was.key}, refused before (${was.reason}): that no longer applies`);
  }
}
