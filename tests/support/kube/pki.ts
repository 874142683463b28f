/**
 * @module The test API server's certificates, made with the `openssl` command at start: a CA, a
 * serving certificate for the listen address (and localhost), and client certificates whose
 * subject is the user (CN) and its groups (O), the way kube-apiserver's x509 authenticator reads
 * them. Everything lives in one temp dir that `remove()` deletes.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { isIP } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A certificate and its key, PEM. */
export interface CertPair { cert: string; key: string }

function openssl(args: string[], cwd: string): void {
  const r = spawnSync("openssl", args, { cwd, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed (exit ${r.status}): ${r.stderr || r.error}`);
}

/** A CA that signs the server's and clients' certificates; `remove()` deletes its files. */
export class TestPki {
  readonly dir = mkdtempSync(join(tmpdir(), "weft-kube-pki-"));
  readonly caCert: string;
  private serial = 1;

  constructor() {
    openssl(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "30",
      "-keyout", "ca.key", "-out", "ca.crt", "-subj", "/CN=weft-test-kube-ca",
      "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign,cRLSign,digitalSignature"], this.dir);
    this.caCert = readFileSync(join(this.dir, "ca.crt"), "utf8");
  }

  /** A serving certificate for these IP addresses and DNS names. */
  serverCert(hosts: string[]): CertPair {
    const san = [...new Set([...hosts, "localhost", "127.0.0.1"])].map((h) => (isIP(h) ? `IP:${h}` : `DNS:${h}`)).join(",");
    return this.issue("/CN=kube-apiserver", [`subjectAltName=${san}`, "extendedKeyUsage=serverAuth", "keyUsage=critical,digitalSignature,keyEncipherment"]);
  }

  /** A client certificate for `user` in `groups` (CN=user, one O= per group). */
  clientCert(user: string, groups: string[] = []): CertPair {
    const esc = (s: string) => s.replace(/[/\\]/g, (c) => `\\${c}`);
    const subject = [...groups.map((g) => `/O=${esc(g)}`), `/CN=${esc(user)}`].join("");
    return this.issue(subject, ["extendedKeyUsage=clientAuth", "keyUsage=critical,digitalSignature,keyEncipherment"]);
  }

  remove(): void {
    rmSync(this.dir, { recursive: true, force: true });
  }

  private issue(subject: string, extensions: string[]): CertPair {
    const name = `c${this.serial++}`;
    writeFileSync(join(this.dir, `${name}.ext`), `${extensions.join("\n")}\n`);
    openssl(["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", `${name}.key`, "-out", `${name}.csr`, "-subj", subject], this.dir);
    openssl(["x509", "-req", "-in", `${name}.csr`, "-CA", "ca.crt", "-CAkey", "ca.key", "-set_serial", String(1000 + this.serial),
      "-days", "30", "-out", `${name}.crt`, "-extfile", `${name}.ext`], this.dir);
    return { cert: readFileSync(join(this.dir, `${name}.crt`), "utf8"), key: readFileSync(join(this.dir, `${name}.key`), "utf8") };
  }
}
