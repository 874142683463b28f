/**
 * @module The YAML that kubeconfig files are written in, and no more: block mappings and
 * sequences (kubectl's `- name:` items at the parent key's indentation included), plain, single-
 * and double-quoted scalars, one-line flow collections (`{server: x}`, `[]`), literal and folded
 * block scalars, comments, and JSON (a JSON kubeconfig is valid YAML). Anchors, aliases, tags,
 * multi-line plain scalars and several documents are refused with the line that has them.
 *
 * Why not the `yaml` package: importing it costs ~10 MiB of VmRSS under Bun (measured: 27.2 →
 * 37.4 MiB), a quarter of kube mode's whole 40 MiB budget, for a file read once at start-up; and
 * it is only a devDependency. kubectl, kubeadm and client-go write exactly this subset.
 *
 * @example
 *   parseYamlSubset("clusters:\n- cluster: {server: 'https://k:6443'}\n  name: k\n", "kubeconfig")
 *   // → { clusters: [{ cluster: { server: "https://k:6443" }, name: "k" }] }
 */

interface Line {
  /** 1-based line number, for errors. */
  n: number;
  indent: number;
  /** The line without its indentation and without a trailing comment. */
  text: string;
  raw: string;
}

/** A file that is not in the supported subset, or not YAML at all. */
export class YamlSubsetError extends Error {
  constructor(what: string, line: number, message: string) {
    super(`${what}: line ${line}: ${message}`);
    this.name = "YamlSubsetError";
  }
}

/** Strips a `#` comment that starts at the line start or after a space, outside quotes. */
function stripComment(s: string): string {
  let quote = "";
  for (let i = 0; i < s.length; i++) {
    const c = s[i]!;
    if (quote) {
      if (c === "\\" && quote === '"') i++;
      else if (c === quote) quote = "";
    } else if (c === '"' || c === "'") {
      quote = c;
    } else if (c === "#" && (i === 0 || s[i - 1] === " " || s[i - 1] === "\t")) {
      return s.slice(0, i).trimEnd();
    }
  }
  return s.trimEnd();
}

/** Parses kubeconfig YAML (or JSON); `what` names the file in errors. */
export function parseYamlSubset(text: string, what: string): unknown {
  const trimmed = text.trim();
  if (trimmed.startsWith("{") || trimmed.startsWith("[")) {
    try {
      return JSON.parse(trimmed);
    } catch {
      // YAML flow style that is not JSON: parsed below.
    }
  }
  const lines: Line[] = text.split(/\r?\n/).map((raw, k) => {
    if (/^\s*\t/.test(raw)) throw new YamlSubsetError(what, k + 1, "a tab in the indentation (YAML allows spaces only)");
    const indent = raw.length - raw.trimStart().length;
    return { n: k + 1, indent, text: stripComment(raw.slice(indent)), raw };
  });
  return new Parser(lines, what).document();
}

class Parser {
  i = 0;
  constructor(readonly lines: Line[], readonly what: string) {}

  fail(n: number, msg: string): never {
    throw new YamlSubsetError(this.what, n, msg);
  }

  /** The next line with content, skipping blanks and comments (undefined at the end). */
  peek(): Line | undefined {
    while (this.i < this.lines.length && this.lines[this.i]!.text === "") this.i++;
    return this.lines[this.i];
  }

  document(): unknown {
    let first = this.peek();
    if (first?.text.startsWith("%")) this.fail(first.n, "YAML directives are not supported");
    if (first && first.text === "---") {
      this.i++;
      first = this.peek();
    }
    if (!first) return null;
    const v = this.block(first.indent);
    const rest = this.peek();
    if (rest && rest.text !== "...") {
      this.fail(rest.n, rest.text === "---" ? "more than one YAML document" : `unexpected ${JSON.stringify(rest.text)} (check the indentation)`);
    }
    return v;
  }

  /** A block node whose lines are indented exactly `indent`. */
  block(indent: number): unknown {
    const l = this.peek();
    if (!l || l.indent < indent) return null;
    if (l.text === "-" || l.text.startsWith("- ")) return this.sequence(l.indent);
    if (this.splitKey(l) !== undefined) return this.mapping(l.indent);
    this.i++;
    const v = this.scalar(l.text, l);
    const next = this.peek();
    if (next && next.indent > l.indent) this.fail(next.n, "multi-line plain scalars are not supported: quote the value on one line");
    return v;
  }

  /** `key: rest` → [key, rest], or undefined when the line is not a mapping entry. */
  splitKey(l: Line): [string, string] | undefined {
    const t = l.text;
    if (t.startsWith('"') || t.startsWith("'")) {
      const end = this.quotedEnd(t, 0, l);
      const after = t.slice(end);
      if (!/^\s*:(\s|$)/.test(after)) return undefined;
      return [String(this.scalar(t.slice(0, end), l)), after.replace(/^\s*:/, "").trim()];
    }
    if (t.startsWith("{") || t.startsWith("[")) return undefined;
    const m = /^([^#]*?)\s*:(?:\s+(.*))?$/.exec(t);
    if (!m || m[1] === "") return undefined;
    return [m[1]!, (m[2] ?? "").trim()];
  }

  /** Index just past the closing quote of the quoted scalar starting at `start`. */
  quotedEnd(t: string, start: number, l: Line): number {
    const q = t[start]!;
    for (let k = start + 1; k < t.length; k++) {
      if (q === '"' && t[k] === "\\") k++;
      else if (t[k] === q) {
        if (q === "'" && t[k + 1] === "'") k++;
        else return k + 1;
      }
    }
    return this.fail(l.n, `unterminated ${q === '"' ? "double" : "single"}-quoted string (multi-line strings are not supported)`);
  }

  mapping(indent: number): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    for (let l = this.peek(); l && l.indent === indent && !isDocMarker(l); l = this.peek()) {
      if (l.text === "-" || l.text.startsWith("- ")) this.fail(l.n, "a sequence item where a mapping key was expected");
      const kv = this.splitKey(l);
      if (!kv) this.fail(l.n, `expected "key: value", got ${JSON.stringify(l.text)}`);
      const [key, rest] = kv;
      if (Object.hasOwn(out, key)) this.fail(l.n, `duplicate key ${JSON.stringify(key)}`);
      this.i++;
      out[key] = this.value(rest, indent, l, true);
    }
    const l = this.peek();
    if (l && l.indent > indent && !isDocMarker(l)) this.fail(l.n, `unexpected indentation of ${JSON.stringify(l.text)}`);
    return out;
  }

  /**
   * The value after `key:` or `-`: inline (scalar, flow, block scalar) or the block below.
   * `sameIndentSeq`: a mapping value may be a sequence at the key's own indentation (kubectl).
   */
  value(rest: string, indent: number, l: Line, sameIndentSeq: boolean): unknown {
    if (rest === "") {
      const next = this.peek();
      if (!next) return null;
      if (next.indent > indent) return this.block(next.indent);
      if (sameIndentSeq && next.indent === indent && (next.text === "-" || next.text.startsWith("- "))) return this.sequence(indent);
      return null;
    }
    if (/^[|>]/.test(rest)) return this.blockScalar(rest, indent, l);
    const v = this.scalar(rest, l);
    const next = this.peek();
    if (next && next.indent > indent) this.fail(next.n, "multi-line plain scalars are not supported: quote the value on one line");
    return v;
  }

  sequence(indent: number): unknown[] {
    const out: unknown[] = [];
    for (let l = this.peek(); l && l.indent === indent && (l.text === "-" || l.text.startsWith("- ")); l = this.peek()) {
      const rest = l.text.slice(1).trimStart();
      if (rest === "") {
        this.i++;
        out.push(this.value("", indent, l, false));
        continue;
      }
      // `- key: v` or `- - x`: the item is a block whose first line starts after the dash.
      const offset = indent + (l.text.length - rest.length);
      const inner: Line = { n: l.n, indent: offset, text: rest, raw: l.raw };
      if (rest === "-" || rest.startsWith("- ") || this.splitKey(inner) !== undefined) {
        this.lines[this.i] = inner;
        out.push(this.block(offset));
        continue;
      }
      this.i++;
      out.push(this.value(rest, indent, l, false));
    }
    return out;
  }

  /** `|`, `|-`, `|+`, `>`, `>-`, `>+` and the more-indented lines below. */
  blockScalar(header: string, indent: number, l: Line): string {
    const m = /^([|>])([-+]?)$/.exec(header);
    if (!m) this.fail(l.n, `unsupported block scalar header ${JSON.stringify(header)}`);
    const body: string[] = [];
    let blockIndent = -1;
    while (this.i < this.lines.length) {
      const raw = this.lines[this.i]!.raw;
      const ind = raw.length - raw.trimStart().length;
      if (raw.trim() === "") { body.push(""); this.i++; continue; }
      if (ind <= indent) break;
      if (blockIndent < 0) blockIndent = ind;
      if (ind < blockIndent) this.fail(this.lines[this.i]!.n, "a block scalar line is less indented than the first");
      body.push(raw.slice(blockIndent));
      this.i++;
    }
    let trailing = 0;
    while (body.length && body[body.length - 1] === "") { body.pop(); trailing++; }
    const text = m[1] === "|"
      ? body.join("\n")
      : body.reduce((acc, s, k) => (k === 0 ? s : s === "" ? `${acc}\n` : acc.endsWith("\n") ? acc + s : `${acc} ${s}`), "");
    if (m[2] === "-" || body.length === 0) return text;
    return m[2] === "+" ? text + "\n".repeat(trailing + 1) : `${text}\n`;
  }

  scalar(s: string, l: Line): unknown {
    if (/^[&*!]/.test(s)) this.fail(l.n, "YAML anchors, aliases and tags are not supported");
    if (s.startsWith("{") || s.startsWith("[")) {
      const f = new Flow(s, (msg) => this.fail(l.n, msg));
      const v = f.node();
      f.end();
      return v;
    }
    if (s.startsWith('"') || s.startsWith("'")) {
      const end = this.quotedEnd(s, 0, l);
      if (s.slice(end).trim() !== "") this.fail(l.n, `text after a quoted string: ${JSON.stringify(s.slice(end))}`);
      return unquote(s.slice(0, end), (msg) => this.fail(l.n, msg));
    }
    return plainScalar(s);
  }
}

/** `---` or `...` at the start of a line. */
function isDocMarker(l: Line): boolean {
  return l.indent === 0 && (l.text === "---" || l.text === "...");
}

/** A quoted scalar's value. */
function unquote(s: string, fail: (msg: string) => never): string {
  if (s.startsWith("'")) return s.slice(1, -1).replaceAll("''", "'");
  try {
    return JSON.parse(s.replace(/\\([0abtnvfre /\\"N_LP]|x[0-9a-fA-F]{2})/g, (all, e: string) => {
      const map: Record<string, string> = { "0": "\\u0000", a: "\\u0007", v: "\\u000b", e: "\\u001b", " ": " ", N: "\\u0085", _: "\\u00a0", L: "\\u2028", P: "\\u2029" };
      if (e[0] === "x") return `\\u00${e.slice(1)}`;
      return map[e] ?? all;
    })) as string;
  } catch {
    return fail(`invalid double-quoted string ${s}`);
  }
}

/** A plain scalar: null, a boolean, a number, else the text itself (YAML 1.1 as go-yaml v2). */
function plainScalar(s: string): unknown {
  if (s === "" || s === "~" || s === "null" || s === "Null" || s === "NULL") return null;
  if (/^(true|True|TRUE)$/.test(s)) return true;
  if (/^(false|False|FALSE)$/.test(s)) return false;
  if (/^[-+]?(0|[1-9]\d*)(\.\d+)?([eE][-+]?\d+)?$/.test(s)) return Number(s);
  return s;
}

/** One-line flow collections: `{a: b, c: [d, "e"]}`. */
class Flow {
  k = 0;
  constructor(readonly s: string, readonly fail: (msg: string) => never) {}

  ws(): void {
    while (this.s[this.k] === " ") this.k++;
  }

  end(): void {
    this.ws();
    if (this.k < this.s.length) this.fail(`unexpected ${JSON.stringify(this.s.slice(this.k))} after a flow collection`);
  }

  node(stops = ",]}"): unknown {
    this.ws();
    const c = this.s[this.k];
    if (c === "{") return this.map();
    if (c === "[") return this.seq();
    if (c === '"' || c === "'") {
      const start = this.k;
      for (this.k++; this.k < this.s.length; this.k++) {
        if (c === '"' && this.s[this.k] === "\\") this.k++;
        else if (this.s[this.k] === c) {
          if (c === "'" && this.s[this.k + 1] === "'") this.k++;
          else break;
        }
      }
      if (this.k >= this.s.length) this.fail("unterminated string in a flow collection");
      this.k++;
      return unquote(this.s.slice(start, this.k), this.fail);
    }
    const start = this.k;
    while (this.k < this.s.length && !stops.includes(this.s[this.k]!) && !(stops.includes(":") && this.s[this.k] === ":" && /[\s,\]}]|$/.test(this.s[this.k + 1] ?? ""))) this.k++;
    return plainScalar(this.s.slice(start, this.k).trim());
  }

  map(): Record<string, unknown> {
    const out: Record<string, unknown> = {};
    this.k++;
    for (;;) {
      this.ws();
      if (this.s[this.k] === "}") { this.k++; return out; }
      const key = String(this.node(",:}"));
      this.ws();
      let v: unknown = null;
      if (this.s[this.k] === ":") {
        this.k++;
        v = this.node();
      }
      out[key] = v;
      this.ws();
      if (this.s[this.k] === ",") this.k++;
      else if (this.s[this.k] !== "}") this.fail("expected ',' or '}' in a flow mapping (flow collections must be on one line)");
    }
  }

  seq(): unknown[] {
    const out: unknown[] = [];
    this.k++;
    for (;;) {
      this.ws();
      if (this.s[this.k] === "]") { this.k++; return out; }
      out.push(this.node());
      this.ws();
      if (this.s[this.k] === ",") this.k++;
      else if (this.s[this.k] !== "]") this.fail("expected ',' or ']' in a flow sequence (flow collections must be on one line)");
    }
  }
}
