/**
 * @module The logger's line format and its escaping of control characters (text from etcd keys
 * and peers reaches the log: it must not drive the terminal or forge a record).
 */
import { expect, test } from "bun:test";
import { createLogger, escapeControls } from "../../src/log.ts";

test("escapeControls() makes every control character visible and indents continuation lines", () => {
  expect(escapeControls("plain text, tab\tand ünïcode ✓")).toBe("plain text, tab\tand ünïcode ✓");
  expect(escapeControls("a\x00b\x07c\x1b[31md\x7fe\x85f\rg")).toBe("a\\x00b\\x07c\\x1b[31md\\x7fe\\x85f\\rg");
  expect(escapeControls("x\u2028y\u2029z")).toBe("x\\u2028y\\u2029z");
  expect(escapeControls("one\ntwo\nthree")).toBe("one\n    two\n    three");
});

test("a lease key with control characters is logged as one record with the characters escaped", () => {
  let out = "";
  const log = createLogger((t) => (out += t));
  log.warn("ignoring malformed lease key /coreos.com/network/subnets/\x1b[2J\rI1206 00:00:00.000000       1 weft] forged\n");
  const lines = out.split("\n").filter(Boolean);
  expect(lines[0]).toMatch(/^W\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ weft] ignoring malformed lease key \/coreos\.com\/network\/subnets\/\\x1b\[2J\\rI1206 /);
  expect(out).not.toContain("\x1b");
  expect(out).not.toContain("\r");
  expect(out.match(/^[IWE]\d{4} /gm)).toHaveLength(1);
});
