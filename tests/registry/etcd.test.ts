import { EtcdRegistry } from "../../src/registry/etcd.ts";
import { EtcdServer } from "../support/etcd.ts";
import { registrySuite } from "./suite.ts";

registrySuite("etcd", async () => {
  const etcd = await EtcdServer.start();
  const registries: EtcdRegistry[] = [];
  const prefixes = new Map<EtcdRegistry, string>();
  let n = 0;
  return {
    async registry() {
      const prefix = `/test-${++n}/network`;
      const r = new EtcdRegistry({ endpoints: [etcd.endpoint], prefix, timeoutMs: 3000 });
      registries.push(r);
      prefixes.set(r, prefix);
      return r;
    },
    async putMany(r, records) {
      const p = prefixes.get(r as EtcdRegistry)!;
      await etcd.client().kv.txn({
        compare: [], failure: [],
        success: records.map(([k, v]) => ({ request_put: { key: Buffer.from(`${p}/subnets/${k}`), value: Buffer.from(v) } })),
      } as never);
    },
    async compact() { await etcd.compact(); },
    async interrupt() { await etcd.stop(); await etcd.restart(); },
    minTTL: 3, // etcd raises shorter TTLs to its minimum
    async teardown() {
      await Promise.all(registries.map((r) => r.close()));
      await etcd.destroy();
    },
  };
});
