/**
 * @module Synthetic peer leases for the control-plane benches: keys and values exactly as
 * flanneld writes them (compat §2.3), put straight into etcd with the etcd3 client, bound to one
 * etcd lease, many per transaction (a burst in one revision, as a cluster restart produces).
 */
import type { Etcd3 } from "etcd3";

export const PREFIX = "/coreos.com/network";

/** A random locally administered unicast MAC, lowercase with colons. */
export function randomMac(): string {
  const b = crypto.getRandomValues(new Uint8Array(6));
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/** One peer lease: etcd key and flannel's lease JSON. */
export interface PeerLease {
  /** The subnet, e.g. `10.1.2.0/24`. */
  subnet: string;
  key: string;
  value: string;
}

/**
 * The peer lease for `subnet` (`a.b.c.0/24`), advertising `publicIP`: with vxlan BackendData
 * (VNI 1, random VtepMAC) when `vxlan`, else as alloc/udp leases look (no BackendType).
 */
export function peerLease(subnet: string, publicIP: string, vxlan: boolean): PeerLease {
  const [net, len] = subnet.split("/");
  const attrs = vxlan
    ? `{"PublicIP":"${publicIP}","PublicIPv6":null,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${randomMac()}"}}`
    : `{"PublicIP":"${publicIP}","PublicIPv6":null}`;
  return { subnet, key: `${PREFIX}/subnets/${net}-${len}`, value: attrs };
}

/** Grants one etcd lease of `ttlSeconds` for the peers to share; returns its id. */
export async function grantLease(client: Etcd3, ttlSeconds = 3600): Promise<string> {
  const res = await client.leaseClient.leaseGrant({ TTL: ttlSeconds });
  return String(res.ID);
}

/**
 * Puts `leases` bound to etcd lease `leaseId`, up to 1000 per transaction; resolves when the
 * last transaction has committed, with the wall-clock time of that moment.
 */
export async function putLeases(client: Etcd3, leases: readonly PeerLease[], leaseId: string): Promise<number> {
  const enc = new TextEncoder();
  for (let i = 0; i < leases.length; i += 1000) {
    const chunk = leases.slice(i, i + 1000);
    await client.kv.txn({
      compare: [],
      success: chunk.map((l) => ({ request_put: { key: enc.encode(l.key), value: enc.encode(l.value), lease: leaseId } })),
      failure: [],
    } as never);
  }
  return performance.timeOrigin + performance.now();
}

/** Deletes `leases` (one transaction per 1000). */
export async function deleteLeases(client: Etcd3, leases: readonly PeerLease[]): Promise<void> {
  const enc = new TextEncoder();
  for (let i = 0; i < leases.length; i += 1000) {
    await client.kv.txn({
      compare: [],
      success: leases.slice(i, i + 1000).map((l) => ({ request_delete_range: { key: enc.encode(l.key) } })),
      failure: [],
    } as never);
  }
}
