/**
 * @module The test API server as a process of its own, e.g. inside a network namespace where
 * agents in other namespaces reach it over their veths: started with the documented command
 * line (`ip netns exec <ns> bun tests/support/kube_api_server.ts --listen …`), driven from the
 * test process through the real API (nodes, pods) and the admin-only `/_test` controls (tokens,
 * compaction, outages), over a loopback forwarder when it runs in a namespace. The methods
 * mirror KubeApiServer's, made async.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { type NetnsForward, forwardIntoNetns } from "../../../tools/netns_forward.ts";
import type { AccessRule } from "./auth.ts";
import { type KubeconfigOptions, renderKubeconfig, writeServiceAccountDir } from "./kubeconfig.ts";
import type { KubeObject } from "./store.ts";

const ENTRY = join(import.meta.dir, "..", "kube_api_server.ts");

export interface KubeApiProcessOptions {
  /** Run inside this network namespace (default: the test's own). */
  netns?: string;
  /** ADDR:PORT to listen on, as agents dial it (e.g. `10.9.0.1:6443`; default 127.0.0.1:0). */
  listen?: string;
  nodes?: string[];
  /** `--cluster-cidr` and `--node-cidr-mask`, comma-separated for dual-stack. */
  clusterCidr?: string;
  nodeCidrMask?: string;
  cidrDelayMs?: number;
  allocateNodeCidrs?: boolean;
  bookmarkIntervalMs?: number;
  /** Log each request to the process's stderr (kept in `log`). */
  logRequests?: boolean;
}

/** An answer of the API: HTTP code and the JSON (or text) body. */
export interface ApiAnswer { code: number; body: any }

export class KubeApiProcess {
  /** What the process printed (its request log with `logRequests`). */
  log = "";

  private constructor(
    private readonly child: ChildProcess,
    private readonly dir: string,
    /** The kubeconfig the server wrote: the admin, at the listen address (for agents). */
    readonly kubeconfigFile: string,
    /** The server URL as agents dial it. */
    readonly url: string,
    /** The URL this test process uses (a loopback forwarder when in a namespace). */
    readonly localUrl: string,
    readonly caCert: string,
    readonly adminToken: string,
    private readonly forward: NetnsForward | undefined,
  ) {}

  /**
   * Starts the server and waits until it listens (its kubeconfig appears).
   *
   * @example
   *   const api = await KubeApiProcess.start({ netns: hub, listen: "10.9.0.1:6443", nodes: ["h1", "h2"] });
   *   const token = await api.addServiceAccountToken("kube-flannel", "flannel", KUBE_API_ACCESS);
   *   writeFileSync(file, api.kubeconfig({ token }));      // for an agent in h1's namespace
   *   await api.outage(10_000);                            // the listener goes away for 10 s
   *   await api.stop();
   */
  static async start(o: KubeApiProcessOptions = {}): Promise<KubeApiProcess> {
    const dir = mkdtempSync(join(tmpdir(), "weft-kube-api-"));
    const kubeconfigFile = join(dir, "admin.kubeconfig");
    const args = [ENTRY, "--listen", o.listen ?? "127.0.0.1:0", "--kubeconfig", kubeconfigFile];
    if (o.nodes?.length) args.push("--nodes", o.nodes.join(","));
    if (o.clusterCidr) args.push("--cluster-cidr", o.clusterCidr);
    if (o.nodeCidrMask) args.push("--node-cidr-mask", o.nodeCidrMask);
    if (o.cidrDelayMs !== undefined) args.push("--cidr-delay-ms", String(o.cidrDelayMs));
    if (o.allocateNodeCidrs !== undefined) args.push(`--allocate-node-cidrs=${o.allocateNodeCidrs}`);
    if (o.bookmarkIntervalMs !== undefined) args.push("--bookmark-interval-ms", String(o.bookmarkIntervalMs));
    if (o.logRequests) args.push("--log");
    const argv = o.netns ? ["ip", "netns", "exec", o.netns, process.execPath, ...args] : [process.execPath, ...args];
    const child = spawn(argv[0]!, argv.slice(1), { stdio: ["ignore", "pipe", "pipe"] });
    let log = "";
    child.stdout!.on("data", (d) => { log += d; });
    child.stderr!.on("data", (d) => { log += d; });
    try {
      const deadline = Date.now() + 30_000;
      while (!existsSync(kubeconfigFile)) {
        if (child.exitCode !== null) throw new Error(`kube_api_server exited ${child.exitCode}: ${log}`);
        if (Date.now() > deadline) throw new Error(`kube_api_server did not listen within 30 s: ${log}`);
        await Bun.sleep(20);
      }
      const cfg = parse(readFileSync(kubeconfigFile, "utf8"));
      const url: string = cfg.clusters[0].cluster.server;
      const caCert = Buffer.from(cfg.clusters[0].cluster["certificate-authority-data"], "base64").toString();
      let forward: NetnsForward | undefined;
      if (o.netns) {
        const u = new URL(url);
        forward = await forwardIntoNetns(o.netns, u.hostname.replace(/^\[|\]$/g, ""), Number(u.port));
      }
      const localUrl = forward ? `https://127.0.0.1:${forward.port}` : url;
      const api = new KubeApiProcess(child, dir, kubeconfigFile, url, localUrl, caCert, cfg.users[0].user.token, forward);
      child.stdout!.removeAllListeners("data");
      child.stderr!.removeAllListeners("data");
      api.log = log;
      child.stdout!.on("data", (d) => { api.log += d; });
      child.stderr!.on("data", (d) => { api.log += d; });
      return api;
    } catch (e) {
      child.kill("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
      throw e;
    }
  }

  /** One request as the admin (or with `token`), through the local URL. */
  async request(method: string, path: string, body?: unknown, contentType = "application/json", token = this.adminToken): Promise<ApiAnswer> {
    const res = await fetch(`${this.localUrl}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body !== undefined ? { "content-type": contentType } : {}) },
      ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
      tls: { ca: this.caCert },
    });
    const text = await res.text();
    try { return { code: res.status, body: JSON.parse(text) }; } catch { return { code: res.status, body: text }; }
  }

  /** A kubeconfig for agents (server = the listen address), admin token unless told otherwise. */
  kubeconfig(opts: Partial<Omit<KubeconfigOptions, "server" | "caCert">> = {}): string {
    const auth = opts.token || opts.tokenFile || opts.clientCert || opts.clientCertFile ? {} : { token: this.adminToken };
    return renderKubeconfig({ server: this.url, caCert: this.caCert, ...auth, ...opts });
  }

  /** A service account directory for `token` in `dir` (in-cluster mode); returns KUBERNETES_SERVICE_HOST/PORT. */
  writeServiceAccountDir(dir: string, token: string, namespace = "kube-flannel"): Record<string, string> {
    return writeServiceAccountDir(dir, { server: this.url, caCert: this.caCert, token, namespace });
  }

  // Objects, through the API itself.
  async addNode(name: string, node: Partial<KubeObject> = {}): Promise<KubeObject> {
    return this.ok(await this.request("POST", "/api/v1/nodes", { apiVersion: "v1", kind: "Node", ...node, metadata: { ...node.metadata, name } }));
  }
  async getNode(name: string): Promise<KubeObject> {
    return this.ok(await this.request("GET", `/api/v1/nodes/${name}`));
  }
  async deleteNode(name: string): Promise<void> {
    this.ok(await this.request("DELETE", `/api/v1/nodes/${name}`));
  }
  async patchNode(name: string, patch: unknown, opts: { type?: "strategic" | "merge" | "json"; subresource?: "" | "status" } = {}): Promise<KubeObject> {
    const type = { strategic: "application/strategic-merge-patch+json", merge: "application/merge-patch+json", json: "application/json-patch+json" }[opts.type ?? "strategic"];
    return this.ok(await this.request("PATCH", `/api/v1/nodes/${name}${opts.subresource === "status" ? "/status" : ""}`, patch, type));
  }

  // The /_test controls.
  async control(action: string, body: Record<string, unknown> = {}): Promise<any> {
    return this.ok(await this.request("POST", `/_test/${action}`, body));
  }
  async addServiceAccountToken(namespace: string, name: string, rules: readonly AccessRule[]): Promise<string> {
    return (await this.control("tokens", { user: `system:serviceaccount:${namespace}:${name}`, groups: ["system:serviceaccounts", `system:serviceaccounts:${namespace}`], rules })).token;
  }
  async rotateToken(token: string): Promise<string> { return (await this.control("tokens/rotate", { token })).token; }
  async restrictToken(token: string, rules: readonly AccessRule[]): Promise<void> { await this.control("tokens/restrict", { token, rules }); }
  async addPod(namespace: string, name: string, nodeName: string): Promise<KubeObject> { return this.control("pods", { namespace, name, nodeName }); }
  async assignPodCidrs(node: string, cidrs?: string[]): Promise<KubeObject> { return this.control("assign-pod-cidrs", { node, ...(cidrs ? { cidrs } : {}) }); }
  async compact(rv?: number): Promise<number> { return (await this.control("compact", rv === undefined ? {} : { rv })).compactedRv; }
  async bookmarkWatches(): Promise<void> { await this.control("bookmark"); }
  async endWatches(): Promise<void> { await this.control("end-watches"); }
  /** The listener goes away for `ms` (connections dropped, refused meanwhile), then comes back. */
  async outage(ms: number): Promise<void> { await this.control("outage", { ms }); }

  /** Stops the listener (connections dropped, state kept); resolves once it refuses requests. */
  async stopListener(): Promise<void> {
    await this.control("outage", { resumeFile: this.resumeFile });
    await this.until("the listener to stop", async () => this.request("GET", "/version").then(() => false, () => true));
  }

  /** Listens again (the server waits for a file to appear); resolves once it answers. */
  async startListener(): Promise<void> {
    writeFileSync(this.resumeFile, "");
    await this.until("the listener to come back", async () => this.request("GET", "/version").then((a) => a.code === 200, () => false));
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null && this.child.signalCode === null) {
      const exited = new Promise((r) => this.child.once("exit", r));
      this.child.kill("SIGTERM");
      await exited;
    }
    await this.forward?.close();
    rmSync(this.dir, { recursive: true, force: true });
  }

  /** Waits for `cond`; fails (does not time anything) after a generous 30 s. */
  private async until(what: string, cond: () => Promise<boolean>): Promise<void> {
    const deadline = Date.now() + 30_000;
    while (!(await cond())) {
      if (Date.now() > deadline) throw new Error(`kube_api_server: gave up waiting for ${what}: ${this.log.slice(-1000)}`);
      await Bun.sleep(10);
    }
  }

  private get resumeFile(): string {
    return join(this.dir, "resume-listener");
  }

  private ok(a: ApiAnswer): any {
    if (a.code >= 300) throw new Error(`kube_api_server answered ${a.code}: ${typeof a.body === "string" ? a.body : a.body.message}`);
    return a.body;
  }
}
