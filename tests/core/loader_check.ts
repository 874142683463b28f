/**
 * Runs the loader's fixed vector under Deno (spawned by loader.test.ts):
 *   deno run --allow-read tests/core/loader_check.ts
 * Prints the summary as one JSON line.
 */
import { loadCore } from "../../src/core/loader.ts";
// @ts-ignore: plain JavaScript module shared with Node and Bun
import { runLoaderVector } from "./loader_vector.mjs";

console.log(JSON.stringify(await runLoaderVector(loadCore)));
