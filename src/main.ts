/**
 * @module weft's entry point: the agent (flanneld's command line), the admin subcommands, and
 * the CNI plugin when a container runtime invokes the executable (CNI_COMMAND set, or installed
 * under the name `flannel`). Parses, dispatches, and owns the process: signals and exit codes.
 */
import { readFileSync } from "node:fs";
import { basename } from "node:path";
import type { AgentFlags } from "./cli/agent_flags.ts";
import type { EtcdRegistry } from "./registry/etcd.ts";
import type { SubnetManager } from "./subnet/types.ts";
import { VERSION } from "./version.ts";

// Modules are imported where they are needed: a CNI call (one per pod ADD/DEL) must not pay for
// loading etcd, gRPC and the agent.

/** The etcd registry the flags describe; throws (a one-line message) on unusable TLS files. */
async function registryFrom(f: AgentFlags, signal?: AbortSignal): Promise<EtcdRegistry> {
  const { EtcdRegistry } = await import("./registry/etcd.ts");
  return new EtcdRegistry({
    signal,
    endpoints: f["etcd-endpoints"].split(",").map((s) => s.trim()).filter(Boolean),
    prefix: f["etcd-prefix"],
    keyFile: f["etcd-keyfile"] || undefined,
    certFile: f["etcd-certfile"] || undefined,
    caFile: f["etcd-cafile"] || undefined,
    username: f["etcd-username"] || undefined,
    password: f["etcd-password"] || undefined,
  });
}

async function main(argv: string[]): Promise<number> {
  if (process.env.CNI_COMMAND || basename(process.execPath) === "flannel") {
    const { runCniPlugin } = await import("./cni/plugin.ts");
    const stdin = process.env.CNI_COMMAND === "VERSION" ? "" : readFileSync(0, "utf8");
    const r = await runCniPlugin(process.env, stdin);
    if (r.stdout) process.stdout.write(r.stdout);
    if (r.stderr) process.stderr.write(r.stderr);
    return r.code;
  }

  const { AGENT_FLAGS, ignoredFlagWarnings, parseAgentFlags } = await import("./cli/agent_flags.ts");
  const { redact, usage, UsageError } = await import("./cli/go_flags.ts");
  const { ADMIN_USAGE, runAdmin } = await import("./cli/admin.ts");
  const { ADMIN_COMMANDS, hoistAdminFlags } = await import("./cli/admin_args.ts");
  let parsed;
  try {
    parsed = parseAgentFlags(hoistAdminFlags(argv, AGENT_FLAGS), process.env);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    process.stderr.write(`${e.message}\n`);
    return 1;
  }
  const f = parsed.values;
  if (f.h || f.help) {
    process.stdout.write(usage(basename(process.argv[1] ?? "weft"), AGENT_FLAGS));
    process.stdout.write(`\nAdmin commands:\n${ADMIN_USAGE}${(await import("./cli/doctor.ts")).DOCTOR_USAGE}`);
    return 0;
  }
  if (f.version) {
    process.stderr.write(`${VERSION}\n`);
    return 0;
  }
  const { createLogger, setVerbosity } = await import("./log.ts");
  setVerbosity(f.v);
  const log = createLogger();

  if (parsed.positionals.length > 0) {
    const [cmd] = parsed.positionals;
    if (cmd === "docker-opts") {
      const { runDockerOpts } = await import("./docker_opts.ts");
      return runDockerOpts(parsed.positionals.slice(1));
    }
    if (!ADMIN_COMMANDS.has(cmd!)) {
      process.stderr.write(`unknown command or argument ${JSON.stringify(cmd)}\n${ADMIN_USAGE}`);
      return 1;
    }
    if (cmd === "doctor" && f["kube-subnet-mgr"]) {
      // Kube mode: the config file and the Nodes, read with the agent's own client and flags.
      const { runDoctor } = await import("./cli/doctor.ts");
      const { kubeDoctorStore } = await import("./doctor/store.ts");
      const { KubeClient } = await import("./kube/client.ts");
      const { resolveKubeClientConfig } = await import("./kube/kubeconfig.ts");
      try {
        const client = new KubeClient(resolveKubeClientConfig({ apiUrl: f["kube-api-url"], kubeconfigFile: f["kubeconfig-file"], env: process.env }));
        const env = process.env;
        const store = kubeDoctorStore({
          client, netConfigPath: f["net-config-path"], annotationPrefix: f["kube-annotation-prefix"], nodeName: env.NODE_NAME || undefined,
          pod: env.POD_NAME && env.POD_NAMESPACE ? { namespace: env.POD_NAMESPACE, name: env.POD_NAME } : undefined,
        });
        try {
          return await runDoctor(store, f, parsed.positionals.slice(1), (t) => process.stdout.write(t));
        } finally {
          client.close();
        }
      } catch (e) {
        process.stderr.write(`${(e as Error).message}\n`);
        return 1;
      }
    }
    if (f["kube-subnet-mgr"]) {
      process.stderr.write(`weft ${cmd} serves etcd mode only; in kube mode (--kube-subnet-mgr) the leases are the Nodes' ` +
        `spec.podCIDR and ${f["kube-annotation-prefix"]} annotations ('kubectl get nodes -o yaml'), the config is ${f["net-config-path"]}\n`);
      return 1;
    }
    let registry: EtcdRegistry;
    try {
      registry = await registryFrom(f);
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      return 1;
    }
    try {
      if (cmd === "doctor") {
        const { etcdDoctorStore } = await import("./doctor/store.ts");
        return await (await import("./cli/doctor.ts")).runDoctor(etcdDoctorStore(registry), f, parsed.positionals.slice(1), (t) => process.stdout.write(t));
      }
      return await runAdmin(registry, parsed.positionals, {
        out: (t) => process.stdout.write(t),
        err: (t) => process.stderr.write(t),
        readStdin: () => readFileSync(0, "utf8"),
      });
    } catch (e) {
      process.stderr.write(`${(e as Error).message}\n`);
      return 1;
    } finally {
      await registry.close();
    }
  }

  log.info(`weft ${VERSION} (flanneld-compatible) starting`);
  for (const w of ignoredFlagWarnings(f, parsed.given)) log.warn(w);
  log.info(`CLI flags config: ${JSON.stringify(redact(AGENT_FLAGS, f))}`);

  // One agent per subnet file, held until exit (the kernel drops the lock however we die).
  const { lockSubnetFile, redactCommand } = await import("./subnet_lock.ts");
  try {
    await lockSubnetFile(f["subnet-file"], redactCommand(["weft", ...argv]));
  } catch (e) {
    log.error((e as Error).message);
    return 1;
  }

  const { Agent } = await import("./agent.ts");
  const { readHostNetwork } = await import("./net/iface.ts");
  const { Metrics } = await import("./status/metrics.ts");
  const metrics = new Metrics();
  // Aborted with the agent: etcd calls still in flight are abandoned, so shutdown never waits on etcd.
  const registryStop = new AbortController();
  let manager: SubnetManager;
  if (f["kube-subnet-mgr"]) {
    // Kube mode never loads the etcd client (etcd3 alone is ~37 MiB of RSS).
    const { KubeSubnetManager } = await import("./subnet/kube.ts");
    try {
      manager = KubeSubnetManager.fromFlags(f, process.env, log, { metrics });
    } catch (e) {
      log.error((e as Error).message);
      return 1;
    }
  } else {
    const { EtcdSubnetManager } = await import("./subnet/etcd.ts");
    const testTTL = Number(process.env.WEFT_TEST_LEASE_TTL_SECONDS ?? 0);
    let registry: EtcdRegistry;
    try {
      registry = await registryFrom(f, registryStop.signal);
    } catch (e) {
      log.error((e as Error).message);
      return 1;
    }
    manager = new EtcdSubnetManager({
      registry, log, metrics,
      renewMarginMinutes: f["subnet-lease-renew-margin"],
      leaseTTLSeconds: testTTL > 0 ? testTTL : undefined,
      resyncMs: Number(process.env.WEFT_RESYNC_MS ?? 0) || undefined,
    });
  }
  const agent = new Agent({
    manager,
    log,
    metrics,
    iface: {
      iface: f.iface, ifaceRegex: f["iface-regex"], ifaceCanReach: f["iface-can-reach"],
      publicIP: f["public-ip"], publicIPv6: f["public-ipv6"],
    },
    hostNetwork: readHostNetwork,
    subnetFile: f["subnet-file"],
    ipMasq: f["ip-masq"],
    forwardRules: f["iptables-forward-rules"],
    randomFullyDisabled: f["ip-masq-fully-random-disable"],
    iptablesResyncSeconds: f["iptables-resync"],
    blackholeRoute: f["ip-blackhole-route"],
    healthzIP: f["healthz-ip"],
    healthzPort: f["healthz-port"],
    checkIntervalMs: Number(process.env.WEFT_ROUTE_CHECK_MS ?? 0) || undefined,
    health: {
      port: f["health-port"],
      intervalMs: Number(process.env.WEFT_HEALTH_INTERVAL_MS ?? 0) || undefined,
      maxPerSecond: Number(process.env.WEFT_HEALTH_MAX_RATE ?? 0) || undefined,
    },
  });
  agent.signal.addEventListener("abort", () => registryStop.abort(), { once: true });
  let signals = 0;
  const onSignal = (sig: string) => {
    if (++signals > 1) {
      log.warn(`second ${sig}: exiting now`);
      process.exit(1);
    }
    log.info(`received ${sig}: shutting down`);
    agent.stop(0);
  };
  process.on("SIGINT", () => onSignal("SIGINT"));
  process.on("SIGTERM", () => onSignal("SIGTERM"));
  return agent.run();
}

process.exitCode = await main(process.argv.slice(2));
// Let stdio drain, then end even if a library left a handle open.
setTimeout(() => process.exit(process.exitCode as number), 50).unref?.();
