/**
 * @module Where the built core lives, relative to this source file: `build/weft_core.wasm` of
 * the repository. Standard `import.meta.url` only, so Bun, Deno, Node and bundlers agree.
 */

/** URL of `build/weft_core.wasm` next to the sources. */
export const coreWasmUrl: URL = new URL("../../build/weft_core.wasm", import.meta.url);
