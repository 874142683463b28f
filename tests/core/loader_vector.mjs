/**
 * @module One fixed vector run through a loaded core, in plain JavaScript so Bun, Deno and Node
 * can all run it: route and peer setup, an IPv4 packet forwarded (TTL and checksum rewritten
 * in place), one answered with ICMP unreachable, and lookups. Returns a JSON-able summary.
 */

const hex = (s) => Uint8Array.from(s.match(/../g).map((b) => parseInt(b, 16)));
const toHex = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

const ICMP4 = "4500003490054000400192d70af401020af401030800" +
  "93f912340001776566742d636f72652d666978747572652d763421212121";
const UDP4 = "45000027d393400040114f460af401020af401039c40205d0013181168656c6c6f20776566740a";

/** @param {(bytes?: Uint8Array) => Promise<any>} loadCore @param {Uint8Array} [bytes] */
export async function runLoaderVector(loadCore, bytes) {
  const core = await loadCore(bytes);
  core.setTunAddr4(0x0af40100);
  core.peerSet(2, 0xc0a80002, 8285, 0x0af40200, 24);
  core.route4Insert(0x0af40103, 32, 2); // 10.244.1.3/32 -> peer 2
  const EG_IN = 0x1000000, DESC = 0x34000, UDP = 0x38000, TUN = 0x48000;
  const udp = hex(UDP4);
  udp[18] = 4; // 10.244.1.3 -> 10.244.4.3: no route
  const dv = core.view;
  const packets = [hex(ICMP4), udp];
  packets.forEach((p, i) => {
    if (i === 1) { // fix the IPv4 header checksum after the rewrite
      p[10] = 0; p[11] = 0;
      let s = 0;
      for (let j = 0; j < 20; j += 2) s += (p[j] << 8) | p[j + 1];
      while (s > 0xffff) s = (s & 0xffff) + (s >>> 16);
      p[10] = (~s >> 8) & 0xff; p[11] = ~s & 0xff;
    }
    core.bytes.set(p, EG_IN + i * 4096);
    dv.setUint32(DESC + i * 16, EG_IN + i * 4096, true);
    dv.setUint32(DESC + i * 16 + 4, p.length, true);
  });
  const consumed = core.egress(0, 2);
  const out = (base, n) => Array.from({ length: n }, (_, j) => {
    const off = dv.getUint32(base + j * (base === UDP ? 16 : 8), true);
    const len = dv.getUint32(base + j * (base === UDP ? 16 : 8) + 4, true);
    return toHex(core.bytes.subarray(off, off + len));
  });
  return {
    kind: core.kind,
    memory: core.buffer.byteLength,
    consumed,
    verdicts: [dv.getUint16(DESC + 14, true), dv.getUint16(DESC + 16 + 14, true)],
    udp: out(UDP, core.egressUdpCount()),
    udpDest: toHex(core.bytes.subarray(UDP + 8, UDP + 16)),
    tun: out(TUN, core.egressTunCount()),
    lookups: [core.route4Lookup(0x0af40103), core.route4Lookup(0x0af40104)],
  };
}
