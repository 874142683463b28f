/**
 * @module Loads the Wasm packet core (`build/weft_core.wasm`) and returns its exports with
 * typed views of its fixed memory. Standard APIs only (`WebAssembly.instantiate`, `fetch`,
 * `URL`), so it runs unchanged in Bun, Deno, Node and browsers; Node reads the default file with
 * `node:fs` because its `fetch` has no `file:` URLs.
 *
 * Memory layout (asm/layout.ts) and ring protocol (asm/index.ts), in short: the host fills
 * input descriptors and packet bytes (handing `regions.egIn` / `regions.inIn` subviews straight
 * to read()/recvmmsg(), VNET_HDR_LEN bytes of headroom before each ingress datagram), calls
 * `egress(start, n)` / `ingress(start, n)`, then sends/writes the output descriptors before the
 * next call in that direction. Between calls the host owns every byte; during a call the core
 * does. The memory never grows, so views stay valid for the life of the instance.
 *
 * @example
 *   const core = await loadCore();
 *   core.route4Insert(0x0af40200, 24, 7);
 *   core.route4Lookup(0x0af40205); // 7
 */
import { LAYOUT_VERSION, MEMORY_BYTES } from "./layout.ts";
import { coreRegions } from "./regions.ts";
import type { Core, CoreExports, WgCoreExports } from "./types.ts";
import { coreWasmUrl } from "./wasm_path.ts";

const EXPORT_NAMES: (keyof CoreExports)[] = [
  "layoutVersion", "setOptions", "setTunAddr4", "setTunAddr6", "setOwnSubnet4", "setOwnSubnet6", "route4Insert", "route4Delete",
  "route4Lookup", "route4LookupBatch", "route6Insert", "route6Delete", "route6Lookup",
  "route6LookupBatch", "setClusterNetwork", "routeClear", "peerSet", "peerSetSubnet6", "peerSetPublic6", "peerDelete",
  "egress", "egressUdpCount", "egressTunCount", "ingress", "ingressTunCount",
];
const WG_EXPORT_NAMES: (keyof WgCoreExports)[] = [
  "wgSessionSet", "wgSessionDelete", "wgSeal", "wgOpen", "chacha20XorAt", "poly1305At", "aeadSealAt",
  "aeadOpenAt", "setChaChaSimd",
];

/** Reads the core file at `url` (default: build/weft_core.wasm beside the sources). */
export async function readCoreWasm(url: URL = coreWasmUrl): Promise<Uint8Array> {
  const nodeLike = url.protocol === "file:" && typeof (globalThis as { process?: { versions?: { node?: string; bun?: string } } })
    .process?.versions?.node === "string" && !("Deno" in globalThis);
  if (!nodeLike) {
    const res = await fetch(url);
    if (!res.ok) throw new Error(`cannot read the weft core ${url.href}: HTTP ${res.status}`);
    return new Uint8Array(await res.arrayBuffer());
  }
  const fs = await import("node:fs/promises");
  try {
    return new Uint8Array(await fs.readFile(url));
  } catch (e) {
    throw new Error(`cannot read the weft core ${url.href} (build it with 'bun tools/build.ts --no-exe'): ${(e as Error).message}`);
  }
}

/**
 * Instantiates the core from `bytes` (the .wasm file), or from build/weft_core.wasm when
 * omitted. Each call gives an independent core with its own memory (one per packet worker).
 */
export async function loadCore(bytes?: Uint8Array | ArrayBuffer): Promise<Core> {
  const source = bytes ?? await readCoreWasm();
  const { instance } = (await WebAssembly.instantiate(source as BufferSource, {})) as unknown as WebAssembly.WebAssemblyInstantiatedSource;
  const ex = instance.exports as Record<string, unknown>;
  const memory = ex.memory;
  if (!(memory instanceof WebAssembly.Memory)) throw new TypeError("weft core: the .wasm exports no memory");
  for (const name of [...EXPORT_NAMES, ...WG_EXPORT_NAMES]) {
    if (typeof ex[name] !== "function") throw new TypeError(`weft core: the .wasm lacks the export ${name}()`);
  }
  const version = (ex.layoutVersion as () => number)();
  if (version !== LAYOUT_VERSION) {
    throw new Error(`weft core: the .wasm has layout version ${version}, this loader needs ${LAYOUT_VERSION} (rebuild it)`);
  }
  const buffer = memory.buffer as ArrayBuffer;
  if (buffer.byteLength !== MEMORY_BYTES) {
    throw new Error(`weft core: memory is ${buffer.byteLength} bytes, the layout needs ${MEMORY_BYTES}`);
  }
  const core: Record<string, unknown> = {
    kind: "wasm",
    buffer,
    bytes: new Uint8Array(buffer),
    view: new DataView(buffer),
    regions: coreRegions(buffer),
  };
  for (const name of EXPORT_NAMES) core[name] = ex[name];
  core.wg = Object.fromEntries(WG_EXPORT_NAMES.map((name) => [name, ex[name]]));
  return core as unknown as Core;
}
