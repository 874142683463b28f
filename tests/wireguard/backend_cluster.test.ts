/**
 * @module The wireguard backend on the real kernel: three weft hosts as namespaces (underlay
 * bridge, real etcd, agents as processes: sources under Bun, the compiled executable, Deno),
 * config `{"Network":"10.52.0.0/16","Backend":{"Type":"wireguard"}}`, one container per host.
 * flannel-wg, its address, route and MTU, the lease's BackendData, then traffic in a full mesh.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { run } from "../support/ns.ts";
import { type Cluster, Cluster as ClusterClass, exec, ipJson, ip, ping, waitFor } from "../support/netns.ts";

const isRoot = process.getuid?.() === 0;
const NETWORK = "10.52.0.0/16";
let c: Cluster;

async function wg(h: Cluster["hosts"][number]): Promise<any> {
  return (await c.status(h)).dataPath;
}

describe.skipIf(!isRoot)("wireguard backend on three weft hosts", () => {
  beforeAll(async () => {
    c = await ClusterClass.create({ hosts: 1, backend: "wireguard", network: NETWORK, runtime: "bun" });
    await c.addHost({ runtime: "binary" });
    await c.addHost({ runtime: "deno" });
    for (const h of c.hosts) await waitFor(async () => (await wg(h)).devices?.[0]?.peers?.length === 2, 20_000, `${h.name} to program its peers`);
  }, 90_000);

  afterAll(async () => {
    await c?.destroy();
  }, 30_000);

  test("flannel-wg, its address, route and MTU, and the lease are flanneld's", async () => {
    const h = c.hosts[0]!;
    const link = ipJson(h.ns, "-d", "link", "show", "flannel-wg")[0] as any;
    expect(link.mtu).toBe(1500 - 80);
    expect(link.flags).toContain("UP");
    const addrs = (ipJson(h.ns, "-4", "addr", "show", "dev", "flannel-wg")[0] as any).addr_info.map((a: any) => `${a.local}/${a.prefixlen}`);
    expect(addrs).toEqual([h.subnet.replace(/\/24$/, "/32")]);
    expect(ip(h.ns, "route", "show", NETWORK)).toContain(`${NETWORK} dev flannel-wg`);
    expect(h.env?.mtu).toBe(1420);
    const leases = JSON.parse(c.weft(["leases", "list", "--json"]));
    expect(JSON.stringify(leases)).toContain('"BackendType":"wireguard"');
  });

  test("every container reaches every other (ICMP), through WireGuard sessions", async () => {
    const all = c.hosts.flatMap((h) => h.containers);
    for (const from of all) {
      const targets = all.filter((t) => t !== from).map((t) => t.ip);
      const r = await ping(from.ns, targets, { count: 3, intervalMs: 100, timeoutMs: 3000 });
      for (const [t, res] of r) expect(res.received, `${from.ip} -> ${t}`).toBeGreaterThanOrEqual(2);
    }
    for (const h of c.hosts) {
      const d = (await waitFor(async () => { const s = await wg(h); return s.devices[0].handshakes?.sessions > 0 ? s : null; }, 5000, "status")).devices[0];
      expect(d.handshakes.sessions).toBeGreaterThan(0);
      expect(d.transport.open.ok).toBeGreaterThan(0);
    }
  }, 60_000);

  test("`wg show flannel-wg` (wireguard-tools, over the UAPI socket) shows the device as weft runs it; `wg set` is refused", async () => {
    const wgIn = (h: Cluster["hosts"][number], args: string[], stdin?: string) => run(h.inWgRunDir(["wg", ...args]), { stdin });
    for (const h of c.hosts.filter((x) => x.runtime !== "deno")) {
      const st = (await wg(h)).devices[0];
      // The worker reports its counters about once a second: wait for the last pings' handshakes.
      const dump = () => wgIn(h, ["show", "flannel-wg", "dump"]);
      const r = await waitFor(() => {
        const x = dump();
        const peerLines = x.stdout.trim().split("\n").slice(1).map((l) => l.split("\t"));
        return x.code === 0 && peerLines.length === 2 && peerLines.every((l) => l[4] !== "0" && l[5] !== "0" && l[6] !== "0") ? x : null;
      }, 5_000, `${h.name}: 'wg show' with a handshake and bytes for both peers`);
      // Line 1: private key, public key, listen port, fwmark; then a line per peer (wg(8) "dump").
      const [dev, ...peerLines] = r.stdout.trim().split("\n").map((l) => l.split("\t"));
      expect(dev![0]).toBe(Buffer.from(readFileSync(h.wgKeyFile, "utf8").trim(), "base64").toString("base64")); // the key file's key
      expect(dev![1]).toBe(wgIn(h, ["pubkey"], dev![0]).stdout.trim());
      expect(dev!.slice(2)).toEqual(["51820", "off"]);
      const peers = new Map(peerLines.map((l) => [l[0]!, l]));
      expect(peers.size).toBe(2);
      for (const o of c.hosts.filter((x) => x !== h)) {
        const p = st.peers.find((x: any) => x.lease === o.subnet.replace("/", "-"));
        const line = peers.get(p.publicKey)!;
        expect(line, `${h.name}: peer ${o.name}`).toBeDefined();
        expect(line[1]).toBe("(none)"); // no PSK
        expect(line[2]).toBe(`${o.ip}:51820`);
        expect(line[3]).toBe(o.subnet);
        expect(Number(line[4])).toBeGreaterThan(Date.now() / 1000 - 120); // a recent handshake
        expect(Number(line[5])).toBeGreaterThan(0); // rx bytes
        expect(Number(line[6])).toBeGreaterThan(0); // tx bytes
        expect(line[7]).toBe("off");
      }
      const before = r.stdout;
      const set = wgIn(h, ["set", "flannel-wg", "peer", [...peers.keys()][0]!, "remove"]);
      expect(set.code).not.toBe(0);
      expect(set.stderr).toContain("Operation not permitted");
      await waitFor(() => h.log.includes("'wg set flannel-wg' refused (EPERM)"), 5000, `${h.name} to log the refused 'wg set'`);
      expect(wgIn(h, ["show", "flannel-wg", "peers"]).stdout.trim().split("\n").sort()).toEqual([...peers.keys()].sort());
      expect(before.split("\n")[0]).toBe(wgIn(h, ["show", "flannel-wg", "dump"]).stdout.split("\n")[0]);
    }
  }, 30_000);

  test("the agent stops: flannel-wg, its address and route stay, so pods' packets to other hosts are dropped there, not sent out by the default route; a restart attaches to the same device", async () => {
    const [h, other] = c.hosts as [Cluster["hosts"][number], Cluster["hosts"][number]];
    const target = other.containers[0]!.ip;
    const link = () => ipJson(h.ns, "-s", "link", "show", "flannel-wg")[0] as any;
    const before = link();
    // A default route, as real hosts have: without flannel-wg's route the packets would take it.
    ip(h.ns, "route", "replace", "default", "via", other.ip);
    try {
      expect(await c.stopAgent(h)).toBe(0);
      const kept = link();
      expect(kept.ifindex).toBe(before.ifindex);
      expect((ipJson(h.ns, "-4", "addr", "show", "dev", "flannel-wg")[0] as any).addr_info.map((a: any) => `${a.local}/${a.prefixlen}`)).toEqual([h.subnet.replace(/\/24$/, "/32")]);
      expect((ipJson(h.ns, "route", "get", target)[0] as any).dev).toBe("flannel-wg");
      expect(ping3(h.containers[0]!.ns, target)).toBe(0);
      expect(link().stats64.tx.dropped).toBeGreaterThanOrEqual(kept.stats64.tx.dropped + 3);

      await c.startAgent(h, "bun");
      expect(link().ifindex).toBe(before.ifindex);
      await waitFor(() => ping3(h.containers[0]!.ns, target) >= 2, 15_000, "traffic through the restarted agent");
    } finally {
      ip(h.ns, "route", "del", "default");
    }
  }, 60_000);
});

/** `ping -c 3` from `from` to `to`; the replies received. */
function ping3(ns: string, to: string): number {
  const r = exec(ns, ["ping", "-n", "-c", "3", "-i", "0.2", "-W", "2", to]);
  const m = /(\d+) received/.exec(r.stdout);
  return m ? Number(m[1]) : 0;
}

for (const mode of ["separate", "auto"] as const) {
  describe.skipIf(!isRoot)(`wireguard backend, dual stack, Mode ${mode}`, () => {
    let d: Cluster;
    const devices = mode === "separate" ? ["flannel-wg", "flannel-wg-v6"] : ["flannel-wg"];

    beforeAll(async () => {
      d = await ClusterClass.create({
        hosts: 1, backend: "wireguard", network: "10.53.0.0/16", ipv6Network: "fd53::/56", runtime: "bun", backendOptions: { Mode: mode },
      });
      await d.addHost({ runtime: "binary" });
      for (const h of d.hosts) {
        await waitFor(async () => {
          const s = (await d.status(h)).dataPath;
          return s.devices?.length === devices.length && s.devices.every((x: any) => x.peers?.length === 1);
        }, 20_000, `${h.name} to program its peer on ${devices.join(" and ")}`);
      }
    }, 90_000);

    afterAll(async () => {
      await d?.destroy();
    }, 30_000);

    test(`devices ${devices.join(", ")}; IPv4 and IPv6 between containers both ways`, async () => {
      const [h1, h2] = d.hosts as [Cluster["hosts"][number], Cluster["hosts"][number]];
      for (const dev of devices) expect(ipJson(h1.ns, "link", "show", dev)[0]).toMatchObject({ mtu: 1420 });
      const v6dev = devices.at(-1)!;
      expect(ip(h1.ns, "-6", "route", "show", "fd53::/56")).toContain(`dev ${v6dev}`);
      const leases = JSON.parse(d.weft(["leases", "list", "--json"]));
      expect(JSON.stringify(leases)).toContain('"BackendV6Data"');
      const [a, b] = [h1.containers[0]!, h2.containers[0]!];
      expect(ping3(a.ns, b.ip)).toBeGreaterThanOrEqual(2);
      expect(ping3(b.ns, a.ip)).toBeGreaterThanOrEqual(2);
      expect(ping3(a.ns, b.ip6!)).toBeGreaterThanOrEqual(2);
      expect(ping3(b.ns, a.ip6!)).toBeGreaterThanOrEqual(2);
      const peer = (await d.status(h1)).dataPath.devices.at(-1).peers[0];
      // separate: flannel-wg-v6 reaches the peer over the IPv6 underlay on ListenPortV6; auto: IPv4 (flannel's choice).
      expect(peer.endpoint).toBe(mode === "separate" ? `[${h2.ip6}]:51821` : `${h2.ip}:51820`);
    }, 60_000);
  });
}

describe.skipIf(!isRoot)("wireguard backend: what anyone sends to the port", () => {
  test("garbage, truncated and forged handshake and transport messages are counted and change nothing", async () => {
    const d = await ClusterClass.create({ hosts: 2, backend: "wireguard", network: "10.54.0.0/16", runtime: "bun" });
    try {
      const [h1, h2] = d.hosts as [Cluster["hosts"][number], Cluster["hosts"][number]];
      await waitFor(async () => (await d.status(h1)).dataPath.devices[0].peers.length === 1, 20_000, "h1 to program its peer");
      const [a, b] = [h1.containers[0]!, h2.containers[0]!];
      expect(ping3(a.ns, b.ip)).toBeGreaterThanOrEqual(2);
      // From the peer's own address (h2) and port, so even the roaming logic sees them: random bytes of
      // every length 0..200 and 1400, each message type with a wrong length, a forged initiation of the
      // right length, transport messages naming a real and a made-up receiver index with a bad tag.
      const script = `
        const dgram = require("node:dgram");
        const s = dgram.createSocket("udp4");
        s.bind(51820, "${h2.ip}", async () => {
          const send = (b) => new Promise((r) => s.send(b, 51820, "${h1.ip}", r));
          const rnd = (n) => { const b = Buffer.alloc(n); for (let i = 0; i < n; i++) b[i] = Math.random() * 256; return b; };
          for (let n = 0; n <= 200; n++) await send(rnd(n));
          await send(rnd(1400));
          for (const t of [1, 2, 3, 4]) for (const n of [4, 31, 147, 149, 91, 93, 63, 65]) { const b = rnd(n); if (n >= 4) b.writeUInt32LE(t, 0); await send(b); }
          const init = rnd(148); init.writeUInt32LE(1, 0); await send(init);
          for (let i = 0; i < 64; i++) { const t = rnd(48 + i); t.writeUInt32LE(4, 0); t.writeUInt32LE(i, 4); await send(t); }
          s.close();
        });`;
      await d.stopAgent(h2); // its socket must be free to be borrowed
      const r = exec(h2.ns, ["node", "-e", script]);
      expect(r.code).toBe(0);
      await d.startAgent(h2);
      // h2 restarted: h1's first packets use keys h2 forgot, until h2's handshake (a second or so).
      await waitFor(() => ping3(a.ns, b.ip) >= 2, 15_000, "a to reach b again");
      const s = (await waitFor(async () => {
        const x = (await d.status(h1)).dataPath.devices[0];
        return x.handshakes.rejected.size > 0 ? x : null;
      }, 5000, "h1's counters")).handshakes;
      expect(s.rejected.size + s.rejected.mac1).toBeGreaterThan(150);
      expect(exec(h1.ns, ["true"]).code).toBe(0);
      expect((await d.status(h1)).dataPath.devices[0].peers[0].session).toBe(true);
    } finally {
      await d.destroy();
    }
  }, 90_000);
});

describe.skipIf(!isRoot)("wireguard backend: roaming", () => {
  test("a peer whose datagrams start coming from another address is answered there, also after its old address is gone (whitepaper §2.1)", async () => {
    const d = await ClusterClass.create({ hosts: 2, backend: "wireguard", network: "10.55.0.0/16", runtime: "bun" });
    try {
      const [h1, h2] = d.hosts as [Cluster["hosts"][number], Cluster["hosts"][number]];
      const [a, b] = [h1.containers[0]!, h2.containers[0]!];
      expect(ping3(b.ns, a.ip)).toBeGreaterThanOrEqual(2);
      const endpoint = async () => (await d.status(h1)).dataPath.devices[0].peers[0].endpoint;
      expect(await endpoint()).toBe(`${h2.ip}:51820`);
      // h2 gets a second underlay address and sends to h1 from it (a NAT rebinding, a moved VM).
      const moved = h2.ip.replace(/\.(\d+)$/, (_, x) => `.${Number(x) + 100}`);
      // (promote_secondaries: removing the first address below must keep the second one.)
      expect(exec(h2.ns, ["sysctl", "-qw", "net.ipv4.conf.eth0.promote_secondaries=1"]).code).toBe(0);
      ip(h2.ns, "addr", "add", `${moved}/24`, "dev", "eth0");
      ip(h2.ns, "route", "replace", `${h1.ip}/32`, "dev", "eth0", "src", moved);
      expect(ping3(b.ns, a.ip)).toBeGreaterThanOrEqual(2);
      await waitFor(async () => (await endpoint()) === `${moved}:51820`, 5000, "h1 to follow h2 to its new address");
      // h1's own traffic now goes there too: with the old address gone, h1 -> h2 still works.
      ip(h2.ns, "addr", "del", `${h2.ip}/24`, "dev", "eth0");
      try {
        expect(ping3(a.ns, b.ip)).toBeGreaterThanOrEqual(2);
      } finally {
        ip(h2.ns, "addr", "add", `${h2.ip}/24`, "dev", "eth0");
      }
      expect((await d.status(h1)).dataPath.devices[0].roamed).toBeGreaterThanOrEqual(1);
    } finally {
      await d.destroy();
    }
  }, 90_000);
});

describe.skipIf(!isRoot)("wireguard backend in kube mode", () => {
  test("the Node annotations carry the key as flanneld writes them, and containers reach each other", async () => {
    const P = "flannel.alpha.coreos.com/";
    const d = await ClusterClass.create({ hosts: 2, backend: "wireguard", runtime: "binary", kube: true });
    try {
      for (const h of d.hosts) await waitFor(async () => (await d.status(h)).dataPath.devices?.[0]?.peers?.length === 1, 20_000, `${h.name} to program its peer`);
      for (const h of d.hosts) {
        const a = ((d.api.getNode(h.name) as any).metadata.annotations ?? {}) as Record<string, string>;
        expect(a[`${P}backend-type`]).toBe("wireguard");
        const data = JSON.parse(a[`${P}backend-data`]!);
        expect(data).toEqual({ PublicKey: expect.stringMatching(/^[A-Za-z0-9+/]{43}=$/), Port: 51820 });
        expect(a[`${P}public-ip`]).toBe(h.ip);
      }
      const [a, b] = [d.hosts[0]!.containers[0]!, d.hosts[1]!.containers[0]!];
      expect(ping3(a.ns, b.ip)).toBeGreaterThanOrEqual(2);
      expect(ping3(b.ns, a.ip)).toBeGreaterThanOrEqual(2);
    } finally {
      await d.destroy();
    }
  }, 90_000);
});

describe.skipIf(!isRoot)("wireguard backend: a packet worker that dies", () => {
  test("is restarted (counted, logged), and traffic resumes on new sessions without an agent restart", async () => {
    const d = await ClusterClass.create({ hosts: 2, backend: "wireguard", network: "10.56.0.0/16", runtime: "bun" });
    try {
      const [h1, h2] = d.hosts as [Cluster["hosts"][number], Cluster["hosts"][number]];
      await d.stopAgent(h1);
      d.opts.agentEnv = { WEFT_TEST_WG_WORKER_CRASH_AFTER: "20" };
      try {
        await d.startAgent(h1, "bun");
      } finally {
        d.opts.agentEnv = undefined;
      }
      const [a, b] = [h1.containers[0]!, h2.containers[0]!];
      // 20 ping rounds go through; then h1's worker throws, is restarted a second later with no
      // sessions, and h2 (still on the old keys) gets a fresh handshake at its next packet.
      exec(a.ns, ["ping", "-n", "-c", "30", "-i", "0.05", "-W", "1", b.ip]);
      await waitFor(async () => (await d.status(h1)).dataPath.devices[0].workerRestarts === 1, 10_000, "the worker to be restarted");
      await waitFor(() => ping3(a.ns, b.ip) >= 2 && ping3(b.ns, a.ip) >= 2, 15_000, "traffic both ways after the restart");
      expect(h1.log).toContain("the packet worker of flannel-wg failed; restarting");
      const metrics = await (await d.fetch(h1, "/metrics")).text();
      expect(metrics).toMatch(/weft_errors_total\{kind="wireguard_worker"\} 1/);
    } finally {
      await d.destroy();
    }
  }, 90_000);
});

for (const [mode, device, port] of [["separate", "flannel-wg-v6", 51821], ["auto", "flannel-wg", 51820]] as const) {
  describe.skipIf(!isRoot)(`wireguard backend, IPv6 only, Mode ${mode}`, () => {
    test(`${device} alone, over the IPv6 underlay; containers reach each other`, async () => {
      const d = await ClusterClass.create({
        hosts: 2, backend: "wireguard", ipv6Network: "fd57::/56", ipv6Only: true, runtime: "bun", backendOptions: { Mode: mode },
      });
      try {
        for (const h of d.hosts) {
          await waitFor(async () => {
            const s = (await d.status(h)).dataPath;
            return s.devices?.length === 1 && s.devices[0].device === device && s.devices[0].peers?.length === 1;
          }, 20_000, `${h.name} to program its peer on ${device}`);
        }
        const [h1, h2] = d.hosts as [Cluster["hosts"][number], Cluster["hosts"][number]];
        expect(ip(h1.ns, "-6", "route", "show", "fd57::/56")).toContain(`dev ${device}`);
        const [a, b] = [h1.containers[0]!, h2.containers[0]!];
        expect(ping3(a.ns, b.ip)).toBeGreaterThanOrEqual(2);
        expect(ping3(b.ns, a.ip)).toBeGreaterThanOrEqual(2);
        expect((await d.status(h1)).dataPath.devices[0].peers[0].endpoint).toBe(`[${h2.ip6}]:${port}`);
      } finally {
        await d.destroy();
      }
    }, 90_000);
  });
}
