/**
 * @module LIST with the apiserver's resourceVersion semantics: unset (most recent), `0` (any: the
 * most recent here), `N` with `resourceVersionMatch=NotOlderThan` (default) or `Exact` (the
 * state at N, rebuilt from the history; 410 Gone when compacted), and `limit`/`continue` pages
 * that all show the state of the first page (a continue token older than the history is 410 with
 * a fresh token to go on inconsistently, as the apiserver offers). `remainingItemCount` is set
 * only without selectors, as the apiserver does.
 */
import { parseFieldSelector, parseLabelSelector } from "./selectors.ts";
import { ApiError, badRequest, tooLargeResourceVersion } from "./status.ts";
import type { KubeObject, ObjectStore } from "./store.ts";

/** What a list returns: the items and the list's metadata. */
export interface ListResult { items: KubeObject[]; metadata: { resourceVersion: string; continue?: string; remainingItemCount?: number } }

interface ContinueToken { v: string; rv: number; start: string }

const CONTINUE_TOO_OLD = "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.";

function encodeContinue(rv: number, lastKey: string): string {
  return Buffer.from(JSON.stringify({ v: "meta.k8s.io/v1", rv, start: `${lastKey}\u0000` } satisfies ContinueToken)).toString("base64url");
}

function decodeContinue(text: string): ContinueToken {
  try {
    const t = JSON.parse(Buffer.from(text, "base64url").toString()) as ContinueToken;
    if (t.v === "meta.k8s.io/v1" && Number.isInteger(t.rv) && typeof t.start === "string") return t;
  } catch { /* below */ }
  throw badRequest(`continue key is not valid: ${JSON.stringify(text.slice(0, 40))} is not a token this server gave out`);
}

/** Parses a resourceVersion query value (`""` → undefined). */
export function parseResourceVersion(text: string | null): number | undefined {
  if (text === null || text === "") return undefined;
  if (!/^\d+$/.test(text)) throw badRequest(`resourceVersion: Invalid value: ${JSON.stringify(text)}: must be a non-negative integer`);
  return Number(text);
}

/** A LIST of `resource` per the query (`namespace` narrows pods). */
export function listObjects(store: ObjectStore, resource: string, query: URLSearchParams, namespace?: string): ListResult {
  const field = parseFieldSelector(resource, query.get("fieldSelector"));
  const label = parseLabelSelector(query.get("labelSelector"));
  const limitText = query.get("limit");
  const limit = limitText ? Number(limitText) : 0;
  if (!Number.isInteger(limit) || limit < 0) throw badRequest(`limit: Invalid value: ${JSON.stringify(limitText)}: must be a non-negative integer`);
  const rvText = query.get("resourceVersion");
  const match = query.get("resourceVersionMatch") ?? "";
  const cont = query.get("continue");

  let snapshot: { key: string; object: KubeObject }[];
  let rv: number;
  let after = "";
  let inconsistentFrom: string | undefined;
  if (cont) {
    if (rvText) throw badRequest(`specifying resource version is not allowed when using continue`);
    if (match) throw badRequest(`resourceVersionMatch is forbidden when continue is provided`);
    const token = decodeContinue(cont);
    after = token.start;
    try {
      snapshot = store.snapshot(resource, token.rv);
      rv = token.rv;
    } catch (e) {
      if (!(e instanceof ApiError) || e.code !== 410) throw e;
      inconsistentFrom = token.start.replace(/\u0000$/, "");
      throw withContinue(e, encodeContinue(store.rv, inconsistentFrom));
    }
  } else {
    if (match && rvText === null) throw badRequest(`resourceVersionMatch: Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided`);
    if (match !== "" && match !== "Exact" && match !== "NotOlderThan") throw badRequest(`resourceVersionMatch: Unsupported value: ${JSON.stringify(match)}: supported values: "Exact", "NotOlderThan"`);
    if (match === "Exact" && rvText === "0") throw badRequest(`resourceVersionMatch: Forbidden: resourceVersionMatch "exact" is forbidden for resourceVersion "0"`);
    const asked = parseResourceVersion(rvText);
    if (asked !== undefined && asked > store.rv) throw tooLargeResourceVersion(asked, store.rv);
    rv = match === "Exact" && asked !== undefined ? asked : store.rv;
    snapshot = store.snapshot(resource, rv);
  }

  const selected = snapshot.filter(({ key, object }) => key > after && (namespace === undefined || object.metadata.namespace === namespace) && field.match(object) && label(object));
  const page = limit > 0 ? selected.slice(0, limit) : selected;
  const metadata: ListResult["metadata"] = { resourceVersion: String(rv) };
  if (page.length < selected.length) {
    metadata.continue = encodeContinue(rv, page.at(-1)!.key);
    if (!query.get("fieldSelector") && !query.get("labelSelector")) metadata.remainingItemCount = selected.length - page.length;
  }
  return { items: page.map((e) => e.object), metadata };
}

function withContinue(e: ApiError, token: string): ApiError {
  const status = { ...e.status, message: CONTINUE_TOO_OLD, metadata: { continue: token } };
  return new ApiError(status);
}
