/**
 * @module resolveKubeClientConfig(): client-go's BuildConfigFromFlags — kubeconfig (current
 * context, data or files, relative paths, token file, --kube-api-url override), --kube-api-url
 * alone, in-cluster — and errors that name the file, context and field.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { resolveKubeClientConfig } from "../../src/kube/kubeconfig.ts";

const dir = mkdtempSync(join(tmpdir(), "weft-kubeconfig-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const b64 = (s: string) => Buffer.from(s).toString("base64");
const file = (name: string, text: string) => {
  const p = join(dir, name);
  writeFileSync(p, text);
  return p;
};
file("ca.pem", "CA-PEM");
file("cert.pem", "CERT-PEM");
file("key.pem", "KEY-PEM");
file("token", "file-token\n");

const kubeconfig = (cluster: string, user: string, extra = "") => `apiVersion: v1
kind: Config
clusters:
- name: other
  cluster:
    server: https://wrong:1
- name: k
  cluster:
${cluster}
contexts:
- name: ctx
  context:
    cluster: k
    user: u
current-context: ctx
users:
- name: u
  user:
${user}
${extra}`;

const resolve = (kubeconfigFile: string, apiUrl = "") => resolveKubeClientConfig({ apiUrl, kubeconfigFile, env: {} });

describe("kubeconfig", () => {
  test("the current context's cluster and user, with data fields", () => {
    const p = file("a.yaml", kubeconfig(
      `    server: https://10.0.0.1:6443/\n    certificate-authority-data: ${b64("CA")}`,
      `    client-certificate-data: ${b64("CERT")}\n    client-key-data: ${b64("KEY")}`,
    ));
    expect(resolve(p)).toEqual({
      server: "https://10.0.0.1:6443", ca: "CA", cert: "CERT", key: "KEY", token: undefined, username: undefined,
      password: undefined, insecureSkipTLSVerify: false, tlsServerName: undefined, source: `kubeconfig ${p} (context "ctx")`,
    });
  });

  test("files relative to the kubeconfig's directory, and a token file that wins over a token", () => {
    const p = file("b.yaml", kubeconfig(
      "    server: https://k:6443\n    certificate-authority: ca.pem",
      `    client-certificate: ${join(dir, "cert.pem")}\n    client-key: ./key.pem\n    token: static\n    tokenFile: token`,
    ));
    const c = resolve(p);
    expect([c.ca, c.cert, c.key, c.token, c.tokenFile]).toEqual(["CA-PEM", "CERT-PEM", "KEY-PEM", "file-token", join(dir, "token")]);
  });

  test("--kube-api-url overrides the kubeconfig's server", () => {
    const p = file("c.yaml", kubeconfig("    server: https://k:6443\n    insecure-skip-tls-verify: true", "    token: t"));
    const c = resolve(p, "https://192.168.77.254:6443");
    expect([c.server, c.token, c.insecureSkipTLSVerify]).toEqual(["https://192.168.77.254:6443", "t", true]);
  });

  test("a JSON kubeconfig", () => {
    const p = file("d.json", JSON.stringify({
      "current-context": "c", clusters: [{ name: "k", cluster: { server: "https://k" } }],
      contexts: [{ name: "c", context: { cluster: "k", user: "u" } }], users: [{ name: "u", user: { username: "a", password: "b" } }],
    }));
    const c = resolve(p);
    expect([c.server, c.username, c.password]).toEqual(["https://k", "a", "b"]);
  });

  const bad: [string, string, string][] = [
    ["no current-context", kubeconfig("    server: https://k", "    token: t").replace("current-context: ctx", ""), "no current-context"],
    ["a context naming a missing user", kubeconfig("    server: https://k", "    token: t").replace("user: u\n", "user: nobody\n"), 'users has no entry named "nobody" (wanted by context "ctx")'],
    ["a missing CA file", kubeconfig("    server: https://k\n    certificate-authority: nope.pem", "    token: t"), `cluster "k" certificate-authority ${join(dir, "nope.pem")}`],
    ["CA and insecure together", kubeconfig(`    server: https://k\n    insecure-skip-tls-verify: true\n    certificate-authority-data: ${b64("CA")}`, "    token: t"), "both insecure-skip-tls-verify and a certificate authority"],
    ["an exec plugin", kubeconfig("    server: https://k", "    exec:\n      command: aws"), "authenticates with 'exec', which weft does not support"],
    ["a certificate without its key", kubeconfig("    server: https://k", `    client-certificate-data: ${b64("C")}`), "client certificate without a key"],
    ["a server that is not a URL", kubeconfig("    server: \"https://[bad\"", "    token: t"), "is not a URL"],
    ["a server without https", kubeconfig("    server: k8s:6443", "    token: t"), "the scheme must be https or http"],
  ];
  for (const [what, text, msg] of bad) {
    test(`refuses ${what}, naming the file and context`, () => {
      const p = file("bad.yaml", text);
      expect(() => resolve(p)).toThrow(msg);
      expect(() => resolve(p)).toThrow(`kubeconfig ${p}`);
    });
  }

  test("a kubeconfig that cannot be read names the flag and the path", () => {
    expect(() => resolve(join(dir, "missing.yaml"))).toThrow(`--kubeconfig-file ${join(dir, "missing.yaml")}: cannot read it`);
  });
});

describe("--kube-api-url alone and in-cluster", () => {
  test("--kube-api-url alone: that server, no credentials (as client-go)", () => {
    const c = resolveKubeClientConfig({ apiUrl: "http://127.0.0.1:8080", kubeconfigFile: "", env: { KUBERNETES_SERVICE_HOST: "10.96.0.1", KUBERNETES_SERVICE_PORT: "443" } });
    expect([c.server, c.token, c.ca]).toEqual(["http://127.0.0.1:8080", undefined, undefined]);
  });

  test("in-cluster: the service's host and port, the service account token and CA", () => {
    const sa = mkdtempSync(join(dir, "sa-"));
    writeFileSync(join(sa, "token"), "sa-token\n");
    writeFileSync(join(sa, "ca.crt"), "SA-CA");
    const c = resolveKubeClientConfig({ apiUrl: "", kubeconfigFile: "", env: { KUBERNETES_SERVICE_HOST: "fd00::1", KUBERNETES_SERVICE_PORT: "443" }, serviceAccountDir: sa });
    expect([c.server, c.token, c.tokenFile, c.ca]).toEqual(["https://[fd00::1]:443", "sa-token", join(sa, "token"), "SA-CA"]);
  });

  test("neither a kubeconfig nor in-cluster: says what to give", () => {
    expect(() => resolveKubeClientConfig({ apiUrl: "", kubeconfigFile: "", env: {} }))
      .toThrow("give --kubeconfig-file (or --kube-api-url), or run in a Pod");
  });
});
