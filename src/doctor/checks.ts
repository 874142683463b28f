/**
 * @module `weft doctor`'s checks, pure: what was gathered about this host and the cluster
 * (`DoctorInput`, gather.ts) in, findings out, each with its evidence and the fix. Nothing here
 * reads the machine, so every check is tested with tables (tests/unit/doctor_checks.test.ts).
 */
import type { OwnNode } from "./store.ts";
import type { NetworkConfig } from "../config/network.ts";
import { type Lease, leaseKey } from "../lease/lease.ts";
import { type IPv4Net, formatIPv4, formatIPv4Net, parseIPv4Net } from "../net/ip.ts";
import { type DataPathState, type PlanScope, planDataPath, stateSize } from "../backend/route_plan.ts";
import type { SubnetEnv } from "../subnet_env.ts";

export type Severity = "ok" | "info" | "warn" | "error";

export interface Finding {
  /** Stable name for scripts, e.g. "forward-policy". */
  id: string;
  severity: Severity;
  /** One line: what is right or wrong. */
  title: string;
  /** What was seen that says so. */
  evidence: string[];
  /** What to do (absent when nothing is wrong). */
  fix?: string;
}

export interface DeviceInfo {
  name: string;
  mtu: number;
  addrs: string[];
}

/** A peer's health as the agent's /status shows it (src/health/prober.ts). */
export interface PeerProbe {
  subnet: string;
  publicIP: string;
  state: "unknown" | "up" | "down";
  since: string;
  mtuOk: boolean | null;
  cause: string | null;
}

export interface DoctorInput {
  flags: { ipMasq: boolean; forwardRules: boolean; subnetFile: string; status: string };
  /** Where leases come from (default etcd). */
  source?: "etcd" | "kube";
  /** Kube mode: this host's Node and why its podCIDR is unusable, if so. */
  ownNode?: OwnNode;
  config?: NetworkConfig;
  /** Why the config could not be read (etcd down, missing, invalid). */
  configError?: string;
  /** Every lease in the store (ours included). */
  leases?: Lease[];
  leasesError?: string;
  /** This host's public IP as the agent's interface flags select it. */
  publicIP?: string;
  iface?: { name: string; mtu: number };
  ifaceError?: string;
  subnetEnv?: SubnetEnv;
  subnetEnvError?: string;
  /** The backend's device (flannel.N, flannel0, flannel-wg), absent when it does not exist. */
  overlay?: DeviceInfo;
  /** Name of the device the backend should have ("" for host-gw: none). */
  overlayName: string;
  bridge?: DeviceInfo;
  /** The data path the leases call for and what the kernel holds (absent: not checked, with why). */
  dataPath?: { desired: DataPathState; actual: DataPathState; scope: PlanScope; names: Record<number, string> } | { skipped: string };
  firewall: { filter?: string; nat?: string; nft?: string; error?: string };
  /** The agent's /status peers with their probe results; undefined when the status server did not answer. */
  probes?: PeerProbe[];
  statusError?: string;
  /** tx checksum offload of the vxlan device (on/off), when read. */
  txChecksum?: boolean;
  /** uname -r. */
  kernel?: string;
}

const ok = (id: string, title: string, evidence: string[] = []): Finding => ({ id, severity: "ok", title, evidence });

/** The lease this host holds: the one whose subnet is subnet.env's FLANNEL_SUBNET. */
export function ownLease(input: DoctorInput): Lease | undefined {
  const s = input.subnetEnv?.subnet;
  if (!s || !input.leases) return undefined;
  let net: IPv4Net;
  try { net = parseIPv4Net(s.split(",")[0]!); } catch { return undefined; }
  return input.leases.find((l) => l.subnet?.ip === net.ip && l.subnet.len === net.len);
}

export function checkConfig(i: DoctorInput): Finding {
  if (!i.config) {
    return { id: "config", severity: "error", title: "the network config cannot be read", evidence: [i.configError ?? "no config"], fix: i.source === "kube"
      ? "mount the kube-flannel-cfg ConfigMap (key net-conf.json) at --net-config-path, and check the JSON"
      : "store one with `weft config set net-conf.json` (and check --etcd-endpoints, --etcd-prefix and TLS flags)" };
  }
  const c = i.config;
  return ok("config", `network config: ${c.network ? formatIPv4Net(c.network) : "IPv6 only"}, /${c.subnetLen} leases, backend ${c.backendType}`);
}

export function checkLease(i: DoctorInput): Finding {
  if (i.subnetEnvError || !i.subnetEnv?.subnet) {
    return { id: "lease", severity: "error", title: `no subnet file: the agent has not acquired a lease on this host`, evidence: [i.subnetEnvError ?? `${i.flags.subnetFile} has no FLANNEL_SUBNET`], fix: "start the agent (and read its log: `journalctl -u weft`) with the same --subnet-file" };
  }
  if (i.leasesError) return { id: "lease", severity: "warn", title: "the leases cannot be read", evidence: [i.leasesError], fix: "check --etcd-endpoints and that etcd answers" };
  const own = ownLease(i);
  if (!own) {
    return { id: "lease", severity: "error", title: `no lease in the store for this host's FLANNEL_SUBNET ${i.subnetEnv.subnet}`, evidence: [`${i.flags.subnetFile}: FLANNEL_SUBNET=${i.subnetEnv.subnet}`, `${i.leases?.length ?? 0} leases in the store, none of that subnet`], fix: "the lease expired or was deleted: a running weft takes it back within seconds; if the agent is stopped, start it" };
  }
  const pub = formatIPv4(own.attrs.publicIP);
  if (i.publicIP && pub !== i.publicIP) {
    return { id: "lease", severity: "error", title: `the lease ${leaseKey(own)} advertises PublicIP ${pub}, but this host's interface says ${i.publicIP}`, evidence: [`lease ${leaseKey(own)}: PublicIP ${pub}`, `interface ${i.iface?.name ?? "?"}: ${i.publicIP}`], fix: "peers send this host's traffic to the wrong address: give the agent the right --iface/--public-ip and restart it" };
  }
  const exp = own.expiration === null ? "a reservation" : own.expiration ? `until ${new Date(own.expiration).toISOString()}` : "";
  return ok("lease", `lease ${leaseKey(own)} held by ${pub}${exp ? ` (${exp})` : ""}`);
}

export function checkSubnetEnv(i: DoctorInput): Finding | undefined {
  const env = i.subnetEnv;
  const own = ownLease(i);
  if (!env || !own?.subnet || !i.config) return undefined;
  const problems: string[] = [];
  const net = i.config.network ? formatIPv4Net(i.config.network) : undefined;
  if (net && env.network && !env.network.split(",").includes(net)) problems.push(`FLANNEL_NETWORK=${env.network}, the config says ${net}`);
  const want = `${formatIPv4(own.subnet.ip + 1)}/${own.subnet.len}`;
  if (env.subnet !== want) problems.push(`FLANNEL_SUBNET=${env.subnet}, the lease calls for ${want}`);
  if (i.overlay && env.mtu !== undefined && env.mtu !== i.overlay.mtu) problems.push(`FLANNEL_MTU=${env.mtu}, ${i.overlay.name} has MTU ${i.overlay.mtu}`);
  if (problems.length === 0) return ok("subnet-env", `${i.flags.subnetFile} matches the lease`);
  return { id: "subnet-env", severity: "error", title: `${i.flags.subnetFile} does not match the lease`, evidence: problems, fix: "restart the agent (it rewrites the file), then recreate the pods that read the old values" };
}

export function checkDuplicatePublicIPs(i: DoctorInput): Finding | undefined {
  if (!i.leases) return undefined;
  const by = new Map<number, Lease[]>();
  for (const l of i.leases) if (l.attrs.publicIP !== 0) by.set(l.attrs.publicIP, [...(by.get(l.attrs.publicIP) ?? []), l]);
  const dups = [...by].filter(([, ls]) => ls.length > 1);
  if (dups.length === 0) return ok("duplicate-public-ip", `${i.leases.length} leases, each with its own PublicIP`);
  return {
    id: "duplicate-public-ip", severity: "error", title: `${dups.length} PublicIP${dups.length > 1 ? "s" : ""} advertised by more than one lease`,
    evidence: dups.map(([ip, ls]) => `${formatIPv4(ip)}: ${[...ls].sort((a, b) => (a.subnet?.ip ?? 0) - (b.subnet?.ip ?? 0)).map(leaseKey).join(", ")}`),
    fix: "each host needs its own address (--iface/--public-ip; cloned VMs keep the old one); release the stale lease with `weft leases release SUBNET`",
  };
}

function describeState(s: DataPathState, names: Record<number, string>): string[] {
  const dev = (n: number) => names[n] ?? `#${n}`;
  return [
    ...s.routes.map((r) => `route ${r.dst}${r.gw ? ` via ${r.gw}` : ""} dev ${dev(r.dev)}${r.onlink ? " onlink" : ""}`),
    ...s.neighs.map((n) => `neighbour ${n.ip} lladdr ${n.mac} dev ${dev(n.dev)}`),
    ...s.fdbs.map((f) => `fdb ${f.mac} dev ${dev(f.dev)} dst ${f.dst}`),
  ];
}

export function checkDataPath(i: DoctorInput): Finding[] {
  const d = i.dataPath;
  if (!d) return [];
  if ("skipped" in d) return [{ id: "data-path", severity: "info", title: `kernel entries not compared: ${d.skipped}`, evidence: [] }];
  const plan = planDataPath(d.desired, d.actual, d.scope);
  const out: Finding[] = [];
  if (stateSize(plan.add) > 0) {
    out.push({ id: "data-path-missing", severity: "error", title: `${stateSize(plan.add)} kernel entr${stateSize(plan.add) > 1 ? "ies" : "y"} the leases call for ${stateSize(plan.add) > 1 ? "are" : "is"} missing or wrong`, evidence: describeState(plan.add, d.names), fix: "weft puts them back at its next check (10 s); if they stay missing, something else removes them (another network agent? a script?); read the agent's log for netlink errors" });
  }
  if (stateSize(plan.del) > 0) {
    out.push({ id: "data-path-stale", severity: "warn", title: `${stateSize(plan.del)} stale kernel entr${stateSize(plan.del) > 1 ? "ies" : "y"} inside the cluster network, for no lease`, evidence: describeState(plan.del, d.names), fix: "a running weft removes them at its next check; otherwise `ip route del …` / `ip neigh del …` / `bridge fdb del …` as listed" });
  }
  if (out.length === 0) out.push(ok("data-path", `kernel entries match the ${d.desired.routes.length} peer lease(s)`));
  return out;
}

/** `:FORWARD DROP [0:0]` in iptables-save, or a forward hook chain with `policy drop` in nft. */
function forwardPolicy(fw: DoctorInput["firewall"]): string | undefined {
  const m = fw.filter && /^:FORWARD (\w+)/m.exec(fw.filter);
  if (m) return m[1];
  if (fw.nft && /hook forward[^;]*;[^}]*policy drop/.test(fw.nft)) return "DROP";
  return undefined;
}

export function checkForward(i: DoctorInput): Finding | undefined {
  const net = i.config?.network ? formatIPv4Net(i.config.network) : undefined;
  if (!net) return undefined;
  if (i.firewall.error && !i.firewall.filter && !i.firewall.nft) return { id: "forward", severity: "info", title: "the firewall could not be read", evidence: [i.firewall.error] };
  const policy = forwardPolicy(i.firewall) ?? "ACCEPT";
  const accepts = (i.firewall.filter ?? "").split("\n").some((l) => l.includes("flanneld forward") && l.includes("-j ACCEPT"))
    || (i.firewall.filter ?? "").split("\n").some((l) => /^-A FORWARD\b/.test(l) && (l.includes(`-s ${net}`) || l.includes(`-d ${net}`)) && l.includes("-j ACCEPT"))
    || /table ip flannel-ipv4[\s\S]*accept/.test(i.firewall.nft ?? "");
  if (policy === "DROP" && !accepts) {
    return {
      id: "forward", severity: "error", title: `the FORWARD chain drops by default and no rule accepts the cluster network ${net}: pods cannot reach other hosts' pods`,
      evidence: [`iptables FORWARD policy ${policy} (Docker sets it)`, `no ACCEPT for -s/-d ${net}${i.flags.forwardRules ? "" : "; the agent runs with --iptables-forward-rules=false"}`],
      fix: `run the agent with --iptables-forward-rules=true (the default), or add: iptables -A FORWARD -s ${net} -j ACCEPT; iptables -A FORWARD -d ${net} -j ACCEPT`,
    };
  }
  if (i.flags.forwardRules && !accepts) {
    return { id: "forward", severity: "warn", title: "weft's forward rules are missing (--iptables-forward-rules is on)", evidence: [`FORWARD policy ${policy}`, "no \"flanneld forward\" rules"], fix: "a running weft re-adds them within --iptables-resync seconds; if not, read its log for iptables errors" };
  }
  return ok("forward", `FORWARD policy ${policy}${accepts ? `, ${net} accepted` : ""}`);
}

export function checkMasquerade(i: DoctorInput): Finding | undefined {
  if (!i.flags.ipMasq) return undefined;
  const has = (i.firewall.nat ?? "").includes("flanneld masq") || /table ip flannel-ipv4[\s\S]*masquerade/.test(i.firewall.nft ?? "");
  if (has) return ok("masquerade", "masquerade rules present (--ip-masq)");
  return { id: "masquerade", severity: "error", title: "--ip-masq is on but weft's masquerade rules are missing: pods cannot reach outside the cluster", evidence: [i.firewall.error ?? "no \"flanneld masq\" rule in the nat table nor a flannel-ipv4 nft table"], fix: "a running weft re-adds them within --iptables-resync seconds; otherwise start it and read its log" };
}

export function checkMtu(i: DoctorInput): Finding[] {
  const out: Finding[] = [];
  const backend = i.config?.backendType;
  const overhead = backend === "vxlan" ? 50 : backend === "udp" ? 28 : backend === "wireguard" ? 80 : 0;
  const overlayMtu = i.overlay?.mtu ?? (backend === "host-gw" ? i.iface?.mtu : undefined);
  if (i.overlayName && !i.overlay) {
    out.push({ id: "overlay-device", severity: "error", title: `the overlay device ${i.overlayName} does not exist`, evidence: [`no link ${i.overlayName}`], fix: "start the agent (it creates the device); if it fails, its log says why" });
  }
  if (i.overlay && i.iface && i.overlay.mtu + overhead > i.iface.mtu) {
    out.push({ id: "mtu-underlay", severity: "error", title: `${i.overlay.name} MTU ${i.overlay.mtu} does not fit the underlay ${i.iface.name} (MTU ${i.iface.mtu}) with ${overhead} bytes of ${backend} headers`, evidence: [`${i.overlay.name} mtu ${i.overlay.mtu}`, `${i.iface.name} mtu ${i.iface.mtu}`], fix: `remove the MTU override or set it to at most ${i.iface.mtu - overhead}` });
  }
  if (i.bridge && overlayMtu !== undefined && i.bridge.mtu > overlayMtu) {
    out.push({ id: "mtu-bridge", severity: "error", title: `the containers' bridge ${i.bridge.name} has MTU ${i.bridge.mtu}, larger than the overlay's ${overlayMtu}: large packets between pods are lost while pings pass`, evidence: [`${i.bridge.name} mtu ${i.bridge.mtu}`, `overlay mtu ${overlayMtu}`, `FLANNEL_MTU=${i.subnetEnv?.mtu ?? "?"}`], fix: "the CNI config must use FLANNEL_MTU from subnet.env (the flannel plugin does): recreate cni0 and the pods, or set the bridge's MTU" });
  }
  if (out.length === 0 && overlayMtu !== undefined) out.push(ok("mtu", `MTU: overlay ${overlayMtu}${i.bridge ? `, ${i.bridge.name} ${i.bridge.mtu}` : ""}${i.iface ? `, underlay ${i.iface.name} ${i.iface.mtu}` : ""}`));
  return out;
}

export function checkProbes(i: DoctorInput): Finding[] {
  if (!i.probes) {
    return [{ id: "probes", severity: "warn", title: "the agent's probe results cannot be read", evidence: [i.statusError ?? "no status server"], fix: `start the agent with --healthz-port (doctor reads ${i.flags.status})` }];
  }
  const down = i.probes.filter((p) => p.state === "down");
  const mtu = i.probes.filter((p) => p.mtuOk === false);
  const unknown = i.probes.filter((p) => p.state === "unknown");
  const out: Finding[] = [];
  if (down.length) {
    out.push({ id: "peers-unreachable", severity: "error", title: `${down.length} of ${i.probes.length} peers unreachable through the overlay`, evidence: down.map((p) => `${p.subnet} (${p.publicIP}) since ${p.since}: ${p.cause ?? "cause not diagnosed yet"}`), fix: "see each peer's cause: open the overlay port between the hosts, restore the route, or start the peer's agent" });
  }
  if (mtu.length) {
    out.push({ id: "peers-mtu", severity: "error", title: `full-size packets to ${mtu.length} peer(s) are lost while small ones pass (MTU black hole)`, evidence: mtu.map((p) => `${p.subnet} (${p.publicIP})`), fix: "make the underlay MTU the same on every host, or lower the overlay MTU (FLANNEL_MTU) to what the path carries" });
  }
  if (unknown.length) out.push({ id: "peers-unknown", severity: "info", title: `${unknown.length} peer(s) not yet answered (just started, or not weft)`, evidence: unknown.map((p) => `${p.subnet} (${p.publicIP})`) });
  if (!down.length && !mtu.length) out.push(ok("probes", `${i.probes.filter((p) => p.state === "up").length} of ${i.probes.length} peers reachable through the overlay`));
  return out;
}

export function checkChecksumOffload(i: DoctorInput): Finding | undefined {
  if (i.config?.backendType !== "vxlan" || i.txChecksum === undefined) return undefined;
  if (!i.txChecksum) return ok("checksum-offload", `tx checksum offload is off on ${i.overlayName}`);
  return {
    id: "checksum-offload", severity: "info", title: `tx checksum offload is on on ${i.overlayName}: fine on current kernels; on kernels with the vxlan checksum bug, connections to Service IPs take ~63 s`,
    evidence: [`ethtool -k ${i.overlayName}: tx-checksum-ip-generic on`, `kernel ${i.kernel ?? "?"}`],
    fix: `if connections through kube-proxy stall for about a minute: "DisableTxChecksumOffload": true in the Backend, or ethtool -K ${i.overlayName} tx-checksum-ip-generic off`,
  };
}

/** Every check, in the order people read them. */
/** Kube mode: the Node must have a podCIDR, or the agent waits forever (flannel #728, #1344). */
function checkPodCIDR(i: DoctorInput): Finding | undefined {
  const n = i.ownNode;
  if (!n) return undefined;
  if (n.problem) {
    return {
      id: "pod-cidr", severity: "error", title: `this host's Node ${n.name} has no usable podCIDR`, evidence: [n.problem],
      fix: "run kube-controller-manager with --allocate-node-cidrs=true and --cluster-cidr matching the Network of net-conf.json (or set the Node's spec.podCIDR)",
    };
  }
  return ok("pod-cidr", `Node ${n.name} has podCIDR ${n.podCIDRs.join(", ")}`);
}

export function runChecks(i: DoctorInput): Finding[] {
  return [
    checkConfig(i), checkPodCIDR(i), checkLease(i), checkSubnetEnv(i), checkDuplicatePublicIPs(i), ...checkDataPath(i),
    checkForward(i), checkMasquerade(i), ...checkMtu(i), ...checkProbes(i), checkChecksumOffload(i),
  ].filter((f): f is Finding => f !== undefined);
}

/** Findings for people: one line each, evidence and fix indented below. */
export function formatFindings(fs: readonly Finding[]): string {
  const mark: Record<Severity, string> = { ok: "ok   ", info: "info ", warn: "WARN ", error: "ERROR" };
  const lines: string[] = [];
  for (const f of fs) {
    lines.push(`${mark[f.severity]} ${f.title}`);
    if (f.severity !== "ok") {
      for (const e of f.evidence) lines.push(`        · ${e}`);
      if (f.fix) lines.push(`        fix: ${f.fix}`);
    }
  }
  const bad = fs.filter((f) => f.severity === "error").length;
  lines.push("", bad ? `${bad} problem${bad > 1 ? "s" : ""} found` : "no problems found");
  return `${lines.join("\n")}\n`;
}
