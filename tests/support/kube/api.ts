/**
 * @module The HTTP face of the test API server: each request authenticated, turned into
 * RequestInfo-like attributes (verb, resource, subresource, name, namespace), authorized, then
 * served: discovery, Nodes (get, list, watch, create, update, patch, delete; `status`
 * subresource), Pods (get, list, watch, create, delete). Errors leave as `Status` objects with
 * their code. Served over node:http objects so the TLS edge (server.ts) can tell who a client
 * certificate names.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { type Authenticator, type KubeUser, type RequestAttributes } from "./auth.ts";
import { API_GROUP_LIST, CORE_V1_RESOURCES, VERSION, apiVersions } from "./discovery.ts";
import { applyJsonPatch } from "./json_patch.ts";
import { listObjects } from "./list.ts";
import { applyMergePatch } from "./merge_patch.ts";
import { prepareNodeCreate, prepareNodeUpdate } from "./node_strategy.ts";
import { parseFieldSelector } from "./selectors.ts";
import { ApiError, alreadyExists, badRequest, deleted, methodNotAllowed, pathNotFound, unprocessable, unsupportedMediaType } from "./status.ts";
import type { KubeObject, ObjectStore } from "./store.ts";
import { NODE_PATCH_SCHEMA, applyStrategicMergePatch } from "./strategic_merge.ts";
import { acceptedTableVersion, renderTable } from "./table.ts";
import { type WatchRegistry, type WatchSink, startWatch } from "./watch.ts";

/** What the handler needs from the server around it. */
export interface ApiContext {
  store: ObjectStore;
  auth: Authenticator;
  watches: WatchRegistry;
  /** `host:port` clients reach the server at (discovery's serverAddressByClientCIDRs). */
  serverAddress: () => string;
  bookmarkIntervalMs: number;
  defaultWatchTimeoutSeconds: number;
  /** `/_test/<action>` controls (test_admin.ts), when the server offers them. */
  admin?: (action: string, body: Record<string, unknown>) => Promise<unknown>;
  /** Called once per request after it is answered (a log line; optional). */
  log?: (line: string) => void;
}

/** A parsed resource path: `/api/v1[/namespaces/{ns}]/{resource}[/{name}[/{subresource}]]`. */
interface ResourcePath { resource: string; namespace?: string; name?: string; subresource: string; legacyWatch: boolean }

const KINDS: Record<string, { kind: string; namespaced: boolean }> = { nodes: { kind: "Node", namespaced: false }, pods: { kind: "Pod", namespaced: true } };

function parseResourcePath(path: string): ResourcePath | undefined {
  const m = /^\/api\/v1\/(watch\/)?(?:namespaces\/([^/]+)\/)?([^/]+)(?:\/([^/]+))?(?:\/([^/]+))?\/?$/.exec(path);
  if (!m) return undefined;
  return { legacyWatch: m[1] !== undefined, namespace: m[2] && decodeURIComponent(m[2]), resource: m[3]!, name: m[4] && decodeURIComponent(m[4]), subresource: m[5] ?? "" };
}

function attributesOf(method: string, path: string, rp: ResourcePath | undefined, query: URLSearchParams): RequestAttributes {
  const lower = method.toLowerCase();
  if (!rp) return { verb: lower === "head" ? "get" : lower, resource: "", subresource: "", path };
  const watch = rp.legacyWatch || ["true", "1"].includes(query.get("watch") ?? "");
  let name = rp.name;
  if (name === undefined && method === "GET") {
    try { name = parseFieldSelector(rp.resource, query.get("fieldSelector")).name; } catch { /* reported when served */ }
  }
  const verb = method === "GET" || method === "HEAD" ? (watch ? "watch" : rp.name !== undefined ? "get" : "list")
    : method === "POST" ? "create" : method === "PUT" ? "update" : method === "PATCH" ? "patch"
    : method === "DELETE" ? (rp.name !== undefined ? "delete" : "deletecollection") : lower;
  return { verb, resource: rp.resource, subresource: rp.subresource, ...(name !== undefined ? { name } : {}), ...(rp.namespace !== undefined ? { namespace: rp.namespace } : {}), path };
}

function writeJson(res: ServerResponse, code: number, body: unknown, contentType = "application/json"): void {
  const text = JSON.stringify(body);
  res.writeHead(code, { "Content-Type": contentType, "Content-Length": Buffer.byteLength(text), "Cache-Control": "no-cache, private" });
  res.end(text);
}

async function readBody(req: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of req) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString("utf8");
}

function parseJson(text: string, what: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    throw badRequest(`error decoding ${what}: ${(e as Error).message}`);
  }
}

/** Handles one request; never throws (errors become `Status` responses). */
export async function serveApi(ctx: ApiContext, req: IncomingMessage, res: ServerResponse, certUser: KubeUser | "untrusted" | undefined): Promise<void> {
  const url = new URL(req.url ?? "/", "https://server");
  const method = req.method ?? "GET";
  let user = "-";
  try {
    const who = ctx.auth.authenticate(req.headers.authorization, certUser);
    user = who.name;
    const rp = parseResourcePath(url.pathname);
    const attrs = attributesOf(method, url.pathname, rp, url.searchParams);
    ctx.auth.authorize(who, attrs);
    if (!rp && url.pathname.startsWith("/_test/") && ctx.admin) {
      if (method !== "POST") throw methodNotAllowed();
      const text = await readBody(req);
      const body = text.trim() === "" ? {} : parseJson(text, "the request body");
      if (typeof body !== "object" || body === null || Array.isArray(body)) throw badRequest("/_test: the body must be a JSON object");
      return writeJson(res, 200, await ctx.admin(url.pathname.slice("/_test/".length), body as Record<string, unknown>));
    }
    if (!rp) return serveNonResource(ctx, url.pathname, method, res);
    await serveResource(ctx, rp, attrs.verb, url.searchParams, req, res);
  } catch (e) {
    const status = e instanceof ApiError ? e.status : { kind: "Status", apiVersion: "v1", metadata: {}, status: "Failure", message: `internal error: ${(e as Error).message}`, reason: "InternalError", code: 500 };
    if (!res.headersSent) writeJson(res, status.code, status);
    else res.end();
  } finally {
    ctx.log?.(`${method} ${url.pathname}${url.search} ${res.statusCode} user=${user}`);
  }
}

function serveNonResource(ctx: ApiContext, path: string, method: string, res: ServerResponse): void {
  if (method !== "GET" && method !== "HEAD") throw methodNotAllowed();
  const p = path.replace(/\/$/, "") || "/";
  if (["/healthz", "/livez", "/readyz"].includes(p)) {
    res.writeHead(200, { "Content-Type": "text/plain; charset=utf-8" });
    res.end("ok");
    return;
  }
  // kubectl ≥ 1.26 asks for aggregated discovery first; a plain Content-Type tells it to fall back.
  const doc = p === "/version" ? VERSION : p === "/api" ? apiVersions(ctx.serverAddress()) : p === "/apis" ? API_GROUP_LIST : p === "/api/v1" ? CORE_V1_RESOURCES : undefined;
  if (!doc) throw pathNotFound();
  writeJson(res, 200, doc);
}

/** The object as the API returns it (kind and apiVersion set). */
function asApiObject(resource: string, o: KubeObject): KubeObject {
  return { ...o, kind: KINDS[resource]!.kind, apiVersion: "v1" };
}

/** An item of a list: the apiserver leaves kind and apiVersion to the list. */
function asListItem(o: KubeObject): KubeObject {
  const { kind: _k, apiVersion: _a, ...rest } = o;
  return rest as KubeObject;
}

async function serveResource(ctx: ApiContext, rp: ResourcePath, verb: string, query: URLSearchParams, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const kind = KINDS[rp.resource];
  // Pods live in a namespace (a list or watch may span all of them); Nodes in none.
  const inScope = kind && (kind.namespaced ? rp.namespace !== undefined || (rp.name === undefined && (verb === "list" || verb === "watch")) : rp.namespace === undefined);
  if (!kind || !inScope) throw pathNotFound();
  if (rp.subresource !== "" && !(rp.resource === "nodes" && rp.subresource === "status")) throw pathNotFound();
  const { store } = ctx;
  const ns = kind.namespaced ? rp.namespace : undefined;
  const table = acceptedTableVersion(req.headers.accept);
  // `dryRun=All` (kubectl --dry-run=server): everything up to the write, then no write.
  const dryRuns = query.getAll("dryRun");
  if (dryRuns.some((d) => d !== "All")) throw badRequest(`dryRun: Unsupported value: ${JSON.stringify(dryRuns.find((d) => d !== "All"))}: supported values: "All"`);
  const dryRun = dryRuns.length > 0;
  const render = (o: KubeObject) => (table ? renderTable(rp.resource, [o], table, query.get("includeObject")) : asApiObject(rp.resource, o));

  switch (verb) {
    case "get": {
      const o = store.mustGet(rp.resource, rp.name!, ns);
      return writeJson(res, 200, render(o));
    }
    case "list": {
      const list = listObjects(store, rp.resource, query, ns);
      if (table) return writeJson(res, 200, renderTable(rp.resource, list.items, table, query.get("includeObject"), list.metadata));
      return writeJson(res, 200, { kind: `${kind.kind}List`, apiVersion: "v1", metadata: list.metadata, items: list.items.map(asListItem) });
    }
    case "watch": {
      if (rp.name !== undefined) query.set("fieldSelector", [query.get("fieldSelector"), `metadata.name=${rp.name}`].filter(Boolean).join(","));
      const sink = chunkedSink(res);
      startWatch(store, ctx.watches, rp.resource, query, sink, {
        kind: { kind: kind.kind, apiVersion: "v1" }, render, bookmarkIntervalMs: ctx.bookmarkIntervalMs,
        defaultTimeoutSeconds: ctx.defaultWatchTimeoutSeconds, ...(ns !== undefined ? { namespace: ns } : {}),
      });
      sink.open(); // the query was valid: headers now, even before any event (clients wait for them)
      return;
    }
    case "create": {
      const body = parseJson(await readBody(req), "the request body") as KubeObject;
      const obj = rp.resource === "nodes" ? prepareNodeCreate(body) : preparePodCreate(body, rp.namespace!);
      if (dryRun) {
        if (store.get(rp.resource, obj.metadata.name, ns)) throw alreadyExists(rp.resource, obj.metadata.name);
        return writeJson(res, 201, asApiObject(rp.resource, obj));
      }
      return writeJson(res, 201, asApiObject(rp.resource, store.create(rp.resource, obj)));
    }
    case "delete": {
      const gone = dryRun ? store.mustGet(rp.resource, rp.name!, ns) : store.delete(rp.resource, rp.name!, ns);
      if (rp.resource === "nodes") return writeJson(res, 200, deleted("nodes", rp.name!, gone.metadata.uid!));
      return writeJson(res, 200, asApiObject(rp.resource, gone));
    }
    case "update":
    case "patch": {
      if (rp.resource !== "nodes") throw methodNotAllowed();
      const text = await readBody(req);
      const old = store.mustGet("nodes", rp.name!);
      const next = verb === "update" ? replaceBody(parseJson(text, "the request body"), rp.name!) : applyPatch(old, text, req.headers["content-type"] ?? "");
      const prepared = prepareNodeUpdate(old, next, rp.subresource as "" | "status");
      return writeJson(res, 200, asApiObject("nodes", dryRun ? prepared : store.update("nodes", prepared)));
    }
    default:
      throw methodNotAllowed();
  }
}

function replaceBody(body: unknown, name: string): KubeObject {
  const o = body as KubeObject;
  if (o?.metadata?.name !== undefined && o.metadata.name !== name) throw badRequest(`the name of the object (${o.metadata.name}) does not match the name on the URL (${name})`);
  return o;
}

/** The patched object, by the patch type its Content-Type names. */
export function applyPatch(old: KubeObject, text: string, contentType: string): KubeObject {
  const type = contentType.split(";")[0]!.trim().toLowerCase();
  const patch = () => parseJson(text, "patch");
  try {
    switch (type) {
      case "application/json-patch+json": return applyJsonPatch(old, patch());
      case "application/merge-patch+json": {
        const p = patch();
        if (typeof p !== "object" || p === null || Array.isArray(p)) throw badRequest("a merge patch must be a JSON object");
        return applyMergePatch(old, p) as KubeObject;
      }
      case "application/strategic-merge-patch+json": return applyStrategicMergePatch(old, patch(), NODE_PATCH_SCHEMA) as KubeObject;
      default: throw unsupportedMediaType(contentType);
    }
  } catch (e) {
    if (e instanceof ApiError) throw e;
    if (e instanceof TypeError) throw badRequest(e.message);
    throw unprocessable((e as Error).message);
  }
}

function preparePodCreate(body: KubeObject, namespace: string): KubeObject {
  if (typeof body !== "object" || body === null || typeof body.metadata?.name !== "string") throw badRequest("a Pod needs metadata.name");
  if (body.metadata.namespace !== undefined && body.metadata.namespace !== namespace) {
    throw badRequest(`the namespace of the provided object does not match the namespace sent on the request`);
  }
  return { ...structuredClone(body), kind: "Pod", apiVersion: "v1", metadata: { ...structuredClone(body.metadata), namespace } };
}

/** A watch sink over a chunked HTTP response; the 200 goes out with the first event or `open()`. */
function chunkedSink(res: ServerResponse): WatchSink & { open(): void } {
  const open = () => {
    if (res.headersSent) return;
    res.writeHead(200, { "Content-Type": "application/json", "Transfer-Encoding": "chunked", "Cache-Control": "no-cache, private" });
    res.flushHeaders();
  };
  return {
    open,
    send: (type, object) => { open(); if (!res.writableEnded) res.write(`${JSON.stringify({ type, object })}\n`); },
    end: () => { open(); if (!res.writableEnded) res.end(); },
    onClose: (fn) => { res.on("close", fn); },
  };
}
