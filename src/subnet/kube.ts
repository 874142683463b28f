/**
 * @module The Kubernetes subnet manager (flannel's `pkg/subnet/kube`, compat §11): this host's
 * lease is its Node's `spec.podCIDR(s)`, advertised through the Node's annotations; the peers are
 * the other Nodes that carry `kube-subnet-manager: "true"` and a podCIDR. No etcd, no TTL, no
 * renewal.
 *
 *   1. networkConfig  — the Node's name (NODE_NAME, else the Pod's spec.nodeName), then
 *                       `--net-config-path` parsed as etcd mode parses `<prefix>/config`;
 *   2. storedPublicIP — `node-public-ip(v6)`; storedLease — our annotations (the VTEP MAC);
 *   3. acquireLease   — waits for the podCIDR (saying why it usually is missing), checks it lies
 *                       in Network, patches our annotations through `nodes/{name}/status`;
 *   4. run            — NetworkUnavailable=False, then list + watch all Nodes from the list's
 *                       resourceVersion; a watch that ends resumes from the last version seen,
 *                       one answered 410 Gone re-lists and diffs (diffLeases: no route flaps);
 *                       while the API server is away the data path stays as it is.
 */
import { readFile } from "node:fs/promises";
import { type NetworkConfig, parseNetworkConfig } from "../config/network.ts";
import { diffLeases } from "../lease/diff.ts";
import { WatchHealth } from "../lease/watch_health.ts";
import { type Lease, type LeaseEvent, leaseKey, sameAttrs, subnetKey } from "../lease/lease.ts";
import { sleep } from "../lease/manager.ts";
import type { Logger } from "../log.ts";
import type { Metrics } from "../status/metrics.ts";
import { containsV4Net, containsV6Net, formatIPv4Net, formatIPv6Net } from "../net/ip.ts";
import { KubeApiError, KubeClient } from "../kube/client.ts";
import { type KubeConfigInputs, resolveKubeClientConfig } from "../kube/kubeconfig.ts";
import type { KubeNode, WatchEvent } from "../kube/types.ts";
import { type KubeAnnotations, kubeAnnotations } from "./kube_annotations.ts";
import {
  type Families, NodeLeaseError, isKubeManaged, networkUnavailablePatch, nodePodCIDRs, nodeToLease, ownNodeUpdate,
  storedNodeAttrs, storedNodePublicIP,
} from "./kube_node.ts";
import {
  type AcquireRequest, LeaseAcquireError, type OwnLease, type PeerSink, type SourceHealth, type SubnetManager,
} from "./types.ts";
import { fileErrorReason } from "../file_error.ts";

export interface KubeSubnetManagerOptions {
  client: KubeClient;
  log: Logger;
  /** --kube-annotation-prefix. */
  annotationPrefix: string;
  /** --net-config-path. */
  netConfigPath: string;
  /** --set-node-network-unavailable. */
  setNodeNetworkUnavailable: boolean;
  /** NODE_NAME, else the Pod POD_NAMESPACE/POD_NAME's spec.nodeName. */
  nodeName?: string;
  pod?: { namespace: string; name: string };
  /** Poll interval while the config file, the Node or its podCIDR is missing, ms (1000). */
  retryMs?: number;
  /** The server ends each watch after this long (default: 5–10 min, random, as client-go). */
  watchTimeoutSeconds?: number;
  /** Counts API failures (`weft_errors_total{kind="kube"}`). */
  metrics?: Pick<Metrics, "error">;
}

/** The flags and environment kube mode reads (the names flanneld gives them). */
export interface KubeModeInputs {
  "kube-api-url": string;
  "kubeconfig-file": string;
  "kube-annotation-prefix": string;
  "net-config-path": string;
  "set-node-network-unavailable": boolean;
}

const MAX_BACKOFF_MS = 5000;

export class KubeSubnetManager implements SubnetManager {
  readonly kind = "kube" as const;
  readonly names: KubeAnnotations;
  #nodeName?: string;
  #config?: NetworkConfig;
  #lease?: OwnLease;
  /** Peer leases by Node name (ours excluded). */
  readonly #byNode = new Map<string, Lease>();
  /** The same leases by subnet key, as the sink and the status pages see them. */
  #peers = new Map<string, Lease>();
  #synced = false;
  /** Where peer changes go once run() is called; before, the informer only keeps the cache. */
  #sink?: PeerSink;
  #snapshotSent = false;
  /** Sink calls, one at a time and in order. */
  #queue: Promise<void> = Promise.resolve();
  #informerTask?: Promise<void>;
  /** The Node watch, as /status, /metrics and the dashboard show it (as etcd mode's lease watch). */
  readonly #watchHealth = new WatchHealth();
  /** Aborted by close(): the informer stops even if the caller's signal never fires. */
  readonly #closed = new AbortController();
  #error?: string;
  /** The last problem logged per Node, so a bad Node is logged once per change. */
  readonly #problems = new Map<string, string>();

  constructor(readonly opts: KubeSubnetManagerOptions) {
    this.names = kubeAnnotations(opts.annotationPrefix);
    this.#nodeName = opts.nodeName || undefined;
    if (!this.#nodeName && !opts.pod) {
      throw new Error("kube mode needs this Node's name: set NODE_NAME (kube-flannel.yml sets it from the Pod's spec.nodeName), " +
        "or POD_NAME and POD_NAMESPACE so it can be read from the Pod");
    }
  }

  /**
   * Builds the manager from flanneld's flags and environment: the client config as client-go
   * resolves it (kubeconfig.ts), the node name from NODE_NAME or POD_NAME/POD_NAMESPACE.
   * Throws KubeConfigError, or RangeError for a bad annotation prefix.
   */
  static fromFlags(f: KubeModeInputs, env: Record<string, string | undefined>, log: Logger,
    extra: Pick<KubeConfigInputs, "serviceAccountDir"> & Pick<KubeSubnetManagerOptions, "metrics"> = {}): KubeSubnetManager {
    const config = resolveKubeClientConfig({
      apiUrl: f["kube-api-url"], kubeconfigFile: f["kubeconfig-file"], env, warn: (m) => log.warn(m), serviceAccountDir: extra.serviceAccountDir,
    });
    log.info(`Kubernetes API ${config.server} (${config.source})`);
    return new KubeSubnetManager({
      client: new KubeClient(config), log,
      annotationPrefix: f["kube-annotation-prefix"], netConfigPath: f["net-config-path"],
      setNodeNetworkUnavailable: f["set-node-network-unavailable"],
      nodeName: env.NODE_NAME || undefined,
      pod: env.POD_NAME && env.POD_NAMESPACE ? { namespace: env.POD_NAMESPACE, name: env.POD_NAME } : undefined,
      metrics: extra.metrics,
    });
  }

  get lease(): OwnLease | undefined {
    return this.#lease;
  }

  get peers(): ReadonlyMap<string, Lease> {
    return this.#peers;
  }

  get peersSynced(): boolean {
    return this.#synced;
  }

  get health(): SourceHealth {
    return { kind: "kube", error: this.#error, watch: this.#config?.backendType === "alloc" ? undefined : this.#watchHealth };
  }

  /** The Node this agent runs on (known once networkConfig() resolved). */
  get nodeName(): string | undefined {
    return this.#nodeName;
  }

  /** No TTL in kube mode: a peer's lease lasts as long as its Node. */
  peerExpiration(): null {
    return null;
  }

  get #retryMs(): number {
    return this.opts.retryMs ?? 1000;
  }

  /** Notes a failed API call: health, and a log line when the error is new. */
  #failed(what: string, e: unknown): void {
    const msg = `${what}: ${(e as Error).message}`;
    if (msg !== this.#error) this.opts.log.warn(`${msg} (retrying)`);
    this.#error = msg;
    this.opts.metrics?.error("kube");
  }

  #ok(): void {
    if (this.#error) this.opts.log.info("Kubernetes API reachable again");
    this.#error = undefined;
  }

  /** Calls `fn` until it succeeds; a denial (401/403) or a non-API error is thrown. */
  async #retry<T>(what: string, fn: () => Promise<T>, signal: AbortSignal): Promise<T | undefined> {
    for (let wait = 200; !signal.aborted; wait = Math.min(wait * 2, MAX_BACKOFF_MS)) {
      try {
        const v = await fn();
        this.#ok();
        return v;
      } catch (e) {
        if (signal.aborted) return undefined;
        if ((e instanceof KubeApiError && (e.denied || e.code === 0)) || !isTransient(e)) throw e;
        this.#failed(what, e);
        await sleep(wait, signal);
      }
    }
    return undefined;
  }

  async networkConfig(signal: AbortSignal): Promise<NetworkConfig | undefined> {
    const { client, log, netConfigPath } = this.opts;
    if (!this.#nodeName) {
      const pod = this.opts.pod!;
      const p = await this.#retry(`reading Pod ${pod.namespace}/${pod.name} for its node name`, () => client.getPod(pod.namespace, pod.name, signal), signal);
      if (!p) return undefined;
      if (!p.spec?.nodeName) throw new Error(`Pod ${pod.namespace}/${pod.name} has no spec.nodeName (is it scheduled?); set NODE_NAME instead`);
      this.#nodeName = p.spec.nodeName;
    }
    log.info(`Kubernetes subnet manager for node ${JSON.stringify(this.#nodeName)}`);
    let said = "";
    while (!signal.aborted) {
      try {
        const config = parseNetworkConfig(await readFile(netConfigPath, "utf8"));
        this.#config = config;
        return config;
      } catch (e) {
        if ((e as NodeJS.ErrnoException).code === undefined) throw e; // invalid config: exit 1
        const why = fileErrorReason(e) + ((e as NodeJS.ErrnoException).code === "ENOENT" ? " (is the kube-flannel-cfg ConfigMap mounted there?)" : "");
        const msg = `cannot read the network config ${netConfigPath} (--net-config-path; the ConfigMap key net-conf.json): ${why}; waiting for it`;
        if (msg !== said) log.warn((said = msg));
        await sleep(this.#retryMs, signal);
      }
    }
    return undefined;
  }

  /** Our Node, or undefined when the API cannot be asked right now. */
  async #ownNode(): Promise<KubeNode | undefined> {
    try {
      return await this.opts.client.getNode(this.#nodeName!);
    } catch (e) {
      this.opts.log.warn(`cannot read node ${JSON.stringify(this.#nodeName)}: ${(e as Error).message}`);
      return undefined;
    }
  }

  async storedPublicIP(): Promise<{ publicIP?: number; publicIPv6?: bigint }> {
    const node = await this.#ownNode();
    if (!node) return {};
    const { problems, ...ips } = storedNodePublicIP(node, this.names);
    for (const p of problems) this.opts.log.warn(p);
    return ips;
  }

  async storedLease(): Promise<Lease | undefined> {
    const node = await this.#ownNode();
    const attrs = node && storedNodeAttrs(node, this.names);
    if (!node || !attrs) return undefined;
    let cidrs: ReturnType<typeof nodePodCIDRs> = {};
    try {
      cidrs = nodePodCIDRs(node);
    } catch {
      // the lease itself is checked in acquireLease
    }
    return { subnet: cidrs.v4, ipv6Subnet: cidrs.v6, attrs, expiration: null };
  }

  async acquireLease(req: AcquireRequest, signal: AbortSignal): Promise<OwnLease | undefined> {
    const { client, log } = this.opts;
    const name = this.#nodeName!;
    const config = req.config;
    // List + watch the Nodes from now on (flanneld syncs its informer before anything else), so
    // the peers are known when run() starts and the first routes follow subnet.env at once.
    this.#startInformer(signal);
    let said = "";
    const wait = async (msg: string) => {
      if (msg !== said) log.warn((said = msg));
      await sleep(this.#retryMs, signal);
    };
    const refuse = (e: unknown): never => {
      throw new LeaseAcquireError(`cannot acquire the lease of node ${JSON.stringify(name)}: ${(e as Error).message}`, { cause: e });
    };
    while (!signal.aborted) {
      let node: KubeNode | undefined;
      try {
        node = await this.#retry(`reading node ${JSON.stringify(name)}`, () => client.getNode(name, signal), signal);
      } catch (e) {
        if (e instanceof KubeApiError && e.code === 404) {
          await wait(`node ${JSON.stringify(name)} does not exist in the Kubernetes API (yet?); waiting for it. NODE_NAME must be the Node's name as 'kubectl get nodes' shows it`);
          continue;
        }
        refuse(e);
      }
      if (!node) return undefined;
      let cidrs: ReturnType<typeof nodePodCIDRs>;
      try {
        cidrs = nodePodCIDRs(node);
      } catch (e) {
        return refuse(e);
      }
      const missing = (config.enableIPv4 && !cidrs.v4 ? ["IPv4"] : []).concat(config.enableIPv6 && !cidrs.v6 ? ["IPv6"] : []);
      if (missing.length) {
        await wait(`node ${JSON.stringify(name)} has no ${missing.join(" and ")} podCIDR assigned yet (spec.podCIDR${config.enableIPv6 ? "s" : ""} is empty); waiting for it. ` +
          "Pod CIDRs are assigned by kube-controller-manager when it runs with --allocate-node-cidrs=true and --cluster-cidr " +
          "(kubeadm init --pod-network-cidr), or by whoever sets spec.podCIDR");
        continue;
      }
      if (config.enableIPv4 && !containsV4Net(config.network!, cidrs.v4!)) {
        refuse(new Error(`its podCIDR ${formatIPv4Net(cidrs.v4!)} is outside the Network ${formatIPv4Net(config.network!)} of ${this.opts.netConfigPath}: ` +
          "kube-controller-manager's --cluster-cidr and the Network in net-conf.json must agree"));
      }
      if (config.enableIPv6 && !containsV6Net(config.ipv6Network!, cidrs.v6!)) {
        refuse(new Error(`its IPv6 podCIDR ${formatIPv6Net(cidrs.v6!)} is outside the IPv6Network ${formatIPv6Net(config.ipv6Network!)} of ${this.opts.netConfigPath}: ` +
          "kube-controller-manager's --cluster-cidr and the IPv6Network in net-conf.json must agree"));
      }
      let update: ReturnType<typeof ownNodeUpdate>;
      try {
        update = ownNodeUpdate(node, this.names, req.attrs);
      } catch (e) {
        return refuse(e);
      }
      for (const n of update.notes) log.info(n);
      if (update.patch) {
        try {
          const ok = await this.#retry(`patching the annotations of node ${JSON.stringify(name)}`, () => client.patchNodeStatus(name, update.patch!, signal), signal);
          if (!ok) return undefined;
        } catch (e) {
          refuse(e);
        }
      }
      const subnet = config.enableIPv4 ? cidrs.v4 : undefined;
      const ipv6Subnet = config.enableIPv6 ? cidrs.v6 : undefined;
      this.#lease = { subnet, ipv6Subnet, attrs: update.advertised, expiration: null, key: subnetKey(subnet, ipv6Subnet) };
      log.info(`Lease of node ${JSON.stringify(name)}: podCIDR ${this.#lease.key}${update.patch ? ", annotations patched" : ", annotations already up to date"}`);
      return this.#lease;
    }
    return undefined;
  }

  async run(sink: PeerSink, signal: AbortSignal): Promise<void> {
    const tasks: Promise<void>[] = [];
    if (this.opts.setNodeNetworkUnavailable) tasks.push(this.#markNetworkAvailable(signal));
    this.#sink = sink;
    this.#startInformer(signal);
    if (this.#synced && !this.#snapshotSent) await this.#sendSnapshot();
    await Promise.all([...tasks, this.#informerTask]);
  }

  /** Starts list + watch once (none for alloc: someone else routes, flannel #1617). */
  #startInformer(signal: AbortSignal): void {
    if (this.#informerTask) return;
    if (this.#config?.backendType === "alloc") {
      this.#synced = true;
      this.#informerTask = new Promise((resolve) => {
        if (signal.aborted) return resolve();
        signal.addEventListener("abort", () => resolve(), { once: true });
      });
      return;
    }
    this.#informerTask = this.#informer(AbortSignal.any([signal, this.#closed.signal]));
    this.#informerTask.catch(() => {}); // awaited (and thrown) by run()
  }

  /** The first full view, to the sink (our own lease excluded now that it is known). */
  #sendSnapshot(): Promise<void> {
    this.#snapshotSent = true;
    this.#peers = this.#rebuildPeers();
    return this.#deliver((s) => s.snapshot(this.#peers));
  }

  /** Peer changes to the sink, once it has had the snapshot. */
  #publish(events: LeaseEvent[]): Promise<void> {
    if (!this.#snapshotSent || events.length === 0) return Promise.resolve();
    return this.#deliver((s) => s.events(events, this.#peers));
  }

  #deliver(call: (sink: PeerSink) => Promise<void>): Promise<void> {
    const p = this.#queue.then(() => call(this.#sink!));
    this.#queue = p.catch(() => {});
    return p;
  }

  /** flanneld's CompleteLease: NetworkUnavailable=False (FlannelIsUp); retried while the API is away. */
  async #markNetworkAvailable(signal: AbortSignal): Promise<void> {
    const name = this.#nodeName!;
    try {
      const ok = await this.#retry(`setting NetworkUnavailable=False on node ${JSON.stringify(name)}`,
        () => this.opts.client.patchNodeStatus(name, networkUnavailablePatch(Date.now()), signal), signal);
      if (ok) this.opts.log.info(`Node ${JSON.stringify(name)}: condition NetworkUnavailable=False (FlannelIsUp)`);
    } catch (e) {
      // flanneld logs this and runs on; so does weft (the data path works without it).
      this.opts.log.error(`cannot set NetworkUnavailable on node ${JSON.stringify(name)}: ${(e as Error).message}`);
    }
  }

  /**
   * List, then watch from the list's resourceVersion; resume a watch that ends from the last
   * version seen; re-list and diff on 410 Gone. Until the first list, a denial is fatal (wrong
   * RBAC: say so now); after it, every failure is retried and the data path kept.
   */
  async #informer(signal: AbortSignal): Promise<void> {
    let rv: string | undefined;
    for (let wait = 200; !signal.aborted;) {
      try {
        if (rv === undefined) rv = await this.#relist(signal);
        rv = await this.#watch(rv, signal, () => { wait = 200; this.#ok(); });
      } catch (e) {
        if (signal.aborted) return;
        if (e instanceof KubeApiError && (e.code === 410 || e.reason === "Expired" || e.reason === "Gone")) {
          this.opts.log.info(`watch of nodes answered ${e.code} ${e.reason} (resourceVersion ${rv} compacted): re-listing`);
          rv = undefined;
          continue;
        }
        this.#watchHealth.down(Date.now(), (e as Error).message);
        if (!this.#synced && e instanceof KubeApiError && (e.denied || e.code === 0)) throw e;
        this.#failed(`watching nodes at ${this.opts.client.config.server}`, e);
        await sleep(wait, signal);
        wait = Math.min(wait * 2, MAX_BACKOFF_MS);
      }
    }
  }

  /** Lists every Node (paged) and makes the peers match: a snapshot first, then diffs. */
  async #relist(signal: AbortSignal): Promise<string> {
    const nodes: KubeNode[] = [];
    let cont: string | undefined, rv = "";
    do {
      const page = await this.opts.client.listNodes({ limit: 500, continue: cont }, signal);
      nodes.push(...page.items);
      cont = page.metadata.continue || undefined;
      rv = page.metadata.resourceVersion ?? rv;
    } while (cont);
    this.#ok();
    const next = new Map<string, Lease>();
    for (const n of nodes) {
      const l = this.#leaseOf(n);
      if (l) next.set(n.metadata.name, l);
    }
    this.#byNode.clear();
    for (const [k, v] of next) this.#byNode.set(k, v);
    const peers = this.#rebuildPeers();
    if (!this.#synced) {
      this.#peers = peers;
      this.#synced = true;
      this.opts.log.info(`Listed ${nodes.length} nodes: ${peers.size} peer lease${peers.size === 1 ? "" : "s"}`);
      if (this.#sink && !this.#snapshotSent) await this.#sendSnapshot();
    } else {
      const events = diffLeases(this.#peers, [...peers.values()]);
      this.#peers = peers;
      await this.#publish(events);
    }
    return rv;
  }

  /** One watch; resolves with the last resourceVersion seen when the server ends it. */
  async #watch(from: string, signal: AbortSignal, onStarted: () => void): Promise<string> {
    let rv = from;
    const timeoutSeconds = this.opts.watchTimeoutSeconds ?? Math.floor(300 * (1 + Math.random()));
    let started = false;
    await this.opts.client.watchNodes({ resourceVersion: from, allowWatchBookmarks: true, timeoutSeconds }, async (batch) => {
      if (!started) { started = true; onStarted(); }
      const events: LeaseEvent[] = [];
      this.#watchHealth.response(Date.now(), batch.filter((ev) => ev.type !== "BOOKMARK").length);
      for (const ev of batch) {
        if (ev.type === "ERROR") throw watchError(ev);
        rv = ev.object.metadata?.resourceVersion ?? rv;
        if (ev.type === "BOOKMARK") continue;
        events.push(...this.#nodeChanged(ev));
      }
      if (events.length) {
        this.#peers = this.#rebuildPeers();
        await this.#publish(events);
      }
    }, signal, { onOpen: () => this.#watchHealth.up(Date.now(), new URL(this.opts.client.config.server).host) });
    return rv;
  }

  /** The lease events one Node event makes (none when nothing a peer needs changed). */
  #nodeChanged(ev: Exclude<WatchEvent, { type: "ERROR" | "BOOKMARK" }>): LeaseEvent[] {
    const name = ev.object.metadata.name;
    const prev = this.#byNode.get(name);
    const next = ev.type === "DELETED" ? undefined : this.#leaseOf(ev.object);
    if (ev.type === "DELETED") this.#problems.delete(name);
    if (next) this.#byNode.set(name, next);
    else this.#byNode.delete(name);
    if (!prev) return next ? [{ type: "added", lease: next }] : [];
    if (!next) return [{ type: "removed", lease: prev }];
    if (leaseKey(prev) !== leaseKey(next)) return [{ type: "removed", lease: prev }, { type: "added", lease: next }];
    // Every enabled family is compared (flanneld lets an unchanged v6 hide a v4 change: §12.16).
    return sameAttrs(prev.attrs, next.attrs) ? [] : [{ type: "added", lease: next }];
  }

  /**
   * A Node's peer lease: undefined for ours and for Nodes without `kube-subnet-manager: "true"`.
   * A Node whose podCIDR or annotations cannot be read keeps the lease it had (logged once).
   */
  #leaseOf(node: KubeNode): Lease | undefined {
    const name = node.metadata.name;
    if (name === this.#nodeName || !isKubeManaged(node, this.names)) {
      this.#problems.delete(name);
      return undefined;
    }
    const families: Families = { enableIPv4: this.#config?.enableIPv4 ?? true, enableIPv6: this.#config?.enableIPv6 ?? false };
    try {
      const l = nodeToLease(node, this.names, families);
      this.#problems.delete(name);
      return l;
    } catch (e) {
      if (!(e instanceof NodeLeaseError)) throw e;
      const prev = this.#byNode.get(name);
      if (this.#problems.get(name) !== e.message) {
        this.#problems.set(name, e.message);
        this.opts.log.warn(`${e.message}: ${prev ? "keeping its previous lease" : "not a peer until fixed"}`);
      }
      return prev;
    }
  }

  #rebuildPeers(): Map<string, Lease> {
    const own = this.#lease ? this.#lease.key : "";
    const out = new Map<string, Lease>();
    for (const l of this.#byNode.values()) {
      const k = leaseKey(l);
      if (k !== own) out.set(k, l);
    }
    return out;
  }

  async close(): Promise<void> {
    this.#closed.abort();
    await this.#informerTask?.catch(() => {});
    this.opts.client.close();
  }
}

/** A watch ERROR event as a KubeApiError (410 Gone → re-list). */
function watchError(ev: Extract<WatchEvent, { type: "ERROR" }>): KubeApiError {
  const s = ev.object;
  return new KubeApiError(s.code ?? 500, s.reason ?? "", "watch", "nodes", `watch of nodes ended with an error: ${s.code ?? ""} ${s.reason ?? ""}: ${s.message ?? ""}`);
}

/** Worth retrying: the API was unreachable, or answered 5xx/429/409 (it will recover). */
function isTransient(e: unknown): boolean {
  if (e instanceof KubeApiError) return e.code >= 500 || e.code === 429 || e.code === 409 || e.code === 410;
  return (e as Error)?.name === "KubeUnreachableError";
}
