/**
 * @module Kube mode with agents under Deno (`deno run -A src/main.ts`): the Kubernetes client over
 * node:https (CA, token file) works there too. Two hosts, vxlan: full mesh, then a deleted Node's
 * entries go.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { Cluster, waitFor } from "../support/netns.ts";
import { expectFullMesh, peerEntries, vtepMac, ECHO_PORT } from "../multihost/suite.ts";
import { startEchoServer } from "../support/netns.ts";

let c: Cluster;
const servers: { stop(): void }[] = [];

beforeAll(async () => {
  c = await Cluster.create({ hosts: 3, backend: "vxlan", runtime: "deno", containersPerHost: 1, kube: true });
  for (const x of c.containers) servers.push(await startEchoServer(x.ns, ECHO_PORT));
  await waitFor(() => c.hosts.every((h) => c.peerRoutes(h).length === 2), 20_000, "peer routes on every host");
}, 120_000);

afterAll(async () => {
  for (const s of servers) s.stop();
  await c?.destroy();
}, 30_000);

test("kube mode under Deno: every container reaches the others; a deleted Node's entries go", async () => {
  await expectFullMesh(c);
  const gone = c.hosts[2]!;
  const subnet = gone.subnet, mac = vtepMac(gone);
  await c.stopAgent(gone);
  c.api.deleteNode(gone.name);
  const peers = c.hosts.filter((h) => h !== gone);
  await waitFor(() => peers.every((p) => {
    const e = peerEntries(p, subnet, mac);
    return e.routes + e.neighs + e.fdbs === 0;
  }), 5000, `${subnet}'s entries to go`);
  expect(peers.every((h) => h.running)).toBe(true);
}, 90_000);
