/**
 * @module The node's WireGuard key file as flanneld keeps it: made once with mode 0400 in
 * base64, reused on the next start, readable by `wg`; a bad file is an error naming it and is
 * left alone; WIREGUARD_KEY_FILE chooses the path.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { DEFAULT_KEY_FILE, keyFilePath, loadOrCreateKey } from "../../src/backend/wireguard/key_file.ts";
import { formatKey } from "../../src/backend/wireguard/wg_key.ts";
import { uniqueName } from "../support/ns.ts";

const dir = mkdtempSync(join(tmpdir(), `${uniqueName("wgkey")}-`));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the WireGuard key file", () => {
  test("is made once (parent directories too), mode 0400, base64 without a newline, and reused", () => {
    const path = join(dir, "run/flannel/wgkey");
    const first = loadOrCreateKey(path);
    expect(first.created).toBe(true);
    expect(statSync(path).mode & 0o777).toBe(0o400);
    expect(readFileSync(path, "utf8")).toBe(formatKey(first.privateKey));
    const again = loadOrCreateKey(path);
    expect(again.created).toBe(false);
    expect(formatKey(again.privateKey)).toBe(formatKey(first.privateKey));
    expect(formatKey(again.publicKey)).toBe(formatKey(first.publicKey));
  });

  test.skipIf(!existsSync("/usr/bin/wg"))("holds what wg reads: 'wg pubkey' gives the same public key", () => {
    const key = loadOrCreateKey(join(dir, "for-wg"));
    const r = spawnSync("wg", ["pubkey"], { input: readFileSync(key.path), encoding: "utf8" });
    expect(r.stdout.trim()).toBe(formatKey(key.publicKey));
  });

  test("reads a key written by 'wg genkey' (with its newline)", () => {
    const path = join(dir, "genkey");
    const text = existsSync("/usr/bin/wg") ? spawnSync("wg", ["genkey"], { encoding: "utf8" }).stdout : "YNqHbfBQKaGvzefSSuufuDGQzGmVE9zKjQyN2Dd4lkM=\n";
    writeFileSync(path, text);
    expect(formatKey(loadOrCreateKey(path).privateKey)).toBe(text.trim());
  });

  test("a file that holds no key is an error naming it, and is left as it was", () => {
    for (const [name, content] of [["empty", ""], ["garbage", "not a key\n"], ["short", "AAAA\n"]]) {
      const path = join(dir, name);
      writeFileSync(path, content);
      expect(() => loadOrCreateKey(path)).toThrow(`the WireGuard key file ${path} does not hold a private key`);
      expect(readFileSync(path, "utf8")).toBe(content);
    }
    const asDir = join(dir, "a-directory");
    mkdirSync(asDir);
    expect(() => loadOrCreateKey(asDir)).toThrow(`cannot read the WireGuard key file ${asDir}`);
  });

  test("WIREGUARD_KEY_FILE chooses the path; unset means /run/flannel/wgkey; empty is an error", () => {
    expect(keyFilePath({})).toBe(DEFAULT_KEY_FILE);
    expect(DEFAULT_KEY_FILE).toBe("/run/flannel/wgkey");
    expect(keyFilePath({ WIREGUARD_KEY_FILE: "/etc/weft/wgkey" })).toBe("/etc/weft/wgkey");
    expect(() => keyFilePath({ WIREGUARD_KEY_FILE: "" })).toThrow("WIREGUARD_KEY_FILE is set but empty");
  });
});
