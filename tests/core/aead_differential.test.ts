/**
 * Differential test of the core's ChaCha20-Poly1305 against an independent implementation:
 * Node's `crypto` (OpenSSL), which Bun's lacks, so the run happens in a spawned Node that loads
 * the same .wasm. 100,000 random messages per run (lengths 0..1500, 1% up to 64 KiB, random keys,
 * nonces, AAD 0..64 bytes; a quarter through the scalar ChaCha20), each sealed by both and
 * compared byte for byte, Node's message opened by the core, and every 8th tampered by one bit
 * and refused. The seed changes per run and is printed with any failure.
 */
import { afterAll, expect, test } from "bun:test";
import { spawnSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";

const root = join(import.meta.dir, "..", "..");
const dir = join(root, "build", `aead-differential-${process.pid}`);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("core AEAD matches Node's chacha20-poly1305 on 100,000 random messages; tampering refused", async () => {
  mkdirSync(dir, { recursive: true });
  const built = await Bun.build({ entrypoints: [join(import.meta.dir, "aead_differential_node.ts")], outdir: dir, target: "node", format: "esm", naming: "run.mjs" });
  expect(built.success).toBe(true);
  const seed = (Date.now() ^ (process.pid << 16)) >>> 0;
  const out = spawnSync("node", [join(dir, "run.mjs"), join(root, "build", "weft_core.wasm"), String(seed), "100000"], { encoding: "utf8" });
  expect(out.stderr).toBe("");
  const r = JSON.parse(out.stdout.trim());
  console.log(`differential: ${r.count} messages, ${(r.bytes / 2 ** 20).toFixed(0)} MiB, ${r.big} large, ${r.scalar} scalar, ${r.tampered} tampered, ${r.ms} ms (${r.cpuMs} ms CPU), seed ${r.seed}`);
  expect(r.mismatches).toEqual([]);
  expect(r.tampered).toBeGreaterThan(12000);
  expect(r.big).toBeGreaterThan(500);
}, 120_000);
