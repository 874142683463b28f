/**
 * @module The deploy/ files checked for the mistakes that would break a node: the Kubernetes
 * manifests (kube-flannel.yml in kube mode: flannel's names, args the real flag parser accepts,
 * RBAC exactly src/kube/access.ts's KUBE_API_ACCESS; weft.yaml in etcd mode: one image
 * everywhere, agent args weft and flanneld both accept, host paths matching what the agent and
 * the CNI plugin use, probes on the healthz port and address, the ConfigMap's
 * net-conf.json and cni-conf.json accepted by the real parsers, RBAC wired to the DaemonSet's
 * account), the systemd units (parsed as INI) and the Dockerfile (read as text: no docker
 * engine here).
 */
import { describe, expect, test } from "bun:test";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";
import { udpOptions } from "../../src/backend/udp/udp_options.ts";
import { parseAgentFlags } from "../../src/cli/agent_flags.ts";
import { renderDelegateConfig } from "../../src/cni/delegate_config.ts";
import { parseFlannelEnv } from "../../src/cni/flannel_env.ts";
import { parseFlannelNetConf } from "../../src/cni/netconf.ts";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { KUBE_API_ACCESS } from "../../src/kube/access.ts";

const DEPLOY = join(import.meta.dir, "..", "..", "deploy");
const read = (path: string) => readFileSync(join(DEPLOY, path), "utf8");

/** flanneld's flags (compat §1): weft's manifests use no flag flanneld lacks. */
const FLANNELD_FLAGS = new Set([
  "etcd-endpoints", "etcd-prefix", "etcd-keyfile", "etcd-certfile", "etcd-cafile", "etcd-username", "etcd-password",
  "iface", "iface-regex", "iface-can-reach", "subnet-file", "public-ip", "public-ipv6", "subnet-lease-renew-margin",
  "ip-masq", "ip-masq-fully-random-disable", "iptables-resync", "iptables-forward-rules", "ip-blackhole-route",
  "kube-subnet-mgr", "kube-api-url", "kubeconfig-file", "kube-annotation-prefix", "net-config-path",
  "set-node-network-unavailable", "healthz-ip", "healthz-port", "v", "vmodule", "log_backtrace_at",
]);

/** The flag names in an argv (`--x=v`, `-x v`, `--x`). */
function flagNames(args: string[]): string[] {
  return args.filter((a) => a.startsWith("-")).map((a) => a.replace(/^--?/, "").split("=")[0]!);
}

// ------------------------------------------------------------------ Kubernetes

const docs = parseAllDocuments(read("kubernetes/weft.yaml")).map((d) => {
  expect(d.errors).toEqual([]);
  return d.toJS() as any;
}).filter(Boolean);
const byKind = (kind: string) => docs.filter((d) => d.kind === kind);
const one = (kind: string) => {
  expect(byKind(kind)).toHaveLength(1);
  return byKind(kind)[0]!;
};
const ds = one("DaemonSet");
const pod = ds.spec.template.spec;
const configMap = one("ConfigMap");
const allContainers: any[] = [...pod.initContainers, ...pod.containers];
const agent = pod.containers.find((c: any) => c.name === "kube-flannel");

/** Kubernetes' `$(VAR)` expansion in command/args, from the container's env and the ConfigMap. */
function expand(container: any, text: string, cm = configMap): string {
  return text.replace(/\$\((\w+)\)/g, (_, name: string) => {
    const env = (container.env ?? []).find((e: any) => e.name === name);
    expect(env).toBeDefined();
    if (env.value !== undefined) return env.value;
    const ref = env.valueFrom.configMapKeyRef;
    expect(ref.name).toBe(cm.metadata.name);
    return cm.data[ref.key];
  });
}
const agentArgs: string[] = agent.args.map((a: string) => expand(agent, a));
const flags = parseAgentFlags(agentArgs, {}).values;

/** The hostPath a container path lies on, through the container's mounts. */
function hostPathOf(container: any, path: string, podSpec = pod): string | undefined {
  for (const m of container.volumeMounts ?? []) {
    const mount = m.mountPath.replace(/\/$/, "");
    if (path !== mount && !path.startsWith(`${mount}/`)) continue;
    const volume = podSpec.volumes.find((v: any) => v.name === m.name);
    if (volume?.hostPath) return volume.hostPath.path + path.slice(mount.length);
  }
  return undefined;
}

describe("deploy/kubernetes/weft.yaml", () => {
  test("has kube-flannel.yml's objects, all in one namespace", () => {
    for (const kind of ["Namespace", "ServiceAccount", "ClusterRole", "ClusterRoleBinding", "ConfigMap", "DaemonSet"]) one(kind);
    const ns = one("Namespace").metadata.name;
    for (const d of docs.filter((d) => !["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(d.kind))) {
      expect(d.metadata.namespace).toBe(ns);
    }
    expect(configMap.metadata.name).toBe("kube-flannel-cfg");
  });

  test("one pinned image in every container", () => {
    const images = new Set(allContainers.map((c) => c.image));
    expect([...images]).toEqual(["ghcr.io/weft-net/weft:0.1.0"]);
  });

  test("the agent's args are valid weft flags and flanneld flags, in etcd mode with masquerading", () => {
    expect(agent.command).toEqual(["/usr/local/bin/weft"]);
    for (const name of flagNames(agentArgs)) expect(FLANNELD_FLAGS.has(name)).toBe(true);
    expect(flags["kube-subnet-mgr"]).toBe(false);
    expect(flags["ip-masq"]).toBe(true);
    for (const url of flags["etcd-endpoints"].split(",")) expect(new URL(url).port).toBe("2379");
  });

  test("probes hit /healthz and /readyz on --healthz-port, served on an address the kubelet reaches", () => {
    const port = agent.ports.find((p: any) => p.containerPort === flags["healthz-port"]);
    expect(port).toBeDefined();
    expect(flags["healthz-port"]).toBe(8081);
    expect(flags["healthz-ip"]).toBe("0.0.0.0");
    expect([agent.livenessProbe.httpGet.path, agent.readinessProbe.httpGet.path]).toEqual(["/healthz", "/readyz"]);
    for (const probe of [agent.livenessProbe, agent.readinessProbe]) {
      expect([port.name, port.containerPort]).toContain(probe.httpGet.port);
    }
    expect(pod.hostNetwork).toBe(true);
  });

  test("subnet.env lands on the host where the CNI plugin reads it", () => {
    const cni = JSON.parse(configMap.data["cni-conf.json"]);
    const pluginConf = cni.plugins.find((p: any) => p.type === "flannel");
    const pluginReads = parseFlannelNetConf(JSON.stringify({ ...pluginConf, name: cni.name })).subnetFile;
    expect(hostPathOf(agent, flags["subnet-file"])).toBe(pluginReads);
  });

  test("the agent can program the kernel and share the xtables lock", () => {
    expect(agent.securityContext.capabilities.add).toEqual(expect.arrayContaining(["NET_ADMIN", "NET_RAW"]));
    expect(hostPathOf(agent, "/run/xtables.lock")).toBe("/run/xtables.lock");
  });

  test("init containers install weft as the flannel plugin and the conflist, onto the host's CNI dirs", () => {
    const install = pod.initContainers.find((c: any) => c.name === "install-cni-plugin");
    const script = install.command.join(" ");
    expect(script).toContain("/usr/local/bin/weft");
    const target = /mv -f \S+ (\S+)$/.exec(script)![1]!;
    expect(hostPathOf(install, target)).toBe("/opt/cni/bin/flannel");

    const conf = pod.initContainers.find((c: any) => c.name === "install-cni");
    const confScript = conf.command.join(" ");
    const source = /cp -f (\S+) /.exec(confScript)![1]!;
    expect(source).toBe("/etc/kube-flannel/cni-conf.json");
    const configVolume = conf.volumeMounts.find((m: any) => source.startsWith(m.mountPath));
    expect(pod.volumes.find((v: any) => v.name === configVolume.name).configMap.name).toBe(configMap.metadata.name);
    const conflist = /mv -f \S+ (\S+)$/.exec(confScript)![1]!;
    expect(hostPathOf(conf, conflist)).toBe("/etc/cni/net.d/10-flannel.conflist");
  });

  test("net-conf.json is a valid network config (vxlan over 10.244.0.0/16)", () => {
    const cfg = parseNetworkConfig(configMap.data["net-conf.json"]);
    expect(cfg.backendType).toBe("vxlan");
    expect(cfg.network).toBeDefined();
    expect(JSON.parse(configMap.data["net-conf.json"]).Network).toBe("10.244.0.0/16");
    const seed = pod.initContainers.find((c: any) => c.name === "seed-net-conf");
    expect(expand(seed, seed.command.join(" "))).toContain(`config set /etc/kube-flannel/net-conf.json --etcd-endpoints=${flags["etcd-endpoints"]}`);
  });

  test("cni-conf.json is flannel's conflist, and weft's plugin accepts its flannel entry", () => {
    const cni = JSON.parse(configMap.data["cni-conf.json"]);
    expect([cni.name, cni.cniVersion, cni.plugins.map((p: any) => p.type)]).toEqual(["cbr0", "0.3.1", ["flannel", "portmap"]]);
    expect(cni.plugins[1].capabilities).toEqual({ portMappings: true });
    // libcni hands each plugin its entry with the list's name and cniVersion added.
    const netconf = parseFlannelNetConf(JSON.stringify({ ...cni.plugins[0], name: cni.name, cniVersion: cni.cniVersion }));
    const env = parseFlannelEnv("FLANNEL_NETWORK=10.244.0.0/16\nFLANNEL_SUBNET=10.244.1.1/24\nFLANNEL_MTU=1450\nFLANNEL_IPMASQ=true\n", "subnet.env");
    expect(JSON.parse(renderDelegateConfig(netconf, env).bytes)).toMatchObject({
      type: "bridge", name: "cbr0", hairpinMode: true, isDefaultGateway: true, ipMasq: false, mtu: 1450,
    });
  });

  test("RBAC: the DaemonSet's account is bound to flannel's rules", () => {
    const sa = one("ServiceAccount");
    const binding = one("ClusterRoleBinding");
    const role = one("ClusterRole");
    expect(pod.serviceAccountName).toBe(sa.metadata.name);
    expect(binding.subjects).toContainEqual({ kind: "ServiceAccount", name: sa.metadata.name, namespace: sa.metadata.namespace });
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name });
    const can = (resource: string, verb: string) => role.rules.some((r: any) => r.resources.includes(resource) && r.verbs.includes(verb));
    for (const [res, verb] of [["pods", "get"], ["nodes", "list"], ["nodes", "watch"], ["nodes/status", "patch"]]) expect(can(res!, verb!)).toBe(true);
    expect(ds.spec.selector.matchLabels).toEqual(expect.objectContaining({ app: "flannel" }));
    expect(ds.spec.template.metadata.labels).toMatchObject(ds.spec.selector.matchLabels);
  });
});

// ------------------------------------------------------------------ Kubernetes, kube mode

/** kube-flannel.yml: flannel's manifest in kube mode, with weft. */
const kube = (() => {
  const all = parseAllDocuments(read("kubernetes/kube-flannel.yml")).map((d) => {
    expect(d.errors).toEqual([]);
    return d.toJS() as any;
  }).filter(Boolean);
  const of = (kind: string) => {
    const found = all.filter((d) => d.kind === kind);
    expect(found).toHaveLength(1);
    return found[0]!;
  };
  const ds = of("DaemonSet");
  const pod = ds.spec.template.spec;
  const agent = pod.containers.find((c: any) => c.name === "kube-flannel");
  return { all, of, ds, pod, agent, configMap: of("ConfigMap"), args: agent.args as string[] };
})();
const kubeFlags = parseAgentFlags(kube.args, {}).values;

/** `resource verb` for every pair a list of rules grants. */
function grants(rules: { resources?: string[]; resource?: string; verbs: readonly string[] }[]): string[] {
  return rules.flatMap((r) => (r.resources ?? [r.resource!]).flatMap((res) => r.verbs.map((v) => `${res} ${v}`))).sort();
}

describe("deploy/kubernetes/kube-flannel.yml (kube mode)", () => {
  test("flannel's objects and names: namespace kube-flannel, account/role/binding flannel, ConfigMap kube-flannel-cfg with flannel's two keys, DaemonSet kube-flannel-ds", () => {
    expect(kube.all.map((d) => `${d.kind}/${d.metadata.name}`)).toEqual([
      "Namespace/kube-flannel", "ClusterRole/flannel", "ClusterRoleBinding/flannel", "ServiceAccount/flannel", "ConfigMap/kube-flannel-cfg", "DaemonSet/kube-flannel-ds",
    ]);
    for (const d of kube.all.filter((d) => !["Namespace", "ClusterRole", "ClusterRoleBinding"].includes(d.kind))) expect(d.metadata.namespace).toBe("kube-flannel");
    expect(Object.keys(kube.configMap.data).sort()).toEqual(["cni-conf.json", "net-conf.json"]);
    expect(kube.ds.spec.selector.matchLabels).toEqual({ app: "flannel" });
  });

  test("the agent's args are flannel's (--ip-masq --kube-subnet-mgr) plus healthz, accepted by weft's flag parser, with no etcd flag", () => {
    expect(kube.agent.command).toEqual(["/usr/local/bin/weft"]);
    for (const name of flagNames(kube.args)) expect(FLANNELD_FLAGS.has(name)).toBe(true);
    expect(flagNames(kube.args).filter((f) => f.startsWith("etcd-"))).toEqual([]);
    expect([kubeFlags["kube-subnet-mgr"], kubeFlags["ip-masq"], kubeFlags["kubeconfig-file"], kubeFlags["kube-api-url"]]).toEqual([true, true, "", ""]);
    expect([kubeFlags["healthz-ip"], kubeFlags["healthz-port"]]).toEqual(["0.0.0.0", 8081]);
  });

  test("--net-config-path (default) reads net-conf.json from the mounted ConfigMap, and it is a valid network config", () => {
    const path: string = kubeFlags["net-config-path"];
    expect(path).toBe("/etc/kube-flannel/net-conf.json");
    const mount = kube.agent.volumeMounts.find((m: any) => path.startsWith(m.mountPath));
    expect(kube.pod.volumes.find((v: any) => v.name === mount.name).configMap.name).toBe(kube.configMap.metadata.name);
    const cfg = parseNetworkConfig(kube.configMap.data[path.slice(mount.mountPath.replace(/\/?$/, "/").length)]);
    expect([cfg.backendType, JSON.parse(kube.configMap.data["net-conf.json"]).Network]).toEqual(["vxlan", "10.244.0.0/16"]);
  });

  test("the node name comes from the agent's own Pod (POD_NAME/POD_NAMESPACE, downward API), as flanneld finds it", () => {
    const env = Object.fromEntries(kube.agent.env.map((e: any) => [e.name, e.valueFrom?.fieldRef?.fieldPath]));
    expect(env).toMatchObject({ POD_NAME: "metadata.name", POD_NAMESPACE: "metadata.namespace" });
  });

  test("RBAC grants exactly what the agent's Kubernetes client uses (KUBE_API_ACCESS), in the core group, to the DaemonSet's account", () => {
    const role = kube.of("ClusterRole");
    expect(grants(role.rules)).toEqual(grants(KUBE_API_ACCESS));
    for (const rule of role.rules) expect(Object.keys(rule).sort()).toEqual(["apiGroups", "resources", "verbs"]);
    for (const rule of role.rules) expect(rule.apiGroups).toEqual([""]);
    const sa = kube.of("ServiceAccount"), binding = kube.of("ClusterRoleBinding");
    expect(kube.pod.serviceAccountName).toBe(sa.metadata.name);
    expect(binding.subjects).toEqual([{ kind: "ServiceAccount", name: sa.metadata.name, namespace: sa.metadata.namespace }]);
    expect(binding.roleRef).toEqual({ apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: role.metadata.name });
  });

  test("the node-side parts are the etcd variant's (checked above): image, CNI install, cni-conf.json, volumes, probes, subnet.env path", () => {
    expect(new Set([...kube.pod.initContainers, ...kube.pod.containers].map((c: any) => c.image))).toEqual(new Set(allContainers.map((c) => c.image)));
    const initial = (p: any, name: string) => p.initContainers.find((c: any) => c.name === name);
    for (const name of ["install-cni-plugin", "install-cni"]) expect(initial(kube.pod, name)).toEqual(initial(pod, name));
    expect(kube.pod.initContainers.map((c: any) => c.name)).toEqual(["install-cni-plugin", "install-cni"]);
    expect(kube.configMap.data["cni-conf.json"]).toBe(configMap.data["cni-conf.json"]);
    expect(kube.pod.volumes).toEqual(pod.volumes);
    expect([kube.agent.ports, kube.agent.livenessProbe, kube.agent.readinessProbe]).toEqual([agent.ports, agent.livenessProbe, agent.readinessProbe]);
    expect(hostPathOf(kube.agent, kubeFlags["subnet-file"], kube.pod)).toBe(hostPathOf(agent, flags["subnet-file"]));
    expect(hostPathOf(kube.agent, "/run/xtables.lock", kube.pod)).toBe("/run/xtables.lock");
    expect(kube.agent.securityContext.capabilities.add).toEqual(["NET_ADMIN", "NET_RAW"]);
    expect(kube.pod.hostNetwork).toBe(true);
  });
});

// ------------------------------------------------------------------ systemd

/** A systemd unit as sections of key → values (a key may repeat; `X=` resets it). */
function parseUnit(text: string): Record<string, Record<string, string[]>> {
  const out: Record<string, Record<string, string[]>> = {};
  let section = "";
  for (const raw of text.split("\n")) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) continue;
    const head = /^\[(.+)\]$/.exec(line);
    if (head) { section = head[1]!; out[section] ??= {}; continue; }
    const eq = line.indexOf("=");
    expect(eq).toBeGreaterThan(0);
    expect(section).not.toBe("");
    const key = line.slice(0, eq).trim(), value = line.slice(eq + 1).trim();
    const values = (out[section]![key] ??= []);
    if (value === "") values.length = 0; else values.push(value);
  }
  return out;
}

/** `KEY=value` lines, commented-out ones included (they are documentation to get right too). */
function envExample(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split("\n")) {
    const m = /^#?([A-Z][A-Z0-9_]*)=(.*)$/.exec(line.trim());
    if (m) out[m[1]!] = m[2]!;
  }
  return out;
}

describe("deploy/systemd", () => {
  test("weft.service runs /usr/local/bin/weft, restarts on failure, reads /etc/default/weft", () => {
    const unit = parseUnit(read("systemd/weft.service"));
    expect(unit.Service!.ExecStart).toHaveLength(1);
    expect(unit.Service!.ExecStart![0]!.split(/\s+/)[0]).toBe("/usr/local/bin/weft");
    expect(unit.Service!.Restart).toEqual(["on-failure"]);
    expect(unit.Service!.Type).toEqual(["notify"]); // weft sends READY=1 after writing subnet.env
    expect(unit.Service!.EnvironmentFile).toEqual(["-/etc/default/weft"]);
    expect(unit.Install!.WantedBy).toEqual(["multi-user.target"]);
  });

  test("weft.env.example sets only FLANNELD_* variables the agent reads (and the udp backend's WEFT_UDP_SPIN_US), and they parse", () => {
    const vars = envExample(read("systemd/weft.env.example"));
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(vars)) {
      if (k === "WEFT_OPTS") continue;
      if (k === "WEFT_UDP_SPIN_US") {
        expect(udpOptions({}, { [k]: v }).spinUs).toBe(Number(v));
        continue;
      }
      expect(k.startsWith("FLANNELD_")).toBe(true);
      const flag = [...FLANNELD_FLAGS].find((f) => `FLANNELD_${f.toUpperCase().replace(/[-.]/g, "_")}` === k);
      expect(flag).toBeDefined();
      env[k] = v;
    }
    const parsed = parseAgentFlags(vars.WEFT_OPTS!.split(" "), env).values;
    expect(parsed["ip-masq"]).toBe(true);
    expect(parsed["healthz-port"]).toBe(8081);
    expect(parsed.iface).toEqual(["eth0", "eth1"]);
  });

  test("the Docker drop-in starts after weft is ready (subnet.env written), runs weft docker-opts, and passes $DOCKER_OPTS", () => {
    const unit = parseUnit(read("systemd/docker-weft.conf"));
    const pre = unit.Service!.ExecStartPre!;
    expect(pre).toEqual(["/usr/local/bin/weft docker-opts -c -d /run/docker_opts.env"]);
    expect(unit.Unit!.Requires).toContain("weft.service");
    expect(parseUnit(read("systemd/weft.service")).Service!.Type).toEqual(["notify"]);
    expect(unit.Service!.EnvironmentFile).toEqual(["-/run/docker_opts.env"]);
    expect(unit.Service!.ExecStart).toHaveLength(1);
    expect(unit.Service!.ExecStart![0]).toContain("$DOCKER_OPTS");
    expect(unit.Unit!.After).toContain("weft.service");
  });
});

// ------------------------------------------------------------------ Docker

describe("deploy/docker/Dockerfile", () => {
  const lines = read("docker/Dockerfile").split("\n").filter((l) => l.trim() && !l.trim().startsWith("#"));
  test("puts dist/weft at the path the manifest runs, on bookworm-slim with iptables", () => {
    expect(lines[0]).toBe("FROM debian:bookworm-slim");
    expect(lines).toContain("COPY dist/weft /usr/local/bin/weft");
    expect(lines.join("\n")).toMatch(/apt-get install [^\n]*\biptables\b/);
    expect(lines.at(-1)).toBe('ENTRYPOINT ["/usr/local/bin/weft"]');
    expect(agent.command[0]).toBe("/usr/local/bin/weft");
  });
});
