/**
 * @module The `flannel` CNI plugin (compat §10, flannel-io/cni-plugin): what the weft executable
 * does when `CNI_COMMAND` is set or it is installed as `/opt/cni/bin/flannel`. A meta-plugin:
 * it renders a delegate config (bridge + host-local by default) from its netconf and the
 * subnet.env flanneld/weft wrote, keeps it per container, and runs the delegate.
 *
 * Flow of one invocation (libcni `skel.PluginMain` then flannel's commands):
 *   1. read the CNI_* variables: required ones per command, container ID and interface name
 *      checked (code 4; no CNI_COMMAND at all prints the about text and succeeds);
 *   2. VERSION answers the supported versions and stops;
 *   3. the config must decode (6) and carry a valid `name` (7); its `cniVersion` must be one we
 *      support (1), CHECK needs ≥ 0.4.0;
 *   4. ADD and CHECK: `CNI_NETNS` must be a network namespace other than ours (4, 8) — checked
 *      before anything is created, where the Go plugin lets the bridge fail half-way;
 *   5. ADD renders and saves the delegate config, then delegates (a failed delegate ADD is
 *      undone with a delegate DEL and the saved config removed); DEL delegates with the saved
 *      config (none → success) and forgets it once the delegate succeeded; CHECK delegates the
 *      saved config with the runtime's `prevResult` (flannel's own CHECK does nothing);
 *   6. GC and STATUS (CNI 1.1.0, configs of 1.1.0 on): STATUS is code 50 while subnet.env is
 *      missing or incomplete; GC forgets the saved configs of this network's containers that
 *      are not among the runtime's valid attachments. Both are forwarded to the delegate when it
 *      speaks 1.1.0 (flannel's plugin answers both with success and forwards nothing).
 * Errors print `{"cniVersion","code","msg","details"}` on stdout with exit code 1; a delegate's
 * error is passed on unchanged.
 */
import { statSync, statfsSync } from "node:fs";
import { CniCode, CniError, errnoText } from "./errors.ts";
import { renderDelegateConfig } from "./delegate_config.ts";
import { FlannelEnvError, loadFlannelEnv } from "./flannel_env.ts";
import { marshalGoJson } from "./go_json.ts";
import { delegate, delegateVersions, type Env } from "./invoke.ts";
import {
  decodeJsonObject, goField, isJsonObject, parseFlannelNetConf, type FlannelNetConf, type JsonObject,
} from "./netconf.ts";
import { listDelegateConfigs, loadDelegateConfig, removeDelegateConfig, saveDelegateConfig } from "./scratch.ts";
import { VERSION } from "../version.ts";
import { CLONE_NEWNET, NS_GET_NSTYPE, O_CLOEXEC, O_RDONLY } from "../../ffi/linux.ts";
import { errnoName, loadSys } from "../../ffi/sys.ts";

/** The CNI spec versions the plugin accepts, as flannel's plugin built with libcni 1.3 (up to 1.1.0). */
export const SUPPORTED_VERSIONS = ["0.1.0", "0.2.0", "0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
const LATEST_VERSION = "1.1.0";
const ABOUT = `CNI Plugin flannel version ${VERSION} (weft, linux/${process.arch})`;

/** What the process should do: exit code, stdout (result or error JSON), stderr (log text). */
export interface CniOutcome {
  code: number;
  stdout: string;
  stderr?: string;
}

/** The invocation, as libcni's `skel.CmdArgs`. */
interface CmdArgs {
  command: string;
  containerId: string;
  netns: string;
  ifName: string;
  stdin: string;
  env: Env;
}

const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;

function validateContainerId(id: string): void {
  if (!NAME_RE.test(id)) throw new CniError(CniCode.invalidEnvironment, "invalid characters in containerID", id);
}

function validateIfName(name: string): void {
  if (name.length > 15) {
    throw new CniError(CniCode.invalidEnvironment, "interface name is too long", "interface name should be less than 16 characters");
  }
  if (name === "." || name === "..") throw new CniError(CniCode.invalidEnvironment, "interface name is . or ..", "");
  if (/[/:\s]/.test(name)) {
    throw new CniError(CniCode.invalidEnvironment, "interface name contains / or : or whitespace characters", "");
  }
}

const REQUIRED: [name: string, commands: string[], validate?: (v: string) => void][] = [
  ["CNI_COMMAND", ["ADD", "CHECK", "DEL", "GC", "STATUS"]],
  ["CNI_CONTAINERID", ["ADD", "CHECK", "DEL"], validateContainerId],
  ["CNI_NETNS", ["ADD", "CHECK"]],
  ["CNI_IFNAME", ["ADD", "CHECK", "DEL"], validateIfName],
  ["CNI_PATH", ["ADD", "CHECK", "DEL", "GC", "STATUS"]],
];

/** skel `getCmdArgsFromEnv`; undefined when CNI_COMMAND is unset and nothing else is wrong. */
function readCmdArgs(env: Env, stdin: string): CmdArgs | undefined {
  const command = env.CNI_COMMAND ?? "";
  const missing: string[] = [];
  for (const [name, commands, validate] of REQUIRED) {
    const value = env[name] ?? "";
    if (value === "") {
      if (commands.includes(command) || name === "CNI_COMMAND") missing.push(name);
    } else if (commands.includes(command)) {
      validate?.(value);
    }
  }
  if (missing.length > 0) {
    if (command === "") return undefined;
    throw new CniError(CniCode.invalidEnvironment, `required env variables [${missing.join(",")}] missing`, "");
  }
  return {
    command, stdin, env,
    containerId: env.CNI_CONTAINERID ?? "",
    netns: env.CNI_NETNS ?? "",
    ifName: env.CNI_IFNAME ?? "",
  };
}

/** skel `validateConfig`: the config decodes and has a usable network name. */
function validateConfig(stdin: string): void {
  const doc = decodeJsonObject(stdin, "error unmarshall network config");
  const name = goField(doc, "name");
  if (name !== undefined && typeof name !== "string") {
    throw new CniError(CniCode.decodingFailure, `error unmarshall network config: "name" must be a string, got ${JSON.stringify(name)}`);
  }
  if (!name) throw new CniError(CniCode.invalidNetworkConfig, "missing network name", "");
  if (!NAME_RE.test(name)) throw new CniError(CniCode.invalidNetworkConfig, "invalid characters found in network name", name);
}

/** libcni `ConfigDecoder.Decode`: the config's cniVersion, `0.1.0` when absent. */
function configVersion(stdin: string): string {
  const doc = decodeJsonObject(stdin, "decoding version from network config");
  const v = goField(doc, "cniVersion");
  if (v !== undefined && typeof v !== "string") {
    throw new CniError(CniCode.decodingFailure, `decoding version from network config: "cniVersion" must be a string, got ${JSON.stringify(v)}`);
  }
  return v || "0.1.0";
}

function parseVersion(v: string): [number, number, number] {
  const m = /^(\d+)(?:\.(\d+))?(?:\.(\d+))?$/.exec(v);
  if (!m) throw new CniError(CniCode.decodingFailure, `invalid version ${JSON.stringify(v)}: expected MAJOR.MINOR.PATCH`);
  return [Number(m[1]), Number(m[2] ?? 0), Number(m[3] ?? 0)];
}

function versionAtLeast(v: string, min: string): boolean {
  const a = parseVersion(v), b = parseVersion(min);
  for (let i = 0; i < 3; i++) if (a[i] !== b[i]) return a[i]! > b[i]!;
  return true;
}

/** skel `checkVersionAndCall`'s version check: the config's version must be one we support. */
function requireSupportedVersion(stdin: string): void {
  const v = configVersion(stdin);
  if (!(SUPPORTED_VERSIONS as readonly string[]).includes(v)) {
    throw new CniError(CniCode.incompatibleVersion, "incompatible CNI versions",
      `config is ${JSON.stringify(v)}, plugin supports [${SUPPORTED_VERSIONS.map((s) => JSON.stringify(s)).join(" ")}]`);
  }
}

const NSFS_MAGIC = 0x6e736673;
const PROC_SUPER_MAGIC = 0x9fa0;
const NETNS_HINT = "CNI_NETNS must name a network namespace, such as /var/run/netns/NAME or /proc/PID/ns/net";

/** The namespace types of linux/sched.h's CLONE_NEW* flags, as `ip`/`lsns` name them. */
const NS_TYPES: Record<number, string> = {
  0x00020000: "mount", 0x04000000: "uts", 0x08000000: "ipc", 0x10000000: "user", 0x20000000: "pid",
  0x02000000: "cgroup", 0x00000080: "time",
};

/**
 * `CNI_NETNS` must be a network namespace (nsfs or a /proc ns link, as the Go plugins' `ns.GetNS`
 * requires), of the network type (a mount or UTS namespace file is nsfs too: the type comes from
 * ioctl(NS_GET_NSTYPE), Linux 4.11+), and not the plugin's own namespace (skel `CheckNetNS`).
 */
async function checkNetns(path: string): Promise<void> {
  let type: number;
  try {
    type = Number(statfsSync(path).type);
  } catch (e) {
    throw new CniError(CniCode.invalidEnvironment,
      `failed to open netns "${path}": failed to Statfs "${path}": ${errnoText(e)}`, NETNS_HINT);
  }
  if (type !== NSFS_MAGIC && type !== PROC_SUPER_MAGIC) {
    throw new CniError(CniCode.invalidEnvironment, `failed to open netns "${path}": unknown FS magic on "${path}": ${type.toString(16)}`, NETNS_HINT);
  }
  const sys = await loadSys();
  const fd = sys.open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw new CniError(CniCode.invalidEnvironment, `failed to open netns "${path}": ${errnoName(-fd)}`, NETNS_HINT);
  const nsType = sys.ioctl(fd, NS_GET_NSTYPE, 0);
  sys.close(fd);
  // A negative answer (ENOTTY before Linux 4.11) cannot tell: the nsfs check above stands.
  if (nsType >= 0 && nsType !== CLONE_NEWNET) {
    throw new CniError(CniCode.invalidEnvironment,
      `failed to open netns "${path}": it is a ${NS_TYPES[nsType] ?? `0x${nsType.toString(16)}`} namespace, not a network namespace`, NETNS_HINT);
  }
  const target = statSync(path), own = statSync("/proc/self/ns/net");
  if (target.dev === own.dev && target.ino === own.ino) {
    throw new CniError(CniCode.invalidNetNS, "plugin's netns and netns from CNI_NETNS should not be the same", "");
  }
}

function loadNetConf(stdin: string): FlannelNetConf {
  try {
    return parseFlannelNetConf(stdin);
  } catch (e) {
    const err = CniError.from(e);
    throw new CniError(err.code, `failed to load flannel netconf file: ${err.message}`, err.details);
  }
}

async function cmdAdd(args: CmdArgs, log: string[]): Promise<string> {
  const netconf = loadNetConf(args.stdin);
  let env;
  try {
    env = loadFlannelEnv(netconf.subnetFile);
  } catch (e) {
    if (!(e instanceof FlannelEnvError)) throw e;
    // Missing means flanneld has no lease yet: the runtime should retry (code 11).
    throw new CniError(e.missingFile ? CniCode.tryAgainLater : CniCode.internal,
      `failed to load flannel 'subnet.env' file: ${e.message}. Check the flannel pod log for this node.`);
  }
  const rendered = renderDelegateConfig(netconf, env);
  log.push(`delegateAdd: netconf sent to delegate plugin:\n${rendered.bytes}\n`);
  try {
    saveDelegateConfig(netconf.dataDir, args.containerId, rendered.bytes);
  } catch (e) {
    removeDelegateConfig(netconf.dataDir, args.containerId);
    throw new CniError(CniCode.ioFailure,
      `failed to save the delegate config in ${netconf.dataDir}/${args.containerId}: ${(e as Error).message}`);
  }
  let outcome;
  try {
    outcome = await delegate("ADD", rendered.type, rendered.bytes, args.env);
  } catch (e) {
    // Nothing half-made stays (flannel keeps the config for the runtime's DEL): the delegate
    // undoes what it may have done, then the config goes, so a later DEL has nothing to do.
    try {
      const undo = await delegate("DEL", rendered.type, rendered.bytes, args.env);
      if (undo.stderr) log.push(undo.stderr);
    } catch (d) {
      log.push(`undoing the failed ADD: ${(d as Error).message}\n`);
    }
    removeDelegateConfig(netconf.dataDir, args.containerId);
    throw e;
  }
  if (outcome.stderr) log.push(outcome.stderr);
  return outcome.result ?? "";
}

async function cmdDel(args: CmdArgs, log: string[]): Promise<void> {
  const netconf = loadNetConf(args.stdin);
  const saved = loadDelegateConfig(netconf.dataDir, args.containerId);
  if (saved === undefined) return; // never added, or already deleted: success per spec
  let type: unknown;
  try {
    type = (JSON.parse(saved) as { type?: unknown }).type;
  } catch (e) {
    // As flannel: nothing sensible to delegate; the veth goes away with the container.
    log.push(`failed to parse netconf: ${(e as Error).message}\n`);
    removeDelegateConfig(netconf.dataDir, args.containerId);
    return;
  }
  const outcome = await delegate("DEL", typeof type === "string" ? type : "", saved, args.env);
  if (outcome.stderr) log.push(outcome.stderr);
  removeDelegateConfig(netconf.dataDir, args.containerId);
}

/**
 * The prevResult with each gateway-less route given the gateway the bridge installed it via
 * (the first address gateway of its family, as the plugins' `ipam.ConfigureIface` does).
 * flannel's routes carry no gateway, and the bridge's CHECK up to plugins v1.1.x compares
 * gateways literally, so without this every flannel CHECK would fail; newer bridges match
 * either way.
 */
function withRouteGateways(prevResult: JsonObject): JsonObject {
  const ips = Array.isArray(prevResult.ips) ? prevResult.ips.filter(isJsonObject) : [];
  const gatewayOf = (v6: boolean) =>
    ips.map((ip) => ip.gateway).find((gw) => typeof gw === "string" && gw.includes(":") === v6);
  if (!Array.isArray(prevResult.routes)) return prevResult;
  const routes = prevResult.routes.map((route) => {
    if (!isJsonObject(route) || route.gw || typeof route.dst !== "string") return route;
    const gw = gatewayOf(route.dst.includes(":"));
    return gw === undefined ? route : { ...route, gw };
  });
  return { ...prevResult, routes };
}

async function cmdCheck(args: CmdArgs, log: string[]): Promise<void> {
  const netconf = loadNetConf(args.stdin);
  const saved = loadDelegateConfig(netconf.dataDir, args.containerId);
  if (saved === undefined) {
    throw new CniError(CniCode.unknownContainer,
      `no delegate config saved for container "${args.containerId}" in ${netconf.dataDir}: was ADD run for it?`);
  }
  const config = decodeJsonObject(saved, `cannot decode the saved delegate config ${netconf.dataDir}/${args.containerId}`);
  if (netconf.cniVersion !== "") config.cniVersion = netconf.cniVersion;
  if (netconf.prevResult) {
    config.prevResult = config.type === "bridge" ? withRouteGateways(netconf.prevResult) : netconf.prevResult;
  }
  const outcome = await delegate("CHECK", typeof config.type === "string" ? config.type : "", marshalGoJson(config), args.env);
  if (outcome.stderr) log.push(outcome.stderr);
}

/** Whether the delegate plugin `type` speaks CNI 1.1.0, so GC and STATUS may be forwarded to it. */
async function delegateSpeaks110(type: string, env: Env): Promise<boolean> {
  return (await delegateVersions(type, env)).includes("1.1.0");
}

function loadEnvForStatus(netconf: FlannelNetConf) {
  try {
    return loadFlannelEnv(netconf.subnetFile);
  } catch (e) {
    if (!(e instanceof FlannelEnvError)) throw e;
    throw new CniError(CniCode.pluginNotAvailable, `flannel is not ready on this node: ${e.message}`,
      "the agent (weft or flanneld) writes the subnet file once it holds a subnet lease: check its log");
  }
}

/** STATUS: ready once subnet.env is complete, and the delegate (when it speaks 1.1.0) says so too. */
async function cmdStatus(args: CmdArgs, log: string[]): Promise<void> {
  const netconf = loadNetConf(args.stdin);
  const rendered = renderDelegateConfig(netconf, loadEnvForStatus(netconf));
  let speaks: boolean;
  try {
    speaks = await delegateSpeaks110(rendered.type, args.env);
  } catch (e) {
    throw new CniError(CniCode.pluginNotAvailable, `delegate plugin "${rendered.type}" cannot serve ADD: ${(e as Error).message}`);
  }
  if (!speaks) return;
  const outcome = await delegate("STATUS", rendered.type, rendered.bytes, args.env);
  if (outcome.stderr) log.push(outcome.stderr);
}

/**
 * The container IDs of `cni.dev/valid-attachments` (code 7 when it is not a list of
 * attachments); undefined when the runtime sent none, so nothing is taken for stale.
 */
function validContainerIds(raw: JsonObject): Set<string> | undefined {
  const list = raw["cni.dev/valid-attachments"];
  if (list === undefined || list === null) return undefined;
  const bad = () => new CniError(CniCode.invalidNetworkConfig,
    `"cni.dev/valid-attachments" must be a list of {"containerID","ifname"} objects, got ${JSON.stringify(list).slice(0, 100)}`);
  if (!Array.isArray(list)) throw bad();
  return new Set(list.map((a) => {
    if (!isJsonObject(a) || typeof a.containerID !== "string") throw bad();
    return a.containerID;
  }));
}

/**
 * GC: forgets the saved delegate configs of this network (same `name`) whose container is not
 * a valid attachment — configs of other networks sharing the dataDir are left alone — then
 * forwards GC to the delegate when it speaks 1.1.0 (it frees its own stale IPAM reservations).
 * Goes on past errors and reports them together, as the spec asks.
 */
async function cmdGc(args: CmdArgs, log: string[]): Promise<void> {
  const netconf = loadNetConf(args.stdin);
  const valid = validContainerIds(netconf.raw);
  const errors: string[] = [];
  if (!valid) log.push("GC: no cni.dev/valid-attachments given: no saved config is taken for stale\n");
  const stale = valid ? listDelegateConfigs(netconf.dataDir).filter((id) => !valid.has(id)) : [];
  for (const id of stale) {
    try {
      const saved = decodeJsonObject(loadDelegateConfig(netconf.dataDir, id) ?? "{}", `saved config ${id}`);
      if (saved.name !== netconf.name) continue;
      removeDelegateConfig(netconf.dataDir, id);
      log.push(`GC: forgot the delegate config of container ${id}\n`);
    } catch (e) {
      errors.push(`${netconf.dataDir}/${id}: ${(e as Error).message}`);
    }
  }
  let env;
  try {
    env = loadFlannelEnv(netconf.subnetFile);
  } catch (e) {
    log.push(`GC: not forwarded to the delegate: ${(e as Error).message}\n`);
  }
  if (env) {
    try {
      const rendered = renderDelegateConfig(netconf, env);
      if (await delegateSpeaks110(rendered.type, args.env)) {
        const config = decodeJsonObject(rendered.bytes, "the rendered delegate config");
        config["cni.dev/valid-attachments"] = netconf.raw["cni.dev/valid-attachments"] ?? [];
        const outcome = await delegate("GC", rendered.type, marshalGoJson(config), args.env);
        if (outcome.stderr) log.push(outcome.stderr);
      }
    } catch (e) {
      errors.push((e as Error).message);
    }
  }
  if (errors.length > 0) throw new CniError(CniCode.internal, `GC: ${errors.join("; ")}`);
}

/** skel: GC and STATUS need a config of version 1.1.0 or later, one the plugin supports. */
function requireVersionFor110(command: string, stdin: string): void {
  if (!versionAtLeast(configVersion(stdin), "1.1.0")) {
    throw new CniError(CniCode.incompatibleVersion, `config version does not allow ${command}`, "");
  }
  requireSupportedVersion(stdin);
}

/** The version an error or VERSION answer is written in: the config's if supported. */
function replyVersion(stdin: string): string {
  try {
    const v = goField(decodeJsonObject(stdin, "reply version"), "cniVersion");
    if (typeof v === "string" && (SUPPORTED_VERSIONS as readonly string[]).includes(v)) return v;
  } catch { /* not JSON: answer in the latest version */ }
  return LATEST_VERSION;
}

async function dispatch(args: CmdArgs, log: string[]): Promise<string> {
  switch (args.command) {
    case "VERSION":
      return `${marshalGoJson(new Map<string, unknown>([
        ["cniVersion", replyVersion(args.stdin)], ["supportedVersions", [...SUPPORTED_VERSIONS]],
      ]))}\n`;
    case "ADD":
      validateConfig(args.stdin);
      requireSupportedVersion(args.stdin);
      await checkNetns(args.netns);
      return cmdAdd(args, log);
    case "DEL":
      validateConfig(args.stdin);
      requireSupportedVersion(args.stdin);
      await cmdDel(args, log);
      return "";
    case "CHECK": {
      validateConfig(args.stdin);
      const v = configVersion(args.stdin);
      if (!versionAtLeast(v, "0.4.0")) throw new CniError(CniCode.incompatibleVersion, "config version does not allow CHECK", "");
      if (!SUPPORTED_VERSIONS.some((s) => versionAtLeast(s, v))) {
        throw new CniError(CniCode.incompatibleVersion, "plugin version does not allow CHECK", "");
      }
      requireSupportedVersion(args.stdin);
      await checkNetns(args.netns);
      await cmdCheck(args, log);
      return "";
    }
    case "STATUS":
      validateConfig(args.stdin);
      requireVersionFor110("STATUS", args.stdin);
      await cmdStatus(args, log);
      return "";
    case "GC":
      validateConfig(args.stdin);
      requireVersionFor110("GC", args.stdin);
      await cmdGc(args, log);
      return "";
    default:
      validateConfig(args.stdin);
      throw new CniError(CniCode.invalidEnvironment, `unknown CNI_COMMAND: ${args.command}`, "");
  }
}

/**
 * Runs one CNI plugin invocation: `env` holds the CNI_* variables (and CNI_PATH for the
 * delegate; it is passed on to it), `stdin` the network config. Returns the exit code, the
 * stdout (ADD's result, VERSION's answer, or the error JSON) and log text for stderr.
 *
 * @example
 * const r = await runCniPlugin({ CNI_COMMAND: "VERSION" }, "");
 * // r.stdout === '{"cniVersion":"1.1.0","supportedVersions":["0.1.0",...,"1.1.0"]}\n', r.code === 0
 */
export async function runCniPlugin(env: Record<string, string | undefined>, stdin: string): Promise<CniOutcome> {
  const log: string[] = [];
  try {
    const args = readCmdArgs(env, stdin);
    if (!args) {
      return { code: 0, stdout: "", stderr: `${ABOUT}\nCNI protocol versions supported: ${SUPPORTED_VERSIONS.join(", ")}\n` };
    }
    const stdout = await dispatch(args, log);
    return { code: 0, stdout, stderr: log.join("") };
  } catch (e) {
    const err = CniError.from(e);
    const reply = new Map<string, unknown>([
      ["cniVersion", replyVersion(stdin)], ["code", err.code], ["msg", err.message], ["details", err.details],
    ]);
    return { code: 1, stdout: marshalGoJson(reply, "    "), stderr: log.join("") };
  }
}
