/** The --ip-blackhole-route planner and the ignored-flag warnings: pure tables. */
import { expect, test } from "bun:test";
import { planBlackholes, wantedBlackholes } from "../../src/blackhole.ts";
import { AGENT_FLAGS, ignoredFlagWarnings, parseAgentFlags } from "../../src/cli/agent_flags.ts";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { parseIPv4Net, parseIPv6Net } from "../../src/net/ip.ts";

test("wantedBlackholes(): the lease and the network, per enabled family", () => {
  const dual = parseNetworkConfig(`{"Network":"10.244.0.0/16","EnableIPv6":true,"IPv6Network":"fd00:10:244::/56","Backend":{"Type":"vxlan"}}`);
  const lease = { subnet: parseIPv4Net("10.244.3.0/24"), ipv6Subnet: parseIPv6Net("fd00:10:244:3::/64") };
  expect(wantedBlackholes(dual, lease)).toEqual(["10.244.3.0/24", "10.244.0.0/16", "fd00:10:244:3::/64", "fd00:10:244::/56"]);
  const v4 = parseNetworkConfig(`{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}`);
  expect(wantedBlackholes(v4, lease)).toEqual(["10.244.3.0/24", "10.244.0.0/16"]);
});

test("planBlackholes(): adds what is missing, removes only unwanted ones inside owned networks", () => {
  const owned = [{ v4: parseIPv4Net("10.244.0.0/16") }, { v6: parseIPv6Net("fd00::/56") }];
  expect(planBlackholes(["10.244.3.0/24", "10.244.0.0/16"], ["10.244.9.0/24", "10.99.0.0/16", "fd00:0:0:9::/64", "fd01::/64", "10.244.0.0/16"], owned))
    .toEqual({ add: ["10.244.3.0/24"], del: ["10.244.9.0/24", "fd00:0:0:9::/64"] });
  expect(planBlackholes(["10.244.3.0/24"], ["10.244.3.0/24"], owned)).toEqual({ add: [], del: [] });
});

test("ignoredFlagWarnings(): one line per ignored flag set, and for the other mode's flags", () => {
  const warn = (argv: string[], env: Record<string, string> = {}) => {
    const p = parseAgentFlags(argv, env);
    return ignoredFlagWarnings(p.values, p.given);
  };
  expect(warn([])).toEqual([]);
  expect(warn(["--vmodule=x=2", "--use-multi-cluster-cidr"])).toEqual([
    "--use-multi-cluster-cidr is accepted for compatibility with flanneld and ignored by weft",
    "--vmodule is accepted for compatibility with flanneld and ignored by weft",
  ]);
  expect(warn([], { FLANNELD_LOG_BACKTRACE_AT: "main.go:1" })).toEqual(["--log_backtrace_at is accepted for compatibility with flanneld and ignored by weft"]);
  expect(warn(["--kubeconfig-file=/k"])).toEqual(["--kubeconfig-file has no effect without --kube-subnet-mgr"]);
  expect(warn(["--kube-subnet-mgr", "--etcd-prefix=/x"])).toEqual(["--etcd-prefix has no effect in Kubernetes mode (--kube-subnet-mgr)"]);
  expect(Object.keys(AGENT_FLAGS)).toContain("ip-blackhole-route");
});
