/**
 * @module Runs `setupTrafficRules` inside a network namespace for traffic_netns.test.ts
 * (`ip netns exec NS bun traffic_script.ts '<json>'`). The JSON gives the network config (as
 * stored in etcd), the lease, the flags, the previous subnet.env and the mode: `once` installs
 * and exits; `run` installs, prints {"ready":…} and keeps the resync loop going until SIGTERM.
 * Prints one JSON line per phase: {"ready": describe()} / {"stopped": describe()} /
 * {"error": message} (exit 1).
 */
import { parseNetworkConfig } from "../../src/config/network.ts";
import { createLogger, setVerbosity } from "../../src/log.ts";
import { parseIPv4Net, parseIPv6Net } from "../../src/net/ip.ts";
import { Metrics } from "../../src/status/metrics.ts";
import type { SubnetEnv } from "../../src/subnet_env.ts";
import { setupTrafficRules } from "../../src/traffic/index.ts";

interface Args {
  config: Record<string, unknown>;
  lease: { subnet?: string; ipv6Subnet?: string };
  ipMasq?: boolean;
  forwardRules?: boolean;
  randomFullyDisabled?: boolean;
  resyncSeconds?: number;
  previous?: SubnetEnv;
  bridgeSysctlDir?: string;
  mode: "once" | "run";
}

const args = JSON.parse(process.argv[2]!) as Args;
setVerbosity(2);
const stop = new AbortController();
process.on("SIGTERM", () => stop.abort());
const metrics = new Metrics();
try {
  const traffic = await setupTrafficRules({
    config: parseNetworkConfig(JSON.stringify(args.config)),
    lease: {
      subnet: args.lease.subnet ? parseIPv4Net(args.lease.subnet) : undefined,
      ipv6Subnet: args.lease.ipv6Subnet ? parseIPv6Net(args.lease.ipv6Subnet) : undefined,
    },
    ipMasq: args.ipMasq ?? true,
    forwardRules: args.forwardRules ?? true,
    randomFullyDisabled: args.randomFullyDisabled ?? false,
    resyncSeconds: args.resyncSeconds ?? 5,
    previous: args.previous,
    bridgeSysctlDir: args.bridgeSysctlDir,
    log: createLogger(),
    metrics,
    signal: stop.signal,
  });
  console.log(JSON.stringify({ ready: traffic.describe() }));
  if (args.mode === "run") await traffic.run();
  console.log(JSON.stringify({ stopped: traffic.describe(), metrics: metrics.render() }));
} catch (e) {
  console.log(JSON.stringify({ error: (e as Error).message }));
  process.exit(1);
}
