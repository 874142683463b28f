/**
 * @module kubeconfig files for the test API server, in the forms clients must read: CA as data
 * or as a file, a bearer token inline or as a `tokenFile`, or a client certificate and key as
 * data or files; one cluster, one user, one current context. Also the in-cluster form: a
 * service account directory (`token`, `ca.crt`, `namespace`) and KUBERNETES_SERVICE_HOST/PORT.
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { stringify } from "yaml";

/** How the kubeconfig's user authenticates and where its CA comes from. */
export interface KubeconfigOptions {
  server: string;
  /** The CA inline (`certificate-authority-data`), unless `caFile` is given. */
  caCert: string;
  caFile?: string;
  token?: string;
  tokenFile?: string;
  /** A client certificate and key inline… */
  clientCert?: { cert: string; key: string };
  /** …or as files. */
  clientCertFile?: string;
  clientKeyFile?: string;
  /** Names of the cluster, user and context (default `weft-test`, `admin`, `weft-test`). */
  cluster?: string;
  user?: string;
  context?: string;
}

const b64 = (s: string) => Buffer.from(s).toString("base64");

/** The kubeconfig text (YAML). */
export function renderKubeconfig(o: KubeconfigOptions): string {
  const cluster = o.cluster ?? "weft-test", user = o.user ?? "admin", context = o.context ?? "weft-test";
  const userEntry: Record<string, string> = {};
  if (o.token) userEntry.token = o.token;
  if (o.tokenFile) userEntry.tokenFile = o.tokenFile;
  if (o.clientCert) {
    userEntry["client-certificate-data"] = b64(o.clientCert.cert);
    userEntry["client-key-data"] = b64(o.clientCert.key);
  }
  if (o.clientCertFile) userEntry["client-certificate"] = o.clientCertFile;
  if (o.clientKeyFile) userEntry["client-key"] = o.clientKeyFile;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: cluster, cluster: { server: o.server, ...(o.caFile ? { "certificate-authority": o.caFile } : { "certificate-authority-data": b64(o.caCert) }) } }],
    users: [{ name: user, user: userEntry }],
    contexts: [{ name: context, context: { cluster, user } }],
    "current-context": context,
    preferences: {},
  });
}

/**
 * Writes what the kubelet mounts at /var/run/secrets/kubernetes.io/serviceaccount into `dir`
 * (`token`, `ca.crt`, `namespace`) and returns the environment a Pod gets, for a client's
 * in-cluster mode. Rewrite `token` to rotate it, as the kubelet does.
 */
export function writeServiceAccountDir(dir: string, o: { server: string; caCert: string; token: string; namespace?: string }): Record<string, string> {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "token"), o.token);
  writeFileSync(join(dir, "ca.crt"), o.caCert);
  writeFileSync(join(dir, "namespace"), o.namespace ?? "kube-flannel");
  const u = new URL(o.server);
  return { KUBERNETES_SERVICE_HOST: u.hostname.replace(/^\[|\]$/g, ""), KUBERNETES_SERVICE_PORT: u.port || "443" };
}
