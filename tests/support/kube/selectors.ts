/**
 * @module Field and label selectors (`fieldSelector`, `labelSelector` query parameters) parsed
 * into predicates, with the fields the apiserver lets one select on per resource (a Node:
 * `metadata.name`, `spec.unschedulable`; client-go's single-object informers use
 * `metadata.name=<name>`). Pure.
 */
import { badRequest } from "./status.ts";
import type { KubeObject } from "./store.ts";

/** The selectable fields of each resource (registry GetAttrs / ToSelectableFields). */
const FIELDS: Record<string, Record<string, (o: KubeObject) => string>> = {
  nodes: {
    "metadata.name": (o) => o.metadata.name,
    "metadata.namespace": () => "",
    "spec.unschedulable": (o) => String(Boolean((o.spec as { unschedulable?: boolean } | undefined)?.unschedulable)),
  },
  pods: {
    "metadata.name": (o) => o.metadata.name,
    "metadata.namespace": (o) => o.metadata.namespace ?? "",
    "spec.nodeName": (o) => String((o.spec as { nodeName?: string } | undefined)?.nodeName ?? ""),
    "status.phase": (o) => String((o.status as { phase?: string } | undefined)?.phase ?? ""),
  },
};

export type Predicate = (o: KubeObject) => boolean;

/** A field selector: `a=b`, `a==b`, `a!=b`, joined by commas (AND). Throws a 400 on an unknown field. */
export function parseFieldSelector(resource: string, text: string | null): { match: Predicate; name?: string } {
  if (!text) return { match: () => true };
  const terms = text.split(",").map((t) => {
    const m = /^([^=!]+)(==|=|!=)(.*)$/.exec(t.trim());
    if (!m) throw badRequest(`invalid field selector ${JSON.stringify(t)}: expected field=value, field==value or field!=value`);
    const get = FIELDS[resource]?.[m[1]!.trim()];
    if (!get) throw badRequest(`field label not supported: ${m[1]!.trim()}`);
    return { field: m[1]!.trim(), equal: m[2] !== "!=", value: m[3]!.trim(), get };
  });
  const name = terms.find((t) => t.field === "metadata.name" && t.equal)?.value;
  return { match: (o) => terms.every((t) => (t.get(o) === t.value) === t.equal), ...(name !== undefined ? { name } : {}) };
}

/** A label selector: `k=v`, `k==v`, `k!=v`, `k`, `!k`, `k in (a,b)`, `k notin (a,b)`, joined by commas. */
export function parseLabelSelector(text: string | null): Predicate {
  if (!text) return () => true;
  const terms: Predicate[] = [];
  // Split on commas outside parentheses.
  for (const raw of text.match(/(?:[^,(]|\([^)]*\))+/g) ?? []) {
    const t = raw.trim();
    const labels = (o: KubeObject) => o.metadata.labels ?? {};
    let m: RegExpExecArray | null;
    if ((m = /^([\w./-]+)\s+(in|notin)\s+\(([^)]*)\)$/.exec(t))) {
      const [key, op, set] = [m[1]!, m[2]!, new Set(m[3]!.split(",").map((s) => s.trim()))];
      terms.push(op === "in" ? (o) => key in labels(o) && set.has(labels(o)[key]!) : (o) => !(key in labels(o)) || !set.has(labels(o)[key]!));
    } else if ((m = /^([\w./-]+)\s*(==|=|!=)\s*([\w.-]*)$/.exec(t))) {
      const [key, op, value] = [m[1]!, m[2]!, m[3]!];
      terms.push(op === "!=" ? (o) => labels(o)[key] !== value : (o) => labels(o)[key] === value);
    } else if ((m = /^(!?)([\w./-]+)$/.exec(t))) {
      const [not, key] = [m[1] === "!", m[2]!];
      terms.push((o) => (key in labels(o)) !== not);
    } else throw badRequest(`unable to parse requirement ${JSON.stringify(t)} of label selector ${JSON.stringify(text)}`);
  }
  return (o) => terms.every((p) => p(o));
}
