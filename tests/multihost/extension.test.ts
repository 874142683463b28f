/**
 * @module The extension backend on a real kernel: flannel's documented host-gw-like extension
 * (`ip route` commands), and VXLAN built by hand (PreStartupCommand makes the device and
 * advertises its MAC); full mesh, joins and leaves, and a failing command retried until it works.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Cluster, exec, ipJson, ping, waitFor } from "../support/netns.ts";

/** Every container pings every container on the other hosts. */
async function expectFullMesh(c: Cluster): Promise<void> {
  const failures: string[] = [];
  await Promise.all(c.containers.map(async (from) => {
    const targets = c.containers.filter((t) => t.host !== from.host).map((t) => t.ip);
    for (const [ip, r] of await ping(from.ns, targets, { count: 2, intervalMs: 50 })) {
      if (r.received !== r.sent) failures.push(`ping ${from.ip} -> ${ip}: ${r.received}/${r.sent}`);
    }
  }));
  expect(failures).toEqual([]);
}

const routesTo = (c: Cluster, subnet: string) => c.hosts.map((h) => ipJson(h.ns, "route", "show", subnet).length);

describe("extension backend, host-gw-like (flannel's documented example)", () => {
  let c: Cluster | undefined;
  afterAll(async () => { await c?.destroy(); });

  test("full mesh, a joining host, a failing add retried until it works, a leaving host", async () => {
    // The gate makes a host's add fail (exit 1) while a file names its public IP.
    const gate = `/tmp/${process.pid}-ext-gate`;
    c = await Cluster.create({
      hosts: 2, backend: "extension",
      backendOptions: {
        SubnetAddCommand: `test ! -e ${gate}-$PUBLIC_IP && ip route add $SUBNET via $PUBLIC_IP`,
        SubnetRemoveCommand: "ip route del $SUBNET via $PUBLIC_IP",
      },
      agentEnv: { WEFT_ROUTE_CHECK_MS: "300" },
    });
    try {
      await waitFor(() => c!.hosts.every((h) => c!.peerRoutes(h).length === 1), 10_000, "peer routes");
      await expectFullMesh(c);
      expect(JSON.parse(c.weft(["leases", "list", "--json"])).map((l: { value: { BackendType: string } }) => l.value.BackendType)).toEqual(["extension", "extension"]);

      // The third host's add fails on the others until the gate opens.
      writeFileSync(`${gate}-${Cluster.UNDERLAY}.12`, "");
      const h3 = await c.addHost();
      const [h1, h2] = c.hosts;
      await waitFor(() => h1!.log.includes(`SubnetAddCommand for peer ${h3.subnet.replace("/", "-")} failed (exit status 1)`), 10_000, "the failure logged");
      await Bun.sleep(1000); // several retries at 300 ms
      expect(h1!.log.split(`SubnetAddCommand for peer ${h3.subnet.replace("/", "-")} failed`).length - 1).toBe(1); // logged once
      expect(routesTo(c, h3.subnet).slice(0, 2)).toEqual([0, 0]);
      rmSync(`${gate}-${Cluster.UNDERLAY}.12`);
      await waitFor(() => routesTo(c!, h3.subnet).slice(0, 2).every((n) => n === 1), 5000, "the retried add");
      await expectFullMesh(c);

      // h2 leaves: its route goes from every other host.
      const gone = h2!.subnet;
      await c.removeHost(h2!);
      c.weft(["leases", "release", gone]);
      await waitFor(() => routesTo(c!, gone).every((n) => n === 0), 5000, "the departed host's routes gone");
      await waitFor(() => h1!.log.includes(`ran SubnetRemoveCommand for peer ${gone.replace("/", "-")}`), 5000, "the remove logged");
      await expectFullMesh(c);
    } finally {
      for (const f of [`${gate}-${Cluster.UNDERLAY}.12`]) if (existsSync(f)) rmSync(f);
    }
  }, 120_000);
});

describe("extension backend, VXLAN built by hand", () => {
  let c: Cluster | undefined;
  afterAll(async () => { await c?.destroy(); });

  test("PreStartupCommand's MAC is advertised; full mesh, join and leave over the hand-made VTEPs", async () => {
    c = await Cluster.create({
      hosts: 2, backend: "extension",
      backendOptions: {
        PreStartupCommand: "ip link del flx 2>/dev/null; ip link add flx type vxlan id 7 dstport 8472 nolearning dev eth0 && ip link set mtu 1450 dev flx && cat /sys/class/net/flx/address",
        PostStartupCommand: "ip addr add ${SUBNET%/*}/32 dev flx && ip link set flx up",
        SubnetAddCommand: "read VTEP; ip route replace $SUBNET via ${SUBNET%/*} dev flx onlink && ip neigh replace ${SUBNET%/*} lladdr $VTEP dev flx nud permanent && bridge fdb replace $VTEP dev flx self dst $PUBLIC_IP permanent",
        SubnetRemoveCommand: "read VTEP; ip route del $SUBNET dev flx; ip neigh del ${SUBNET%/*} dev flx; bridge fdb del $VTEP dev flx self dst $PUBLIC_IP",
      },
    });
    const mac = (ns: string) => ipJson(ns, "link", "show", "flx")[0]!.address as string;
    const leases = JSON.parse(c.weft(["leases", "list", "--json"])) as { publicIP: string; value: { BackendData: string } }[];
    for (const h of c.hosts) expect(leases.find((l) => l.publicIP === h.ip)?.value.BackendData).toBe(mac(h.ns));
    await waitFor(() => c!.hosts.every((h) => c!.peerRoutes(h).length === 1), 10_000, "peer routes");
    await expectFullMesh(c);
    const h3 = await c.addHost();
    await waitFor(() => c!.hosts.every((h) => c!.peerRoutes(h).length === 2), 10_000, "the joining host's routes");
    await expectFullMesh(c);
    const [h1] = c.hosts;
    const gone = h3.subnet;
    const goneMac = mac(h3.ns);
    await c.removeHost(h3);
    c.weft(["leases", "release", gone]);
    await waitFor(() => ipJson(h1!.ns, "route", "show", gone).length === 0, 5000, "the departed host's route gone");
    // The remove command deletes the route, then the FDB entry: the second may come a moment later.
    await waitFor(() => !exec(h1!.ns, ["bridge", "fdb", "show", "dev", "flx"]).stdout.includes(goneMac), 5000, "the departed host's FDB entry gone");
    await expectFullMesh(c);
  }, 120_000);
});
