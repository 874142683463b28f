/**
 * @module The test API server checked against a real client: kubectl (Debian's
 * `kubernetes-client`, or `$KUBECTL`) against the server started from its command line exactly
 * as documented: `get nodes` (server-side table), `get nodes --watch` seeing ADDED, MODIFIED and
 * DELETED, `annotate`, `label`, `patch` with the three patch types, `patch --subresource=status`
 * (kubectl ≥ 1.24; Debian bookworm's 1.20 has no such flag and the case says so), a kubeconfig
 * with a client certificate, and a 403 as kubectl prints it. `create` runs with `--validate=false`:
 * the server serves no OpenAPI document (kubectl ≥ 1.27 refuses to create without one).
 */
import { afterAll, beforeAll, describe, expect, test } from "bun:test";
import { type ChildProcess, spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parse } from "yaml";
import { renderKubeconfig } from "../support/kube_api_server.ts";

const KUBECTL = process.env.KUBECTL ?? "kubectl";
const SERVER = join(import.meta.dir, "..", "support", "kube_api_server.ts");
const dir = mkdtempSync(join(tmpdir(), "weft-kubectl-"));
const kubeconfig = join(dir, "kubeconfig");
let server: ChildProcess;
let serverLog = "";
let url = "", ca = "", adminToken = "";

/** Runs kubectl against the server (fresh discovery cache); stdout, stderr and exit code. */
async function kubectl(args: string[], config = kubeconfig): Promise<{ out: string; err: string; code: number | null }> {
  const child = spawn(KUBECTL, ["--kubeconfig", config, "--cache-dir", join(dir, "cache"), "--request-timeout=20s", ...args], { stdio: ["ignore", "pipe", "pipe"] });
  let out = "", err = "";
  child.stdout!.on("data", (d) => { out += d; });
  child.stderr!.on("data", (d) => { err += d; });
  const code = await new Promise<number | null>((resolve) => child.on("close", resolve));
  return { out, err, code };
}
async function ok(args: string[], config?: string): Promise<string> {
  const r = await kubectl(args, config);
  if (r.code !== 0) throw new Error(`kubectl ${args.join(" ")} exited ${r.code}: ${r.err}\nserver log:\n${serverLog.slice(-2000)}`);
  return r.out;
}
const jsonpath = (name: string, path: string) => ok(["get", "node", name, "-o", `jsonpath={${path}}`]);
const node = async (name: string): Promise<any> => JSON.parse(await ok(["get", "node", name, "-o", "json"]));

/** Waits until `cond` holds, failing (not timing) after a generous deadline. */
async function until(what: string, cond: () => boolean | Promise<boolean>, deadlineMs = 30_000): Promise<void> {
  const end = Date.now() + deadlineMs;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`gave up waiting for ${what}\nserver log:\n${serverLog.slice(-2000)}`);
    await Bun.sleep(20);
  }
}

beforeAll(async () => {
  const v = spawnSync(KUBECTL, ["version", "--client"], { encoding: "utf8" });
  if (v.status !== 0) throw new Error(`${KUBECTL} is needed (Debian: apt-get install -y kubernetes-client; or set KUBECTL): ${v.stderr || v.error}`);
  // Exactly the documented command line (port 0: a free one; the kubeconfig names it).
  server = spawn(process.execPath, [SERVER, "--listen", "127.0.0.1:0", "--nodes", "h1,h2,h3", "--cluster-cidr", "10.244.0.0/16", "--node-cidr-mask", "24", "--kubeconfig", kubeconfig, "--log"], { stdio: ["ignore", "pipe", "pipe"] });
  server.stdout!.on("data", (d) => { serverLog += d; });
  server.stderr!.on("data", (d) => { serverLog += d; });
  await until("the kubeconfig", () => existsSync(kubeconfig));
  const cfg = parse(readFileSync(kubeconfig, "utf8"));
  url = cfg.clusters[0].cluster.server;
  ca = Buffer.from(cfg.clusters[0].cluster["certificate-authority-data"], "base64").toString();
  adminToken = cfg.users[0].user.token;
});

afterAll(async () => {
  if (server && server.exitCode === null) {
    const exited = new Promise((r) => server.once("exit", r));
    server.kill("SIGTERM");
    await exited;
  }
  rmSync(dir, { recursive: true, force: true });
});

/** POST /_test/<action> as the admin. */
async function control(action: string, body: unknown): Promise<any> {
  const res = await fetch(`${url}/_test/${action}`, { method: "POST", headers: { authorization: `Bearer ${adminToken}`, "content-type": "application/json" }, body: JSON.stringify(body), tls: { ca } });
  return res.json();
}

describe(`kubectl (${KUBECTL})`, () => {
  test("the command line wrote a kubeconfig with the server URL, CA data and an admin token", async () => {
    expect(url).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(ca).toContain("BEGIN CERTIFICATE");
    expect(adminToken.length).toBeGreaterThan(20);
    expect(await ok(["version", "-o", "json"])).toContain('"gitVersion": "v1.28.15"');
  });

  test("get nodes: the server's table, and the podCIDRs the node IPAM controller assigned", async () => {
    await until("podCIDRs", async () => (await jsonpath("h3", ".spec.podCIDR")) !== "");
    const lines = (await ok(["get", "nodes"])).trim().split("\n").map((l: string) => l.split(/\s+/));
    expect(lines[0]).toEqual(["NAME", "STATUS", "ROLES", "AGE", "VERSION"]);
    expect(lines.slice(1).map((l) => [l[0], l[1], l[2], l[4]])).toEqual([["h1", "Ready", "<none>", "v1.28.15"], ["h2", "Ready", "<none>", "v1.28.15"], ["h3", "Ready", "<none>", "v1.28.15"]]);
    expect(await ok(["get", "nodes", "-o", "jsonpath={.items[*].spec.podCIDR}"])).toBe("10.244.0.0/24 10.244.1.0/24 10.244.2.0/24");
    expect((await ok(["get", "no", "h2", "-o", "name"])).trim()).toBe("node/h2");
    expect(JSON.parse(await ok(["get", "--raw", "/api/v1/nodes/h1"])).metadata.name).toBe("h1");
  });

  test("get nodes --watch sees a node annotated (MODIFIED), created (ADDED) and deleted (DELETED)", async () => {
    const w = spawn(KUBECTL, ["--kubeconfig", kubeconfig, "--cache-dir", join(dir, "cache"), "get", "nodes", "--watch", "--output-watch-events"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    w.stdout!.on("data", (d) => { out += d; });
    w.stderr!.on("data", (d) => { out += d; });
    const events = () => out.split("\n").filter((l) => /^(ADDED|MODIFIED|DELETED)\s/.test(l)).map((l) => l.split(/\s+/).slice(0, 2).join(" "));
    try {
      await until("the initial ADDED events", () => events().length >= 3);
      await ok(["annotate", "node", "h1", "weft.example/watched=yes"]);
      await until("MODIFIED h1", () => events().includes("MODIFIED h1"));
      await control("tokens", { user: "noop", rules: [] }); // no Node change: no event
      const node = join(dir, "h9.json");
      writeFileSync(node, JSON.stringify({ apiVersion: "v1", kind: "Node", metadata: { name: "h9" } }));
      // The server serves no OpenAPI document: kubectl's client-side schema check must be off.
      await ok(["create", "--validate=false", "-f", node]);
      await until("ADDED h9", () => events().includes("ADDED h9"));
      await ok(["delete", "node", "h9"]);
      await until("DELETED h9", () => events().includes("DELETED h9"));
      expect(events().slice(0, 4)).toEqual(["ADDED h1", "ADDED h2", "ADDED h3", "MODIFIED h1"]);
      expect(events()).toContain("MODIFIED h9"); // the podCIDR assignment
    } finally {
      w.kill();
    }
  });

  test("annotate and label: set, overwrite (refused without --overwrite), remove", async () => {
    await ok(["annotate", "node", "h1", "flannel.alpha.coreos.com/public-ip=10.0.0.1"]);
    expect((await kubectl(["annotate", "node", "h1", "flannel.alpha.coreos.com/public-ip=10.0.0.2"])).code).not.toBe(0);
    await ok(["annotate", "--overwrite", "node", "h1", "flannel.alpha.coreos.com/public-ip=10.0.0.2"]);
    expect((await node("h1")).metadata.annotations["flannel.alpha.coreos.com/public-ip"]).toBe("10.0.0.2");
    await ok(["annotate", "node", "h1", "flannel.alpha.coreos.com/public-ip-"]);
    await ok(["label", "node", "h2", "node-role.kubernetes.io/gw="]);
    expect((await node("h1")).metadata.annotations["flannel.alpha.coreos.com/public-ip"]).toBeUndefined();
    expect((await ok(["get", "node", "h2", "--no-headers"])).split(/\s+/)[2]).toBe("gw");
  });

  test("patch node with a strategic merge (default), a merge and a JSON patch", async () => {
    await ok(["patch", "node", "h2", "-p", '{"metadata":{"labels":{"smp":"1"}},"spec":{"podCIDRs":["10.244.1.0/24"]}}']);
    await ok(["patch", "node", "h2", "--type", "merge", "-p", '{"metadata":{"labels":{"merge":"2","smp":null}}}']);
    await ok(["patch", "node", "h2", "--type", "json", "-p", '[{"op":"add","path":"/metadata/labels/json","value":"3"}]']);
    const { labels } = (await node("h2")).metadata;
    expect([labels.smp, labels.merge, labels.json]).toEqual([undefined, "2", "3"]);
    const bad = await kubectl(["patch", "node", "h2", "--type", "json", "-p", '[{"op":"test","path":"/metadata/name","value":"nope"}]']);
    expect([bad.code, bad.err]).toEqual([1, expect.stringContaining("testing value /metadata/name failed")]);
  });

  const subresource = spawnSync(KUBECTL, ["patch", "--help"], { encoding: "utf8" }).stdout.includes("--subresource");
  test.skipIf(!subresource)("patch node --subresource=status: conditions merge by type, annotations apply, spec is ignored (kubectl ≥ 1.24)", async () => {
    await ok(["patch", "node", "h3", "--subresource=status", "-p",
      '{"metadata":{"annotations":{"flannel.alpha.coreos.com/kube-subnet-manager":"true"}},"spec":{"unschedulable":true},"status":{"conditions":[{"type":"NetworkUnavailable","status":"False","reason":"FlannelIsUp"}]}}']);
    const h3 = await node("h3");
    expect(h3.status.conditions.map((c: any) => c.type)).toEqual(["Ready", "NetworkUnavailable"]);
    expect(h3.metadata.annotations["flannel.alpha.coreos.com/kube-subnet-manager"]).toBe("true");
    expect(h3.spec.unschedulable).toBeUndefined();
  });

  test("a client-certificate kubeconfig works; a token without the verb gets kubectl's Forbidden line", async () => {
    const cert = await control("client-cert", { user: "kubectl-admin", groups: ["system:masters"] });
    const certConfig = join(dir, "cert.kubeconfig");
    writeFileSync(certConfig, renderKubeconfig({ server: url, caCert: ca, clientCert: cert }));
    expect((await ok(["get", "nodes", "-o", "name"], certConfig)).trim().split("\n")).toEqual(["node/h1", "node/h2", "node/h3"]);

    const { token } = await control("tokens", { user: "system:serviceaccount:kube-flannel:flannel", rules: [{ resource: "nodes", verbs: ["get", "list", "watch"] }] });
    const tokenConfig = join(dir, "ro.kubeconfig");
    writeFileSync(tokenConfig, renderKubeconfig({ server: url, caCert: ca, token }));
    expect(await ok(["get", "nodes", "-o", "name"], tokenConfig)).toContain("node/h1");
    const denied = await kubectl(["annotate", "node", "h1", "x=y"], tokenConfig);
    expect(denied.code).toBe(1);
    expect(denied.err.trim()).toBe('Error from server (Forbidden): nodes "h1" is forbidden: User "system:serviceaccount:kube-flannel:flannel" cannot patch resource "nodes" in API group "" at the cluster scope');
  });
});
