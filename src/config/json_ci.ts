/**
 * @module Case-insensitive access to JSON objects, as Go's encoding/json matches struct fields:
 * an exact key wins, else the last key equal ignoring case.
 */

/** Returns the value of `key` in `obj` matched as Go's json.Unmarshal would, or undefined. */
export function getCI(obj: Record<string, unknown>, key: string): unknown {
  if (Object.hasOwn(obj, key)) return obj[key];
  const lower = key.toLowerCase();
  let found: unknown = undefined;
  for (const k of Object.keys(obj)) if (k.toLowerCase() === lower) found = obj[k];
  return found;
}

/** True when `v` is a plain JSON object (not an array, not null). */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
