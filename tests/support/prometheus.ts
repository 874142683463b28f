/**
 * @module A strict reader of the Prometheus text exposition format (0.0.4) for tests: it parses
 * `/metrics` into families and reports every way the text breaks the format or the naming
 * conventions (HELP/TYPE before samples, valid names and labels, `_total` exactly on counters,
 * no duplicate series, numeric values), so a test can assert `problems` is empty.
 */

export interface ParsedFamily {
  type: string;
  help: string;
  samples: { labels: Record<string, string>; value: number }[];
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** Parses `{a="x",b="y\"z"}`; throws on bad syntax. */
function parseLabels(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  while (i < text.length) {
    const eq = text.indexOf("=", i);
    if (eq < 0) throw new Error(`label without '=' in {${text}}`);
    const name = text.slice(i, eq).trim();
    if (!LABEL.test(name)) throw new Error(`bad label name ${JSON.stringify(name)}`);
    if (text[eq + 1] !== '"') throw new Error(`label ${name} value not quoted`);
    let j = eq + 2;
    let value = "";
    for (; j < text.length && text[j] !== '"'; j++) {
      if (text[j] === "\\") {
        const n = text[++j];
        value += n === "n" ? "\n" : n;
      } else value += text[j];
    }
    if (j >= text.length) throw new Error(`unterminated value of label ${name}`);
    if (name in out) throw new Error(`label ${name} twice`);
    out[name] = value;
    i = j + 1;
    if (text[i] === ",") i++;
  }
  return out;
}

/** Parses the exposition text; `problems` lists every violation found (empty: all good). */
export function parsePrometheus(text: string): { families: Map<string, ParsedFamily>; problems: string[] } {
  const families = new Map<string, ParsedFamily>();
  const problems: string[] = [];
  const series = new Set<string>();
  if (!text.endsWith("\n")) problems.push("the text does not end with a newline");
  for (const [n, line] of text.split("\n").entries()) {
    if (line === "") continue;
    const where = `line ${n + 1} (${line.slice(0, 80)})`;
    const meta = /^# (HELP|TYPE) (\S+) ?(.*)$/.exec(line);
    if (meta) {
      const [, kind, name, rest] = meta as unknown as [string, string, string, string];
      if (!NAME.test(name)) problems.push(`${where}: bad metric name`);
      const f = families.get(name) ?? { type: "", help: "", samples: [] };
      if (f.samples.length) problems.push(`${where}: ${kind} after samples of ${name}`);
      if (kind === "HELP") f.help = rest;
      else {
        if (!["counter", "gauge", "histogram", "summary", "untyped"].includes(rest)) problems.push(`${where}: bad type`);
        if (f.type) problems.push(`${where}: second TYPE for ${name}`);
        f.type = rest;
        if (rest === "counter" && !name.endsWith("_total")) problems.push(`${where}: counter ${name} does not end in _total`);
        if (rest !== "counter" && name.endsWith("_total")) problems.push(`${where}: ${rest} ${name} ends in _total`);
      }
      families.set(name, f);
      continue;
    }
    if (line.startsWith("#")) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$/.exec(line);
    if (!m) { problems.push(`${where}: not a sample line`); continue; }
    const [, name, , labelText, valueText] = m as unknown as [string, string, string, string | undefined, string];
    const f = families.get(name);
    if (!f || !f.type) { problems.push(`${where}: sample of ${name} without TYPE before it`); continue; }
    let labels: Record<string, string> = {};
    try {
      labels = labelText ? parseLabels(labelText) : {};
    } catch (e) {
      problems.push(`${where}: ${(e as Error).message}`);
    }
    const value = Number(valueText);
    if (!/^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$|^[+-]?Inf$|^NaN$/.test(valueText)) problems.push(`${where}: bad value`);
    if (f.type === "counter" && value < 0) problems.push(`${where}: negative counter`);
    const id = `${name}${JSON.stringify(Object.entries(labels).sort())}`;
    if (series.has(id)) problems.push(`${where}: duplicate series`);
    series.add(id);
    f.samples.push({ labels, value });
  }
  for (const [name, f] of families) if (!f.help) problems.push(`${name}: no HELP`);
  return { families, problems };
}
