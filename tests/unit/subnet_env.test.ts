import { expect, test } from "bun:test";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { formatSubnetEnv, parseSubnetEnv, readSubnetEnv, writeSubnetEnv } from "../../src/subnet_env.ts";

const FLANNELD = `FLANNEL_NETWORK=10.42.0.0/16
FLANNEL_SUBNET=10.42.0.1/24
FLANNEL_IPV6_NETWORK=2001:cafe:42::/56
FLANNEL_IPV6_SUBNET=2001:cafe:42::1/64
FLANNEL_MTU=1450
FLANNEL_IPMASQ=true
`;

test("formatSubnetEnv() writes flanneld's exact bytes", () => {
  expect(formatSubnetEnv({
    network: "10.42.0.0/16", subnet: "10.42.0.1/24", ipv6Network: "2001:cafe:42::/56", ipv6Subnet: "2001:cafe:42::1/64", mtu: 1450, ipMasq: true,
  })).toBe(FLANNELD);
});

test("parseSubnetEnv() round-trips and takes IPMASQ as exactly 'true'", () => {
  const e = parseSubnetEnv(FLANNELD);
  expect(formatSubnetEnv(e)).toBe(FLANNELD);
  expect(parseSubnetEnv("FLANNEL_IPMASQ=True\n").ipMasq).toBe(false);
  expect(parseSubnetEnv("FLANNEL_NETWORK=10.1.0.0/16,10.2.0.0/16\n\nOTHER=x=y\n").raw.OTHER).toBe("x=y");
});

test("writeSubnetEnv() is atomic and mode 0644 whatever the umask", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-env-"));
  const old = process.umask(0o077);
  try {
    const path = join(dir, "run", "flannel", "subnet.env");
    writeSubnetEnv(path, { network: "10.1.0.0/16", subnet: "10.1.5.1/24", mtu: 1450, ipMasq: false });
    expect(statSync(path).mode & 0o777).toBe(0o644);
    expect(readFileSync(path, "utf8")).toBe("FLANNEL_NETWORK=10.1.0.0/16\nFLANNEL_SUBNET=10.1.5.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=false\n");
    expect(readSubnetEnv(path)?.subnet).toBe("10.1.5.1/24");
    expect(readSubnetEnv(join(dir, "missing"))).toBeUndefined();
  } finally {
    process.umask(old);
    rmSync(dir, { recursive: true, force: true });
  }
});

test("writeSubnetEnv() leaves no temp file behind when the write fails", () => {
  const dir = mkdtempSync(join(tmpdir(), "weft-senv-"));
  try {
    const path = join(dir, "subnet.env");
    mkdirSync(path); // a directory where the file should go: the rename fails (EISDIR)
    expect(() => writeSubnetEnv(path, { network: "10.5.0.0/16", subnet: "10.5.1.1/24", mtu: 1450, ipMasq: false })).toThrow(/EISDIR|directory/i);
    expect(readdirSync(dir)).toEqual(["subnet.env"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
