/**
 * Kernel tests of ffi/netlink: netlink_kernel_script.ts programs a VXLAN device, address,
 * neighbour, FDB entry and routes inside a namespace this test creates; the same state is made
 * with `ip`/`bridge` in a second namespace, and `ip -j`/`bridge -j` must report the two equal.
 * Then 1000 peers are programmed in one batch (timed) and everything is deleted. Runs under Bun
 * and, when ffi/deno.ts exists, Deno. Needs root; skipped otherwise.
 */
import { afterAll, describe, expect, test } from "bun:test";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { addNetns, delNetns, ip, isRoot, nsExecJson, nsSh, uniqueName } from "../support/ns.ts";

const ROOT = join(import.meta.dir, "../..");
const SCRIPT = join(import.meta.dir, "netlink_kernel_script.ts");
const DENO = join(ROOT, "node_modules/.bin/deno");
const MAC_SELF = "0a:58:0a:f4:00:00";
const MAC_PEER = "0a:58:0a:f4:01:00";
const MAC_SELF6 = "0a:58:0a:f4:00:06";

const namespaces: string[] = [];

/** A fresh namespace (lo up) with veth0 (10.0.0.1/24, up) paired with veth1; removed in afterAll. */
function makeNamespace(tag: string): string {
  const ns = addNetns(uniqueName("netlink", tag));
  namespaces.push(ns);
  for (const cmd of [
    "link add veth0 type veth peer name veth1", "addr add 10.0.0.1/24 dev veth0",
    "addr add fd00::1/64 dev veth0 nodad",
    "link set veth0 up", "link set veth1 up",
  ]) ip(ns, ...cmd.split(" "));
  return ns;
}

function removeNamespace(ns: string): void {
  delNetns(ns);
  namespaces.splice(namespaces.indexOf(ns), 1);
}

afterAll(() => {
  for (const ns of [...namespaces]) removeNamespace(ns);
});

// deno-lint-ignore no-explicit-any
type Json = any;

function runScript(ns: string, runtime: string[], phase: string): Json {
  return nsExecJson(ns, [...runtime, SCRIPT, phase], { timeoutMs: 60_000, cwd: ROOT });
}

/** What `ip`/`bridge` report about flannel.1 and the main table, as JSON. */
function kernelView(ns: string): Record<string, Json> {
  const j = (cmd: string) => JSON.parse(nsSh(ns, cmd.split(" ")) || "[]");
  return {
    link: j("ip -j -d link show flannel.1"),
    addr: j("ip -j -4 addr show dev flannel.1"),
    neigh: j("ip -j neigh show dev flannel.1"),
    fdb: j("bridge -j fdb show dev flannel.1"),
    route: j("ip -j route show table main"),
    link6: j("ip -j -d link show flannel-v6.1"),
    // Only permanent entries: MLD adds NOARP multicast ones (ff02::16) whenever it gets to it.
    neigh6: j("ip -j -6 neigh show dev flannel-v6.1 nud permanent"),
    route6: j("ip -j -6 route show dev flannel-v6.1"),
  };
}

/** The same state made the way flanneld's docs describe it, with iproute2. */
function programWithIp(ns: string): void {
  for (const cmd of [
    `ip link add flannel.1 mtu 1450 address ${MAC_SELF} type vxlan id 1 local 10.0.0.1 dev veth0 dstport 8472 nolearning`,
    "ip addr replace 10.244.0.0/32 dev flannel.1",
    "ip link set flannel.1 up",
    `ip neigh replace 10.244.1.0 lladdr ${MAC_PEER} dev flannel.1 nud permanent`,
    `bridge fdb replace ${MAC_PEER} dev flannel.1 dst 10.0.0.2 self permanent`,
    "ip route replace 10.244.1.0/24 via 10.244.1.0 dev flannel.1 onlink",
    `ip link add flannel-v6.1 mtu 1430 address ${MAC_SELF6} type vxlan id 1 local fd00::1 dev veth0 dstport 8472 nolearning`,
    "ip link set flannel-v6.1 up",
    `ip neigh replace fd10:0:0:1:: lladdr ${MAC_PEER} dev flannel-v6.1 nud permanent`,
    "ip -6 route replace fd10:0:0:1::/64 via fd10:0:0:1:: dev flannel-v6.1 onlink",
    "ip route replace blackhole 10.244.9.0/24",
  ]) nsSh(ns, cmd.split(" "));
}

const runtimes: [string, string[]][] = [["bun", [process.execPath]]];
if (existsSync(join(ROOT, "ffi/deno.ts")) && existsSync(DENO)) {
  runtimes.push(["deno", [DENO, "run", "--allow-all", "--unstable-ffi"]]);
}

describe.skipIf(!isRoot)("netlink against the kernel", () => {
  for (const [name, runtime] of runtimes) {
    test(`${name}: programs what ip would, batches 1000 peers, deletes, names errors`, () => {
      const ns = makeNamespace(name);
      const ref = makeNamespace(`${name}-ip`);
      try {
        // 1. create and read back through our own dumps
        const c = runScript(ns, runtime, "create");
        expect(c.runtime).toBe(name);
        expect(c.link).toMatchObject({
          name: "flannel.1", up: true, mtu: 1450, mac: MAC_SELF, kind: "vxlan",
          vxlan: { vni: 1, local: "10.0.0.1", underlayIndex: c.veth0, port: 8472, learning: false, gbp: false },
        });
        expect(c.linkInList).toEqual(c.link);
        expect(c.addrs.map((a: Json) => a.cidr)).toEqual(["10.244.0.0/32"]);
        expect(c.neighs).toEqual([expect.objectContaining({ ip: "10.244.1.0", mac: MAC_PEER, permanent: true })]);
        expect(c.fdb).toEqual([expect.objectContaining({ mac: MAC_PEER, dst: "10.0.0.2", self: true, permanent: true })]);
        expect(c.routesOnDev).toEqual([expect.objectContaining({ dst: "10.244.1.0/24", gw: "10.244.1.0", onlink: true })]);
        expect(c.routes.find((r: Json) => r.dst === "10.244.9.0/24").typeName).toBe("blackhole");
        expect(c.link6).toMatchObject({ mtu: 1430, mac: MAC_SELF6, vxlan: { vni: 1, local6: "fd00::1", underlayIndex: c.veth0 } });
        expect(c.neighs6.filter((n: Json) => n.permanent)).toEqual([expect.objectContaining({ ip: "fd10:0:0:1::", mac: MAC_PEER, permanent: true })]);
        expect(c.routes6).toContainEqual(expect.objectContaining({ dst: "fd10:0:0:1::/64", gw: "fd10:0:0:1::", onlink: true }));
        expect(c.get.underlay).toMatchObject({ dev: c.veth0, src: "10.0.0.1" });
        expect(c.get.underlay.gw).toBeUndefined();
        expect(c.get.overlay).toMatchObject({ dev: c.link.index, gw: "10.244.1.0", src: "10.244.0.0" });

        // 2. errors carry errno, the operation and the request
        expect(c.errors.exists).toMatchObject({ code: "EEXIST", op: "linkAddVxlan" });
        expect(c.errors.exists.message).toContain("linkAddVxlan flannel.1 type vxlan id 1");
        expect(c.errors.noDevByName).toMatchObject({ code: "ENODEV", op: "linkDel" });
        expect(c.errors.noDevByName.message).toContain("nosuch0");
        expect(c.errors.noDevByIndex).toMatchObject({ code: "ENODEV", op: "linkSetUp", request: "dev 9999 up" });
        expect(c.errors.badGateway).toMatchObject({ code: "ENETUNREACH", op: "routeReplace", extAck: "Nexthop has invalid gateway" });
        expect(c.errors.unreachable).toMatchObject({ code: "ENETUNREACH", op: "routeGet" });

        // 3. the monitor saw the changes
        expect(c.events).toContainEqual({ kind: "link", action: "new", name: "flannel.1" });
        expect(c.events).toContainEqual({ kind: "route", action: "new", dst: "10.244.1.0/24" });
        expect(c.events).toContainEqual({ kind: "neigh", action: "new", ip: "10.244.1.0", family: 2 });

        // 4. the kernel state equals what ip/bridge make
        programWithIp(ref);
        const ours = kernelView(ns);
        const theirs = kernelView(ref);
        for (const key of Object.keys(theirs)) expect({ [key]: ours[key] }).toEqual({ [key]: theirs[key] });
        expect(ours.link[0].linkinfo.info_data).toMatchObject({ id: 1, local: "10.0.0.1", link: "veth0", port: 8472, learning: false });
        expect(ours.route).toContainEqual(expect.objectContaining({ dst: "10.244.1.0/24", gateway: "10.244.1.0", dev: "flannel.1", flags: ["onlink"] }));
        expect(ours.fdb).toContainEqual(expect.objectContaining({ mac: MAC_PEER, dst: "10.0.0.2", flags: ["self"], state: "permanent" }));

        // 5. 1000 peers (neighbour + FDB + route each) in one batch
        const b = runScript(ns, runtime, "batch");
        for (const k of ["routesOnly", "routesAgain", "full", "removal"]) expect(b[k].failed).toEqual([]);
        expect(b.counted).toEqual({ routes: 1000, neighs: 1001, fdb: 1000 });
        expect(b.left).toEqual({ routes: 0, neighs: 1 });
        expect(b.full.ms).toBeLessThan(1000);
        console.log(`netlink ${name}: 1000 route replaces batched in ${b.routesOnly.ms.toFixed(1)} ms ` +
          `(again: ${b.routesAgain.ms.toFixed(1)} ms); 1000 peers x (neigh+fdb+route) in ${b.full.ms.toFixed(1)} ms; ` +
          `3000 deletes in ${b.removal.ms.toFixed(1)} ms`);

        // 6. delete everything; deleting again names the error
        const d = runScript(ns, runtime, "delete");
        expect(d.after).toEqual({ routes: [], neighs: [], fdb: [], addrs: [] });
        expect(d.again.route).toMatchObject({ code: "ESRCH", op: "routeDel" });
        expect(d.again.neigh).toMatchObject({ code: "ENOENT", op: "neighDel" });
        expect(d.gone).toBeNull();
        expect(d.delAgain).toMatchObject({ code: "ENODEV", op: "linkDel" });
        expect(ip(ns, "-j", "link", "show")).not.toContain("flannel.1");
      } finally {
        removeNamespace(ns);
        removeNamespace(ref);
      }
    }, 120_000);
  }
});
