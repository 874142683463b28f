/** @module Runs tests/ffi/sys_conformance.ts under Bun and Deno in a namespace: same results, expected values. */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { createNetns, deleteNetns, isRoot, runInNetns, type Runtime } from "./sys_netns.ts";

const EXPECTED = {
  openMissing: -2, // ENOENT
  closeBad: -9, // EBADF
  checkThrows: "2 open /nonexistent/weft: ENOENT (2)",
  readZero: 16,
  readBytes: [255, 0, 0, 255], // written at the subarray's offset, nowhere else
  readTooLong: "read: needs 33 bytes but the buffer holds 32",
  poll: [1, 1],
  writeNull: 20,
  readZeroAt: [4, [255, 0, 0, 255]], // bytes 5..8 only
  writeNullAt: [5, 2], // 5 bytes from 10; to the end from 30
  writeAtTooLong: "write: needs bytes 30..34 but the buffer holds 32",
  writeAtLoop: 3,
  readAtLoop: [3, [0xee, 5, 6, 7, 0xee]], // bytes 104..106 of a Wasm memory, read to 6..8
  soType: [4, 2], // option length, SOCK_DGRAM
  bindShort: -22, // EINVAL
  loMtu: [0, 65536],
  ioctlIntBad: -9,
  fcntl: [2, 0, true],
  flock: [0, -11, 0, 0, -9],
  recvfromEmpty: -11, // EAGAIN
  recvmsgEmpty: -11,
  recvmmsgEmpty: -11,
  addressOfOffset: 24,
  ifIndex: [1, 0],
  getpid: true,
  schedPolicy: [0, 5, 0, 0, true, 0], // SCHED_IDLE, then back to SCHED_OTHER (as root); policy 99 is EINVAL; sched_yield
};

describe.skipIf(!isRoot)("Sys conformance", () => {
  let ns = "";
  beforeAll(() => { ns = createNetns("ffi"); });
  afterAll(() => deleteNetns(ns));

  for (const runtime of ["bun", "deno"] as Runtime[]) {
    test(`${runtime}: errno mapping, bounds checks and buffer passing behave as libc does`, () => {
      expect(runInNetns(ns, runtime, "sys_conformance.ts")).toEqual({ runtime, ...EXPECTED });
    }, 60_000);
  }
});
