/**
 * @module Watches an etcd prefix from inside a namespace (no forwarder on the way, so events
 * arrive as fast as they reach the agents) and prints one JSON line per event with its
 * wall-clock time: `{"t":ms,"type":"put"|"delete","key":"…"}` after `{"ready":true}`. Exits when
 * stdin closes.
 *
 *   ip netns exec <ns> bun etcd_watch.ts http://192.168.77.254:2379 /coreos.com/network/subnets/
 */
import { Etcd3 } from "etcd3";

const [endpoint, prefix] = process.argv.slice(2);
if (!endpoint || !prefix) {
  console.error("usage: etcd_watch.ts ENDPOINT PREFIX");
  process.exit(2);
}
const client = new Etcd3({ hosts: endpoint });

// Warm up: a fresh process decodes its first watch events several ms slower than the agents,
// which have been running for a while. Exercise the same path on a private prefix first.
const warm = await client.watch().prefix("/weft-test/etcd-watch-warmup/").create();
let seen = 0;
warm.on("put", () => seen++);
for (let i = 0; i < 200; i++) {
  await client.put(`/weft-test/etcd-watch-warmup/${process.pid}`).value(String(i));
}
while (seen < 200) await new Promise((r) => setTimeout(r, 5));
await warm.cancel();
await client.delete().key(`/weft-test/etcd-watch-warmup/${process.pid}`);
const watcher = await client.watch().prefix(prefix).create();
const now = () => performance.timeOrigin + performance.now();
watcher.on("put", (kv) => console.log(JSON.stringify({ t: now(), type: "put", key: kv.key.toString() })));
watcher.on("delete", (kv) => console.log(JSON.stringify({ t: now(), type: "delete", key: kv.key.toString() })));
console.log(JSON.stringify({ ready: true }));
process.stdin.on("data", () => {});
process.stdin.on("end", async () => {
  await watcher.cancel();
  client.close();
  process.exit(0);
});
