/**
 * @module One packet loop turn on a real TUN (tests/udp/answer_ns_script.ts in a fresh
 * namespace, under Bun and Deno): a datagram whose packet the kernel answers during the TUN
 * write (an echo request for the host's own address) has its answer read and sent to the peer
 * in the same turn — the responder's side of a round trip pays no extra poll().
 */
import { afterAll, describe, expect, test } from "bun:test";
import { createNetns, deleteNetns, isRoot, runInNetns, type Runtime } from "../ffi/sys_netns.ts";

const namespaces: string[] = [];
afterAll(() => namespaces.forEach(deleteNetns));

describe.skipIf(!isRoot)("packet loop: the answer to a TUN write", () => {
  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: goes out in the same turn`, () => {
      const ns = createNetns("udpans");
      namespaces.push(ns);
      const r = runInNetns(ns, runtime, "../udp/answer_ns_script.ts");
      // 1 datagram received + 1 packet read from the TUN; the peer has the echo reply.
      expect(r).toEqual({
        handled: 2,
        reply: { len: 36, src: 0x0a090100, dst: 0x0a090205, type: 0, id: 0x1234, seq: 1 },
      });
    }, 60_000);
  }
});
