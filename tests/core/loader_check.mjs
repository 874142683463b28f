/**
 * Runs the loader's fixed vector under Node (spawned by loader.test.ts), which cannot import
 * TypeScript: the test bundles src/core/loader.ts to build/core-loader-check/loader.mjs (same
 * depth as src/core/, so its default build/weft_core.wasm path resolves) and passes its path.
 *   node tests/core/loader_check.mjs build/core-loader-check/loader.mjs
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { runLoaderVector } from "./loader_vector.mjs";

const { loadCore } = await import(pathToFileURL(resolve(process.argv[2])).href);
console.log(JSON.stringify(await runLoaderVector(loadCore)));
