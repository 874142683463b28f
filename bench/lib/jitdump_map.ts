/**
 * @module Turns JavaScriptCore's JITDump files into perf map files, so that `perf report` and
 * `perf script` name the JIT-compiled JavaScript and Wasm functions of a Bun process (tier
 * included: "JSC-DFG: ingress#…", "JSC-WasmOMG: .wasm-function[22]…"). JSC names its dumps
 * jit-<tid>-<pid>.dump, which `perf inject --jit` does not pick up; /tmp/perf-<pid>.map it does.
 *
 *   mkdir /tmp/jd
 *   bun bench/udp_path.ts --rtt-only --only x --env BUN_JSC_useJITDump=1,BUN_JSC_jitDumpDirectory=/tmp/jd &
 *   perf record -a -g -F 5000 -o /tmp/p.data -- sleep 60
 *   bun bench/lib/jitdump_map.ts /tmp/jd/*.dump        # writes /tmp/perf-<pid>.map
 *   perf report -i /tmp/p.data --comm Worker --no-children --sort dso,sym
 *
 * Format (tools/perf/util/jitdump.h in Linux): a header (magic "JiTD", version, header size, …),
 * then records {id u32, size u32, timestamp u64, …}; id 0 (JIT_CODE_LOAD) carries pid u32,
 * tid u32, vma u64, code_addr u64, code_size u64, code_index u64, a NUL-terminated name and the
 * code. Other records are skipped.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename } from "node:path";

const JIT_CODE_LOAD = 0;
const MAGIC = 0x4a695444; // "JiTD", as a little-endian u32

/**
 * "<start hex> <size hex> <name>" lines for the code loads in one JITDump file. JSC frees code
 * (a function recompiled at a higher tier, a deoptimized one) and later puts other code at the
 * same addresses without an unload record, so a load drops every earlier one it overlaps:
 * otherwise the worker's FTL code would be reported under the names of startup code it replaced.
 */
export function perfMapLines(dump: Uint8Array, file = "JITDump"): string[] {
  const v = new DataView(dump.buffer, dump.byteOffset, dump.byteLength);
  if (dump.byteLength < 40 || v.getUint32(0, true) !== MAGIC) throw new Error(`${file}: not a JITDump file (no "JiTD" magic)`);
  let loads: { start: bigint; end: bigint; name: string }[] = [];
  let off = v.getUint32(8, true); // header size
  while (off + 16 <= dump.byteLength) {
    const id = v.getUint32(off, true), size = v.getUint32(off + 4, true);
    if (size < 16 || off + size > dump.byteLength) break; // a record still being written
    if (id === JIT_CODE_LOAD && size >= 56) {
      const addr = v.getBigUint64(off + 32, true), codeSize = v.getBigUint64(off + 40, true);
      const nameEnd = dump.indexOf(0, off + 56);
      const name = new TextDecoder().decode(dump.subarray(off + 56, nameEnd < 0 ? off + size : nameEnd));
      const end = addr + codeSize;
      loads = loads.filter((l) => l.end <= addr || l.start >= end);
      loads.push({ start: addr, end, name });
    }
    off += size;
  }
  return loads.map((l) => `${l.start.toString(16)} ${(l.end - l.start).toString(16)} ${l.name}`);
}

if (import.meta.main) {
  const files = process.argv.slice(2);
  if (files.length === 0) throw new Error("usage: bun bench/lib/jitdump_map.ts <jit-<tid>-<pid>.dump>…");
  for (const f of files) {
    const m = /^jit-\d+-(\d+)\.dump$/.exec(basename(f));
    if (!m) throw new Error(`${f}: expected a name jit-<tid>-<pid>.dump, as JavaScriptCore writes them`);
    const lines = perfMapLines(readFileSync(f), f);
    writeFileSync(`/tmp/perf-${m[1]}.map`, lines.join("\n") + "\n");
    console.log(`/tmp/perf-${m[1]}.map: ${lines.length} functions from ${f}`);
  }
}
