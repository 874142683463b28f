/**
 * @module UdpBatch and the UDP socket helpers on the real kernel, under Bun and Deno:
 * tests/ffi/udp_ns_script.ts runs in a fresh namespace per runtime; both must see the same.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createNetns, deleteNetns, isRoot, runInNetns, type Runtime } from "./sys_netns.ts";

const namespaces: string[] = [];
afterAll(() => namespaces.forEach(deleteNetns));

describe.skipIf(!isRoot)("UdpBatch in a namespace", () => {
  const seen: Record<string, Record<string, unknown>> = {};

  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: 64 datagrams per sendmmsg/recvmmsg from Wasm memory slots, GSO and GRO`, () => {
      const ns = createNetns("ffi");
      namespaces.push(ns);
      const r = runInNetns(ns, runtime, "udp_ns_script.ts");
      console.log(`${runtime}: UDP GSO ${r.gso}, GRO ${r.gro}, forced 7 MiB buffers ${r.buffersForced}`);
      expect(r).toEqual({
        runtime,
        buffersForced: true,
        sent: 64,
        received: 64,
        problems: [], // every datagram 1400 bytes, in order, from the sender's port
        emptyRecv: -11, // EAGAIN
        echoSent: 4,
        echoBack: "4 of 100 bytes",
        sendmsg: 300,
        recvmsg: [300, 5],
        gso: true,
        gsoSent: 1,
        gsoReceived: [1000, 1000, 1000, 500],
        gro: true,
        groSent: 1,
        groReceived: [3500, 1000],
        truncated: [2048, true],
      });
      seen[runtime] = { ...r, runtime: undefined };
      deleteNetns(ns);
    }, 60_000);
  }

  test("Bun and Deno observe the same", () => {
    expect(seen.deno).toEqual(seen.bun!);
  });
});
