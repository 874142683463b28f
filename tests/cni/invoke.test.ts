/**
 * @module `delegate()` against stand-in plugins (shell scripts in a temp CNI_PATH): what reaches
 * the delegate (stdin, env with CNI_COMMAND replaced), and how its result and failures come back
 * (libcni's fixupResultVersion and pluginErr rules).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { CniError } from "../../src/cni/errors.ts";
import { delegate, findPlugin } from "../../src/cni/invoke.ts";

let dir = "";
const plugin = (name: string, body: string) => {
  writeFileSync(join(dir, name), `#!/bin/sh\n${body}\n`);
  chmodSync(join(dir, name), 0o755);
};
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "weft-cni-invoke-"));
  plugin("record", `cat > "${dir}/stdin"; env > "${dir}/env"; echo '{"cniVersion":"1.0.0","ips":[]}'`);
  plugin("noversion", `cat >/dev/null; echo '{"ips":[{"address":"10.0.0.2/24"}]}'`);
  plugin("fails", `cat >/dev/null; echo '{"code":7,"msg":"bad bridge name","details":"x/y"}'; exit 1`);
  plugin("stderr-only", `cat >/dev/null; echo 'boom' >&2; exit 3`);
  plugin("garbage", `cat >/dev/null; echo 'not json'`);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const failure = async (p: Promise<unknown>) => {
  try { await p; } catch (e) { return e as CniError; }
  throw new Error("expected a failure");
};

describe("delegate()", () => {
  test("runs the plugin found in CNI_PATH with the config on stdin and CNI_COMMAND replaced", async () => {
    const env = { CNI_COMMAND: "CHECK", CNI_PATH: `/nonexistent:${dir}`, CNI_CONTAINERID: "c1", UNSET: undefined };
    const out = await delegate("ADD", "record", '{"cniVersion":"1.0.0"}', env);
    expect(out.result).toBe('{"cniVersion":"1.0.0","ips":[]}\n');
    expect(readFileSync(join(dir, "stdin"), "utf8")).toBe('{"cniVersion":"1.0.0"}');
    const seen = readFileSync(join(dir, "env"), "utf8").split("\n");
    expect(seen).toEqual(expect.arrayContaining(["CNI_COMMAND=ADD", "CNI_CONTAINERID=c1", `CNI_PATH=/nonexistent:${dir}`]));
    expect(seen.some((l) => l.startsWith("UNSET="))).toBe(false);
  });

  test("fills a missing result cniVersion from the config", async () => {
    const out = await delegate("ADD", "noversion", '{"cniVersion":"0.3.1"}', { CNI_PATH: dir });
    expect(JSON.parse(out.result!)).toEqual({ cniVersion: "0.3.1", ips: [{ address: "10.0.0.2/24" }] });
  });

  test("passes the delegate's error on unchanged", async () => {
    const e = await failure(delegate("ADD", "fails", "{}", { CNI_PATH: dir }));
    expect([e.code, e.message, e.details]).toEqual([7, "bad bridge name", "x/y"]);
  });

  test("a failure without error JSON quotes stderr and the exit status (999)", async () => {
    const e = await failure(delegate("DEL", "stderr-only", "{}", { CNI_PATH: dir }));
    expect([e.code, e.message]).toEqual([999, 'netplugin failed: "boom\\n": exit status 3']);
  });

  test("an undecodable result is a decoding failure naming the plugin", async () => {
    const e = await failure(delegate("ADD", "garbage", "{}", { CNI_PATH: dir }));
    expect(e.code).toBe(6);
    expect(e.message).toStartWith(`failed to delegate add: failed to unmarshal raw result of ${join(dir, "garbage")}: `);
  });

  test("findPlugin() names the plugin and the directories it searched", () => {
    expect(() => findPlugin("bridge", "/a:/b")).toThrow('failed to find plugin "bridge" in path [/a /b]');
    expect(() => findPlugin("../x", "/a")).toThrow("invalid plugin name: ../x");
    expect(() => findPlugin("bridge", "")).toThrow("no paths provided");
  });
});
