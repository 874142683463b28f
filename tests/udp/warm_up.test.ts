/**
 * @module warmUp() on the real kernel (tests/udp/warm_up_ns_script.ts in a fresh namespace,
 * under Bun and Deno): synthetic packets go through a PacketLoop over loopback and come back,
 * and the core is left as it was (no peer, no route, counters not carried into the real loop).
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createNetns, deleteNetns, isRoot, runInNetns, type Runtime } from "../ffi/sys_netns.ts";

const namespaces: string[] = [];
afterAll(() => namespaces.forEach(deleteNetns));

describe.skipIf(!isRoot)("warmUp() in a namespace", () => {
  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: every synthetic packet comes back, and the core is left clean`, () => {
      const ns = createNetns("udp");
      namespaces.push(ns);
      const r = runInNetns(ns, runtime, "../udp/warm_up_ns_script.ts");
      // 320 rounds, every 16th a burst of 4: 320 + 20 * 3 packets.
      const clean = { back: 380, routeGone: true, countersFromZero: true };
      expect(r.plain).toEqual(clean);
      expect(r.vnet).toEqual(clean);
      console.log(`${runtime}: warm-up of 380 packets took ${r.plainMs} ms (plain), ${r.vnetMs} ms (vnet_hdr)`);
    }, 60_000);
  }
});
