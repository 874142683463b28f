/**
 * @module `weft doctor [--json]`: inspects this host and its view of the cluster with the agent's
 * own flags and FLANNELD_* environment (same store, interface, subnet file, status server) and
 * prints findings with their evidence and fix (src/doctor/). Exit status 1 when any finding is an
 * error, 0 otherwise.
 */
import type { AgentFlags } from "./agent_flags.ts";
import type { DoctorStore } from "../doctor/store.ts";
import { formatFindings, runChecks } from "../doctor/checks.ts";
import { gather } from "../doctor/gather.ts";
import { UsageError } from "./go_flags.ts";

export const DOCTOR_USAGE = "  weft doctor [--json]                  check this host's overlay and its view of the cluster; exit 1 on a problem\n";

export async function runDoctor(store: DoctorStore, f: AgentFlags, args: readonly string[], out: (t: string) => void): Promise<number> {
  const json = args.includes("--json");
  const unknown = args.filter((a) => a !== "--json");
  if (unknown.length) throw new UsageError(`weft doctor: unknown argument ${JSON.stringify(unknown[0])} (usage: weft doctor [--json])`);
  const host = f["healthz-ip"] === "0.0.0.0" || f["healthz-ip"] === "" ? "127.0.0.1" : f["healthz-ip"];
  const input = await gather({
    store,
    iface: { iface: f.iface, ifaceRegex: f["iface-regex"], ifaceCanReach: f["iface-can-reach"], publicIP: f["public-ip"], publicIPv6: f["public-ipv6"] },
    subnetFile: f["subnet-file"],
    ipMasq: f["ip-masq"],
    forwardRules: f["iptables-forward-rules"],
    statusURL: f["healthz-port"] > 0 ? `http://${host.includes(":") ? `[${host}]` : host}:${f["healthz-port"]}` : "",
  });
  const findings = runChecks(input);
  out(json ? `${JSON.stringify({ ok: !findings.some((x) => x.severity === "error"), findings }, null, 2)}\n` : formatFindings(findings));
  return findings.some((x) => x.severity === "error") ? 1 : 0;
}
