/**
 * @module The core's memory layout, verdicts and counters for host code: re-exports
 * asm/layout.ts, which the AssemblyScript core compiles from the same source, so host and core
 * cannot disagree (the loader also checks the .wasm's LAYOUT_VERSION).
 */
export * from "../../asm/layout.ts";
