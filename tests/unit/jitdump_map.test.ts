/**
 * @module bench/lib/jitdump_map.ts on a byte-exact JITDump: a header, a code-load record, a
 * record of another kind (skipped) and a truncated tail (ignored), as perf's jitdump.h lays them out.
 */
import { describe, expect, test } from "bun:test";
import { perfMapLines } from "../../bench/lib/jitdump_map.ts";

/** Header (40 bytes), JIT_CODE_LOAD "JSC-DFG: ingress#A" at 0x7f0000001000 (0x1a0 bytes, 4 bytes of code), a record of id 2, 8 stray bytes. */
function dump(): Uint8Array {
  const name = new TextEncoder().encode("JSC-DFG: ingress#A\0");
  const loadSize = 56 + name.length + 4;
  const b = new Uint8Array(40 + loadSize + 24 + 8);
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x4a695444, true); // "JiTD"
  v.setUint32(4, 1, true); // version
  v.setUint32(8, 40, true); // header size
  let off = 40;
  v.setUint32(off, 0, true); // JIT_CODE_LOAD
  v.setUint32(off + 4, loadSize, true);
  v.setBigUint64(off + 8, 123n, true); // timestamp
  v.setUint32(off + 16, 77, true); // pid
  v.setUint32(off + 20, 78, true); // tid
  v.setBigUint64(off + 24, 0x7f0000001000n, true); // vma
  v.setBigUint64(off + 32, 0x7f0000001000n, true); // code address
  v.setBigUint64(off + 40, 0x1a0n, true); // code size
  v.setBigUint64(off + 48, 1n, true); // code index
  b.set(name, off + 56);
  b.set([0xc3, 0x90, 0x90, 0x90], off + 56 + name.length); // the code
  off += loadSize;
  v.setUint32(off, 2, true); // JIT_CODE_MOVE: not a load
  v.setUint32(off + 4, 24, true);
  return b; // the 8 bytes after it: a record header cut short
}

describe("perfMapLines", () => {
  test("one line per code load: start and size in hex, then the name", () => {
    expect(perfMapLines(dump())).toEqual(["7f0000001000 1a0 JSC-DFG: ingress#A"]);
  });

  test("a file that is not a JITDump is refused, naming it", () => {
    expect(() => perfMapLines(new Uint8Array(64), "/tmp/x.dump")).toThrow('/tmp/x.dump: not a JITDump file (no "JiTD" magic)');
  });
});
