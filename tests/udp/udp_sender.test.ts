/**
 * @module UdpSender on the real kernel (tests/udp/sender_ns_script.ts in a fresh namespace,
 * under Bun and Deno): runs of equal datagrams to one peer go out as one UDP_SEGMENT message,
 * each still its own datagram on the wire; without GSO, one message per datagram; when the
 * kernel refuses GSO (EIO) the sender falls back and everything still arrives; with one peer
 * over IPv6, the batch leaves through both sockets, a sendmmsg per run of one family.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { execFileSync } from "node:child_process";
import { createNetns, deleteNetns, isRoot, runInNetns, type Runtime } from "../ffi/sys_netns.ts";

/** Namespaces A and B joined by va (10.9.0.1/24, fd09::1/64, in A) — vb (10.9.0.2/24, fd09::2/64, in B). */
function pair(): [string, string] {
  const [a, b] = [createNetns("udp"), createNetns("udp")];
  namespaces.push(a, b);
  const ip = (...args: string[]) => execFileSync("ip", args);
  ip("-n", a, "link", "add", "va", "type", "veth", "peer", "name", "vb", "netns", b);
  ip("-n", a, "addr", "add", "10.9.0.1/24", "dev", "va");
  ip("-n", b, "addr", "add", "10.9.0.2/24", "dev", "vb");
  ip("-n", a, "addr", "add", "fd09::1/64", "dev", "va", "nodad");
  ip("-n", b, "addr", "add", "fd09::2/64", "dev", "vb", "nodad");
  ip("-n", a, "link", "set", "va", "up");
  ip("-n", b, "link", "set", "vb", "up");
  return [a, b];
}

const namespaces: string[] = [];
afterAll(() => namespaces.forEach(deleteNetns));

// What each peer must receive, in order: "<fill byte>:<length>".
const PEER0 = ["1:1400", "2:1400", "3:1400", "4:600", "7:1400", "8:500", "9:900"];
const PEER1 = ["5:1000", "6:1000"];
const ALL = { packets: 9, bytes: 1400 * 4 + 600 + 2000 + 500 + 900, errors: 0, received: [PEER0, PEER1] };

describe.skipIf(!isRoot)("UdpSender in a namespace", () => {
  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: GSO runs, plain sends and the EIO fallback deliver the same datagrams`, () => {
      const [a, b] = pair();
      process.env.WEFT_TEST_PEER_NS = b;
      const r = runInNetns(a, runtime, "../udp/sender_ns_script.ts");
      expect(r.gsoAvailable).toBe(true);
      expect(r.withGso).toEqual({ ...ALL, messages: 4, fallbacks: 0, gsoAfter: true });
      expect(r.withoutGso).toEqual({ ...ALL, messages: 9, fallbacks: 0, gsoAfter: false });
      // The first GSO message fails with EIO; from there on, one datagram per message.
      expect(r.eio).toEqual({ ...ALL, messages: 9, fallbacks: 1, gsoAfter: false });
      // Peer 1 over IPv6: the same messages, in three sendmmsg (IPv4, IPv6, IPv4 again).
      expect(r.mixed).toEqual({ ...ALL, messages: 4, fallbacks: 0, gsoAfter: true, syscalls: 3 });
      // A device without checksum offload: this kernel segments in software, older ones say EIO.
      expect([4, 9]).toContain(r.noCsum.messages);
      expect(r.noCsum.received).toEqual(ALL.received);
      deleteNetns(a);
      deleteNetns(b);
    }, 60_000);
  }
});
