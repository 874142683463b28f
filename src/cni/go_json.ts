/**
 * @module JSON exactly as Go's encoding/json writes it, so the delegate config weft saves and
 * hands to the delegate plugin is byte-identical to what flannel's Go plugin produces: plain
 * objects are Go maps (keys sorted), `Map`s are Go structs (keys in insertion order), strings
 * get Go's HTML-safe escapes (`<` `>` `&` U+2028 U+2029 as `\u00XX`), `undefined` members are
 * omitted (`omitempty`).
 */

const GO_ESCAPES: Record<string, string> = {
  "<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029",
};

function goString(s: string): string {
  return JSON.stringify(s).replace(/[<>&\u2028\u2029]/g, (c) => GO_ESCAPES[c]!);
}

function entriesOf(value: object): [string, unknown][] {
  if (value instanceof Map) return [...value.entries()].filter(([, v]) => v !== undefined);
  return Object.keys(value).sort().map((k) => [k, (value as Record<string, unknown>)[k]] as [string, unknown])
    .filter(([, v]) => v !== undefined);
}

function encode(value: unknown, indent: string, depth: number): string {
  if (value === null || value === undefined) return "null";
  if (typeof value === "string") return goString(value);
  if (typeof value === "number") {
    if (!Number.isFinite(value)) throw new RangeError(`cannot encode ${value} as JSON (Go: unsupported value)`);
    return JSON.stringify(value);
  }
  if (typeof value === "boolean") return value ? "true" : "false";
  if (typeof value !== "object") throw new TypeError(`cannot encode a ${typeof value} as JSON`);
  const nl = indent ? `\n${indent.repeat(depth + 1)}` : "";
  const close = indent ? `\n${indent.repeat(depth)}` : "";
  if (Array.isArray(value)) {
    if (value.length === 0) return "[]";
    return `[${value.map((v) => nl + encode(v, indent, depth + 1)).join(",")}${close}]`;
  }
  const entries = entriesOf(value);
  if (entries.length === 0) return "{}";
  const sep = indent ? ": " : ":";
  return `{${entries.map(([k, v]) => nl + goString(k) + sep + encode(v, indent, depth + 1)).join(",")}${close}}`;
}

/**
 * Go's `json.Marshal` (no indent) or `json.MarshalIndent(v, "", indent)`.
 *
 * @example
 * marshalGoJson({ b: 1, a: "<x>" }) === '{"a":"\\u003cx\\u003e","b":1}'
 * marshalGoJson(new Map([["dst", "10.0.0.0/8"], ["gw", undefined]])) === '{"dst":"10.0.0.0/8"}'
 */
export function marshalGoJson(value: unknown, indent = ""): string {
  return encode(value, indent, 0);
}
