/**
 * @module weft's WireGuard handshake against a real, independent peer: Debian's `wireguard-go`
 * on a TUN device in one namespace, configured with `wg set` as flannel's backend configures
 * flannel-wg (listen port, private key, one peer with public key, endpoint, allowed IPs, PSK),
 * and weft's noise.ts over a UDP socket in the other (tests/wireguard/weft_peer.ts). Each side
 * initiates once, with and without a PSK; the keys are proven by opening the first transport
 * packet wireguard-go sends (a ping through wg0) and by wireguard-go recording the handshake
 * after weft's keepalive. Under load weft sends a cookie reply and takes wireguard-go's retry with
 * MAC2. A wrong PSK or key gives no handshake, and weft counts the refusal.
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { generatePrivateKey, publicKeyOf } from "../../src/backend/wireguard/x25519.ts";
import { addNetns, delNetns, ip, isRoot, nsExec, nsSh, onCleanup, uniqueName } from "../support/ns.ts";
import type { PeerArgs, PeerOutcome } from "./weft_peer.ts";

const hasWireguardGo = existsSync("/usr/bin/wireguard-go") && existsSync("/usr/bin/wg") && existsSync("/dev/net/tun");
const b64 = (k: Uint8Array) => Buffer.from(k).toString("base64");

const GO_ADDR = "10.99.0.1";
const WEFT_ADDR = "10.99.0.2";
const PORT = 51820;
/** The cluster network on wg0, as flannel routes it; weft's "subnet" is its allowed IPs there. */
const WEFT_SUBNET = "10.244.1.0/24";
const PING_TARGET = "10.244.1.1";

describe.skipIf(!isRoot || !hasWireguardGo)("handshake with wireguard-go", () => {
  const nsGo = uniqueName("wggo");
  const nsWeft = uniqueName("wgweft");
  let dir = "";
  let goPid = 0;
  const goPrivate = generatePrivateKey();
  const goPublic = b64(publicKeyOf(goPrivate));
  const psk = b64(generatePrivateKey());
  const otherPsk = b64(generatePrivateKey());

  function stopWireguardGo(): void {
    if (goPid) {
      try { process.kill(goPid, "SIGTERM"); } catch { /* already gone */ }
      goPid = 0;
    }
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), `${uniqueName("wg")}-`));
    onCleanup(stopWireguardGo);
    addNetns(nsGo);
    addNetns(nsWeft);
    ip(nsGo, "link", "add", "veth0", "type", "veth", "peer", "name", "veth1", "netns", nsWeft);
    ip(nsGo, "addr", "add", `${GO_ADDR}/24`, "dev", "veth0");
    ip(nsWeft, "addr", "add", `${WEFT_ADDR}/24`, "dev", "veth1");
    for (const [ns, dev] of [[nsGo, "veth0"], [nsWeft, "veth1"], [nsGo, "lo"], [nsWeft, "lo"]] as const) ip(ns, "link", "set", dev, "up");

    // wireguard-go in the foreground, so that its pid is ours to kill (ip netns exec execs it).
    const child = spawn("ip", ["netns", "exec", nsGo, "wireguard-go", "-f", "wg0"], {
      stdio: ["ignore", "ignore", "pipe"], env: { ...process.env, LOG_LEVEL: "error" },
    });
    goPid = child.pid!;
    let stderr = "";
    child.stderr!.on("data", (c: Buffer) => { stderr += c.toString(); });
    for (let i = 0; ; i++) {
      if (nsExec(nsGo, ["ip", "link", "show", "wg0"]).code === 0) break;
      if (i === 100 || child.exitCode !== null) throw new Error(`wireguard-go did not create wg0: ${stderr}`);
      await Bun.sleep(20);
    }
    writeFileSync(join(dir, "go.key"), b64(goPrivate) + "\n", { mode: 0o600 });
    writeFileSync(join(dir, "psk"), psk + "\n", { mode: 0o600 });
    writeFileSync(join(dir, "other.psk"), otherPsk + "\n", { mode: 0o600 });
    nsSh(nsGo, ["wg", "set", "wg0", "listen-port", String(PORT), "private-key", join(dir, "go.key")]);
    // As flannel: the lease address /32 on the device and the cluster network routed to it.
    ip(nsGo, "addr", "add", "10.244.0.0/32", "dev", "wg0");
    ip(nsGo, "link", "set", "wg0", "up");
    ip(nsGo, "route", "add", "10.244.0.0/16", "dev", "wg0", "scope", "link");
  });

  afterAll(() => {
    stopWireguardGo();
    delNetns(nsGo);
    delNetns(nsWeft);
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  interface Scenario {
    /** weft sends the initiation (else wireguard-go does, for a ping through wg0). */
    initiate: boolean;
    /** The PSK file wireguard-go uses for weft, and the PSK weft uses. */
    goPsk?: string;
    weftPsk?: string;
    /** wireguard-go believes weft's public key is this one (default: the right one). */
    goKnowsWeftAs?: string;
    /** weft believes wireguard-go's public key is this one (default: the right one). */
    weftKnowsGoAs?: string;
    waitMs: number;
    underLoad?: boolean;
    stopOnReject?: boolean;
  }

  /** One weft process against the running wireguard-go; returns weft's outcome and wg's record. */
  async function run(s: Scenario): Promise<{ out: PeerOutcome; goHandshake: number }> {
    const weftPrivate = generatePrivateKey();
    const weftPublic = b64(publicKeyOf(weftPrivate));
    const known = s.goKnowsWeftAs ?? weftPublic;
    nsSh(nsGo, [
      "wg", "set", "wg0", "peer", known, "endpoint", `${WEFT_ADDR}:${PORT}`, "allowed-ips", WEFT_SUBNET,
      ...(s.goPsk ? ["preshared-key", s.goPsk] : []),
    ]);
    try {
      const args: PeerArgs = {
        privateKey: b64(weftPrivate), peerPublicKey: s.weftKnowsGoAs ?? goPublic, presharedKey: s.weftPsk,
        listenPort: PORT, initiateTo: s.initiate ? `${GO_ADDR}:${PORT}` : undefined, waitMs: s.waitMs,
        underLoad: s.underLoad, stopOnReject: s.stopOnReject,
      };
      const child = spawn("ip", ["netns", "exec", nsWeft, process.execPath, join(import.meta.dir, "weft_peer.ts"), JSON.stringify(args)], {
        stdio: ["ignore", "pipe", "pipe"],
      });
      let stdout = "", stderr = "";
      // One ping through wg0 (async, and ended with weft: nobody answers it) makes wireguard-go
      // initiate, or, once weft's session exists, send a transport packet weft must open.
      const pings: ChildProcess[] = [];
      const ping = () => pings.push(spawn("ip", ["netns", "exec", nsGo, "ping", "-c", "1", "-W", "1", PING_TARGET], { stdio: "ignore" }));
      child.stderr.on("data", (c: Buffer) => { stderr += c.toString(); });
      child.stdout.on("data", (c: Buffer) => {
        const before = stdout;
        stdout += c.toString();
        const trigger = s.initiate ? '{"event":"session"}' : '{"event":"ready"}';
        if (!before.includes(trigger) && stdout.includes(trigger)) ping();
      });
      const code = await new Promise<number>((resolve) => child.on("close", (c) => resolve(c ?? 1)));
      for (const p of pings) if (p.exitCode === null) p.kill();
      if (code !== 0) throw new Error(`weft_peer exited ${code}: ${stdout}\n${stderr}`);
      const out = JSON.parse(stdout.trim().split("\n").at(-1)!) as PeerOutcome;
      const latest = nsSh(nsGo, ["wg", "show", "wg0", "latest-handshakes"]);
      const line = latest.split("\n").find((l) => l.startsWith(known + "\t"));
      return { out, goHandshake: Number(line?.split("\t")[1] ?? "0") };
    } finally {
      nsSh(nsGo, ["wg", "set", "wg0", "peer", known, "remove"]);
    }
  }

  test("wg pubkey agrees with weft's public key", () => {
    const r = nsSh(nsGo, ["wg", "pubkey"], { stdin: b64(goPrivate) + "\n" });
    expect(r.trim()).toBe(goPublic);
  });

  for (const withPsk of [false, true]) {
    const label = withPsk ? "with a PSK" : "without a PSK";

    test(`weft initiates ${label}: wireguard-go answers, records the handshake, and weft opens its ping`, async () => {
      const p = withPsk ? { goPsk: join(dir, "psk"), weftPsk: psk } : {};
      const { out, goHandshake } = await run({ initiate: true, waitMs: 4000, ...p });
      expect(out.session).toBe("initiator");
      expect(out.keepaliveSent).toBe(true);
      expect(goHandshake).toBeGreaterThan(0); // wireguard-go opened weft's keepalive
      expect(out.transport).toMatchObject({ ipVersion: 4, protocol: 1, src: "10.244.0.0", dst: PING_TARGET });
      expect(out.transportRejected).toBe(0);
    });

    test(`wireguard-go initiates ${label}: weft answers and opens the ping it sends`, async () => {
      const p = withPsk ? { goPsk: join(dir, "psk"), weftPsk: psk } : {};
      const { out, goHandshake } = await run({ initiate: false, waitMs: 4000, ...p });
      expect(out.session).toBe("responder");
      expect(out.transport).toMatchObject({ counter: "0", ipVersion: 4, protocol: 1, src: "10.244.0.0", dst: PING_TARGET });
      expect(goHandshake).toBeGreaterThan(0);
    });
  }

  test("under load weft answers with a cookie reply; wireguard-go's retry carries a MAC2 weft accepts", async () => {
    // wireguard-go retries an unanswered initiation after Rekey-Timeout (5 s, plus jitter), so
    // this case takes about that long.
    const { out, goHandshake } = await run({ initiate: false, underLoad: true, waitMs: 9000 });
    expect(out.cookieReplies).toBe(1);
    expect(out.session).toBe("responder");
    expect(out.transport).toMatchObject({ ipVersion: 4, protocol: 1, dst: PING_TARGET });
    expect(goHandshake).toBeGreaterThan(0);
  });

  test("a wrong PSK: weft refuses wireguard-go's response, and no handshake happens either way", async () => {
    const mine = await run({ initiate: true, goPsk: join(dir, "other.psk"), weftPsk: psk, waitMs: 4000, stopOnReject: true });
    expect(mine.out.session).toBeNull();
    expect(mine.out.rejected["response-auth"]).toBe(1);
    expect(mine.goHandshake).toBe(0);
    // wireguard-go initiating: weft cannot tell a wrong PSK (it is only in the response), but
    // wireguard-go refuses weft's response, so it never sends on the session.
    const theirs = await run({ initiate: false, goPsk: join(dir, "psk"), waitMs: 1000 });
    expect(theirs.out.session).toBe("responder");
    expect(theirs.out.transport).toBeNull();
    expect(theirs.goHandshake).toBe(0);
  });

  test("a wrong key: weft refuses an initiation for another key (MAC1) or from an unknown peer", async () => {
    const stranger = b64(publicKeyOf(generatePrivateKey()));
    // wireguard-go has another public key for weft: its MAC1 is keyed for that key.
    const a = await run({ initiate: false, goKnowsWeftAs: stranger, waitMs: 4000, stopOnReject: true });
    expect(a.out.session).toBeNull();
    expect(a.out.rejected.mac1).toBeGreaterThanOrEqual(1);
    // weft has another public key for wireguard-go: the initiation opens but names no known peer.
    const b = await run({ initiate: false, weftKnowsGoAs: stranger, waitMs: 4000, stopOnReject: true });
    expect(b.out.session).toBeNull();
    expect(b.out.rejected["unknown-peer"]).toBeGreaterThanOrEqual(1);
    expect(b.goHandshake).toBe(0);
  });
});
