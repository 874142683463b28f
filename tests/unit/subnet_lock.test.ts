/**
 * @module The subnet-file lock in one process: a second open of the lock file cannot take it
 * (flock is per open file), the holder's pid and command are recorded with the password
 * redacted, and a released lock can be taken again.
 */
import { afterAll, expect, test } from "bun:test";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { lockSubnetFile, parseLockText, redactCommand, SubnetFileLockedError } from "../../src/subnet_lock.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-lock-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

test("redactCommand() hides the etcd password in both flag forms", () => {
  expect(redactCommand(["weft", "--etcd-password=s3cret", "-etcd-password", "s3cret", "--iface=eth0"]))
    .toBe("weft --etcd-password=*** -etcd-password *** --iface=eth0");
});

test("parseLockText() reads pid and command, and tolerates an empty file", () => {
  expect(parseLockText("1234\nweft --iface=eth0\n")).toEqual({ pid: 1234, command: "weft --iface=eth0" });
  expect(parseLockText("")).toEqual({ pid: undefined, command: undefined });
});

test("lockSubnetFile() takes <subnet-file>.lock once; a second taker gets the holder's pid and command", async () => {
  const subnetFile = join(dir, "run", "flannel", "subnet.env"); // the directory is made
  const held = await lockSubnetFile(subnetFile, "weft --etcd-endpoints=http://e:2379");
  expect(held.path).toBe(`${subnetFile}.lock`);
  expect(readFileSync(held.path, "utf8")).toBe(`${process.pid}\nweft --etcd-endpoints=http://e:2379\n`);
  const second = await lockSubnetFile(subnetFile, "weft").then(() => undefined, (e) => e);
  expect(second).toBeInstanceOf(SubnetFileLockedError);
  expect(second.message).toBe(`another agent is running with subnet file ${subnetFile}: pid ${process.pid} ` +
    `(weft --etcd-endpoints=http://e:2379) holds ${subnetFile}.lock; stop it first, or give this agent its own --subnet-file`);
  held.release();
  (await lockSubnetFile(subnetFile, "weft again")).release();
});

test("lockSubnetFile() names the path when the lock file cannot be made", async () => {
  const err = await lockSubnetFile("/proc/weft/subnet.env", "weft").then(() => undefined, (e) => e as Error);
  expect(String(err)).toContain("/proc/weft");
});
