#!/usr/bin/env node
/**
 * @module Installs what weft's build, demo and tests need on a fresh Debian machine that has
 * only Node/npm: the npm packages (when node_modules is missing or older than the lock file) and
 * the Debian packages whose commands are missing. Idempotent and quiet when nothing is missing.
 *
 *   node tools/setup.mjs          npm packages and every Debian package (the tests')
 *   node tools/setup.mjs --demo   npm packages and the Debian packages the demo uses
 *   node tools/setup.mjs --npm    npm packages only
 */
import { spawnSync } from "node:child_process";
import { existsSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const npmOnly = process.argv.includes("--npm");
const demoOnly = process.argv.includes("--demo");

/**
 * Debian package -> a file whose absence means the package is missing, and who needs it: the
 * demo (and so the tests too), or the tests only (hundreds of MB the demo never uses).
 */
const DEBIAN = [
  ["etcd-server", ["/usr/bin/etcd"], "demo"],
  ["iproute2", ["/usr/sbin/ip", "/usr/bin/ip", "/sbin/ip"], "demo"],
  ["iptables", ["/usr/sbin/iptables", "/sbin/iptables"], "demo"],
  ["nftables", ["/usr/sbin/nft"], "demo"],
  ["ethtool", ["/usr/sbin/ethtool", "/sbin/ethtool"], "demo"],
  ["iputils-ping", ["/usr/bin/ping", "/bin/ping"], "demo"],
  ["procps", ["/usr/bin/ps"], "demo"],
  ["iperf3", ["/usr/bin/iperf3"], "test"],
  ["containernetworking-plugins", ["/usr/lib/cni/bridge"], "test"],
  ["chromium", ["/usr/bin/chromium"], "test"],
  ["openssl", ["/usr/bin/openssl"], "demo"], // certificates: the kube demo's API server, the TLS fault tests
  ["kubernetes-client", ["/usr/bin/kubectl"], "test"], // kubectl against the test Kubernetes API server
  ["wireguard-go", ["/usr/bin/wireguard-go"], "test"], // an independent WireGuard peer for the handshake interop test
  ["wireguard-tools", ["/usr/bin/wg"], "test"],
];

function run(cmd, args, env = {}) {
  const r = spawnSync(cmd, args, { cwd: root, stdio: "inherit", env: { ...process.env, ...env } });
  if (r.status !== 0) {
    console.error(`setup: '${cmd} ${args.join(" ")}' failed with exit code ${r.status}`);
    process.exit(1);
  }
}

function mtime(p) {
  try { return statSync(p).mtimeMs; } catch { return 0; }
}

// npm packages: install when node_modules is absent or the lock changed since the last install.
const marker = join(root, "node_modules", ".package-lock.json");
if (!existsSync(marker) || mtime(join(root, "package-lock.json")) > mtime(marker) ||
    !existsSync(join(root, "node_modules", ".bin", "bun"))) {
  console.error("setup: installing npm packages");
  // `npm install` honours the lock file; `npm ci` refuses it because deno's optional packages
  // for other platforms are absent from the registry mirror at the locked version.
  run("npm", ["install", "--no-audit", "--no-fund"]);
}

if (!npmOnly) {
  const missing = DEBIAN.filter(([, files, who]) => (who === "demo" || !demoOnly) && !files.some((f) => existsSync(f))).map(([p]) => p);
  if (missing.length > 0) {
    if (process.getuid?.() !== 0) {
      console.error(`setup: missing Debian packages ${missing.join(", ")}; run as root or install them`);
      process.exit(1);
    }
    console.error(`setup: installing Debian packages: ${missing.join(", ")}`);
    const env = { DEBIAN_FRONTEND: "noninteractive" };
    run("apt-get", ["update", "-qq"], env);
    run("apt-get", ["install", "-y", "-qq", "--no-install-recommends", ...missing], env);
  }
}
