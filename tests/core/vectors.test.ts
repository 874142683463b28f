/**
 * Byte-exact vectors for both cores (Wasm and the TypeScript reference): real kernel packets
 * captured with tcpdump (ICMP echo, UDP, TCP SYN over IPv4; ICMPv6 echo, UDP over IPv6), the
 * TTL decrement, ICMP unreachable replies, GSO splitting with hand-computed checksums, and a
 * segment-then-coalesce round trip.
 */
import { describe, expect, test, beforeAll } from "bun:test";
import * as L from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import { createReferenceCore } from "../../src/core/reference.ts";
import type { Core } from "../../src/core/types.ts";
import { buildPacket, hex, inetChecksum, runEgress, runIngress, setupCluster, toHex, v4, vnetHdr } from "./packets.ts";

// Captured with tcpdump on lo in a namespace (10.244.1.2 -> 10.244.1.3, fd00:1::2 -> fd00:1::3).
// The kernel leaves UDP/TCP checksums on lo partial (CHECKSUM_PARTIAL: the pseudo-header sum),
// which makes them NEEDS_CSUM vectors too; the ICMP ones were computed by the sender.
export const ICMP4 = "4500003490054000400192d70af401020af4010308 0093f912340001776566742d636f72652d666978747572652d763421212121";
export const UDP4 = "45000027d393400040114f460af401020af401039c40205d0013181168656c6c6f2077656674 0a";
export const TCP4 = "4500003cad55400040067 57a0af401020af401039c411f90687c318300000000a002ffd7181b00000204ffd70402080af07bb2c00000000001030 30a";
export const ICMP6 = "6007853500143a40fd000001000000000000000000000002fd0000010000000000000000000000038000ec7243210001776566742d636f72652d7636";
export const UDP6 = "6005115800141140fd000001000000000000000000000002fd0000010000000000000000000000039c42205d0014fa2d68656c6c6f2077656674360a";

const cores: [string, () => Promise<Core>][] = [
  ["wasm", () => loadCore()],
  ["reference", async () => createReferenceCore()],
];

for (const [name, make] of cores) {
  describe(`core (${name})`, () => {
    let core: Core;
    beforeAll(async () => {
      core = await make();
      setupCluster(core);
    });

    test("egress forwards captured packets in place with TTL - 1 and an RFC 1624 checksum", () => {
      core.setOptions(0);
      core.route4Insert(0x0af40103, 32, 2);
      core.regions.arg.set(hex("fd000001000000000000000000000003"));
      core.route6Insert(128, 2);
      const pkts = [ICMP4, UDP4, TCP4, ICMP6, UDP6].map(hex);
      const r = runEgress(core, pkts);
      expect(r.verdicts).toEqual([0, 0, 0, 0, 0]);
      expect(r.udp.length).toBe(5);
      for (let i = 0; i < 5; i++) {
        const out = r.udp[i]!;
        const want = pkts[i]!.slice();
        if (i < 3) {
          want[8]!--;
          const dv = new DataView(want.buffer);
          dv.setUint16(10, 0);
          dv.setUint16(10, inetChecksum(want.subarray(0, 20))); // a full recompute agrees
        } else {
          want[7]!--;
        }
        expect(toHex(out.bytes)).toBe(toHex(want));
        expect(out.off).toBe(L.EG_IN + i * 65552); // no copy
        expect(out.ip).toBe(0xc0a80002);
        expect(out.port).toBe(8285);
        expect(out.peer).toBe(2);
      }
      // The ICMP echo's checksum 0x92d7 becomes 0x93d7 (TTL 64 -> 63).
      expect(toHex(r.udp[0]!.bytes.subarray(8, 12))).toBe("3f0193d7");
    });

    test("egress completes partial checksums (NEEDS_CSUM, no GSO) of the captured packets", () => {
      core.setOptions(L.OPT_VNET_HDR);
      const r = runEgress(core, [
        Uint8Array.from([...vnetHdr(1, 0, 0, 0, 20, 6), ...hex(UDP4)]),
        Uint8Array.from([...vnetHdr(1, 0, 0, 0, 20, 16), ...hex(TCP4)]),
        Uint8Array.from([...vnetHdr(1, 0, 0, 0, 40, 6), ...hex(UDP6)]),
        Uint8Array.from([...vnetHdr(1, 0, 0, 0, 20, 19), ...hex(UDP4)]), // field past the end
      ]);
      expect(r.verdicts).toEqual([0, 0, 0, L.V_BAD_VNET_HDR]);
      // Full checksums computed independently (Python).
      expect(toHex(r.udp[0]!.bytes.subarray(26, 28))).toBe("ff71");
      expect(toHex(r.udp[1]!.bytes.subarray(36, 38))).toBe("3d07");
      expect(toHex(r.udp[2]!.bytes.subarray(46, 48))).toBe("f147");
    });

    test("egress answers no route with flanneld's ICMP net unreachable (IPv4) and ICMPv6 type 1", () => {
      core.setOptions(0);
      const r = runEgress(core, [hex(UDP4).map((b, i) => (i === 16 ? 10 : i === 17 ? 99 : b))].map((p) => {
        // 10.244.1.3 -> 10.99.1.3: outside every route; fix the IP checksum only.
        const dv = new DataView(p.buffer); dv.setUint16(10, 0); dv.setUint16(10, inetChecksum(p.subarray(0, 20)));
        return p;
      }));
      expect(r.verdicts).toEqual([L.V_NO_ROUTE]);
      expect(r.udp.length).toBe(0);
      expect(r.tun.length).toBe(1);
      // Hand-built: 45 00 0038 0000 0000 08 01 csum 10.244.1.0 -> 10.244.1.2, type 3 code 0.
      const ip = r.tun[0]!;
      expect(toHex(ip.subarray(20, 24))).toBe("0300" + toHex(ip.subarray(22, 24)));
      expect(inetChecksum(ip.subarray(0, 20))).toBe(0);
      expect(inetChecksum(ip.subarray(20))).toBe(0);
      expect(ip.length).toBe(56);

      // The exact bytes for the captured UDP packet with 10.244.1.3 unrouted:
      core.routeClear();
      core.setOptions(0);
      const r2 = runEgress(core, [hex(UDP4)]);
      expect(toHex(r2.tun[0]!)).toBe(
        "450000380000000008019adc0af401000af401020300283e0000000045000027d393400040114f460af401020af401039c40205d00131811",
      );
      const r3 = runEgress(core, [hex(UDP6)]);
      expect(toHex(r3.tun[0]!)).toBe(
        "6000000000443a40fd000001000000000000000000000000fd00000100000000000000000000000201007909000000006005115800141140fd000001000000000000000000000002fd0000010000000000000000000000039c42205d0014fa2d68656c6c6f2077656674360a",
      );
      // Never an error about ICMP.
      const r4 = runEgress(core, [hex(ICMP4)]);
      expect(r4.verdicts).toEqual([L.V_NO_ROUTE]);
      expect(r4.tun.length).toBe(0);
      setupCluster(core);
    });

    test("egress drops TTL 1 and malformed packets with a reason, and counts them", () => {
      core.setOptions(0);
      const before = Array.from(core.regions.counters);
      const ttl1 = buildPacket({ src: v4(10, 244, 1, 2), dst: v4(10, 244, 2, 3), proto: 17, ttl: 1 });
      const badSum = hex(UDP4); badSum[11]! ^= 1;
      const badVer = hex(UDP4); badVer[0] = 0x55;
      const badIhl = hex(UDP4); badIhl[0] = 0x44;
      const long = hex(UDP4); long[3] = 0xff;
      const r = runEgress(core, [ttl1, badSum, badVer, badIhl, long, new Uint8Array(10)]);
      expect(r.verdicts).toEqual([L.V_TTL_EXPIRED, L.V_BAD_CHECKSUM, L.V_BAD_VERSION, L.V_BAD_HEADER_LENGTH, L.V_BAD_TOTAL_LENGTH, L.V_BAD_VERSION]);
      const c = core.regions.counters;
      expect(c[L.C_EG + L.V_TTL_EXPIRED]! - before[L.C_EG + L.V_TTL_EXPIRED]!).toBe(1);
      expect(c[L.C_EG + L.V_BAD_CHECKSUM]! - before[L.C_EG + L.V_BAD_CHECKSUM]!).toBe(1);
      expect(r.udp.length).toBe(0);
    });

    test("egress splits a TSO super-packet: ids, lengths, seq, flags and checksums", () => {
      core.setOptions(L.OPT_VNET_HDR);
      const payload = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7 + 3) & 0xff);
      const sup = buildPacket({ src: v4(10, 244, 1, 2), dst: v4(10, 244, 2, 3), proto: 6, payload, id: 0x1000, seq: 1000, ack: 2000, flags: 0x99 });
      sup[36] = 0x12; sup[37] = 0x34; // partial checksum from the kernel: ignored, recomputed
      const r = runEgress(core, [Uint8Array.from([...vnetHdr(1, 1, 0, 1448, 20, 16), ...sup])]);
      expect(r.verdicts).toEqual([0]);
      expect(r.udp.map((u) => u.bytes.length)).toEqual([1488, 1488, 144]);
      const fields = r.udp.map((u) => {
        const dv = new DataView(u.bytes.buffer);
        return [dv.getUint16(4), u.bytes[8], dv.getUint16(10), dv.getUint32(24), u.bytes[33], dv.getUint16(36)];
      });
      // Hand-computed (Python, independent of both cores).
      expect(fields).toEqual([
        [0x1000, 63, 0x0d3c, 1000, 0x90, 0xcbaa],
        [0x1001, 63, 0x0d3b, 2448, 0x10, 0xe49e],
        [0x1002, 63, 0x127a, 3896, 0x19, 0xd17f],
      ]);
      // Contiguous in EG_OUT, ready for one UDP_SEGMENT sendmsg.
      expect(r.udp[1]!.off).toBe(r.udp[0]!.off + 1488);
      expect(Array.from(r.udp.flatMap((u) => Array.from(u.bytes.subarray(40))))).toEqual(Array.from(payload));
    });

    test("ingress accepts only known peers' subnets, decrements TTL, prefixes a virtio_net_hdr in place", () => {
      core.setOptions(L.OPT_VNET_HDR);
      const fromPeer = buildPacket({ src: v4(10, 244, 2, 9), dst: v4(10, 244, 1, 2), proto: 17, payload: hex("aabbcc") });
      const spoofed = buildPacket({ src: v4(10, 244, 3, 9), dst: v4(10, 244, 1, 2), proto: 17 });
      const six = buildPacket({ v6: true, src: hex("fd000002000000000000000000000009"), dst: hex("fd000001000000000000000000000002"), proto: 17 });
      const r = runIngress(core, [
        { from: 0xc0a80002, bytes: fromPeer },
        { from: 0xc0a80002, bytes: spoofed },
        { from: 0xc0a800fe, bytes: fromPeer.slice() },
        { from: 0xc0a80002, bytes: six },
      ]);
      expect(r.verdicts).toEqual([0, L.V_SPOOFED, L.V_UNKNOWN_SOURCE, 0]);
      expect(r.tun.length).toBe(2);
      const want = fromPeer.slice(); want[8]!--;
      const dv = new DataView(want.buffer); dv.setUint16(10, 0); dv.setUint16(10, inetChecksum(want.subarray(0, 20)));
      expect(toHex(r.tun[0]!)).toBe("00".repeat(10) + toHex(want));
      expect(r.tun[1]![10 + 7]).toBe(63);
    });

    test("segment then coalesce gives back the payload as one valid super-packet (IPv4, IPv6)", () => {
      for (const v6 of [false, true]) {
        core.setOptions(L.OPT_VNET_HDR);
        const payload = Uint8Array.from({ length: 20000 }, (_, i) => (i * 13 + 5) & 0xff);
        const src = v6 ? hex("fd000001000000000000000000000002") : v4(10, 244, 1, 2);
        const dst = v6 ? hex("fd000002000000000000000000000003") : v4(10, 244, 2, 3);
        const options = Uint8Array.of(1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2); // NOP NOP TS
        const sup = buildPacket({ v6, src, dst, proto: 6, payload, seq: 0xfffff000, flags: 0x18, options });
        const t = v6 ? 40 : 20;
        const split = runEgress(core, [Uint8Array.from([...vnetHdr(1, v6 ? 4 : 1, 0, 1388, t, 16), ...sup])]);
        expect(split.udp.length).toBe(Math.ceil(20000 / 1388));
        // The peer receives them (we play the peer: swap roles by sending them back from 10.244.2.x).
        const back = runIngressAsPeer(core, split.udp.map((u) => u.bytes), v6);
        expect(back.verdicts.every((v) => v === 0)).toBe(true);
        expect(back.tun.length).toBe(1);
        const out = back.tun[0]!;
        const h = new DataView(out.buffer);
        expect([out[0], out[1], h.getUint16(2, true), h.getUint16(4, true), h.getUint16(6, true), h.getUint16(8, true)])
          .toEqual([1, v6 ? 4 : 1, t + 32, 1388, t, 16]);
        const ip = out.subarray(10);
        expect(Array.from(ip.subarray(t + 32))).toEqual(Array.from(payload));
        if (!v6) expect(inetChecksum(ip.subarray(0, 20))).toBe(0);
        expect(new DataView(ip.buffer, ip.byteOffset).getUint32(t + 4)).toBe(0xfffff000);
        expect(ip[t + 13]).toBe(0x18);
        // Completing the partial checksum as the kernel would gives a valid TCP checksum.
        const pseudo = v6
          ? Uint8Array.from([...ip.subarray(8, 40), 0, 0, (ip.length - 40) >> 8, (ip.length - 40) & 255, 0, 0, 0, 6])
          : Uint8Array.from([...ip.subarray(12, 20), 0, 6, (ip.length - 20) >> 8, (ip.length - 20) & 255]);
        const partial = new DataView(ip.buffer, ip.byteOffset).getUint16(t + 16);
        expect(partial).toBe(~inetChecksum(pseudo) & 0xffff);
        const whole = ip.slice(t);
        whole[16] = 0; whole[17] = 0;
        const c = inetChecksum(pseudo, whole);
        whole[16] = c >> 8; whole[17] = c & 255;
        expect(inetChecksum(pseudo, whole)).toBe(0);
        // Each segment the peer received carried a valid full checksum (else no coalescing).
      }
    });
  });
}

/** Sends segments (addressed 10.244.1.2 -> 10.244.2.3) back into ingress as if peer 2 sent them. */
function runIngressAsPeer(core: Core, segments: Uint8Array[], v6: boolean) {
  const swapped = segments.map((s) => {
    const p = s.slice();
    // Swap source and destination: the pseudo-header sum is symmetric, checksums stay valid.
    if (v6) { const a = p.slice(8, 24); p.copyWithin(8, 24, 40); p.set(a, 24); }
    else { const a = p.slice(12, 16); p.copyWithin(12, 16, 20); p.set(a, 16); }
    return p;
  });
  return runIngress(core, swapped.map((bytes) => ({ from: 0xc0a80002, bytes })));
}
