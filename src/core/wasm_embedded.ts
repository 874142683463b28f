/**
 * @module Bun-only: embeds `build/weft_core.wasm` in a `bun build --compile` executable and
 * gives its path (inside the executable's virtual file system when compiled). Kept apart so
 * that the loader itself stays runtime-neutral. Use:
 *
 *   import wasmPath from "../core/wasm_embedded.ts";
 *   const core = await loadCore(await Bun.file(wasmPath).bytes());
 */
// @ts-ignore: Bun's file import attribute; the .wasm module has no type declaration.
import wasmPath from "../../build/weft_core.wasm" with { type: "file" };

export default wasmPath as string;
