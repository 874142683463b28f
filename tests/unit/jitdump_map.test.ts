/**
 * @module bench/lib/jitdump_map.ts on byte-exact JITDumps: a header, code-load records, a record
 * of another kind (skipped) and a truncated tail (ignored), as perf's jitdump.h lays them out.
 */
import { describe, expect, test } from "bun:test";
import { perfMapLines } from "../../bench/lib/jitdump_map.ts";

function header(): Uint8Array {
  const b = new Uint8Array(40);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x4a695444, true); // "JiTD"
  v.setUint32(4, 1, true); // version
  v.setUint32(8, 40, true); // header size
  return b;
}

/** JIT_CODE_LOAD of `size` bytes at `addr` named `name`, with 4 bytes of code. */
function load(addr: bigint, size: bigint, name: string): Uint8Array {
  const text = new TextEncoder().encode(`${name}\0`);
  const b = new Uint8Array(56 + text.length + 4);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0, true); // JIT_CODE_LOAD
  v.setUint32(4, b.length, true);
  v.setBigUint64(8, 123n, true); // timestamp
  v.setUint32(16, 77, true); // pid
  v.setUint32(20, 78, true); // tid
  v.setBigUint64(24, addr, true); // vma
  v.setBigUint64(32, addr, true); // code address
  v.setBigUint64(40, size, true);
  v.setBigUint64(48, 1n, true); // code index
  b.set(text, 56);
  b.set([0xc3, 0x90, 0x90, 0x90], 56 + text.length);
  return b;
}

/** A JIT_CODE_MOVE record (id 2): not a load. */
function move(): Uint8Array {
  const b = new Uint8Array(24);
  new DataView(b.buffer).setUint32(4, 24, true);
  b[0] = 2;
  return b;
}

const cat = (...parts: Uint8Array[]) => new Uint8Array(parts.flatMap((p) => [...p]));

describe("perfMapLines", () => {
  test("one line per code load: start and size in hex, then the name; other records and a cut tail skipped", () => {
    const dump = cat(header(), load(0x7f0000001000n, 0x1a0n, "JSC-DFG: ingress#A"), move(), load(0x7f0000002000n, 0x40n, "JSC-WasmOMG: .wasm-function[22]#C"), new Uint8Array(8));
    expect(perfMapLines(dump)).toEqual(["7f0000001000 1a0 JSC-DFG: ingress#A", "7f0000002000 40 JSC-WasmOMG: .wasm-function[22]#C"]);
  });

  test("a later load over the same addresses replaces the earlier one (JSC reuses freed code memory)", () => {
    const dump = cat(header(), load(0x7f0000001000n, 0x1a0n, "JSC-Baseline: resolve#A"), load(0x7f0000001100n, 0x100n, "JSC-FTL: turn#B"));
    expect(perfMapLines(dump)).toEqual(["7f0000001100 100 JSC-FTL: turn#B"]);
  });

  test("a file that is not a JITDump is refused, naming it", () => {
    expect(() => perfMapLines(new Uint8Array(64), "/tmp/x.dump")).toThrow('/tmp/x.dump: not a JITDump file (no "JiTD" magic)');
  });
});
