import { expect, test } from "bun:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { AF_UNIX, SOCK_DGRAM } from "../../ffi/linux.ts";
import { check, loadSys } from "../../ffi/sys.ts";
import { notifySockaddr, sdNotify } from "../../src/sd_notify.ts";

test("notifySockaddr(): a path is NUL-terminated, an abstract name starts with NUL", () => {
  expect([...notifySockaddr("/run/x")]).toEqual([1, 0, ...new TextEncoder().encode("/run/x"), 0]);
  expect([...notifySockaddr("@sd")]).toEqual([1, 0, 0, 115, 100]);
  expect(() => notifySockaddr("/" + "a".repeat(200))).toThrow(/NOTIFY_SOCKET .* must be 1 to 107 bytes long/);
});

test("sdNotify() sends READY=1 to $NOTIFY_SOCKET as systemd reads it; nothing without it", async () => {
  expect(await sdNotify("READY=1", {})).toBe(false);
  const sys = await loadSys();
  const dir = mkdtempSync(join(tmpdir(), "weft-sd-"));
  const path = join(dir, "notify");
  const fd = check(sys.socket(AF_UNIX, SOCK_DGRAM, 0), "socket");
  try {
    check(sys.bind(fd, notifySockaddr(path)), "bind");
    expect(await sdNotify("READY=1", { NOTIFY_SOCKET: path })).toBe(true);
    const buf = new Uint8Array(64);
    const n = check(sys.recvfrom(fd, buf, buf.length, 0, null), "recvfrom");
    expect(new TextDecoder().decode(buf.subarray(0, n))).toBe("READY=1");
  } finally {
    sys.close(fd);
    rmSync(dir, { recursive: true, force: true });
  }
});
