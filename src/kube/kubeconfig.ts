/**
 * @module Where the Kubernetes API is and how to authenticate, decided as client-go's
 * `clientcmd.BuildConfigFromFlags(--kube-api-url, --kubeconfig-file)` decides it for flanneld:
 *   - a kubeconfig file: its current context's cluster and user (CA data or file, client
 *     certificate and key as data or files, bearer token or token file, basic auth,
 *     `insecure-skip-tls-verify`, `tls-server-name`), relative paths resolved against the file's
 *     directory; `--kube-api-url` overrides the server;
 *   - else `--kube-api-url` alone: that server, no credentials, the system's CAs;
 *   - else in-cluster: `https://$KUBERNETES_SERVICE_HOST:$KUBERNETES_SERVICE_PORT`, the service
 *     account's `token` and `ca.crt`.
 * A token file (in-cluster or `tokenFile`) is re-read as it rotates (client.ts). Errors name the
 * file, the context and the field.
 */
import { readFileSync } from "node:fs";
import { dirname, isAbsolute, join } from "node:path";
import { parseYamlSubset } from "./yaml_subset.ts";

/** The service account directory of a Pod (client-go's `rest.InClusterConfig`). */
export const SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount";

/** Everything the client needs to reach and authenticate to the API server. */
export interface KubeClientConfig {
  /** e.g. `https://10.96.0.1:443` (no trailing slash). */
  server: string;
  /** PEM CA bundle; undefined → the system's CAs. */
  ca?: string;
  /** PEM client certificate and key. */
  cert?: string;
  key?: string;
  /** A static bearer token. */
  token?: string;
  /** A bearer token file, re-read when it rotates (wins over `token`, as in client-go). */
  tokenFile?: string;
  username?: string;
  password?: string;
  insecureSkipTLSVerify?: boolean;
  tlsServerName?: string;
  /** Where this came from, for logs and errors: `kubeconfig /x (context "c")` or `in-cluster`. */
  source: string;
}

/** A kubeconfig or in-cluster setup that cannot be used; the message names the input. */
export class KubeConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KubeConfigError";
  }
}

export interface KubeConfigInputs {
  /** --kube-api-url ("" when unset). */
  apiUrl: string;
  /** --kubeconfig-file ("" when unset). */
  kubeconfigFile: string;
  /** KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT. */
  env: Record<string, string | undefined>;
  /** Tests only: where the service account files are (default SERVICE_ACCOUNT_DIR). */
  serviceAccountDir?: string;
  /** Log a warning (the in-cluster fallback, as client-go warns). */
  warn?: (msg: string) => void;
}

/** Resolves the client config as BuildConfigFromFlags does. Throws KubeConfigError. */
export function resolveKubeClientConfig(inp: KubeConfigInputs): KubeClientConfig {
  if (inp.kubeconfigFile) {
    let text: string;
    try {
      text = readFileSync(inp.kubeconfigFile, "utf8");
    } catch (e) {
      throw new KubeConfigError(`--kubeconfig-file ${inp.kubeconfigFile}: cannot read it: ${(e as Error).message}`);
    }
    const cfg = kubeconfigClientConfig(text, inp.kubeconfigFile);
    return inp.apiUrl ? { ...cfg, server: trimServer(inp.apiUrl, "--kube-api-url") } : cfg;
  }
  if (inp.apiUrl) return { server: trimServer(inp.apiUrl, "--kube-api-url"), source: `--kube-api-url ${inp.apiUrl} (no credentials)` };
  return inClusterConfig(inp.env, inp.serviceAccountDir ?? SERVICE_ACCOUNT_DIR, inp.warn);
}

/** client-go's `rest.InClusterConfig()`. */
export function inClusterConfig(env: Record<string, string | undefined>, dir: string, warn?: (msg: string) => void): KubeClientConfig {
  const host = env.KUBERNETES_SERVICE_HOST, port = env.KUBERNETES_SERVICE_PORT;
  if (!host || !port) {
    throw new KubeConfigError("no Kubernetes API to talk to: give --kubeconfig-file (or --kube-api-url), or run in a Pod " +
      "(in-cluster: KUBERNETES_SERVICE_HOST and KUBERNETES_SERVICE_PORT must be set)");
  }
  const tokenFile = join(dir, "token");
  let token: string;
  try {
    token = readFileSync(tokenFile, "utf8").trim();
  } catch (e) {
    throw new KubeConfigError(`in-cluster: cannot read the service account token ${tokenFile}: ${(e as Error).message}`);
  }
  let ca: string | undefined;
  try {
    ca = readFileSync(join(dir, "ca.crt"), "utf8");
  } catch (e) {
    // client-go logs this and goes on with the system's CAs.
    warn?.(`in-cluster: cannot read the root CA ${join(dir, "ca.crt")} (${(e as Error).message}); using the system's CAs`);
  }
  const server = `https://${host.includes(":") ? `[${host}]` : host}:${port}`;
  return { server, ca, token, tokenFile, source: `in-cluster (${server}, service account in ${dir})` };
}

function trimServer(url: string, what: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new KubeConfigError(`${what} ${JSON.stringify(url)} is not a URL (expected e.g. https://10.0.0.1:6443)`);
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") {
    throw new KubeConfigError(`${what} ${JSON.stringify(url)}: the scheme must be https or http`);
  }
  return url.replace(/\/+$/, "");
}

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** The client config of a kubeconfig file's current context. */
export function kubeconfigClientConfig(text: string, path: string): KubeClientConfig {
  const doc = parseYamlSubset(text, `kubeconfig ${path}`);
  if (!isObj(doc)) throw new KubeConfigError(`kubeconfig ${path}: not a kubeconfig (expected a mapping with clusters, users, contexts)`);
  const current = doc["current-context"];
  if (typeof current !== "string" || current === "") {
    throw new KubeConfigError(`kubeconfig ${path}: no current-context (set one with 'kubectl config use-context NAME --kubeconfig ${path}')`);
  }
  const named = (list: string, name: string, field: string): Obj => {
    const items = doc[list];
    const hit = Array.isArray(items) ? items.find((x) => isObj(x) && x.name === name) : undefined;
    if (!isObj(hit)) throw new KubeConfigError(`kubeconfig ${path}: ${list} has no entry named ${JSON.stringify(name)} (wanted by context ${JSON.stringify(current)})`);
    const body = hit[field];
    if (body !== undefined && body !== null && !isObj(body)) throw new KubeConfigError(`kubeconfig ${path}: ${list} ${JSON.stringify(name)}: ${field} must be a mapping`);
    return (body as Obj | undefined) ?? {};
  };
  const ctx = named("contexts", current, "context");
  const where = `kubeconfig ${path} (context ${JSON.stringify(current)})`;
  const clusterName = str(ctx, "cluster", where), userName = str(ctx, "user", where);
  if (!clusterName) throw new KubeConfigError(`${where}: the context names no cluster`);
  const cluster = named("clusters", clusterName, "cluster");
  const user = userName ? named("users", userName, "user") : {};
  const dir = dirname(path);
  const file = (obj: Obj, key: string, what: string): string | undefined => {
    const p = str(obj, key, where);
    if (!p) return undefined;
    const abs = isAbsolute(p) ? p : join(dir, p);
    try {
      return readFileSync(abs, "utf8");
    } catch (e) {
      throw new KubeConfigError(`${where}: ${what} ${key} ${abs}: ${(e as Error).message}`);
    }
  };
  const data = (obj: Obj, key: string, what: string): string | undefined => {
    const v = str(obj, key, where);
    if (!v) return undefined;
    if (!/^[A-Za-z0-9+/=\s]+$/.test(v)) throw new KubeConfigError(`${where}: ${what} ${key} is not base64`);
    return Buffer.from(v, "base64").toString("utf8");
  };
  for (const k of ["exec", "auth-provider"]) {
    if (user[k] !== undefined && user[k] !== null) {
      throw new KubeConfigError(`${where}: user ${JSON.stringify(userName)} authenticates with '${k}', which weft does not support; use a token, a token file or a client certificate`);
    }
  }
  const server = str(cluster, "server", where);
  const out: KubeClientConfig = {
    server: server ? trimServer(server, `${where}: cluster ${JSON.stringify(clusterName)} server`) : "",
    ca: data(cluster, "certificate-authority-data", `cluster ${JSON.stringify(clusterName)}`) ?? file(cluster, "certificate-authority", `cluster ${JSON.stringify(clusterName)}`),
    cert: data(user, "client-certificate-data", `user ${JSON.stringify(userName)}`) ?? file(user, "client-certificate", `user ${JSON.stringify(userName)}`),
    key: data(user, "client-key-data", `user ${JSON.stringify(userName)}`) ?? file(user, "client-key", `user ${JSON.stringify(userName)}`),
    token: str(user, "token", where) || undefined,
    username: str(user, "username", where) || undefined,
    password: str(user, "password", where) || undefined,
    insecureSkipTLSVerify: cluster["insecure-skip-tls-verify"] === true || cluster["insecure-skip-tls-verify"] === "true",
    tlsServerName: str(cluster, "tls-server-name", where) || undefined,
    source: where,
  };
  const tokenFile = str(user, "tokenFile", where);
  if (tokenFile) {
    out.tokenFile = isAbsolute(tokenFile) ? tokenFile : join(dir, tokenFile);
    try {
      out.token = readFileSync(out.tokenFile, "utf8").trim();
    } catch (e) {
      throw new KubeConfigError(`${where}: user ${JSON.stringify(userName)} tokenFile ${out.tokenFile}: ${(e as Error).message}`);
    }
  }
  if (!out.server) throw new KubeConfigError(`${where}: cluster ${JSON.stringify(clusterName)} has no server`);
  if (out.insecureSkipTLSVerify && out.ca) {
    throw new KubeConfigError(`${where}: cluster ${JSON.stringify(clusterName)} sets both insecure-skip-tls-verify and a certificate authority, which client-go refuses too; keep one`);
  }
  if (!out.cert !== !out.key) {
    throw new KubeConfigError(`${where}: user ${JSON.stringify(userName)} has a client ${out.cert ? "certificate without a key" : "key without a certificate"}`);
  }
  return out;
}

function str(obj: Obj, key: string, where: string): string {
  const v = obj[key];
  if (v === undefined || v === null) return "";
  if (typeof v === "object") throw new KubeConfigError(`${where}: ${key} must be a string, got ${JSON.stringify(v).slice(0, 60)}`);
  return String(v);
}
