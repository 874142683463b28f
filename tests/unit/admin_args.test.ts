/** hoistAdminFlags(): the agent's flags anywhere after an admin subcommand, in both forms. */
import { expect, test } from "bun:test";
import { hoistAdminFlags } from "../../src/cli/admin_args.ts";
import { AGENT_FLAGS, parseAgentFlags } from "../../src/cli/agent_flags.ts";

const E = "http://192.0.2.1:2379";

test("hoistAdminFlags() moves --flag value and --flag=value after every subcommand in front of it", () => {
  for (const cmd of [["config", "get"], ["config", "set", "-"], ["leases", "list", "--json"], ["leases", "reserve", "10.5.1.0/24", "192.0.2.9"], ["leases", "release", "10.5.1.0/24"]]) {
    for (const flags of [["--etcd-endpoints", E, "-etcd-prefix", "/p"], [`--etcd-endpoints=${E}`, "-etcd-prefix=/p"]]) {
      const parsed = parseAgentFlags(hoistAdminFlags([...cmd, ...flags], AGENT_FLAGS), {});
      expect([parsed.values["etcd-endpoints"], parsed.values["etcd-prefix"], parsed.positionals]).toEqual([E, "/p", cmd]);
      // Flags in the middle of the subcommand's words, too.
      const mid = parseAgentFlags(hoistAdminFlags([cmd[0]!, ...flags, ...cmd.slice(1)], AGENT_FLAGS), {});
      expect(mid.positionals).toEqual(cmd);
    }
  }
});

test("hoistAdminFlags() leaves booleans without a value, docker-opts' own flags, and the agent's line alone", () => {
  expect(hoistAdminFlags(["leases", "list", "--ip-masq", "--json"], AGENT_FLAGS)).toEqual(["--ip-masq", "leases", "list", "--json"]);
  expect(hoistAdminFlags(["docker-opts", "-f", "/run/x.env", "-c"], AGENT_FLAGS)).toEqual(["docker-opts", "-f", "/run/x.env", "-c"]);
  expect(hoistAdminFlags(["--iface", "eth0", "--ip-masq"], AGENT_FLAGS)).toEqual(["--iface", "eth0", "--ip-masq"]);
});
