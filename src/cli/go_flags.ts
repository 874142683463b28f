/**
 * @module Go `flag`-style command lines over node:util's parseArgs (compat §1): `-name` and
 * `--name`, `=value` or a separate value, booleans only as `--name` or `--name=true|false`,
 * repeatable flags, and the `FLANNELD_<NAME>` environment fallback for every flag not given.
 * Values are checked here, so a bad one is an error naming the flag, the value and what is allowed.
 */
import { parseArgs } from "node:util";

export type FlagSpec =
  | { kind: "string"; default: string; help: string; secret?: boolean; env?: boolean }
  | { kind: "list"; help: string; env?: boolean }
  | { kind: "bool"; default: boolean; help: string; env?: boolean }
  | { kind: "int"; default: number; min: number; max: number; help: string; unit?: string; env?: boolean };

export type FlagValues<T extends Record<string, FlagSpec>> = {
  [K in keyof T]: T[K] extends { kind: "string" } ? string
    : T[K] extends { kind: "list" } ? string[]
    : T[K] extends { kind: "bool" } ? boolean
    : number;
};

/** A bad command line; the message names the flag (or env var), the value and the rule. */
export class UsageError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** `FLANNELD_` + the name upper-cased, `-` and `.` as `_`. */
export function envName(prefix: string, flag: string): string {
  return `${prefix}_${flag.toUpperCase().replace(/[-.]/g, "_")}`;
}

function parseBool(v: string, where: string): boolean {
  // Go's strconv.ParseBool.
  if (["1", "t", "T", "TRUE", "true", "True"].includes(v)) return true;
  if (["0", "f", "F", "FALSE", "false", "False"].includes(v)) return false;
  throw new UsageError(`invalid value ${JSON.stringify(v)} for ${where}: must be true or false`);
}

function parseInt10(spec: Extract<FlagSpec, { kind: "int" }>, v: string, where: string): number {
  const n = /^[+-]?\d+$/.test(v.trim()) ? Number(v.trim()) : NaN;
  if (!Number.isSafeInteger(n) || n < spec.min || n > spec.max) {
    throw new UsageError(`invalid value ${JSON.stringify(v)} for ${where}: must be a whole number from ${spec.min} to ${spec.max}${spec.unit ? ` (${spec.unit})` : ""}`);
  }
  return n;
}

export interface ParseResult<T extends Record<string, FlagSpec>> {
  values: FlagValues<T>;
  /** Names given on the command line (not from the environment or defaults). */
  given: Set<string>;
  positionals: string[];
}

/**
 * Parses `argv` against `specs`; flags not on the command line come from `env` (names from
 * `envPrefix`), then defaults. Throws UsageError.
 */
export function parseGoFlags<T extends Record<string, FlagSpec>>(
  specs: T, argv: readonly string[], env: Record<string, string | undefined> = {}, envPrefix = "FLANNELD",
): ParseResult<T> {
  // Go stops at the first non-flag argument or `--`; split there so parseArgs sees only flags.
  const flagArgs: string[] = [];
  const positionals: string[] = [];
  const bools = new Map<string, boolean>(); // `--name=value` booleans, which parseArgs can't take
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === "--") { positionals.push(...argv.slice(i + 1)); break; }
    if (!a.startsWith("-") || a === "-") { positionals.push(...argv.slice(i)); break; }
    const norm = a.startsWith("--") ? a : `-${a}`;
    const eq = norm.indexOf("=");
    const name = norm.slice(2, eq < 0 ? undefined : eq);
    const spec = specs[name];
    if (!spec) throw new UsageError(`flag provided but not defined: -${name} (see --help)`);
    if (spec.kind === "bool") {
      if (eq >= 0) { bools.set(name, parseBool(norm.slice(eq + 1), `flag -${name}`)); continue; }
      flagArgs.push(norm);
      continue;
    }
    flagArgs.push(norm);
    if (eq < 0) {
      if (i + 1 >= argv.length) throw new UsageError(`flag needs an argument: -${name}`);
      flagArgs.push(argv[++i]!);
    }
  }
  const options: Record<string, { type: "string" | "boolean"; multiple?: boolean }> = {};
  for (const [name, spec] of Object.entries(specs)) {
    options[name] = spec.kind === "bool" ? { type: "boolean" } : { type: "string", multiple: true };
  }
  let parsed: Record<string, unknown>;
  try {
    parsed = parseArgs({ args: flagArgs, options, strict: true, allowPositionals: false }).values as Record<string, unknown>;
  } catch (e) {
    throw new UsageError((e as Error).message);
  }

  const values: Record<string, unknown> = {};
  const given = new Set<string>();
  for (const [name, spec] of Object.entries(specs)) {
    const cli = parsed[name] as string[] | boolean | undefined;
    const envKey = envName(envPrefix, name);
    const envVal = spec.env === false ? undefined : env[envKey];
    const where = `flag -${name}`;
    if (cli !== undefined || bools.has(name)) given.add(name);
    switch (spec.kind) {
      case "bool":
        values[name] = bools.get(name) ?? (cli as boolean | undefined) ??
          (envVal ? parseBool(envVal, envKey) : spec.default);
        break;
      case "list":
        values[name] = (cli as string[] | undefined) ?? (envVal ? [envVal] : []);
        break;
      case "string": {
        const list = cli as string[] | undefined;
        values[name] = list ? list[list.length - 1] : envVal || spec.default;
        break;
      }
      case "int": {
        const list = cli as string[] | undefined;
        values[name] = list ? parseInt10(spec, list[list.length - 1]!, where)
          : envVal ? parseInt10(spec, envVal, envKey) : spec.default;
        break;
      }
    }
  }
  return { values: values as FlagValues<T>, given, positionals };
}

/** Usage text: one line per flag, Go-style. */
export function usage(argv0: string, specs: Record<string, FlagSpec>, envPrefix = "FLANNELD"): string {
  const lines = [`Usage: ${argv0} [OPTION]...`];
  for (const [name, s] of Object.entries(specs)) {
    const arg = s.kind === "bool" ? "" : s.kind === "int" ? " int" : " string";
    const dflt = s.kind === "list" ? "" : s.kind === "string" && s.default === "" ? "" : ` (default ${JSON.stringify(s.default)})`;
    const env = s.env === false ? "" : ` [$${envName(envPrefix, name)}]`;
    lines.push(`  -${name}${arg}`, `    \t${s.help}${dflt}${env}`);
  }
  return `${lines.join("\n")}\n`;
}

/** The values with secret flags replaced, for logging (flanneld logs the password: §12.6). */
export function redact<T extends Record<string, FlagSpec>>(specs: T, values: FlagValues<T>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(values)) {
    const s = specs[k]!;
    out[k] = s.kind === "string" && s.secret && v ? "<redacted>" : v;
  }
  return out;
}
