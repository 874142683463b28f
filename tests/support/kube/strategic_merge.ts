/**
 * @module Strategic merge patch (`application/strategic-merge-patch+json`), the apiserver's
 * default patch for built-in kinds: like a merge patch, except that the lists a Go type tags
 * `patchStrategy:"merge"` merge instead of being replaced: lists of objects by their
 * `patchMergeKey` (a Node's `status.conditions` and `status.addresses` by `type`), lists of
 * scalars as a union. Directives: `$patch: replace|delete|merge` on a map or a list element,
 * `$deleteFromPrimitiveList/<field>`, `$setElementOrder/<field>` and `$retainKeys`.
 *
 * Where this is simpler than k8s.io/apimachinery/pkg/util/strategicpatch: `$setElementOrder`
 * puts the listed elements first in its order and keeps the others after them in their old
 * order (the real one interleaves them at their old positions). Pure; inputs are not changed.
 */

/** How a list field merges: its `patchStrategy` and, for lists of objects, `patchMergeKey`. */
export interface ListMeta { strategy: "merge"; key?: string }

/** Dotted paths of a kind's merging lists (list elements add no path step). */
export type PatchSchema = Readonly<Record<string, ListMeta>>;

/** The merging lists of core/v1 Node (k8s.io/api/core/v1 types.go struct tags). */
export const NODE_PATCH_SCHEMA: PatchSchema = {
  "metadata.finalizers": { strategy: "merge" },
  "metadata.ownerReferences": { strategy: "merge", key: "uid" },
  "spec.podCIDRs": { strategy: "merge" },
  "status.conditions": { strategy: "merge", key: "type" },
  "status.addresses": { strategy: "merge", key: "type" },
};

type Obj = Record<string, unknown>;

function isObject(v: unknown): v is Obj {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The same value without `$…` directive keys at any depth (for values added as they are). */
function withoutDirectives(v: unknown): unknown {
  if (Array.isArray(v)) return v.filter((e) => !(isObject(e) && e.$patch === "delete")).map(withoutDirectives);
  if (!isObject(v)) return v;
  return Object.fromEntries(Object.entries(v).filter(([k]) => !k.startsWith("$")).map(([k, x]) => [k, withoutDirectives(x)]));
}

/**
 * `original` with the strategic merge patch applied.
 *
 * @example
 *   applyStrategicMergePatch(
 *     { status: { conditions: [{ type: "Ready", status: "True" }] } },
 *     { status: { conditions: [{ type: "NetworkUnavailable", status: "False" }] } },
 *     NODE_PATCH_SCHEMA,
 *   ) // both conditions, Ready first
 */
export function applyStrategicMergePatch(original: unknown, patch: unknown, schema: PatchSchema): Obj {
  if (!isObject(patch)) throw new TypeError(`a strategic merge patch must be a JSON object, not ${JSON.stringify(patch)?.slice(0, 80)}`);
  return mergeMap(isObject(original) ? original : {}, patch, "", schema) ?? {};
}

function mergeMap(original: Obj, patch: Obj, path: string, schema: PatchSchema): Obj | undefined {
  const directive = patch.$patch;
  if (directive === "delete") return undefined;
  if (directive === "replace") return withoutDirectives(patch) as Obj;
  if (directive !== undefined && directive !== "merge") throw new TypeError(`unknown patch directive ${JSON.stringify(directive)} at ${path || "the top"} (allowed: replace, delete, merge)`);
  const out: Obj = structuredClone(original);
  const after: (() => void)[] = [];
  for (const [key, value] of Object.entries(patch)) {
    if (key === "$patch") continue;
    if (key === "$retainKeys") {
      if (!Array.isArray(value)) throw new TypeError(`$retainKeys at ${path || "the top"} must be a list of keys`);
      after.push(() => { for (const k of Object.keys(out)) if (!value.includes(k)) delete out[k]; });
      continue;
    }
    if (key.startsWith("$deleteFromPrimitiveList/")) {
      const field = key.slice("$deleteFromPrimitiveList/".length);
      if (!Array.isArray(value)) throw new TypeError(`${key} must be a list`);
      after.push(() => { if (Array.isArray(out[field])) out[field] = (out[field] as unknown[]).filter((e) => !value.includes(e)); });
      continue;
    }
    if (key.startsWith("$setElementOrder/")) {
      const field = key.slice("$setElementOrder/".length);
      if (!Array.isArray(value)) throw new TypeError(`${key} must be a list`);
      after.push(() => { if (Array.isArray(out[field])) out[field] = reorder(out[field] as unknown[], value, schema[join(path, field)]?.key); });
      continue;
    }
    const here = join(path, key);
    if (value === null) delete out[key];
    else if (isObject(value)) {
      const merged = mergeMap(isObject(out[key]) ? (out[key] as Obj) : {}, value, here, schema);
      if (merged === undefined) delete out[key];
      else out[key] = merged;
    } else if (Array.isArray(value)) {
      const meta = schema[here];
      out[key] = meta ? mergeList(Array.isArray(out[key]) ? (out[key] as unknown[]) : [], value, meta, here, schema) : withoutDirectives(value);
    } else out[key] = value;
  }
  for (const f of after) f();
  return out;
}

function mergeList(original: unknown[], patch: unknown[], meta: ListMeta, path: string, schema: PatchSchema): unknown[] {
  if (patch.some((e) => isObject(e) && e.$patch === "replace")) {
    return patch.filter((e) => !(isObject(e) && e.$patch === "replace")).map(withoutDirectives);
  }
  const out = structuredClone(original);
  if (meta.key === undefined) {
    for (const e of patch) if (!out.some((o) => o === e)) out.push(e);
    return out;
  }
  const key = meta.key;
  for (const e of patch) {
    if (!isObject(e) || !(key in e)) {
      throw new TypeError(`map: ${JSON.stringify(e)} does not contain declared merge key: ${key} (in ${path})`);
    }
    const at = out.findIndex((o) => isObject(o) && o[key] === e[key]);
    if (e.$patch === "delete") {
      if (at >= 0) out.splice(at, 1);
      continue;
    }
    const merged = mergeMap(at >= 0 ? (out[at] as Obj) : {}, e, path, schema);
    if (merged === undefined) continue;
    if (at >= 0) out[at] = merged;
    else out.push(merged);
  }
  return out;
}

/** `list` with the elements that `order` names first, in its order; the rest after, as they were. */
function reorder(list: unknown[], order: unknown[], key: string | undefined): unknown[] {
  const id = (e: unknown) => JSON.stringify(key !== undefined && isObject(e) ? e[key] : e);
  const rank = new Map(order.map((e, i) => [id(e), i]));
  const listed = list.filter((e) => rank.has(id(e))).sort((a, b) => rank.get(id(a))! - rank.get(id(b))!);
  return [...listed, ...list.filter((e) => !rank.has(id(e)))];
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}
