/**
 * @module TUN devices on the real kernel, under Bun and Deno: tests/ffi/tun_ns_script.ts runs in
 * a fresh namespace per runtime; both must observe the same, expected results.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createNetns, deleteNetns, isRoot, runInNetns, type Runtime } from "./sys_netns.ts";

const namespaces: string[] = [];
afterAll(() => namespaces.forEach(deleteNetns));

describe.skipIf(!isRoot)("openTun() in a namespace", () => {
  const seen: Record<string, Record<string, unknown>> = {};

  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: a TUN carries ping and UDP through the kernel, with offloads and queues`, () => {
      const ns = createNetns("ffi");
      namespaces.push(ns);
      const r = runInNetns(ns, runtime, "tun_ns_script.ts");
      console.log(`${runtime}: TUN offloads 0x${(r.offloads as number).toString(16)}; ${(r.features as string[]).join(", ")}`);
      expect(r).toMatchObject({
        runtime,
        name: "weft0", // weft%d numbered by the kernel
        pingWrite: 32,
        pingReply: "10.77.0.1 -> 10.77.0.2",
        udpIn: "hello from 10.77.0.2:5000",
        udpOutSent: 5,
        udpOut: "world from port 6000",
        goneAfterClose: true,
        unknownOffloadAccepted: false,
        vnetWrite: 42,
        vnetReply: true,
        multiQueue: ["weftmq0", "weftmq0", true],
        badName: `interface name "weft-name-too-long" is invalid (1..15 bytes, no '/', ':' or spaces)`,
        ipForward: "1",
      });
      // TCP offloads everywhere; UDP (USO) as well on Linux >= 6.2.
      expect([0x07, 0x67]).toContain(r.offloads as number);
      expect(r.features).toContain("tcp-segmentation-offload: on");
      seen[runtime] = { ...r, runtime: undefined };
      deleteNetns(ns);
    }, 60_000);
  }

  test("Bun and Deno observe the same", () => {
    expect(seen.deno).toEqual(seen.bun!);
  });
});
