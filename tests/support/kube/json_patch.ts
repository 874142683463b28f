/**
 * @module JSON Patch (RFC 6902, `application/json-patch+json`) over plain JSON values: add,
 * remove, replace, move, copy, test, with JSON Pointers (RFC 6901). Pure; the input is not
 * changed. Errors name the operation and the path, as the apiserver's 422 does.
 */

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** One operation of a JSON Patch document. */
export interface JsonPatchOp { op: string; path: string; from?: string; value?: Json }

/** The pointer's reference tokens (`/a/b~1c` → `["a", "b/c"]`). */
function tokens(pointer: string): string[] {
  if (pointer === "") return [];
  if (!pointer.startsWith("/")) throw new Error(`JSON pointer ${JSON.stringify(pointer)} must start with "/"`);
  return pointer.slice(1).split("/").map((t) => t.replace(/~1/g, "/").replace(/~0/g, "~"));
}

function isObject(v: unknown): v is { [k: string]: Json } {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** The parent container of `path` and the last token; throws when a step is missing. */
function parentOf(doc: Json, path: string): { parent: Json; key: string } {
  const t = tokens(path);
  if (t.length === 0) throw new Error(`path ${JSON.stringify(path)} names the whole document`);
  let cur: Json = doc;
  for (const step of t.slice(0, -1)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[arrayIndex(cur, step, false)] : isObject(cur) ? cur[step] : undefined;
    if (next === undefined) throw new Error(`doc is missing path: ${path}`);
    cur = next;
  }
  return { parent: cur, key: t.at(-1)! };
}

function arrayIndex(arr: Json[], token: string, forAdd: boolean): number {
  if (forAdd && token === "-") return arr.length;
  if (!/^(0|[1-9]\d*)$/.test(token)) throw new Error(`array index ${JSON.stringify(token)} is not a number`);
  const i = Number(token);
  if (i > arr.length || (!forAdd && i === arr.length)) throw new Error(`array index ${i} is out of bounds (length ${arr.length})`);
  return i;
}

function get(doc: Json, path: string): Json {
  let cur: Json = doc;
  for (const step of tokens(path)) {
    const next: Json | undefined = Array.isArray(cur) ? cur[arrayIndex(cur, step, false)] : isObject(cur) ? cur[step] : undefined;
    if (next === undefined) throw new Error(`doc is missing path: ${path}`);
    cur = next;
  }
  return cur;
}

function add(doc: Json, path: string, value: Json): Json {
  if (path === "") return value;
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, true), 0, value);
  else if (isObject(parent)) parent[key] = value;
  else throw new Error(`doc is missing path: ${path}`);
  return doc;
}

function remove(doc: Json, path: string): Json {
  const { parent, key } = parentOf(doc, path);
  if (Array.isArray(parent)) parent.splice(arrayIndex(parent, key, false), 1);
  else if (isObject(parent) && key in parent) delete parent[key];
  else throw new Error(`doc is missing path: ${path}`);
  return doc;
}

function deepEqual(a: unknown, b: unknown): boolean {
  return JSON.stringify(canonical(a)) === JSON.stringify(canonical(b));
}
function canonical(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(canonical);
  if (isObject(v)) return Object.fromEntries(Object.keys(v).sort().map((k) => [k, canonical(v[k])]));
  return v;
}

/**
 * Applies `ops` to a copy of `doc`.
 *
 * @example
 *   applyJsonPatch({ a: { b: 1 } }, [{ op: "replace", path: "/a/b", value: 2 }]) // { a: { b: 2 } }
 */
export function applyJsonPatch<T>(doc: T, ops: unknown): T {
  if (!Array.isArray(ops)) throw new TypeError(`a JSON patch must be an array of operations, not ${JSON.stringify(ops)?.slice(0, 80)}`);
  let out = structuredClone(doc) as Json;
  for (const raw of ops) {
    if (!isObject(raw) || typeof raw.op !== "string" || typeof raw.path !== "string") {
      throw new TypeError(`JSON patch operation ${JSON.stringify(raw)} needs string "op" and "path"`);
    }
    const op = raw as unknown as JsonPatchOp;
    const needValue = () => {
      if (!("value" in raw)) throw new TypeError(`JSON patch operation ${op.op} at ${op.path} has no "value"`);
      return structuredClone(op.value!) as Json;
    };
    switch (op.op) {
      case "add": out = add(out, op.path, needValue()); break;
      case "remove": out = remove(out, op.path); break;
      case "replace": get(out, op.path); out = add(remove(out, op.path), op.path, needValue()); break;
      case "move": {
        if (typeof op.from !== "string") throw new TypeError(`JSON patch operation move to ${op.path} has no "from"`);
        const v = get(out, op.from);
        out = add(remove(out, op.from), op.path, v);
        break;
      }
      case "copy": {
        if (typeof op.from !== "string") throw new TypeError(`JSON patch operation copy to ${op.path} has no "from"`);
        out = add(out, op.path, structuredClone(get(out, op.from)));
        break;
      }
      case "test":
        if (!deepEqual(get(out, op.path), needValue())) throw new Error(`testing value ${op.path} failed`);
        break;
      default:
        throw new TypeError(`JSON patch operation ${JSON.stringify(op.op)} is not one of add, remove, replace, move, copy, test`);
    }
  }
  return out as T;
}
