/**
 * @module The handshake computes the same bytes in every way weft runs: one program (RFC 7748
 * §6.1 through node:crypto, then a whole Noise_IKpsk2 exchange with fixed keys, randomness and
 * time, and a cookie reply) run by Bun here, by Deno, and as a `bun build --compile` binary
 * (what dist/weft is); all three must print the same lines.
 */
import { describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { uniqueName } from "../support/ns.ts";

const root = join(import.meta.dir, "../..");
const deno = join(root, "node_modules/.bin/deno");

const program = `
  import { publicKeyOf, x25519 } from ${JSON.stringify(join(root, "src/backend/wireguard/x25519.ts"))};
  import { Noise } from ${JSON.stringify(join(root, "src/backend/wireguard/noise.ts"))};
  const unhex = (s) => new Uint8Array(Buffer.from(s, "hex"));
  const hex = (b) => (b ? Buffer.from(b).toString("hex") : "null");
  const alice = unhex("77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a");
  const bob = unhex("5dab087e624a8a4b79e17f8b83800ee66f3bb1292618b6fd1c2f8b27ff88e0eb");
  console.log(hex(publicKeyOf(alice)), hex(x25519(alice, publicKeyOf(bob))), hex(x25519(alice, new Uint8Array(32))));
  let n = 0;
  const random = (len) => new Uint8Array(len).map(() => (n++ * 37 + 11) & 0xff);
  const a = new Noise({ privateKey: alice, random }), b = new Noise({ privateKey: bob, random });
  a.addPeer({ publicKey: b.publicKey, presharedKey: new Uint8Array(32).fill(7) });
  b.addPeer({ publicKey: a.publicKey, presharedKey: new Uint8Array(32).fill(7) });
  const t = Date.UTC(2026, 11, 6, 10, 0, 0), src = Uint8Array.of(10, 0, 0, 1, 1, 2);
  const init = a.createInitiation(b.publicKey, t);
  const cookie = b.receive(init, src, t, true);
  a.receive(cookie.message, src, t);
  const init2 = a.createInitiation(b.publicKey, t + 1000);
  const resp = b.receive(init2, src, t + 1000, true);
  const done = a.receive(resp.message, src, t + 1000);
  console.log(hex(init), hex(cookie.message));
  console.log(hex(init2), hex(resp.message));
  console.log(hex(done.session.sendKey), hex(done.session.receiveKey), hex(resp.session.receiveKey));`;

function inBun(): string {
  const dir = mkdtempSync(join(tmpdir(), `${uniqueName("wgrt")}-`));
  try {
    writeFileSync(join(dir, "p.ts"), program);
    return spawnSync(process.execPath, [join(dir, "p.ts")], { encoding: "utf8" }).stdout;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe("the handshake in every runtime", () => {
  const bun = inBun();

  test("Bun prints the RFC 7748 §6.1 keys and a complete exchange", () => {
    const lines = bun.trim().split("\n");
    expect(lines[0]).toBe("8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a " +
      "4a5d9d5ba4ce2de1728e3bf480350f25e07e21c947d19e3376f09b3c1e161742 null");
    expect(lines.length).toBe(4);
    const [send, receive, peerReceive] = lines[3]!.split(" ");
    expect(send).toBe(peerReceive!);
    expect(send).not.toBe(receive!);
  });

  test.skipIf(!existsSync(deno))("Deno prints the same", () => {
    const dir = mkdtempSync(join(tmpdir(), `${uniqueName("wgrt")}-`));
    try {
      writeFileSync(join(dir, "p.ts"), program);
      const r = spawnSync(deno, ["run", "--quiet", "--allow-read", "--allow-env", join(dir, "p.ts")], { encoding: "utf8" });
      expect(r.stderr).toBe("");
      expect(r.stdout).toBe(bun);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("a compiled binary (bun build --compile, as dist/weft) prints the same", () => {
    const dir = mkdtempSync(join(tmpdir(), `${uniqueName("wgrt")}-`));
    try {
      writeFileSync(join(dir, "p.ts"), program);
      const b = spawnSync(process.execPath, ["build", "--compile", join(dir, "p.ts"), "--outfile", join(dir, "p")], { encoding: "utf8" });
      expect(b.status).toBe(0);
      expect(spawnSync(join(dir, "p"), [], { encoding: "utf8" }).stdout).toBe(bun);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
