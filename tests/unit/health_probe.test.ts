/** The overlay health probe's wire format, peer state machine, scheduler budget and cause texts. */
import { expect, test } from "bun:test";
import { likelyCause } from "../../src/health/cause.ts";
import { encodeEchoRequest, inetChecksum, parseEchoReply } from "../../src/health/icmp_echo.ts";
import { LOSSES_DOWN, medianRtt, newPeerState, onAnswer, onLoss } from "../../src/health/peer_state.ts";
import { decodeProbe, encodeProbe, REPLY, REQUEST, replyTo } from "../../src/health/probe_packet.ts";
import { overlayAddress, overlayAddress6 } from "../../src/health/prober.ts";
import { ProbeScheduler } from "../../src/health/scheduler.ts";

const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");

test("encodeProbe() writes the 16-byte header and zero padding, byte-exact", () => {
  const b = encodeProbe({ type: REQUEST, mtu: true, seq: 0x01020304, token: 0xdeadbeef, size: 20 });
  expect(hex(b)).toBe("57465450" + "01" + "01" + "0001" + "01020304" + "deadbeef" + "00000000");
  expect(decodeProbe(b)).toEqual({ type: REQUEST, mtu: true, seq: 0x01020304, token: 0xdeadbeef, size: 20 });
  const r = replyTo(b);
  expect(hex(r)).toBe("57465450" + "01" + "02" + "0001" + "01020304" + "deadbeef" + "00000000");
  expect(r.byteLength).toBe(b.byteLength); // never larger: no amplification
  expect(decodeProbe(r)?.type).toBe(REPLY);
});

test("decodeProbe() ignores anything that is not a weft probe of this version", () => {
  const good = encodeProbe({ type: REQUEST, mtu: false, seq: 1, token: 2, size: 32 });
  const bad = (f: (b: Uint8Array) => void) => { const b = new Uint8Array(good); f(b); return decodeProbe(b); };
  expect(decodeProbe(good.subarray(0, 15))).toBeUndefined();
  expect(bad((b) => { b[0] = 0x58; })).toBeUndefined(); // magic
  expect(bad((b) => { b[4] = 2; })).toBeUndefined(); // version
  expect(bad((b) => { b[5] = 3; })).toBeUndefined(); // type
  expect(() => encodeProbe({ type: REQUEST, mtu: false, seq: 1, token: 2, size: 8 })).toThrow("probe size 8: must be an integer from 16 to 65507 bytes");
});

test("a peer is up after one answer, down after LOSSES_DOWN small losses in a row, and the MTU check apart", () => {
  const s = newPeerState(0);
  expect(s.state).toBe("unknown");
  expect(onLoss(s, 1, false)).toEqual([]);
  expect(onAnswer(s, 2, 4, false)).toEqual(["up"]);
  expect(onAnswer(s, 3, 2, false)).toEqual([]);
  expect(onAnswer(s, 4, 6, false)).toEqual([]);
  expect(medianRtt(s)).toBe(4);
  // Full-size losses while small ones pass: an MTU black hole after LOSSES_DOWN in a row.
  for (let i = 1; i < LOSSES_DOWN; i++) expect(onLoss(s, 10 + i, true)).toEqual([]);
  expect(onLoss(s, 20, true)).toEqual(["mtu_failed"]);
  expect(s.state).toBe("up");
  expect(onAnswer(s, 21, 9, true)).toEqual(["mtu_ok"]);
  expect(medianRtt(s)).toBe(4); // full-size RTTs are not in the median
  for (let i = 1; i < LOSSES_DOWN; i++) expect(onLoss(s, 30 + i, false)).toEqual([]);
  expect(onLoss(s, 40, false)).toEqual(["down"]);
  expect([s.state, s.since, s.failures]).toEqual(["down", 40, 1 + (LOSSES_DOWN - 1) + 1 + LOSSES_DOWN]);
  expect(onLoss(s, 41, true)).toEqual([]); // a down peer's full-size losses say nothing of the MTU
  expect(onLoss(s, 42, false)).toEqual([]); // still down: no second change
  expect(onAnswer(s, 50, 3, false)).toEqual(["up"]);
  expect(s.since).toBe(50);
});

test("ProbeScheduler keeps 200 and 1000 peers within the budget, every peer probed, one full-size probe in mtuEvery", () => {
  for (const [n, perSecond] of [[200, 20], [1000, 50]] as const) {
    let seed = 1;
    const random = () => ((seed = (seed * 48271) % 2147483647) / 2147483647);
    const opts = { intervalMs: 10_000, maxPerSecond: 50, mtuEvery: 6, random };
    const s = new ProbeScheduler(opts, 0);
    const peers = Array.from({ length: n }, (_, i) => `p${i}`);
    s.setPeers(peers, 0);
    const count = new Map<string, number>();
    let total = 0, mtu = 0, worstSecond = 0, thisSecond = 0;
    for (let t = 0; t <= 120_000; t += 100) {
      if (t % 1000 === 0) { worstSecond = Math.max(worstSecond, thisSecond); thisSecond = 0; }
      for (const d of s.due(t, 100)) {
        total++; thisSecond++;
        if (d.mtu) mtu++;
        count.set(d.peer, (count.get(d.peer) ?? 0) + 1);
      }
    }
    expect(count.size).toBe(n); // nobody starved
    expect(worstSecond).toBeLessThanOrEqual(50); // the cap holds in every second
    expect(total / 120).toBeLessThanOrEqual(perSecond * 1.05); // n/10 per second, capped at 50
    expect(total / 120).toBeGreaterThanOrEqual(perSecond * 0.85);
    expect(mtu).toBe([...count.values()].reduce((a, c) => a + Math.floor(c / 6), 0)); // every 6th to each peer
    expect(ProbeScheduler.intervalFor(n, opts)).toBe(n === 1000 ? 20_000 : 10_000);
  }
});

test("overlayAddress(): the lease's network address, host-gw's containers' gateway", () => {
  const subnet = { ip: (10 << 24) | (244 << 16) | (3 << 8), len: 24 };
  expect(overlayAddress(subnet, "vxlan")).toBe("10.244.3.0");
  expect(overlayAddress(subnet, "udp")).toBe("10.244.3.0");
  expect(overlayAddress(subnet, "host-gw")).toBe("10.244.3.1");
  const subnet6 = { ip: 0xfd10_0000_0000_0003n << 64n, len: 64 };
  expect(overlayAddress6(subnet6, "vxlan")).toBe("fd10:0:0:3::");
  expect(overlayAddress6(subnet6, "host-gw")).toBe("fd10:0:0:3::1");
});

test("likelyCause() names the route, the blocked overlay port, a stopped agent and a gone host", () => {
  const base = { peer: "10.244.3.0/24", publicIP: "192.168.77.12", overlayAddr: "10.244.3.0", port: 8473, backend: "vxlan" };
  const table: [Partial<Parameters<typeof likelyCause>[0]>, string][] = [
    [{ route: { ok: false, detail: "ip route get 10.244.3.0: via 192.168.77.254 dev eth0" }, underlay: "answers" }, "no route to 10.244.3.0/24 through the overlay in this host's kernel (ip route get 10.244.3.0: via 192.168.77.254 dev eth0): deleted by hand? weft puts it back at its next check"],
    [{ route: { ok: true, detail: "" }, underlay: "answers" }, "the peer's agent answers on the underlay (192.168.77.12:8473) but not through the overlay: UDP 8472 (vxlan; the Backend's Port if set) is dropped between the hosts, or the peer's FORWARD chain drops it"],
    [{ underlay: "refused" }, "host 192.168.77.12 is up but no weft agent answers on UDP 8473 (agent stopped, or a flanneld host)"],
    [{ underlay: "refused", overlayIcmp: "answers" }, "host 192.168.77.12 is up and answers ICMP through the overlay (10.244.3.0), but no weft agent answers on UDP 8473: weft stopped with its data path in place, or a flanneld host"],
    [{ underlay: "refused", overlayIcmp: "silent" }, "host 192.168.77.12 is up but no weft agent answers on UDP 8473, and the overlay does not carry ICMP to 10.244.3.0 either: the agent is stopped and its data path gone"],
    [{ underlay: "unreachable" }, "host 192.168.77.12 is unreachable on the underlay (host down or gone)"],
    [{ underlay: "silent" }, "nothing answers on the underlay either (192.168.77.12:8473): the host is down, or a firewall drops UDP to it"],
  ];
  for (const [ev, want] of table) expect(likelyCause({ ...base, ...ev })).toBe(want);
});

test("ICMP echo request byte-exact (RFC 1071 checksum), and the reply matched by id, seq and IPv4 header", () => {
  const req = encodeEchoRequest(0x1234, 1);
  expect(hex(req)).toBe("0800" + "7788" + "1234" + "0001" + "776566742d686300");
  expect(inetChecksum(req)).toBe(0); // a correct checksum sums to zero
  // The kernel's reply as a raw socket reads it: a 20-byte IPv4 header (10.244.3.0 -> 10.244.1.0), then type 0.
  const ipHeader = "4500002400004000400100000af403000af40100";
  const reply = Buffer.from(ipHeader + "0000" + "7f88" + "1234" + "0001" + "776566742d686300", "hex");
  expect(parseEchoReply(reply, 0x1234, 1)).toBe((10 << 24 | 244 << 16 | 3 << 8) >>> 0);
  expect(parseEchoReply(reply, 0x1234, 2)).toBeUndefined(); // another seq
  expect(parseEchoReply(reply, 0x4321, 1)).toBeUndefined(); // another id (someone else's ping)
  expect(parseEchoReply(new Uint8Array(reply.subarray(0, 24)), 0x1234, 1)).toBeUndefined(); // truncated
});
