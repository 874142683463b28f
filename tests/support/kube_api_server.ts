/**
 * @module A small, faithful Kubernetes API server for weft's tests and demo: the subset of
 * kube-apiserver (plus the node IPAM controller) that flannel's kube subnet manager and kubectl
 * use. Not a mock: clients talk HTTPS to it and get the real protocol's answers.
 *
 * What it serves (files under tests/support/kube/, one concept each):
 * - HTTPS with its own CA (`pki.ts`); bearer tokens and client certificates (CN user, O groups);
 *   401 for an unknown token, 403 with RBAC's wording for a verb a user's rules lack (`auth.ts`);
 *   every error a `Status` object (`status.ts`).
 * - `/version`, `/api`, `/apis`, `/api/v1` discovery (`discovery.ts`); `/healthz`, `/livez`, `/readyz`.
 * - `/api/v1/nodes`: GET one, LIST (`resourceVersion`, `resourceVersionMatch`, `limit`/`continue`,
 *   `fieldSelector`, `labelSelector`; `list.ts`), WATCH (`watch=true` or `/api/v1/watch/nodes`;
 *   `allowWatchBookmarks`, `timeoutSeconds`, `sendInitialEvents`; 410 Gone as an ERROR event;
 *   `watch.ts`), POST, PUT, DELETE, PATCH of `nodes/{name}` and `nodes/{name}/status` with
 *   strategic-merge, merge and JSON patch (`strategic_merge.ts`, `merge_patch.ts`,
 *   `json_patch.ts`) and the node registry's rules (`node_strategy.ts`: `nodes/{name}` keeps the
 *   status, `nodes/{name}/status` keeps the spec but applies metadata; podCIDR set once).
 * - `/api/v1/namespaces/{ns}/pods/{name}` GET (and create, delete, list, watch).
 * - `kubectl get` tables for Nodes (`table.ts`).
 * - The node IPAM controller: podCIDRs from `--cluster-cidr`/`--node-cidr-mask`
 *   (`cidr_allocator.ts`), for every Node without them, now or after `--cidr-delay-ms`.
 * - Test controls under `/_test/…` for the admin (`test_admin.ts`), so a server running as a
 *   process (e.g. inside a network namespace) can be driven like the in-process one:
 *   `KubeApiProcess` (`process.ts`) starts it so and has the same methods, async.
 *
 * From the command line (runs until killed; writes FILE once it listens):
 *
 *   bun tests/support/kube_api_server.ts --listen 127.0.0.1:6443 --nodes h1,h2,h3 \
 *     --cluster-cidr 10.244.0.0/16 --node-cidr-mask 24 --kubeconfig /tmp/kubeconfig
 *   # dual-stack: --cluster-cidr 10.244.0.0/16,fd00:10:244::/56 --node-cidr-mask 24,64
 *   # also: --cidr-delay-ms N, --allocate-node-cidrs=false, --max-events N,
 *   #       --bookmark-interval-ms N, --admin-token T, --log
 *   # SIGTERM stops it (and removes its temp dir).
 *   kubectl --kubeconfig /tmp/kubeconfig get nodes
 *
 * In a test (in-process):
 *
 * @example
 *   import { KubeApiServer } from "../support/kube_api_server.ts";
 *   import { KUBE_API_ACCESS } from "../../src/kube/access.ts";
 *   const api = await KubeApiServer.start({ nodes: ["h1", "h2"] });
 *   await api.podCidrsAssigned();                                   // the node IPAM controller ran
 *   api.writeKubeconfig(file);                                      // admin token, CA inline
 *   const token = api.addServiceAccountToken("kube-flannel", "flannel", KUBE_API_ACCESS);
 *   api.writeKubeconfig(file2, { token });                          // what the DaemonSet's account may do
 *   const env = api.writeServiceAccountDir(saDir, token);           // in-cluster: token, ca.crt, namespace + env
 *   api.addPod("kube-flannel", "kube-flannel-ds-abcde", "h1");      // for POD_NAME/POD_NAMESPACE
 *   api.addNode("h3");  api.deleteNode("h2");                       // ADDED / DELETED to watchers
 *   api.patchNode("h1", { metadata: { annotations: { a: "b" } } }, { subresource: "status" });
 *   api.restrictToken(token, [{ resource: "nodes", verbs: ["get", "list", "watch"] }]); // 403 on patch
 *   const next = api.rotateToken(token);                            // old token: 401
 *   api.compact(); api.endWatches();                                // clients re-watch from their version: ERROR 410, re-list
 *   await api.stopListener(); await api.startListener();            // an outage, same port, same state
 *   await api.stop();
 *
 * Fidelity notes (where a real kube-apiserver differs): one API group (core/v1) only; no
 * server-side apply (415); `$setElementOrder` simplified (strategic_merge.ts); LIST with
 * resourceVersion=0 honours `limit` (a watch-cache apiserver may ignore it); bookmarks every
 * `bookmarkIntervalMs` (10 s; real: about a minute).
 */
import { KubeApiServer, type KubeApiServerOptions } from "./kube/server.ts";

export { KubeApiServer, type KubeApiServerOptions } from "./kube/server.ts";
export { KubeApiProcess, type KubeApiProcessOptions } from "./kube/process.ts";
export { type AccessRule, type KubeUser, serviceAccountUser } from "./kube/auth.ts";
export { type KubeconfigOptions, renderKubeconfig, writeServiceAccountDir } from "./kube/kubeconfig.ts";
export type { KubeObject, ObjectMeta } from "./kube/store.ts";
export type { KubeStatus } from "./kube/status.ts";
export type { CertPair } from "./kube/pki.ts";

const USAGE = "usage: bun tests/support/kube_api_server.ts --listen ADDR:PORT [--nodes h1,h2] [--cluster-cidr CIDR[,CIDR6]] [--node-cidr-mask N[,N6]] [--kubeconfig FILE] [--cidr-delay-ms N] [--allocate-node-cidrs=false] [--max-events N] [--bookmark-interval-ms N] [--admin-token T] [--log]";

/** The command line's options (throws a RangeError naming the flag and value on bad input). */
export function parseServerArgs(argv: string[]): { options: KubeApiServerOptions; kubeconfig?: string } {
  const values = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const m = /^--?([\w-]+)(?:=(.*))?$/.exec(argv[i]!);
    if (!m) throw new RangeError(`unexpected argument ${JSON.stringify(argv[i])}\n${USAGE}`);
    const [name, inline] = [m[1]!, m[2]];
    if (inline !== undefined) values.set(name, inline);
    else if (name === "log") values.set(name, "true");
    else if (i + 1 < argv.length) values.set(name, argv[++i]!);
    else throw new RangeError(`flag --${name} needs a value\n${USAGE}`);
  }
  const known = ["listen", "nodes", "cluster-cidr", "node-cidr-mask", "kubeconfig", "cidr-delay-ms", "allocate-node-cidrs", "max-events", "bookmark-interval-ms", "admin-token", "log"];
  for (const k of values.keys()) if (!known.includes(k)) throw new RangeError(`unknown flag --${k}\n${USAGE}`);
  const int = (name: string, min: number) => {
    const v = values.get(name);
    if (v === undefined) return undefined;
    if (!/^\d+$/.test(v) || Number(v) < min) throw new RangeError(`--${name} ${JSON.stringify(v)} must be an integer ≥ ${min}`);
    return Number(v);
  };
  const listen = values.get("listen");
  if (!listen) throw new RangeError(`--listen ADDR:PORT is required\n${USAGE}`);
  const lm = /^\[?([^\]]+?)\]?:(\d+)$/.exec(listen);
  if (!lm || Number(lm[2]) > 65535) throw new RangeError(`--listen ${JSON.stringify(listen)} must be ADDR:PORT (e.g. 127.0.0.1:6443, [::1]:6443)`);
  const masks = values.get("node-cidr-mask")?.split(",").map((m) => {
    if (!/^\d+$/.test(m)) throw new RangeError(`--node-cidr-mask ${JSON.stringify(values.get("node-cidr-mask"))}: ${JSON.stringify(m)} is not a prefix length`);
    return Number(m);
  });
  const allocate = values.get("allocate-node-cidrs");
  if (allocate !== undefined && allocate !== "true" && allocate !== "false") throw new RangeError(`--allocate-node-cidrs ${JSON.stringify(allocate)} must be true or false`);
  const options: KubeApiServerOptions = {
    host: lm[1]!, port: Number(lm[2]),
    nodes: values.get("nodes")?.split(",").filter(Boolean) ?? [],
    ...(values.has("cluster-cidr") ? { clusterCidrs: values.get("cluster-cidr")!.split(",") } : {}),
    ...(masks ? { nodeCidrMasks: masks } : {}),
    ...(allocate !== undefined ? { allocateNodeCidrs: allocate === "true" } : {}),
    ...(int("cidr-delay-ms", 0) !== undefined ? { cidrDelayMs: int("cidr-delay-ms", 0)! } : {}),
    ...(int("max-events", 1) !== undefined ? { maxEvents: int("max-events", 1)! } : {}),
    ...(int("bookmark-interval-ms", 1) !== undefined ? { bookmarkIntervalMs: int("bookmark-interval-ms", 1)! } : {}),
    ...(values.has("admin-token") ? { adminToken: values.get("admin-token")! } : {}),
    ...(values.get("log") === "true" ? { log: (line: string) => console.error(line) } : {}),
  };
  return { options, ...(values.has("kubeconfig") ? { kubeconfig: values.get("kubeconfig")! } : {}) };
}

if (import.meta.main) {
  let parsed: ReturnType<typeof parseServerArgs>;
  try {
    parsed = parseServerArgs(process.argv.slice(2));
  } catch (e) {
    console.error(`kube_api_server: ${(e as Error).message}`);
    process.exit(2);
  }
  // Signal handlers first, so a SIGTERM while the certificates are being made still ends cleanly.
  // (Signal this process itself: node_modules/.bin/bun is a launcher that runs bun as a child.)
  let api: KubeApiServer | undefined;
  let stopping = false;
  const shutdown = () => {
    if (stopping) return;
    stopping = true;
    void (api?.stop() ?? Promise.resolve()).catch((e: Error) => console.error(`kube_api_server: stop: ${e.message}`)).finally(() => process.exit(0));
  };
  process.on("SIGTERM", shutdown);
  process.on("SIGINT", shutdown);
  // Run until killed, also through an outage when nothing else keeps the event loop busy.
  setInterval(() => {}, 1 << 30);
  api = await KubeApiServer.start(parsed.options).catch((e: Error) => {
    console.error(`kube_api_server: cannot start: ${e.message}`);
    process.exit(1);
  });
  if (parsed.kubeconfig) api.writeKubeconfig(parsed.kubeconfig);
  console.log(`kube_api_server: serving ${api.url} (nodes: ${api.nodes().map((n) => n.metadata.name).join(",") || "none"})${parsed.kubeconfig ? `; kubeconfig ${parsed.kubeconfig}` : ""}`);
}
