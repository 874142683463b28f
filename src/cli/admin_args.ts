/**
 * @module Admin commands take the agent's flags anywhere on the line (`weft leases list
 * --etcd-endpoints http://…` as well as `weft --etcd-endpoints=http://… leases list`), parsed by
 * the same Go-style parser as the agent. Go's `flag` stops at the first positional, so the
 * agent's flags written after the subcommand are moved in front of it first; `docker-opts` keeps
 * its own flags (`-f -d -i -c -m -k`, mk-docker-opts.sh's) untouched.
 */
import type { FlagSpec } from "./go_flags.ts";

/** The subcommands; what follows `docker-opts` is its own command line. */
export const ADMIN_COMMANDS = new Set(["config", "leases", "docker-opts", "doctor"]);

/**
 * Moves the agent flags written after an admin subcommand in front of it, each with its value
 * (`--name=value`, or `--name value` for a flag that takes one). Other words keep their order.
 *
 * @example
 *   hoistAdminFlags(["leases", "list", "--etcd-endpoints", "http://e:2379", "--json"], AGENT_FLAGS)
 *   // → ["--etcd-endpoints", "http://e:2379", "leases", "list", "--json"]
 */
export function hoistAdminFlags(argv: readonly string[], specs: Record<string, FlagSpec>): string[] {
  const at = argv.findIndex((a) => ADMIN_COMMANDS.has(a));
  if (at < 0 || argv[at] === "docker-opts") return [...argv];
  const flags: string[] = [];
  const rest: string[] = [];
  for (let i = at; i < argv.length; i++) {
    const a = argv[i]!;
    const m = /^--?([^=]+)(=.*)?$/.exec(a);
    const spec = m ? specs[m[1]!] : undefined;
    if (a === "--") { rest.push(...argv.slice(i)); break; }
    if (!spec) { rest.push(a); continue; }
    flags.push(a);
    if (spec.kind !== "bool" && m![2] === undefined && i + 1 < argv.length) flags.push(argv[++i]!);
  }
  return [...argv.slice(0, at), ...flags, ...rest];
}
