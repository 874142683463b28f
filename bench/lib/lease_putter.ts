/**
 * @module Puts peer leases into etcd from inside the underlay namespace, next to etcd (no
 * forwarder between the put and its completion), and prints when each transaction committed.
 * Grants one etcd lease (TTL 3600 s) for all of them; warms the client up first so the first
 * timed put is not a cold one.
 *
 *   ip netns exec <underlay> bun lease_putter.ts ENDPOINT
 *   stdin:  one JSON line per transaction: {"put":[{"key","value"}…]} or {"del":["key"…]}
 *   stdout: {"ready":true}, then {"t":ms,"n":count} when each transaction has committed
 */
import { Etcd3 } from "etcd3";

const endpoint = process.argv[2];
if (!endpoint) {
  console.error("usage: lease_putter.ts ENDPOINT");
  process.exit(2);
}
const client = new Etcd3({ hosts: endpoint });
const enc = new TextEncoder();
const now = () => performance.timeOrigin + performance.now();
const lease = String((await client.leaseClient.leaseGrant({ TTL: 3600 })).ID);
const warmKey = enc.encode(`/weft-test/lease-putter-warmup/${process.pid}`);
for (let i = 0; i < 100; i++) {
  await client.kv.txn({ compare: [], success: [{ request_put: { key: warmKey, value: enc.encode(String(i)) } }], failure: [] } as never);
}
await client.kv.txn({ compare: [], success: [{ request_delete_range: { key: warmKey } }], failure: [] } as never);
console.log(JSON.stringify({ ready: true }));

let queue = Promise.resolve();
let rest = "";
process.stdin.on("data", (d) => {
  const lines = (rest + d).split("\n");
  rest = lines.pop()!;
  for (const line of lines) {
    if (!line.trim()) continue;
    const cmd = JSON.parse(line) as { put?: { key: string; value: string }[]; del?: string[] };
    queue = queue.then(async () => {
      const success = cmd.put
        ? cmd.put.map((l) => ({ request_put: { key: enc.encode(l.key), value: enc.encode(l.value), lease } }))
        : (cmd.del ?? []).map((k) => ({ request_delete_range: { key: enc.encode(k) } }));
      await client.kv.txn({ compare: [], success, failure: [] } as never);
      console.log(JSON.stringify({ t: now(), n: success.length }));
    });
  }
});
process.stdin.on("end", async () => {
  await queue;
  client.close();
  process.exit(0);
});
