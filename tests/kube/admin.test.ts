/**
 * @module `weft leases …` and `weft config …` in kube mode: they serve etcd mode only, and say so
 * (exit 1) instead of reaching for an etcd that kube mode does not have.
 */
import { expect, test } from "bun:test";
import { runWeft } from "../support/agent.ts";

for (const args of [["leases", "list"], ["config", "get"], ["config", "set", "-"]]) {
  test(`weft ${args.join(" ")} with --kube-subnet-mgr exits 1 saying it serves etcd mode`, async () => {
    const r = await runWeft(["--kube-subnet-mgr", ...args], { stdin: "{}" });
    expect(r.code).toBe(1);
    expect(r.stderr).toBe(`weft ${args[0]} serves etcd mode only; in kube mode (--kube-subnet-mgr) the leases are the Nodes' ` +
      "spec.podCIDR and flannel.alpha.coreos.com annotations ('kubectl get nodes -o yaml'), the config is /etc/kube-flannel/net-conf.json\n");
  });
}

test("FLANNELD_KUBE_SUBNET_MGR=true selects kube mode as the flag does", async () => {
  const r = await runWeft(["leases", "list"], { env: { FLANNELD_KUBE_SUBNET_MGR: "true" } });
  expect(r.code).toBe(1);
  expect(r.stderr).toContain("serves etcd mode only");
});
