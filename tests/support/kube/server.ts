/**
 * @module The test Kubernetes API server as an object: TLS with its own CA (client certificates
 * verified against it name the user), the API (api.ts) over a store (store.ts), and the one
 * controller flannel depends on, kube-controller-manager's node IPAM (`--allocate-node-cidrs`):
 * a Node without podCIDRs gets them, at once or after `cidrDelayMs`. Tests drive it through the
 * methods below; kube_api_server.ts is the entry point and documents the whole API.
 */
import { randomBytes } from "node:crypto";
import { writeFileSync } from "node:fs";
import http from "node:http";
import type { Socket } from "node:net";
import tls from "node:tls";
import { applyPatch, serveApi } from "./api.ts";
import { type AccessRule, Authenticator, type KubeUser, serviceAccountUser } from "./auth.ts";
import { PodCidrAllocator } from "./cidr_allocator.ts";
import { type KubeconfigOptions, renderKubeconfig, writeServiceAccountDir } from "./kubeconfig.ts";
import { prepareNodeCreate, prepareNodeUpdate, registeredNode } from "./node_strategy.ts";
import { type CertPair, TestPki } from "./pki.ts";
import { type KubeObject, ObjectStore } from "./store.ts";
import { runAdminAction } from "./test_admin.ts";
import { WatchRegistry } from "./watch.ts";

export interface KubeApiServerOptions {
  /** Listen address (default 127.0.0.1) and port (default 0: a free one). */
  host?: string;
  port?: number;
  /** Nodes registered at start (as a kubelet registers them). */
  nodes?: string[];
  /** `--cluster-cidr` (one, or one per IP family; default `["10.244.0.0/16"]`). */
  clusterCidrs?: string[];
  /** `--node-cidr-mask-size`, one per cluster CIDR (default `[24]`, `[24, 64]` for two). */
  nodeCidrMasks?: number[];
  /** Assign podCIDRs to Nodes that have none (default true). */
  allocateNodeCidrs?: boolean;
  /** Wait this long before assigning a new Node's podCIDRs (default 0). */
  cidrDelayMs?: number;
  /** Watch events kept for resuming watches (default 1000); older versions are 410 Gone. */
  maxEvents?: number;
  /** Period of BOOKMARK events to watches that allow them (default 10 s; a real apiserver: ~1 min). */
  bookmarkIntervalMs?: number;
  /** A watch without timeoutSeconds ends after this long (default 1800 s). */
  defaultWatchTimeoutSeconds?: number;
  /** The admin's bearer token (system:masters); default random. */
  adminToken?: string;
  /** Request log lines (method, path, code, user); off by default. */
  log?: (line: string) => void;
}

/** The options a ready server was started with, defaults filled in. */
type Resolved = Required<Omit<KubeApiServerOptions, "log" | "adminToken">> & Pick<KubeApiServerOptions, "log">;

export class KubeApiServer {
  readonly store: ObjectStore;
  readonly auth = new Authenticator();
  readonly adminToken: string;
  /** The CA that signed the serving certificate (PEM): what a client trusts. */
  readonly caCert: string;
  private readonly pki = new TestPki();
  private readonly watches = new WatchRegistry();
  private readonly allocator: PodCidrAllocator;
  private readonly timers = new Set<ReturnType<typeof setTimeout>>();
  private readonly sockets = new Set<Socket>();
  private readonly http: http.Server;
  private tls: tls.Server | undefined;
  private readonly serving: CertPair;
  private readonly opts: Resolved;
  private boundPort = 0;
  private unsubscribe: () => void = () => {};

  private constructor(options: KubeApiServerOptions) {
    const clusterCidrs = options.clusterCidrs ?? ["10.244.0.0/16"];
    this.opts = {
      host: options.host ?? "127.0.0.1", port: options.port ?? 0, nodes: options.nodes ?? [], clusterCidrs,
      nodeCidrMasks: options.nodeCidrMasks ?? (clusterCidrs.length === 2 ? [24, 64] : [24]),
      allocateNodeCidrs: options.allocateNodeCidrs ?? true, cidrDelayMs: options.cidrDelayMs ?? 0,
      maxEvents: options.maxEvents ?? 1000, bookmarkIntervalMs: options.bookmarkIntervalMs ?? 10_000,
      defaultWatchTimeoutSeconds: options.defaultWatchTimeoutSeconds ?? 1800, log: options.log,
    };
    this.store = new ObjectStore(this.opts.maxEvents);
    this.allocator = new PodCidrAllocator(this.opts.clusterCidrs, this.opts.nodeCidrMasks);
    this.adminToken = this.auth.addToken({ name: "kubernetes-admin", groups: ["system:masters"] }, undefined, options.adminToken ?? randomBytes(24).toString("base64url"));
    this.caCert = this.pki.caCert;
    this.serving = this.pki.serverCert([this.opts.host]);
    this.http = http.createServer((req, res) => {
      void serveApi({
        store: this.store, auth: this.auth, watches: this.watches, serverAddress: () => this.address,
        bookmarkIntervalMs: this.opts.bookmarkIntervalMs, defaultWatchTimeoutSeconds: this.opts.defaultWatchTimeoutSeconds,
        admin: (action, body) => runAdminAction(this, action, body),
        ...(this.opts.log ? { log: this.opts.log } : {}),
      }, req, res, certUsers.get(req.socket));
    });
    this.unsubscribe = this.store.subscribe((e) => {
      if (e.resource !== "nodes") return;
      const cidrs = (o: KubeObject) => ((o.spec as { podCIDRs?: string[] } | undefined)?.podCIDRs ?? []);
      if (e.type === "DELETED") this.allocator.release(cidrs(e.object));
      else if (cidrs(e.object).length > 0) this.allocator.occupy(cidrs(e.object));
      else if (e.type === "ADDED") this.scheduleCidrs(e.object.metadata.name);
    });
  }

  /**
   * Starts a server: certificates made, Nodes registered (and given podCIDRs), listening.
   *
   * @example
   *   const api = await KubeApiServer.start({ nodes: ["h1", "h2"] });
   *   await fetch(`${api.url}/api/v1/nodes`, { headers: { authorization: `Bearer ${api.adminToken}` }, tls: { ca: api.caCert } });
   *   await api.stop();
   */
  static async start(options: KubeApiServerOptions = {}): Promise<KubeApiServer> {
    const server = new KubeApiServer(options);
    try {
      for (const name of server.opts.nodes) server.addNode(name);
      await server.startListener();
    } catch (e) {
      await server.stop();
      throw e;
    }
    return server;
  }

  /** `host:port` as clients dial it (IPv6 in brackets). */
  get address(): string {
    return `${this.opts.host.includes(":") ? `[${this.opts.host}]` : this.opts.host}:${this.boundPort}`;
  }
  get url(): string { return `https://${this.address}`; }
  get port(): number { return this.boundPort; }
  get host(): string { return this.opts.host; }
  /** Live watch streams (a test can wait for a client to be watching). */
  get watchCount(): number { return this.watches.size; }

  // ------------------------------------------------------------------ objects

  /**
   * Registers a Node as a kubelet would. Unless `podCIDRs` are given, the node IPAM controller
   * assigns them afterwards (a MODIFIED event, after `cidrDelayMs`; never when
   * `allocateNodeCidrs` is false: then `assignPodCidrs`), as in a real cluster.
   */
  addNode(name: string, opts: Parameters<typeof registeredNode>[1] = {}): KubeObject {
    return this.store.create("nodes", prepareNodeCreate(registeredNode(name, opts)));
  }

  /** Creates a Node from a full object (as POST /api/v1/nodes). */
  createNode(node: KubeObject): KubeObject {
    return this.store.create("nodes", prepareNodeCreate(node));
  }

  getNode(name: string): KubeObject | undefined {
    return this.store.get("nodes", name);
  }

  nodes(): KubeObject[] {
    return this.store.snapshot("nodes").map((e) => e.object);
  }

  deleteNode(name: string): KubeObject {
    return this.store.delete("nodes", name);
  }

  /**
   * Patches a Node as PATCH /api/v1/nodes/{name}[/status] does (type: "strategic" (default),
   * "merge" or "json"), with the same status-subresource rules.
   */
  patchNode(name: string, patch: unknown, opts: { type?: "strategic" | "merge" | "json"; subresource?: "" | "status" } = {}): KubeObject {
    const type = { strategic: "application/strategic-merge-patch+json", merge: "application/merge-patch+json", json: "application/json-patch+json" }[opts.type ?? "strategic"];
    const old = this.store.mustGet("nodes", name);
    return this.store.update("nodes", prepareNodeUpdate(old, applyPatch(old, JSON.stringify(patch), type), opts.subresource ?? ""));
  }

  /**
   * Resolves once these Nodes (default: all) have podCIDRs, i.e. the node IPAM controller has
   * run for them (after `cidrDelayMs`). Never resolves for a Node that will get none.
   */
  async podCidrsAssigned(names?: string[]): Promise<void> {
    const done = () => (names ?? this.nodes().map((n) => n.metadata.name)).every((n) => ((this.getNode(n)?.spec as { podCIDRs?: string[] } | undefined)?.podCIDRs?.length ?? 0) > 0);
    if (done()) return;
    await new Promise<void>((resolve) => {
      const stop = this.store.subscribe(() => { if (done()) { stop(); resolve(); } });
    });
  }

  /** Sets a Node's podCIDRs now (the node IPAM controller's write), allocated when not given. */
  assignPodCidrs(name: string, cidrs?: string[]): KubeObject {
    const node = this.store.mustGet("nodes", name);
    const spec = (node.spec ?? {}) as { podCIDRs?: string[] };
    if (spec.podCIDRs?.length) return node;
    const chosen = cidrs ?? this.allocator.allocate();
    return this.store.update("nodes", prepareNodeUpdate(node, { ...node, spec: { ...spec, podCIDR: chosen[0], podCIDRs: chosen } }, ""));
  }

  /** Stores a Pod (only what flannel reads: its name, namespace and spec.nodeName). */
  addPod(namespace: string, name: string, nodeName: string): KubeObject {
    return this.store.create("pods", { apiVersion: "v1", kind: "Pod", metadata: { name, namespace }, spec: { nodeName }, status: { phase: "Running" } });
  }

  deletePod(namespace: string, name: string): void {
    this.store.delete("pods", name, namespace);
  }

  // ------------------------------------------------------------------ identities

  /** A bearer token for `user` (a name, or name and groups) with these rules (none: nothing, unless in system:masters). */
  addToken(user: string | KubeUser, rules: readonly AccessRule[] = []): string {
    return this.auth.addToken(typeof user === "string" ? { name: user, groups: [] } : user, rules);
  }

  /** A token for the service account `namespace/name` (user `system:serviceaccount:ns:name`). */
  addServiceAccountToken(namespace: string, name: string, rules: readonly AccessRule[]): string {
    return this.auth.addToken(serviceAccountUser(namespace, name), rules);
  }

  /** Replaces a token: the old one gets 401 from now on, the returned one works. */
  rotateToken(token: string): string {
    return this.auth.rotateToken(token);
  }

  revokeToken(token: string): void {
    this.auth.revokeToken(token);
  }

  /** Sets the rules of the user a token stands for (e.g. drop `patch` on `nodes/status`). */
  restrictToken(token: string, rules: readonly AccessRule[]): void {
    const user = this.auth.userOfToken(token);
    if (!user) throw new Error(`restrictToken: token ${token.slice(0, 6)}… is not known to this server`);
    this.auth.setRules(user.name, rules);
  }

  /** Sets the rules of a user by name (for client-certificate users). */
  setUserRules(userName: string, rules: readonly AccessRule[]): void {
    this.auth.setRules(userName, rules);
  }

  /** A client certificate this server accepts for `user` in `groups` (`system:masters`: admin). */
  clientCert(user: string, groups: string[] = []): CertPair {
    return this.pki.clientCert(user, groups);
  }

  /** A kubeconfig for this server (default: the admin token, CA inline). */
  kubeconfig(opts: Partial<Omit<KubeconfigOptions, "server" | "caCert">> = {}): string {
    const auth = opts.token || opts.tokenFile || opts.clientCert || opts.clientCertFile ? {} : { token: this.adminToken };
    return renderKubeconfig({ server: this.url, caCert: this.caCert, ...auth, ...opts });
  }

  /** A service account directory for `token` in `dir` (in-cluster mode); returns KUBERNETES_SERVICE_HOST/PORT. */
  writeServiceAccountDir(dir: string, token: string, namespace = "kube-flannel"): Record<string, string> {
    return writeServiceAccountDir(dir, { server: this.url, caCert: this.caCert, token, namespace });
  }

  writeKubeconfig(file: string, opts: Partial<Omit<KubeconfigOptions, "server" | "caCert">> = {}): void {
    writeFileSync(file, this.kubeconfig(opts), { mode: 0o600 });
  }

  // ------------------------------------------------------------------ history and watches

  /** Forgets history up to `rv` (default: all): watches and lists from older versions get 410. */
  compact(rv?: number): void {
    this.store.compact(rv);
  }

  /** Sends a BOOKMARK now to every watch that allows them. */
  bookmarkWatches(): void {
    this.watches.bookmarkAll();
  }

  /** Ends every watch stream cleanly (as a watch timeout does): clients re-watch. */
  endWatches(): void {
    this.watches.endAll();
  }

  // ------------------------------------------------------------------ listener

  /** Closes the listener and drops every connection at once (an outage; the state stays). */
  async stopListener(): Promise<void> {
    const server = this.tls;
    if (!server) return;
    this.tls = undefined;
    this.watches.endAll();
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const s of this.sockets) s.destroy();
    this.sockets.clear();
    await closed;
  }

  /** Listens again, on the same port as before (the first call picks it). */
  async startListener(): Promise<void> {
    if (this.tls) return;
    const server = tls.createServer({ key: this.serving.key, cert: this.serving.cert, ca: this.caCert, requestCert: true, rejectUnauthorized: false }, (socket) => {
      this.sockets.add(socket);
      socket.on("close", () => this.sockets.delete(socket));
      socket.on("error", () => socket.destroy());
      // A client certificate names the user only when this server's CA signed it.
      const cert = socket.getPeerCertificate();
      const cn = cert?.subject?.CN as string | string[] | undefined;
      if (cert?.subject && !socket.authorized) certUsers.set(socket, "untrusted");
      else if (cn) {
        const o = cert.subject.O as string | string[] | undefined;
        certUsers.set(socket, { name: Array.isArray(cn) ? cn[0]! : cn, groups: o === undefined ? [] : Array.isArray(o) ? o : [o] });
      }
      this.http.emit("connection", socket);
    });
    server.on("tlsClientError", () => {});
    await new Promise<void>((resolve, reject) => {
      server.once("error", reject);
      server.listen(this.boundPort || this.opts.port, this.opts.host, () => resolve());
    });
    this.boundPort = (server.address() as { port: number }).port;
    this.tls = server;
  }

  /** Stops everything and removes the certificates' temp dir. */
  async stop(): Promise<void> {
    this.unsubscribe();
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    await this.stopListener();
    try { this.http.close(); } catch { /* never listened itself: connections came from the TLS server */ }
    this.pki.remove();
  }

  private scheduleCidrs(name: string): void {
    if (!this.opts.allocateNodeCidrs) return;
    const assign = () => {
      const node = this.store.get("nodes", name);
      if (node && !((node.spec as { podCIDRs?: string[] } | undefined)?.podCIDRs?.length)) this.assignPodCidrs(name);
    };
    if (this.opts.cidrDelayMs <= 0) return queueMicrotask(assign);
    const t = setTimeout(() => { this.timers.delete(t); assign(); }, this.opts.cidrDelayMs);
    this.timers.add(t);
  }
}

/** The user each TLS connection's client certificate names ("untrusted": not signed by our CA). */
const certUsers = new WeakMap<object, KubeUser | "untrusted">();
