/**
 * @module The differential run of the core's ChaCha20-Poly1305 against Node's `crypto`
 * (OpenSSL's implementation) in one Node process; aead_differential.test.ts bundles this file
 * for Node and runs it. Messages, keys, nonces and AAD are cut at random offsets from a pool
 * filled by a seeded generator, so a failing seed reproduces. Prints one JSON line.
 *
 *   node <bundle>.mjs <path of weft_core.wasm> <seed> <count>
 */
import { createCipheriv } from "node:crypto";
import { readFileSync } from "node:fs";
import { loadCore } from "../../src/core/loader.ts";
import { CoreAead, toHex } from "./aead_harness.ts";
import { rng } from "./packets.ts";

const [wasmPath, seedArg, countArg] = process.argv.slice(2);
const seed = Number(seedArg), count = Number(countArg);
const rand = rng(seed);
const int = (n: number) => Math.floor(rand() * n);

const POOL = 4 << 20;
const pool = new Uint8Array(POOL);
const words = new Uint32Array(pool.buffer);
for (let i = 0; i < words.length; i++) words[i] = (rand() * 4294967296) >>> 0;
const cut = (len: number) => { const at = int(POOL - len); return pool.subarray(at, at + len); };

function nodeSeal(key: Uint8Array, nonce: Uint8Array, aad: Uint8Array, pt: Uint8Array): Uint8Array {
  const c = createCipheriv("chacha20-poly1305", key, nonce, { authTagLength: 16 });
  c.setAAD(aad, { plaintextLength: pt.length });
  return Buffer.concat([c.update(pt), c.final(), c.getAuthTag()]);
}

const core = await loadCore(readFileSync(wasmPath!));
const aead = new CoreAead(core);
const mismatches: string[] = [];
let bytes = 0, tampered = 0, big = 0, scalar = 0;
const t0 = performance.now(), cpu0 = process.cpuUsage();
for (let i = 0; i < count && mismatches.length < 5; i++) {
  const large = int(100) === 0;
  const len = large ? 1501 + int(65536 - 1500) : int(1501);
  const key = cut(32), nonce = cut(12), aad = cut(int(4) === 0 ? 0 : int(65)), pt = cut(len);
  const useScalar = i % 4 === 3;
  core.wg!.setChaChaSimd(useScalar ? 0 : 1);
  if (large) big++;
  if (useScalar) scalar++;
  bytes += len;
  const what = () => `message ${i} (seed ${seed}): len ${len}, aad ${aad.length}, ${useScalar ? "scalar" : "SIMD"}, key ${toHex(key)}, nonce ${toHex(nonce)}`;

  const expected = nodeSeal(key, nonce, aad, pt);
  const sealed = aead.seal(key, nonce, aad, pt);
  if (Buffer.compare(sealed, expected) !== 0) { mismatches.push(`seal differs from Node's: ${what()}`); continue; }
  const opened = aead.open(key, nonce, aad, expected);
  if (!opened || Buffer.compare(opened, pt) !== 0) { mismatches.push(`open of Node's message failed: ${what()}`); continue; }
  if (i % 8 === 0) {
    // One flipped bit anywhere in AAD, ciphertext or tag must be refused.
    tampered++;
    const badSealed = expected.slice(), badAad = aad.slice();
    const spot = int(badAad.length + badSealed.length);
    if (spot < badAad.length) badAad[spot]! ^= 1 << int(8);
    else badSealed[spot - badAad.length]! ^= 1 << int(8);
    if (aead.open(key, nonce, badAad, badSealed) !== null) mismatches.push(`tampered message accepted (byte ${spot}): ${what()}`);
  }
}
console.log(JSON.stringify({ seed, count, bytes, big, scalar, tampered, mismatches, ms: Math.round(performance.now() - t0), cpuMs: Math.round(process.cpuUsage(cpu0).user / 1000) }));
