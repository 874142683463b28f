/**
 * The core's .wasm (with Wasm SIMD since the WireGuard crypto) loads and runs in a browser:
 * Debian's chromium via playwright-core instantiates build/weft_core.wasm with the standard API
 * and seals RFC 8439 §2.8.2's AEAD vector through the SIMD ChaCha20 (a 114-byte message, then
 * the same repeated to 1140 bytes against Bun's result). Bun, Deno and Node: loader.test.ts.
 */
import { afterAll, beforeAll, expect, test } from "bun:test";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import * as L from "../../src/core/layout.ts";
import { loadCore } from "../../src/core/loader.ts";
import { CoreAead, hex, toHex } from "./aead_harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const wasm = readFileSync(join(import.meta.dir, "..", "..", "build", "weft_core.wasm"));
const key = "808182838485868788898a8b8c8d8e8f909192939495969798999a9b9c9d9e9f";
const nonce = "070000004041424344454647";
const aad = "50515253c0c1c2c3c4c5c6c7";
const sunscreen = "Ladies and Gentlemen of the class of '99: If I could offer you only one tip for the future, sunscreen would be it.";

let browser: Browser;
beforeAll(async () => {
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
afterAll(async () => { await browser?.close(); });

test.skipIf(!existsSync(CHROMIUM))("the core loads in chromium and seals the RFC 8439 AEAD vector with SIMD ChaCha20", async () => {
  const page = await browser.newPage();
  const run = (text: string) => page.evaluate(async ({ bytes, key, nonce, aad, text, L }) => {
    const { instance } = await WebAssembly.instantiate(new Uint8Array(bytes), {});
    const ex = instance.exports as Record<string, (...a: number[]) => number> & { memory: WebAssembly.Memory };
    const mem = new Uint8Array(ex.memory.buffer);
    const put = (h: string, at: number) => { for (let i = 0; i < h.length / 2; i++) mem[at + i] = parseInt(h.slice(2 * i, 2 * i + 2), 16); return h.length / 2; };
    put(key, L.ARG);
    put(nonce, L.ARG + 32);
    const aadLen = put(aad, L.EG_IN);
    const pt = new TextEncoder().encode(text);
    mem.set(pt, L.EG_IN + 4096);
    ex.setChaChaSimd(1);
    const v = ex.aeadSealAt(L.EG_IN, aadLen, L.EG_IN + 4096, pt.length, L.EG_OUT);
    const out = Array.from(mem.subarray(L.EG_OUT, L.EG_OUT + pt.length + 16), (b) => b.toString(16).padStart(2, "0")).join("");
    return { version: ex.layoutVersion(), memory: ex.memory.buffer.byteLength, verdict: v, out, valid: WebAssembly.validate(new Uint8Array(bytes)) };
  }, { bytes: Array.from(wasm), key, nonce, aad, text, L: { ARG: L.ARG, EG_IN: L.EG_IN, EG_OUT: L.EG_OUT } });

  const r = await run(sunscreen);
  expect(r).toEqual({
    version: L.LAYOUT_VERSION, memory: L.MEMORY_BYTES, verdict: L.WV_OK, valid: true,
    out: "d31a8d34648e60db7b86afbc53ef7ec2a4aded51296e08fea9e2b5a736ee62d63dbea45e8ca9671282fafb69da92728b1a71de0a9e060b2905d6a5b67ecd3b3692ddbd7f2d778b8c9803aee328091b58fab324e4fad675945585808b4831d7bc3ff4def08e4b7a9de576d26586cec64b6116" +
      "1ae10b594f09e26a7e902ecbd0600691",
  });
  const long = sunscreen.repeat(10);
  const bun = new CoreAead(await loadCore());
  const expected = toHex(bun.seal(hex(key), hex(nonce), hex(aad), new TextEncoder().encode(long)));
  expect((await run(long)).out).toBe(expected);
}, 60_000);
