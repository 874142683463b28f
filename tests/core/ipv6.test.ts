/**
 * The core's IPv6 paths, byte-exact on both cores (Wasm and the TypeScript reference): an
 * IPv6 packet to a peer reached over the IPv6 underlay (descriptor 0.0.0.0 + PUBLIC6) and back
 * in from that peer's public IPv6 (IN_SRC6), the TSO split of a TCPv6 super-packet (virtio
 * gso_type TCPV6) against packets built independently, ICMPv6 unreachable, and egress
 * anti-spoofing for both families.
 */
import { beforeAll, describe, expect, test } from "bun:test";
import * as L from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import { createReferenceCore } from "../../src/core/reference.ts";
import type { Core } from "../../src/core/types.ts";
import { buildPacket, hex, runEgress, runIngress, setupCluster, toHex, v4, vnetHdr } from "./packets.ts";

const OURS = hex("fd000001000000000000000000000002"); // fd00:1::2, in our lease fd00:1::/64
const PEER3 = hex("fd000003000000000000000000000009"); // fd00:3::9, in peer 3's lease
const PUBLIC3 = hex("20010db8000000000000000000000003"); // peer 3's public IPv6 (2001:db8::3)

const cores: [string, () => Promise<Core>][] = [
  ["wasm", () => loadCore()],
  ["reference", async () => createReferenceCore()],
];

for (const [name, make] of cores) {
  describe(`core IPv6 (${name})`, () => {
    let core: Core;
    beforeAll(async () => {
      core = await make();
      setupCluster(core);
      // Peer 3 is a v6-only host: no public IPv4, reached over IPv6 at 2001:db8::3.
      core.peerSet(3, 0, 8285, 0x0af40300, 24);
      core.regions.arg.set(hex("fd000003000000000000000000000000"));
      expect(core.peerSetSubnet6(3, 64)).toBe(0);
      core.regions.arg.set(PUBLIC3);
      expect(core.peerSetPublic6(3, 1)).toBe(0);
      // Peer 2 advertises a public IPv6 but is sent to over IPv4 (flanneld's way).
      core.regions.arg.set(hex("20010db8000000000000000000000002"));
      expect(core.peerSetPublic6(2, 0)).toBe(0);
    });

    test("peerSetPublic6 refuses an address another peer holds, and IPv4 sends to a peer without IPv4", () => {
      core.regions.arg.set(PUBLIC3);
      expect(core.peerSetPublic6(4, 0)).toBe(L.ERR_EXISTS);
      core.regions.arg.set(hex("20010db8000000000000000000000077"));
      expect(core.peerSetPublic6(3, 0)).toBe(L.ERR_INVALID); // peer 3 has no IPv4 to send to
      expect(core.peerSetPublic6(200, 1)).toBe(L.ERR_NOT_FOUND);
    });

    test("an IPv6 packet to a v6-only peer: in place, hop limit - 1, descriptor 0.0.0.0 + PUBLIC6", () => {
      core.setOptions(0);
      const pkt = buildPacket({ v6: true, src: OURS, dst: PEER3, proto: 17, payload: hex("68656c6c6f"), sport: 40000, dport: 5201 });
      const r = runEgress(core, [pkt]);
      expect(r.verdicts).toEqual([L.V_OK]);
      expect(r.udp.length).toBe(1);
      const want = pkt.slice();
      want[7] = 63;
      // The datagram's payload is the inner packet itself, byte for byte (flanneld's format).
      expect(toHex(r.udp[0]!.bytes)).toBe(toHex(want));
      expect(toHex(r.udp[0]!.bytes)).toBe(
        "60000000000d113ffd000001000000000000000000000002fd0000030000000000000000000000099c401451000d" +
        toHex(r.udp[0]!.bytes.subarray(46, 48)) + "68656c6c6f",
      );
      expect(r.udp[0]!.ip).toBe(0); // over IPv6:
      expect(r.udp[0]!.port).toBe(8285);
      expect(r.udp[0]!.peer).toBe(3);
      expect(toHex(core.bytes.subarray(L.PUBLIC6 + 3 * 16, L.PUBLIC6 + 4 * 16))).toBe(toHex(PUBLIC3));
      // Peer 2 has a public IPv6 but is not sent to over it.
      const r2 = runEgress(core, [buildPacket({ v6: true, src: OURS, dst: hex("fd000002000000000000000000000003"), proto: 17 })]);
      expect(r2.udp[0]!.ip).toBe(0xc0a80002);
    });

    test("datagrams from a peer's public IPv6 (IN_SRC6) are that peer's; strangers' are dropped", () => {
      core.setOptions(L.OPT_VNET_HDR);
      const fromPeer = buildPacket({ v6: true, src: PEER3, dst: OURS, proto: 17, payload: hex("aabbcc") });
      const spoofed = buildPacket({ v6: true, src: hex("fd000004000000000000000000000009"), dst: OURS, proto: 17 });
      const v4FromPeer = buildPacket({ src: v4(10, 244, 3, 9), dst: v4(10, 244, 1, 2), proto: 17 });
      const src6 = [PUBLIC3, PUBLIC3, hex("20010db80000000000000000000000ee"), PUBLIC3];
      src6.forEach((a, i) => core.bytes.set(a, L.IN_SRC6 + i * 16));
      const r = runIngress(core, [
        { from: 0, bytes: fromPeer },
        { from: 0, bytes: spoofed },
        { from: 0, bytes: fromPeer.slice() },
        { from: 0, bytes: v4FromPeer },
      ]);
      expect(r.verdicts).toEqual([L.V_OK, L.V_SPOOFED, L.V_UNKNOWN_SOURCE, L.V_OK]);
      const want = fromPeer.slice();
      want[7] = 63;
      expect(toHex(r.tun[0]!)).toBe("00".repeat(10) + toHex(want));
      // Peer 2 sends over IPv4 or IPv6 alike.
      core.bytes.set(hex("20010db8000000000000000000000002"), L.IN_SRC6);
      const r2 = runIngress(core, [{ from: 0, bytes: buildPacket({ v6: true, src: hex("fd000002000000000000000000000001"), dst: OURS, proto: 17 }) }]);
      expect(r2.verdicts).toEqual([L.V_OK]);
    });

    test("a TCPv6 super-packet (gso_type TCPV6) splits into the segments the kernel would send", () => {
      core.setOptions(L.OPT_VNET_HDR);
      const payload = Uint8Array.from({ length: 3000 }, (_, i) => (i * 11 + 1) & 0xff);
      const options = Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 7, 0, 0, 0, 9); // NOP NOP TS
      const spec = { v6: true, src: OURS, dst: PEER3, proto: 6, seq: 0xfffffa00, ack: 55, flags: 0x99, options, flowLabel: 0x12345 };
      const sup = buildPacket({ ...spec, payload });
      sup[40 + 16] = 0xab; sup[40 + 17] = 0xcd; // the kernel's partial checksum: ignored, recomputed
      const r = runEgress(core, [Uint8Array.from([...vnetHdr(1, 4, 0, 1400, 40, 16), ...sup])]);
      expect(r.verdicts).toEqual([L.V_OK]);
      expect(r.udp.map((u) => u.bytes.length)).toEqual([1472, 1472, 272]);
      // Each segment equals the packet built independently: hop limit 63, seq + i * 1400
      // (wrapping), FIN/PSH only on the last, CWR only on the first, full TCP checksum.
      const flags = [0x90, 0x10, 0x19];
      r.udp.forEach((u, i) => {
        const want = buildPacket({
          ...spec, ttl: 63, seq: (0xfffffa00 + i * 1400) >>> 0, flags: flags[i], payload: payload.subarray(i * 1400, (i + 1) * 1400),
        });
        expect(toHex(u.bytes)).toBe(toHex(want));
        expect(u.ip).toBe(0);
        expect(u.peer).toBe(3);
      });
      // By hand: payload length, sequence number and flags of the three segments.
      expect(r.udp.map((u) => toHex(u.bytes.subarray(4, 6)) + toHex(u.bytes.subarray(44, 48)) + toHex(u.bytes.subarray(53, 54))))
        .toEqual(["0598fffffa0090", "0598ffffff7810", "00e8000004f019"]);
      expect(r.udp[1]!.off).toBe(r.udp[0]!.off + 1472); // contiguous: one UDP_SEGMENT send
    });

    test("no route: ICMPv6 destination unreachable from the TUN address, quoting the packet", () => {
      core.setOptions(L.OPT_VNET_HDR);
      const lost = buildPacket({ v6: true, src: OURS, dst: hex("fd0000aa000000000000000000000001"), proto: 6, payload: hex("01020304"), seq: 1, flags: 0x02 });
      const r = runEgress(core, [Uint8Array.from([...vnetHdr(0, 0, 0, 0, 0, 0), ...lost])]);
      expect(r.verdicts).toEqual([L.V_NO_ROUTE]);
      expect(r.udp.length).toBe(0);
      expect(r.tun.length).toBe(1);
      const out = r.tun[0]!;
      expect(toHex(out.subarray(0, 10))).toBe("00".repeat(10)); // virtio_net_hdr: nothing to do
      const icmp = out.subarray(10);
      // 6 0 0 | len 8 + 64 | next header 58 | hop limit 64 | fd00:1:: -> fd00:1::2 | type 1 code 0
      expect(toHex(icmp.subarray(0, 48))).toBe(
        "6000000000483a40fd000001000000000000000000000000fd00000100000000000000000000000201" + "00" +
        toHex(icmp.subarray(42, 44)) + "00000000",
      );
      expect(toHex(icmp.subarray(48))).toBe(toHex(lost));
      const pseudo = Uint8Array.from([...icmp.subarray(8, 40), 0, 0, 0, 72, 0, 0, 0, 58]);
      const sum = (b: Uint8Array) => { let s = 0; for (let i = 0; i < b.length; i += 2) s += (b[i]! << 8) | (b[i + 1] ?? 0); while (s > 0xffff) s = (s & 0xffff) + (s >>> 16); return s; };
      expect(sum(Uint8Array.from([...pseudo, ...icmp.subarray(40)]))).toBe(0xffff);
    });

    test("egress anti-spoofing: only sources in our lease leave, for each family that has one", () => {
      core.setOptions(0);
      core.setOwnSubnet4(0x0af40100, 24);
      core.regions.arg.set(hex("fd000001000000000000000000000000"));
      core.setOwnSubnet6(64);
      const before = core.regions.counters[L.C_EG + L.V_SPOOFED]!;
      const r = runEgress(core, [
        buildPacket({ src: v4(10, 244, 1, 2), dst: v4(10, 244, 2, 3), proto: 17 }),
        buildPacket({ src: v4(10, 244, 7, 2), dst: v4(10, 244, 2, 3), proto: 17 }),
        buildPacket({ v6: true, src: OURS, dst: PEER3, proto: 17 }),
        buildPacket({ v6: true, src: hex("fd000007000000000000000000000002"), dst: PEER3, proto: 17 }),
        buildPacket({ v6: true, src: hex("fd000007000000000000000000000002"), dst: hex("fd0000aa000000000000000000000001"), proto: 17 }),
      ]);
      expect(r.verdicts).toEqual([L.V_OK, L.V_SPOOFED, L.V_OK, L.V_SPOOFED, L.V_SPOOFED]);
      expect(r.tun.length).toBe(0); // no ICMP error towards a source that is not ours
      expect(core.regions.counters[L.C_EG + L.V_SPOOFED]! - before).toBe(3);
      core.setOwnSubnet4(0, 0);
      core.setOwnSubnet6(0);
      expect(runEgress(core, [buildPacket({ src: v4(10, 244, 7, 2), dst: v4(10, 244, 2, 3), proto: 17 })]).verdicts).toEqual([L.V_OK]);
    });

    test("peerSet and peerDelete drop a peer's public IPv6 with it", () => {
      core.setOptions(0);
      const pkt = buildPacket({ v6: true, src: PEER3, dst: OURS, proto: 17 });
      core.peerSet(3, 0, 8285, 0x0af40300, 24); // re-set: public IPv6 and IPv6 subnet cleared
      core.bytes.set(PUBLIC3, L.IN_SRC6);
      expect(runIngress(core, [{ from: 0, bytes: pkt }]).verdicts).toEqual([L.V_UNKNOWN_SOURCE]);
      core.regions.arg.set(hex("fd000003000000000000000000000000"));
      core.peerSetSubnet6(3, 64);
      core.regions.arg.set(PUBLIC3);
      expect(core.peerSetPublic6(3, 1)).toBe(0);
      core.bytes.set(PUBLIC3, L.IN_SRC6);
      expect(runIngress(core, [{ from: 0, bytes: pkt.slice() }]).verdicts).toEqual([L.V_OK]);
      expect(core.peerDelete(3)).toBe(0);
      core.bytes.set(PUBLIC3, L.IN_SRC6);
      expect(runIngress(core, [{ from: 0, bytes: pkt.slice() }]).verdicts).toEqual([L.V_UNKNOWN_SOURCE]);
      // Its address is free for another peer now.
      core.regions.arg.set(PUBLIC3);
      expect(core.peerSetPublic6(4, 0)).toBe(0);
    });
  });
}
