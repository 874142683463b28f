/**
 * The loader gives the same results in Bun (in process), Deno and Node (spawned), for the same
 * fixed vector, loading build/weft_core.wasm from its default path; and it accepts bytes.
 */
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { loadCore } from "../../src/core/loader.ts";
import { createReferenceCore } from "../../src/core/reference.ts";
// @ts-ignore: plain JavaScript module shared with Node and Deno
import { runLoaderVector } from "./loader_vector.mjs";

const root = join(import.meta.dir, "..", "..");
const bin = join(root, "node_modules", ".bin");
const bundleDir = join(root, "build", `core-loader-check-${process.pid}`);
afterAll(() => rmSync(bundleDir, { recursive: true, force: true }));

const expected = {
  kind: "wasm",
  memory: 976 * 65536, // MEMORY_BYTES: 56 MiB for the udp path, 5 for the WireGuard transport
  consumed: 2,
  verdicts: [0, 1],
  udp: ["4500003490054000" + "3f0193d7" + "0af401020af4010308" + "0093f912340001776566742d636f72652d666978747572652d763421212121"],
  udpDest: "c0a80002205d0200",
};

test("loader under Bun: default path and caller's bytes give the vector's results", async () => {
  const a = await runLoaderVector(loadCore);
  expect(a).toMatchObject(expected);
  expect(a.tun.length).toBe(1);
  expect(a.lookups).toEqual([2, -1]);
  const b = await runLoaderVector(loadCore, readFileSync(join(root, "build", "weft_core.wasm")));
  expect(b).toEqual(a);
  const r = await runLoaderVector(async () => createReferenceCore());
  expect({ ...r, kind: "wasm" }).toEqual(a);
});

test("loader under Deno gives the same results", async () => {
  const bun = await runLoaderVector(loadCore);
  const out = spawnSync(join(bin, "deno"), ["run", "--allow-read", "tests/core/loader_check.ts"], { cwd: root, encoding: "utf8" });
  expect(out.stderr).not.toContain("error");
  expect(JSON.parse(out.stdout.trim())).toEqual(bun);
}, 60_000);

test("loader under Node (bundled to .mjs) gives the same results", async () => {
  const bun = await runLoaderVector(loadCore);
  mkdirSync(bundleDir, { recursive: true });
  const built = await Bun.build({ entrypoints: [join(root, "src", "core", "loader.ts")], outdir: bundleDir, target: "node", format: "esm", naming: "loader.mjs" });
  expect(built.success).toBe(true);
  const out = spawnSync("node", ["tests/core/loader_check.mjs", join(bundleDir, "loader.mjs")], { cwd: root, encoding: "utf8" });
  expect(out.stderr).toBe("");
  expect(JSON.parse(out.stdout.trim())).toEqual(bun);
}, 60_000);
