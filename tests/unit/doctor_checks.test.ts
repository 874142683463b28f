/** weft doctor's pure checks: gathered state in, findings out (tables of cases). */
import { expect, test } from "bun:test";
import { parseNetworkConfig } from "../../src/config/network.ts";
import { type DoctorInput, type Finding, checkDataPath, checkDuplicatePublicIPs, checkForward, checkLease, checkMasquerade, checkMtu, checkProbes, checkSubnetEnv, formatFindings, runChecks } from "../../src/doctor/checks.ts";
import type { Lease } from "../../src/lease/lease.ts";
import { parseIPv4, parseIPv4Net } from "../../src/net/ip.ts";

const lease = (subnet: string, pub: string): Lease => ({ subnet: parseIPv4Net(subnet), attrs: { publicIP: parseIPv4(pub), backendType: "vxlan", backendData: { VNI: 1, VtepMAC: "02:00:00:00:00:01" } }, expiration: null });
const config = parseNetworkConfig('{"Network":"10.244.0.0/16","Backend":{"Type":"vxlan"}}');

function healthy(): DoctorInput {
  return {
    flags: { ipMasq: true, forwardRules: true, subnetFile: "/run/flannel/subnet.env", status: "http://127.0.0.1:8081" },
    config, leases: [lease("10.244.1.0/24", "192.168.0.1"), lease("10.244.2.0/24", "192.168.0.2")],
    publicIP: "192.168.0.1", iface: { name: "eth0", mtu: 1500 },
    subnetEnv: { network: "10.244.0.0/16", subnet: "10.244.1.1/24", mtu: 1450, ipMasq: true },
    overlayName: "flannel.1", overlay: { name: "flannel.1", mtu: 1450, addrs: ["10.244.1.0/32"] }, bridge: { name: "cni0", mtu: 1450, addrs: ["10.244.1.1/24"] },
    dataPath: {
      desired: { routes: [{ dst: "10.244.2.0/24", gw: "10.244.2.0", dev: 5, onlink: true }], neighs: [], fdbs: [] },
      actual: { routes: [{ dst: "10.244.2.0/24", gw: "10.244.2.0", dev: 5, onlink: true }], neighs: [], fdbs: [] },
      scope: { network: config.network, own: parseIPv4Net("10.244.1.0/24") }, names: { 5: "flannel.1" },
    },
    firewall: {
      filter: ':FORWARD DROP [0:0]\n-A FORWARD -m comment --comment "flanneld forward" -j FLANNEL-FWD\n-A FLANNEL-FWD -s 10.244.0.0/16 -m comment --comment "flanneld forward" -j ACCEPT\n',
      nat: '-A POSTROUTING -m comment --comment "flanneld masq" -j FLANNEL-POSTRTG\n',
    },
    probes: [{ subnet: "10.244.2.0/24", publicIP: "192.168.0.2", state: "up", since: "2026-12-06T10:00:00.000Z", mtuOk: true, cause: null }],
    txChecksum: false,
  };
}

const sev = (f: Finding | Finding[] | undefined) => [f ?? []].flat().map((x) => `${x.id}:${x.severity}`);

test("a healthy host: every finding ok, exit status 0", () => {
  const fs = runChecks(healthy());
  expect(fs.filter((f) => f.severity !== "ok")).toEqual([]);
  expect(formatFindings(fs)).toEndWith("\nno problems found\n");
});

test("each fault is named by its own check, with evidence and a fix", () => {
  const table: [string, (i: DoctorInput) => void, (i: DoctorInput) => Finding | Finding[] | undefined, string[], RegExp][] = [
    ["FORWARD policy DROP without forward rules", (i) => { i.firewall.filter = ":FORWARD DROP [0:0]\n"; i.flags.forwardRules = false; }, checkForward, ["forward:error"], /iptables -A FORWARD -s 10\.244\.0\.0\/16 -j ACCEPT/],
    ["weft's forward rules missing", (i) => { i.firewall.filter = ":FORWARD ACCEPT [0:0]\n"; }, checkForward, ["forward:warn"], /re-adds them/],
    ["masquerade missing with --ip-masq", (i) => { i.firewall.nat = ""; }, checkMasquerade, ["masquerade:error"], /re-adds them/],
    ["a peer's route deleted", (i) => { (i.dataPath as any).actual = { routes: [], neighs: [], fdbs: [] }; }, checkDataPath, ["data-path-missing:error"], /next check/],
    ["a stale route", (i) => { (i.dataPath as any).actual.routes.push({ dst: "10.244.9.0/24", gw: "10.244.9.0", dev: 5, onlink: true }); }, checkDataPath, ["data-path-stale:warn"], /ip route del/],
    ["duplicate PublicIP", (i) => { i.leases!.push(lease("10.244.3.0/24", "192.168.0.2")); }, checkDuplicatePublicIPs, ["duplicate-public-ip:error"], /weft leases release/],
    ["cni0 MTU above the overlay's", (i) => { i.bridge!.mtu = 1500; }, checkMtu, ["mtu-bridge:error"], /FLANNEL_MTU/],
    ["overlay MTU above the underlay's room", (i) => { i.iface!.mtu = 1400; }, checkMtu, ["mtu-underlay:error"], /at most 1350/],
    ["flannel-wg MTU leaves no room for WireGuard's 80 bytes", (i) => {
      i.config = { ...i.config!, backendType: "wireguard" }; i.overlayName = "flannel-wg"; i.overlay = { name: "flannel-wg", mtu: 1450, addrs: [] };
    }, checkMtu, ["mtu-underlay:error"], /at most 1420/],
    ["subnet.env stale", (i) => { i.subnetEnv!.mtu = 1500; }, checkSubnetEnv, ["subnet-env:error"], /restart the agent/],
    ["no lease for FLANNEL_SUBNET", (i) => { i.leases = i.leases!.slice(1); }, checkLease, ["lease:error"], /takes it back/],
    ["lease advertises another PublicIP", (i) => { i.publicIP = "192.168.0.9"; }, checkLease, ["lease:error"], /--iface\/--public-ip/],
    ["peer unreachable", (i) => { i.probes![0] = { ...i.probes![0]!, state: "down", cause: "host 192.168.0.2 is up but no weft agent answers on UDP 8473" }; }, checkProbes, ["peers-unreachable:error"], /start the peer's agent/],
    ["MTU black hole", (i) => { i.probes![0]!.mtuOk = false; }, checkProbes, ["peers-mtu:error", "probes:ok"].slice(0, 1), /underlay MTU/],
    ["status server off", (i) => { i.probes = undefined; i.statusError = "--healthz-port is 0"; }, checkProbes, ["probes:warn"], /--healthz-port/],
  ];
  for (const [name, breakIt, check, want, fix] of table) {
    const i = healthy();
    breakIt(i);
    const got = [check(i) ?? []].flat();
    expect({ name, got: sev(got) }).toEqual({ name, got: want });
    expect({ name, fix: fix.test(got[0]!.fix ?? "") }).toEqual({ name, fix: true });
    expect(got[0]!.evidence.length).toBeGreaterThan(0);
    expect(runChecks(i).some((f) => f.severity === "error")).toBe(want.some((w) => w.endsWith(":error")));
  }
});

test("formatFindings() prints evidence and fix under each problem, and counts them", () => {
  const i = healthy();
  i.leases!.push(lease("10.244.3.0/24", "192.168.0.2"));
  const text = formatFindings(runChecks(i));
  expect(text).toContain("ERROR 1 PublicIP advertised by more than one lease\n        · 192.168.0.2: 10.244.2.0-24, 10.244.3.0-24\n        fix: each host needs its own address");
  expect(text).toEndWith("\n1 problem found\n");
});

test("kube mode: a Node without a podCIDR is an error naming the fix; with one, ok; the config fix names the ConfigMap", () => {
  const missing = runChecks({ ...healthy(), source: "kube", ownNode: { name: "n1", podCIDRs: [], problem: 'node "n1" has no spec.podCIDR' } });
  expect(missing.find((f) => f.id === "pod-cidr")).toMatchObject({ severity: "error", title: "this host's Node n1 has no usable podCIDR", fix: expect.stringContaining("--allocate-node-cidrs") });
  const fine = runChecks({ ...healthy(), source: "kube", ownNode: { name: "n1", podCIDRs: ["10.244.1.0/24"] } });
  expect(sev(fine.find((f) => f.id === "pod-cidr"))).toEqual(["pod-cidr:ok"]);
  expect(runChecks(healthy()).some((f) => f.id === "pod-cidr")).toBe(false); // etcd mode: no such check
  const noConfig = runChecks({ ...healthy(), source: "kube", config: undefined, configError: "no network config file" });
  expect(noConfig.find((f) => f.id === "config")?.fix).toContain("kube-flannel-cfg");
});
