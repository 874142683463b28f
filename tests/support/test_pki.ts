/**
 * @module Certificates for TLS tests, made with openssl in a temp dir the caller removes
 * (`remove()`): a CA, etcd's server certificate (subjectAltName IP:127.0.0.1, DNS:localhost), a
 * client certificate, and the wrong ones — another CA and a client certificate it signed, and an
 * expired server certificate. EC P-256 keys: fast to make.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface TestPki {
  dir: string;
  /** The CA that signed etcd's and the client's certificates. */
  ca: string;
  /** A CA that signed nothing etcd uses. */
  otherCa: string;
  server: { cert: string; key: string };
  /** etcd's certificate, expired yesterday (same key and SANs). */
  expiredServer: { cert: string; key: string };
  client: { cert: string; key: string };
  /** A client certificate signed by `otherCa`. */
  strangerClient: { cert: string; key: string };
  remove(): void;
}

function openssl(dir: string, args: string[]): void {
  const r = spawnSync("openssl", args, { cwd: dir, encoding: "utf8" });
  if (r.status !== 0) throw new Error(`openssl ${args.join(" ")} failed: ${r.stderr}`);
}

/** Makes the certificates; the server's subjectAltName is `san` (default IP:127.0.0.1,DNS:localhost). */
export function makeTestPki(san = "IP:127.0.0.1,DNS:localhost"): TestPki {
  const dir = mkdtempSync(join(tmpdir(), "weft-pki-"));
  try {
    const key = (name: string) => ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-keyout", `${name}.key`];
    const ca = (name: string) => openssl(dir, ["req", "-x509", ...key(name), "-out", `${name}.crt`, "-days", "2", "-subj", `/CN=${name}`]);
    ca("weft-test-ca");
    ca("other-ca");
    writeFileSync(join(dir, "server.ext"), `subjectAltName=${san}\nextendedKeyUsage=serverAuth,clientAuth\n`);
    writeFileSync(join(dir, "client.ext"), "extendedKeyUsage=clientAuth\n");
    const signed = (name: string, by: string, ext: string, days: string, csrFrom = name) => {
      if (csrFrom === name) openssl(dir, ["req", ...key(name), "-out", `${name}.csr`, "-subj", `/CN=${name}`]);
      openssl(dir, ["x509", "-req", "-in", `${csrFrom}.csr`, "-CA", `${by}.crt`, "-CAkey", `${by}.key`, "-CAcreateserial",
        "-out", `${name}.crt`, "-days", days, "-extfile", ext]);
    };
    signed("server", "weft-test-ca", "server.ext", "2");
    // -days -1: valid from now until yesterday, i.e. expired (openssl 3.0 has no -not_after).
    signed("expired-server", "weft-test-ca", "server.ext", "-1", "server");
    signed("client", "weft-test-ca", "client.ext", "2");
    signed("stranger-client", "other-ca", "client.ext", "2");
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    throw e;
  }
  const p = (f: string) => join(dir, f);
  return {
    dir,
    ca: p("weft-test-ca.crt"),
    otherCa: p("other-ca.crt"),
    server: { cert: p("server.crt"), key: p("server.key") },
    expiredServer: { cert: p("expired-server.crt"), key: p("server.key") },
    client: { cert: p("client.crt"), key: p("client.key") },
    strangerClient: { cert: p("stranger-client.crt"), key: p("stranger-client.key") },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
