/**
 * @module The bytes of the Wasm core for the packet workers, read once on the main thread and
 * posted to each worker: from inside the executable when running as `dist/weft` (Bun embeds
 * build/weft_core.wasm, src/core/wasm_embedded.ts), else from build/weft_core.wasm beside the
 * sources (`bun src/main.ts`, Deno).
 */
import { readCoreWasm } from "../../core/loader.ts";

/** The core's .wasm file contents. */
export async function coreWasmBytes(): Promise<Uint8Array> {
  const bun = (globalThis as { Bun?: { file(path: string): { bytes(): Promise<Uint8Array> } } }).Bun;
  if (bun) {
    const { default: path } = await import("../../core/wasm_embedded.ts");
    return bun.file(path).bytes();
  }
  return readCoreWasm();
}
