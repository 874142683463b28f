/**
 * @module `weft docker-opts`: flannel's `dist/mk-docker-opts.sh` reimplemented (compat §5), so
 * systemd units that ran the script can run weft instead and get the same file byte for byte.
 * It turns subnet.env into Docker daemon options:
 *
 *   DOCKER_OPT_BIP="--bip=10.1.74.1/24"
 *   DOCKER_OPT_IPMASQ="--ip-masq=true"
 *   DOCKER_OPT_MTU="--mtu=1472"
 *   DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"
 *
 * Script behaviour kept: getopts `f:d:icmk:` (`-h`/bad option → usage, exit 1); both `-i` and
 * `-c` output when neither is given; the env file is sourced over the environment (absent →
 * ignored), so `DOCKER_OPT_*` variables from either are emitted too; the masq option is the
 * inverse of FLANNEL_IPMASQ (any other value → exit 1 before writing); options in name order;
 * the combined value is the existing `$KEY` (plus a space if non-empty), then " <value>" per
 * option; values are word-split and re-joined as `echo $v` does. Where the script is silent,
 * weft says on stderr what is missing (no env file, no FLANNEL_SUBNET or FLANNEL_MTU) and still
 * writes the script's output with exit 0, so units that ran the script behave the same. After
 * writing, exit 1 if the
 * main routing table has a `via` route for the subnet — read from /proc/net/route here rather
 * than by running `ip route`.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { endianness } from "node:os";
import { parseSubnetEnv } from "./subnet_env.ts";
import { formatIPv4 } from "./net/ip.ts";

/** The command line, as the script's getopts leaves it. */
export interface DockerOptsArgs {
  flannelEnv: string;
  dockerEnv: string;
  individual: boolean;
  combined: boolean;
  ipMasq: boolean;
  key: string;
}

/** What the command reads and where it reports; defaults are the process's. */
export interface DockerOptsIo {
  env: Record<string, string | undefined>;
  /** Path of the kernel's IPv4 main table in /proc format. */
  routeFile: string;
  stderr: (text: string) => void;
}

const USAGE = `weft docker-opts [-f FLANNEL-ENV-FILE] [-d DOCKER-ENV-FILE] [-i] [-c] [-m] [-k COMBINED-KEY]

Generate Docker daemon options based on flannel env file
OPTIONS:
\t-f\tPath to flannel env file. Defaults to /run/flannel/subnet.env
\t-d\tPath to Docker env file to write to. Defaults to /run/docker_opts.env
\t-i\tOutput each Docker option as individual var. e.g. DOCKER_OPT_MTU=1500
\t-c\tOutput combined Docker options into DOCKER_OPTS var
\t-k\tSet the combined options key to this value (default DOCKER_OPTS=)
\t-m\tDo not output --ip-masq (useful for older Docker version)
`;

/**
 * getopts `f:d:icmk:`: clustered flags (`-ic`), attached or separate values (`-fX`, `-f X`),
 * `--` or the first non-option ends parsing. Returns the usage error text on a bad option.
 */
export function parseDockerOptsArgs(argv: string[]): DockerOptsArgs | { error: string } {
  const a: DockerOptsArgs = {
    flannelEnv: "/run/flannel/subnet.env", dockerEnv: "/run/docker_opts.env",
    individual: false, combined: false, ipMasq: true, key: "DOCKER_OPTS",
  };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") break;
    if (!arg.startsWith("-") || arg === "-") break;
    for (let j = 1; j < arg.length; j++) {
      const c = arg[j]!;
      if (c === "f" || c === "d" || c === "k") {
        let value = arg.slice(j + 1);
        if (value === "") {
          if (i + 1 >= argv.length) return { error: `No arg for -${c} option\n${USAGE}` };
          value = argv[++i]!;
        }
        if (c === "f") a.flannelEnv = value;
        else if (c === "d") a.dockerEnv = value;
        else a.key = value;
        break;
      }
      if (c === "i") a.individual = true;
      else if (c === "c") a.combined = true;
      else if (c === "m") a.ipMasq = false;
      else if (c === "h" || c === "?") return { error: USAGE };
      else return { error: `Illegal option -${c}\n${USAGE}` };
    }
  }
  if (!a.individual && !a.combined) a.individual = a.combined = true;
  return a;
}

/** `. file` for the plain `KEY=value` lines of an env file: one layer of quotes removed. */
function sourceEnvFile(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [rawKey, rawValue] of Object.entries(parseSubnetEnv(text).raw)) {
    const key = rawKey.replace(/^export\s+/, "");
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(key)) continue;
    const q = rawValue[0];
    out[key] = (q === '"' || q === "'") && rawValue.length >= 2 && rawValue.endsWith(q) ? rawValue.slice(1, -1) : rawValue;
  }
  return out;
}

/**
 * The Docker env file for `vars` (the environment with the env file sourced over it), or an
 * error message when FLANNEL_IPMASQ is neither `true` nor `false`.
 *
 * @example
 * renderDockerOpts({ FLANNEL_SUBNET: "10.1.74.1/24", FLANNEL_MTU: "1472", FLANNEL_IPMASQ: "false" }, args)
 * // 'DOCKER_OPT_BIP="--bip=10.1.74.1/24"\n...DOCKER_OPTS=" --bip=10.1.74.1/24 --ip-masq=true --mtu=1472"\n'
 */
export function renderDockerOpts(vars: Record<string, string>, args: DockerOptsArgs): { text: string } | { error: string } {
  const v: Record<string, string> = { ...vars };
  if (v.FLANNEL_SUBNET) v.DOCKER_OPT_BIP = `--bip=${v.FLANNEL_SUBNET}`;
  if (v.FLANNEL_MTU) v.DOCKER_OPT_MTU = `--mtu=${v.FLANNEL_MTU}`;
  if (v.FLANNEL_IPMASQ && args.ipMasq) {
    if (v.FLANNEL_IPMASQ === "true") v.DOCKER_OPT_IPMASQ = "--ip-masq=false";
    else if (v.FLANNEL_IPMASQ === "false") v.DOCKER_OPT_IPMASQ = "--ip-masq=true";
    else return { error: `Invalid value of FLANNEL_IPMASQ: ${v.FLANNEL_IPMASQ}\n` };
  }

  let combined = v[args.key] ?? "";
  if (combined) combined += " ";
  let text = "";
  const names = Object.keys(v).filter((k) => k.includes("DOCKER_OPT_")).sort();
  for (const name of names) {
    const value = v[name]!.split(/[ \t\n]+/).filter((w) => w !== "").join(" "); // echo $value
    if (args.individual) text += `${name}="${value}"\n`;
    combined += ` ${value}`;
  }
  if (args.combined) text += `${args.key}="${combined}"\n`;
  return { text };
}

/** An IPv4 address or mask as /proc/net/route prints it (host byte order, hex). */
function procAddress(hex: string): number {
  const n = parseInt(hex, 16) >>> 0;
  if (endianness() === "BE") return n;
  return (((n & 0xff) << 24) | ((n & 0xff00) << 8) | ((n >>> 8) & 0xff00) | (n >>> 24)) >>> 0;
}

/**
 * The gateway routes of a /proc/net/route table as `ip route show` prints them
 * (`10.1.74.0/24 via 192.168.1.5 dev eth0 `, trailing space included); routes without a gateway
 * are left out.
 */
export function viaRoutes(procNetRoute: string): string[] {
  const RTF_UP = 0x1, RTF_GATEWAY = 0x2;
  const out: string[] = [];
  for (const line of procNetRoute.split("\n").slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length < 8) continue;
    const [iface, dstHex, gwHex, flagsHex, , , metric, maskHex] = f as [string, string, string, string, string, string, string, string];
    const flags = parseInt(flagsHex, 16);
    if (!(flags & RTF_UP) || !(flags & RTF_GATEWAY)) continue;
    const prefix = popcount(procAddress(maskHex));
    const dstIp = formatIPv4(procAddress(dstHex));
    const dst = prefix === 0 ? "default" : prefix === 32 ? dstIp : `${dstIp}/${prefix}`;
    out.push(`${dst} via ${formatIPv4(procAddress(gwHex))} dev ${iface} ${metric !== "0" ? `metric ${metric} ` : ""}`);
  }
  return out;
}

/**
 * The script's check `ip route show | grep <subnet> | grep via`, where <subnet> is
 * FLANNEL_SUBNET with its last octet decremented (`10.1.74.1/24` → `10.1.74.0/24`, matched as a
 * grep pattern: dots match any character). Returns the matching route lines.
 */
export function conflictingRoutes(flannelSubnet: string, procNetRoute: string): string[] {
  const dotFour = cut(cut(flannelSubnet, ".", [4]), "/", [1]);
  if (!/^\d+$/.test(dotFour)) return [];
  const subnet = `${cut(flannelSubnet, ".", [1, 2, 3])}.${Number(dotFour) - 1}/${cut(flannelSubnet, "/", [2])}`;
  const pattern = new RegExp(subnet.replace(/[\\^$*+?()[\]{}|]/g, "\\$&"));
  return viaRoutes(procNetRoute).filter((line) => pattern.test(line) && line.includes("via"));
}

/** `cut -d<delim> -f<fields>`: a line without the delimiter passes whole, as cut does. */
function cut(text: string, delim: string, fields: number[]): string {
  if (!text.includes(delim)) return text;
  const parts = text.split(delim);
  return fields.map((f) => parts[f - 1]).filter((p) => p !== undefined).join(delim);
}

function popcount(n: number): number {
  let c = 0;
  for (let x = n >>> 0; x !== 0; x >>>= 1) c += x & 1;
  return c;
}

/** What stderr should say when the options will lack --bip or --mtu, or the env file is absent. */
function missingWarning(args: DockerOptsArgs, unread: string, vars: Record<string, string>): string | undefined {
  const lacking = [["FLANNEL_SUBNET", "--bip"], ["FLANNEL_MTU", "--mtu"]].filter(([k]) => !vars[k!]);
  const consequence = lacking.length === 0
    ? "using FLANNEL_* from the environment"
    : `${args.dockerEnv} gets no ${lacking.map(([, flag]) => flag).join(" or ")} option`;
  const hint = "the agent (weft or flanneld) writes it once it holds a subnet lease";
  if (unread) return `weft docker-opts: ${args.flannelEnv} ${unread}; ${consequence} (${hint})\n`;
  if (lacking.length > 0) return `weft docker-opts: ${args.flannelEnv} has no ${lacking.map(([k]) => k).join(" or ")}; ${consequence}\n`;
  return undefined;
}

/**
 * `weft docker-opts [-f FILE] [-d FILE] [-i] [-c] [-m] [-k KEY]`: writes the Docker env file
 * from subnet.env. Returns the exit code: 0, or 1 on a bad option, a bad FLANNEL_IPMASQ, an
 * unwritable output file, or a `via` route for the subnet already in the routing table.
 */
export async function runDockerOpts(argv: string[], io: Partial<DockerOptsIo> = {}): Promise<number> {
  const env = io.env ?? process.env;
  const routeFile = io.routeFile ?? "/proc/net/route";
  const stderr = io.stderr ?? ((t: string) => void process.stderr.write(t));

  const args = parseDockerOptsArgs(argv);
  if ("error" in args) {
    stderr(args.error);
    return 1;
  }
  const vars: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) vars[k] = v;
  let fileText: string | undefined;
  let unread = "";
  try {
    fileText = readFileSync(args.flannelEnv, "utf8");
  } catch (e) {
    // The script sources the file only if it exists; weft says so instead of staying silent.
    unread = (e as NodeJS.ErrnoException).code === "ENOENT" ? "does not exist" : `cannot be read (${(e as Error).message})`;
  }
  if (fileText !== undefined) Object.assign(vars, sourceEnvFile(fileText));

  const rendered = renderDockerOpts(vars, args);
  if ("error" in rendered) {
    stderr(rendered.error);
    return 1;
  }
  const warning = missingWarning(args, unread, vars);
  if (warning) stderr(warning);
  try {
    writeFileSync(args.dockerEnv, rendered.text);
  } catch (e) {
    stderr(`weft docker-opts: cannot write ${args.dockerEnv}: ${(e as Error).message}\n`);
    return 1;
  }

  if (vars.FLANNEL_SUBNET) {
    let table = "";
    try {
      table = readFileSync(routeFile, "utf8");
    } catch (e) {
      stderr(`weft docker-opts: cannot read the routing table ${routeFile}: ${(e as Error).message}\n`);
      return 1;
    }
    const conflicts = conflictingRoutes(vars.FLANNEL_SUBNET, table);
    if (conflicts.length > 0) {
      stderr(`Your routing table already contains the subnet: ${conflicts.join("\n")}\n`);
      return 1;
    }
  }
  return 0;
}
