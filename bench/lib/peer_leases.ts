/**
 * @module Synthetic peer leases for the control-plane benches: keys and values exactly as
 * flanneld writes them (compat §2.3), put straight into etcd with the etcd3 client by a helper
 * process next to etcd (lease_putter.ts), bound to one etcd lease, many per transaction (a burst
 * in one revision, as a cluster restart produces).
 */
import { join } from "node:path";
import { type Cluster, startEventStream } from "../../tests/support/netns.ts";

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
 * The peer lease for `subnet` (`a.b.c.0/24`), advertising `publicIP`, as a host of `type` writes
 * it: vxlan with BackendData (VNI 1, a random VtepMAC), host-gw with its type only, alloc (and
 * udp) with no BackendType.
 */
export function peerLease(subnet: string, publicIP: string, type: "vxlan" | "host-gw" | "alloc"): PeerLease {
  const [net, len] = subnet.split("/");
  const tail = type === "vxlan" ? `,"BackendType":"vxlan","BackendData":{"VNI":1,"VtepMAC":"${randomMac()}"}`
    : type === "host-gw" ? ',"BackendType":"host-gw"' : "";
  return { subnet, key: `${PREFIX}/subnets/${net}-${len}`, value: `{"PublicIP":"${publicIP}","PublicIPv6":null${tail}}` };
}

/** Puts and deletes leases through bench/lib/lease_putter.ts, one transaction at a time. */
export interface LeasePutter {
  /** Puts `leases` in one transaction; resolves with the wall-clock ms it committed at. */
  put(leases: readonly PeerLease[]): Promise<number>;
  /** Deletes `leases` in one transaction; resolves with the commit time. */
  del(leases: readonly PeerLease[]): Promise<number>;
  stop(): Promise<void>;
}

/** Starts a lease putter inside the cluster's underlay namespace, next to etcd. */
export async function startLeasePutter(c: Cluster): Promise<LeasePutter> {
  const s = await startEventStream<{ t: number; n: number }>(c.underlay, [process.execPath, join(import.meta.dir, "lease_putter.ts"), c.etcd.endpoint]);
  let done = 0;
  const txn = async (cmd: object) => {
    const k = done++;
    s.send(JSON.stringify(cmd));
    await s.until(() => s.events.length > k, 60_000);
    return s.events[k]!.t;
  };
  return {
    put: (leases) => txn({ put: leases.map((l) => ({ key: l.key, value: l.value })) }),
    del: (leases) => txn({ del: leases.map((l) => l.key) }),
    async stop() { await s.stop(); },
  };
}
