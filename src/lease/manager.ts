/**
 * @module Lease policy over a Registry (compat §3): acquire a subnet the way flanneld does —
 * reuse our public IP's lease, else the previous subnet, else a random free one — created
 * atomically under a 24 h etcd lease, and renew it before expiry. Unlike flanneld, a lost create
 * race retries with another subnet (§12.2), reservations stay reservations (§12.3), renewals
 * revoke the lease they replace (§12.15) and a full network is a clear error.
 */
import type { NetworkConfig } from "../config/network.ts";
import type { Logger } from "../log.ts";
import { type IPv4Net, type IPv6Net, formatIPv4Net } from "../net/ip.ts";
import type { Registry } from "../registry/types.ts";
import type { Metrics } from "../status/metrics.ts";
import { LeaseAcquireError, type OwnLease } from "../subnet/types.ts";
import { allocateSubnet } from "./allocate.ts";
import { type Lease, type LeaseAttrs, decodeLeaseAttrs, encodeLeaseAttrs, leaseKey, parseSubnetKey } from "./lease.ts";

/** flannel's lease TTL: 24 h. */
export const LEASE_TTL_SECONDS = 86400;
const MAX_ATTEMPTS = 10;

export type { OwnLease };

export interface AcquireOptions {
  registry: Registry;
  config: NetworkConfig;
  attrs: LeaseAttrs;
  /** The subnet(s) of the previous subnet.env, if any. */
  previous?: { subnet?: IPv4Net; ipv6Subnet?: IPv6Net };
  ttlSeconds?: number;
  log: Logger;
  random?: (n: number) => number;
}

/** Parses the records of a listing into leases, skipping (and reporting) malformed ones. */
export function recordsToLeases(
  records: readonly { key: string; value: string; lease: string }[],
  onBad: (key: string, why: string) => void,
): Lease[] {
  const out: Lease[] = [];
  for (const r of records) {
    const l = recordToLease(r, onBad);
    if (l) out.push(l);
  }
  return out;
}

/** One record as a lease, or undefined (after `onBad`) when flannel could not have written it. */
export function recordToLease(r: { key: string; value: string; lease: string; createRevision?: bigint }, onBad: (key: string, why: string) => void): Lease | undefined {
  const sub = parseSubnetKey(r.key);
  if (!sub) {
    onBad(r.key, "the key is not a subnet key (a.b.c.d-len[&v6-len])");
    return undefined;
  }
  try {
    const lease: Lease = { ...sub, attrs: decodeLeaseAttrs(r.key, r.value), expiration: r.lease === "0" ? null : 0, etcdLease: r.lease };
    if (r.createRevision !== undefined) lease.created = r.createRevision;
    return lease;
  } catch (e) {
    onBad(r.key, (e as Error).message);
    return undefined;
  }
}

/**
 * Takes a lease for this host. Throws LeaseAcquireError when retrying cannot help (NetworkFullError,
 * or 10 attempts used up); other errors are the registry's (etcd trouble: worth retrying).
 */
export async function acquireLease(opts: AcquireOptions): Promise<OwnLease> {
  const { registry, config, attrs, log } = opts;
  const ttl = opts.ttlSeconds ?? LEASE_TTL_SECONDS;
  const value = encodeLeaseAttrs(attrs);
  const lostRaces = new Set<string>();
  for (let attempt = 1; attempt <= MAX_ATTEMPTS; attempt++) {
    const { records } = await registry.listSubnets();
    const leases = recordsToLeases(records, (key, why) => log.warn(`ignoring lease ${key}: ${why}`));
    const plan = allocateSubnet({
      cfg: config, leases, publicIP: attrs.publicIP, publicIPv6: attrs.publicIPv6,
      previous: opts.previous, random: opts.random, exclude: lostRaces,
    });
    for (const s of plan.stale) {
      log.info(`deleting lease ${leaseKey(s)} of this host: it does not fit the network config`);
      await registry.deleteSubnet(leaseKey(s));
    }
    if (plan.kind === "reuse") {
      const key = leaseKey(plan.lease);
      if (plan.lease.etcdLease === "0") {
        // A reservation (§12.3): keep it lease-less, never renew it.
        if (!(await registry.getSubnet(key))) continue; // released meanwhile: start over
        await registry.putSubnet(key, value, 0);
        log.info(`using reserved subnet ${key}`);
        return { ...plan.lease, attrs, key, etcdLease: "0", expiration: null };
      }
      const { lease } = await registry.putSubnet(key, value, ttl, plan.lease.etcdLease);
      log.info(`reusing lease ${key} of this host's public IP`);
      return { ...plan.lease, attrs, key, etcdLease: lease, expiration: Date.now() + ttl * 1000 };
    }
    const key = leaseKey(plan);
    // etcd trouble is thrown, not counted as an attempt: the caller retries it with a backoff,
    // where ten quick refusals (a member without a leader) would end the start as "max retries".
    const created = await registry.createSubnet(key, value, ttl);
    if (created) {
      log.info(`acquired lease ${key}`);
      return { subnet: plan.subnet, ipv6Subnet: plan.ipv6Subnet, attrs, key, etcdLease: created.lease, expiration: Date.now() + ttl * 1000 };
    }
    log.info(`subnet ${key} was taken by another host meanwhile; trying another (attempt ${attempt}/${MAX_ATTEMPTS})`);
    if (plan.subnet) lostRaces.add(formatIPv4Net(plan.subnet));
  }
  throw new LeaseAcquireError(`max retries reached trying to acquire a subnet: another host took each of the ${MAX_ATTEMPTS} subnets tried`);
}

export interface RenewOptions {
  registry: Registry;
  /** The lease as it is now (it may change under the loop: re-acquired, re-put by an admin). */
  current: () => OwnLease;
  /** How long before expiry to renew, ms (--subnet-lease-renew-margin). */
  marginMs: number;
  /** Wait after a failed renewal, ms (flannel: 1 min). */
  retryMs?: number;
  ttlSeconds?: number;
  log: Logger;
  metrics: Metrics;
  signal: AbortSignal;
  /** Called with the renewed lease. */
  onRenewed: (lease: OwnLease) => void;
  /**
   * Fires "change" when the lease changed under the loop (a re-put brought a sooner expiry, or
   * made it a reservation): the loop then looks again at once rather than at the old expiry.
   */
  changed?: EventTarget;
}

/** Renews the lease before it expires until `signal` aborts. Reservations are never renewed. */
export async function renewLeaseLoop(opts: RenewOptions): Promise<void> {
  const { registry, log, metrics, signal } = opts;
  const ttl = opts.ttlSeconds ?? LEASE_TTL_SECONDS;
  const retryMs = opts.retryMs ?? 60_000;
  // A short (test) TTL must not renew in a loop: never renew earlier than at a third of the TTL.
  const margin = Math.min(opts.marginMs, (ttl * 1000 * 2) / 3);
  const nextWait = () => {
    const exp = opts.current().expiration;
    return exp === null ? 60_000 : Math.max(0, exp - margin - Date.now());
  };
  let wait = nextWait();
  while (await sleep(wait, signal, opts.changed)) {
    const lease = opts.current();
    if (lease.expiration === null || lease.expiration - margin > Date.now()) { // a reservation, or renewed meanwhile
      wait = nextWait();
      continue;
    }
    try {
      const { lease: id } = await registry.putSubnet(lease.key, encodeLeaseAttrs(lease.attrs), ttl, lease.etcdLease);
      const expiration = Date.now() + ttl * 1000;
      metrics.leaseRenewals++;
      log.info(`renewed lease ${lease.key} until ${new Date(expiration).toISOString()}`);
      opts.onRenewed({ ...lease, etcdLease: id, expiration });
      wait = nextWait();
    } catch (e) {
      if (signal.aborted) break; // the registry abandoned the renewal: shutting down
      metrics.leaseRenewalErrors++;
      metrics.error("etcd");
      log.error(`Error renewing lease (trying again in ${Math.round(retryMs / 1000)}s): ${(e as Error).message}`);
      wait = retryMs;
    }
  }
}

/**
 * Resolves true after `ms` (or as soon as `wake` fires "change"), or false as soon as `signal`
 * aborts.
 */
export function sleep(ms: number, signal: AbortSignal, wake?: EventTarget): Promise<boolean> {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (result: boolean) => {
      clearTimeout(t);
      signal.removeEventListener("abort", onAbort);
      wake?.removeEventListener("change", onWake);
      resolve(result);
    };
    const onAbort = () => done(false);
    const onWake = () => done(true);
    const t = setTimeout(onWake, ms);
    signal.addEventListener("abort", onAbort, { once: true });
    wake?.addEventListener("change", onWake, { once: true });
  });
}
