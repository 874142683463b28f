import { describe, expect, test } from "bun:test";
import { AGENT_FLAGS, parseAgentFlags } from "../../src/cli/agent_flags.ts";
import { redact, usage, UsageError } from "../../src/cli/go_flags.ts";

describe("parseAgentFlags()", () => {
  test("flanneld's defaults", () => {
    const { values } = parseAgentFlags([], {});
    expect(values["etcd-endpoints"]).toBe("http://127.0.0.1:4001,http://127.0.0.1:2379");
    expect(values["etcd-prefix"]).toBe("/coreos.com/network");
    expect(values["subnet-file"]).toBe("/run/flannel/subnet.env");
    expect(values["subnet-lease-renew-margin"]).toBe(60);
    expect(values["iptables-resync"]).toBe(5);
    expect(values["iptables-forward-rules"]).toBe(true);
    expect(values["ip-masq"]).toBe(false);
    expect(values["healthz-port"]).toBe(0);
    expect(values["healthz-ip"]).toBe("127.0.0.1");
    expect(values.iface).toEqual([]);
  });

  test("Go forms: -flag, --flag, =value and a separate value", () => {
    const { values } = parseAgentFlags(["-etcd-prefix=/a", "--subnet-file", "/tmp/s.env", "-iface", "eth0", "--iface=10.0.0.1", "-ip-masq", "--iptables-forward-rules=false", "-v", "2"], {});
    expect(values["etcd-prefix"]).toBe("/a");
    expect(values["subnet-file"]).toBe("/tmp/s.env");
    expect(values.iface).toEqual(["eth0", "10.0.0.1"]);
    expect(values["ip-masq"]).toBe(true);
    expect(values["iptables-forward-rules"]).toBe(false);
    expect(values.v).toBe(2);
  });

  test("FLANNELD_* fills flags not on the command line; the command line wins", () => {
    const { values } = parseAgentFlags(["--etcd-prefix=/cli"], {
      FLANNELD_ETCD_PREFIX: "/env", FLANNELD_IFACE: "eth0,eth1", FLANNELD_IP_MASQ: "true", FLANNELD_HEALTHZ_PORT: "8081", FLANNELD_PUBLIC_IP: "",
    });
    expect(values["etcd-prefix"]).toBe("/cli");
    expect(values.iface).toEqual(["eth0,eth1"]); // one entry, no comma split
    expect(values["ip-masq"]).toBe(true);
    expect(values["healthz-port"]).toBe(8081);
    expect(values["public-ip"]).toBe(""); // empty values are ignored
  });

  test.each([
    [["--no-such-flag"], /flag provided but not defined: -no-such-flag/],
    [["--subnet-lease-renew-margin=1440"], /-subnet-lease-renew-margin: must be a whole number from 1 to 1439 \(minutes\)/],
    [["--healthz-port", "x"], /"x" for flag -healthz-port: must be a whole number from 0 to 65535/],
    [["--ip-masq=maybe"], /"maybe" for flag -ip-masq: must be true or false/],
    [["--etcd-prefix"], /flag needs an argument: -etcd-prefix/],
  ])("rejects %p", (argv, msg) => {
    expect(() => parseAgentFlags(argv, {})).toThrow(UsageError);
    expect(() => parseAgentFlags(argv, {})).toThrow(msg);
  });

  test("a bad environment value names the variable", () => {
    expect(() => parseAgentFlags([], { FLANNELD_SUBNET_LEASE_RENEW_MARGIN: "0" })).toThrow(/FLANNELD_SUBNET_LEASE_RENEW_MARGIN: must be a whole number from 1 to 1439/);
  });

  test("positionals after the flags are kept (subcommands)", () => {
    expect(parseAgentFlags(["--etcd-prefix=/x", "leases", "list", "--json"], {}).positionals).toEqual(["leases", "list", "--json"]);
  });

  test("redact() hides the etcd password (flanneld logs it)", () => {
    const { values } = parseAgentFlags(["--etcd-password=hunter2", "--etcd-username=u"], {});
    const shown = JSON.stringify(redact(AGENT_FLAGS, values));
    expect(shown).not.toContain("hunter2");
    expect(shown).toContain('"etcd-username":"u"');
  });

  test("usage() lists every flag with its env var", () => {
    const text = usage("weft", AGENT_FLAGS);
    expect(text.startsWith("Usage: weft [OPTION]...")).toBe(true);
    expect(text).toContain("-etcd-endpoints string");
    expect(text).toContain("[$FLANNELD_IFACE_REGEX]");
  });
});
