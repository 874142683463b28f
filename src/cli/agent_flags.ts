/**
 * @module flanneld's flags (compat §1) with their names, defaults and meaning, plus what weft
 * adds. Every flag can come from `FLANNELD_<NAME>` when not on the command line.
 */
import { type FlagSpec, type FlagValues, parseGoFlags } from "./go_flags.ts";

export const AGENT_FLAGS = {
  "etcd-endpoints": { kind: "string", default: "http://127.0.0.1:4001,http://127.0.0.1:2379", help: "a comma-delimited list of etcd endpoints" },
  "etcd-prefix": { kind: "string", default: "/coreos.com/network", help: "etcd prefix" },
  "etcd-keyfile": { kind: "string", default: "", help: "SSL key file used to secure etcd communication" },
  "etcd-certfile": { kind: "string", default: "", help: "SSL certification file used to secure etcd communication" },
  "etcd-cafile": { kind: "string", default: "", help: "SSL Certificate Authority file used to secure etcd communication" },
  "etcd-username": { kind: "string", default: "", help: "username for BasicAuth to etcd" },
  "etcd-password": { kind: "string", default: "", help: "password for BasicAuth to etcd", secret: true },
  "iface": { kind: "list", help: "interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each option in order. Returns the first match found." },
  "iface-regex": { kind: "list", help: "regex expression to match the first interface to use (IP or name) for inter-host communication. Can be specified multiple times to check each regex in order. Returns the first match found. Regexes are checked after specific interfaces specified by the iface option have already been checked." },
  "iface-can-reach": { kind: "string", default: "", help: "detect interface to use (IP or name) for inter-host communication based on which will be used for provided IP. This is exactly the interface to use of command 'ip route get <ip-address>'" },
  "subnet-file": { kind: "string", default: "/run/flannel/subnet.env", help: "filename where env variables (subnet, MTU, ... ) will be written to" },
  "public-ip": { kind: "string", default: "", help: "IP accessible by other nodes for inter-host communication" },
  "public-ipv6": { kind: "string", default: "", help: "IPv6 accessible by other nodes for inter-host communication" },
  "subnet-lease-renew-margin": { kind: "int", default: 60, min: 1, max: 1439, unit: "minutes", help: "subnet lease renewal margin, in minutes, ranging from 1 to 1439" },
  "ip-masq": { kind: "bool", default: false, help: "setup IP masquerade rule for traffic destined outside of overlay network" },
  "ip-masq-fully-random-disable": { kind: "bool", default: false, help: "disable --random-fully on the MASQUERADE rules" },
  "iptables-resync": { kind: "int", default: 5, min: 1, max: 86400, unit: "seconds", help: "resync period for iptables rules, in seconds" },
  "iptables-forward-rules": { kind: "bool", default: true, help: "add default accept rules to FORWARD chain in iptables" },
  "ip-blackhole-route": { kind: "bool", default: false, help: "add blackhole routes (at the highest metric) for this host's subnet and the cluster network, so traffic for pod addresses nobody serves is dropped, not sent out by the default route" },
  "healthz-ip": { kind: "string", default: "127.0.0.1", help: "the IP address for healthz server to listen (weft's default is loopback; flanneld's is 0.0.0.0)" },
  "healthz-port": { kind: "int", default: 0, min: 0, max: 65535, help: "the port for healthz server to listen (0 to disable)" },
  "health-port": { kind: "int", default: 8473, min: 0, max: 65535, help: "UDP port of weft's overlay health probes, which every weft agent answers (0 to disable; weft's own flag)" },
  "kube-subnet-mgr": { kind: "bool", default: false, help: "contact the Kubernetes API for subnet assignment instead of etcd (the Node's spec.podCIDR, advertised in its annotations)" },
  "kube-api-url": { kind: "string", default: "", help: "Kubernetes API server URL (kube mode; overrides the kubeconfig's server). Does not need to be specified if weft is running in a pod." },
  "kubeconfig-file": { kind: "string", default: "", help: "kubeconfig file location (kube mode; YAML or JSON, its current context). Does not need to be specified if weft is running in a pod." },
  "kube-annotation-prefix": { kind: "string", default: "flannel.alpha.coreos.com", help: "Kubernetes annotation prefix (kube mode). Can contain single slash \"/\", otherwise it will be appended at the end." },
  "net-config-path": { kind: "string", default: "/etc/kube-flannel/net-conf.json", help: "path to the network configuration file (kube mode: the ConfigMap's net-conf.json)" },
  "set-node-network-unavailable": { kind: "bool", default: true, help: "set NodeNetworkUnavailable=False (reason FlannelIsUp) on the node after ready (kube mode)" },
  "use-multi-cluster-cidr": { kind: "bool", default: false, help: "accepted and ignored, with a warning (flanneld v0.21–v0.22)" },
  "version": { kind: "bool", default: false, help: "print version and exit", env: false },
  "v": { kind: "int", default: 0, min: 0, max: 10, help: "number for the log level verbosity" },
  "vmodule": { kind: "string", default: "", help: "comma-separated list of pattern=N settings for file-filtered logging (accepted and ignored, with a warning)" },
  "log_backtrace_at": { kind: "string", default: "", help: "when logging hits line file:N, emit a stack trace (accepted and ignored, with a warning)" },
  "h": { kind: "bool", default: false, help: "print this help and exit", env: false },
  "help": { kind: "bool", default: false, help: "print this help and exit", env: false },
} satisfies Record<string, FlagSpec>;

export type AgentFlags = FlagValues<typeof AGENT_FLAGS>;

/** Parses the agent's command line and environment. Throws UsageError. */
export function parseAgentFlags(argv: readonly string[], env: Record<string, string | undefined>) {
  return parseGoFlags(AGENT_FLAGS, argv, env, "FLANNELD");
}

/** Flags weft accepts for flanneld's command lines but does nothing with. */
export const IGNORED_FLAGS = ["use-multi-cluster-cidr", "vmodule", "log_backtrace_at"] as const;

/**
 * One warning per flag that is set (on the command line or through FLANNELD_*) but has no effect:
 * the ignored ones, and a mode's flags given in the other mode.
 */
export function ignoredFlagWarnings(f: AgentFlags, given: ReadonlySet<string>): string[] {
  const set = (name: keyof typeof AGENT_FLAGS) => given.has(name) || f[name] !== (AGENT_FLAGS[name] as { default?: unknown }).default;
  const out = IGNORED_FLAGS.filter(set).map((n) => `--${n} is accepted for compatibility with flanneld and ignored by weft`);
  const kube = ["kube-api-url", "kubeconfig-file", "kube-annotation-prefix", "net-config-path", "set-node-network-unavailable"] as const;
  const etcd = ["etcd-endpoints", "etcd-prefix", "etcd-keyfile", "etcd-certfile", "etcd-cafile", "etcd-username", "etcd-password", "subnet-lease-renew-margin"] as const;
  const other = f["kube-subnet-mgr"] ? etcd : kube;
  const mode = f["kube-subnet-mgr"] ? "in Kubernetes mode (--kube-subnet-mgr)" : "without --kube-subnet-mgr";
  for (const n of other) if (set(n)) out.push(`--${n} has no effect ${mode}`);
  return out;
}
