/**
 * @module Runs inside a network namespace (`ip netns exec NS bun|deno netlink_kernel_script.ts
 * PHASE`) on behalf of netlink_kernel.test.ts and prints one JSON object of what it saw. The
 * namespace must hold veth0 (10.0.0.1/24, up). Phases, run in order by the test:
 *   create  – vxlan device, address, up, neighbour, FDB entry, onlink route; reads them back;
 *             provokes EEXIST / ENODEV / ENETUNREACH; reports monitor events
 *   batch   – programs N peers (neigh + fdb + route each) in one batch, times it, removes them
 *   delete  – deletes everything `create` made, checks it is gone and that deleting again fails
 */
import { loadSys } from "../../ffi/sys.ts";
import {
  NetlinkError, NetlinkMonitor, NetlinkSocket, addrDel, addrList, addrReplace, fdbDel, fdbDelRequest, fdbList,
  fdbReplace, fdbReplaceRequest, linkAddVxlan, linkByName, linkDel, linkList, linkSetUp, neighDel, neighDelRequest,
  neighList, neighReplace, neighReplaceRequest, routeDel, routeDelRequest, routeGet, routeList, routeReplace,
  routeReplaceRequest, type NetlinkEvent, type NetlinkRequest,
} from "../../ffi/netlink/index.ts";

const MAC_SELF = "0a:58:0a:f4:00:00";
const MAC_PEER = "0a:58:0a:f4:01:00";
const MAC_SELF6 = "0a:58:0a:f4:00:06";
const phase = (globalThis as { Deno?: { args: string[] } }).Deno?.args[0] ?? process.argv[2];

const sys = await loadSys();
const nl = NetlinkSocket.open(sys);

/** Runs `f`, expecting a NetlinkError; returns its fields (or what happened instead). */
function failure(f: () => unknown): unknown {
  try {
    f();
    return { threw: false };
  } catch (e) {
    if (!(e instanceof NetlinkError)) return { threw: String(e) };
    return { errno: e.errno, code: e.code, op: e.op, request: e.request, extAck: e.extAck, message: e.message };
  }
}

function create(): unknown {
  const veth0 = linkByName(nl, "veth0")!;
  const mon = NetlinkMonitor.open(sys, ["link", "ipv4-route", "neigh"]);
  const link = linkAddVxlan(nl, {
    name: "flannel.1", vni: 1, local: "10.0.0.1", underlayIndex: veth0.index, port: 8472, learning: false,
    gbp: false, mtu: 1450, mac: MAC_SELF,
  });
  addrReplace(nl, link.index, "10.244.0.0/32");
  linkSetUp(nl, "flannel.1");
  neighReplace(nl, { dev: link.index, ip: "10.244.1.0", mac: MAC_PEER, permanent: true });
  fdbReplace(nl, { dev: "flannel.1", mac: MAC_PEER, dst: "10.0.0.2", self: true, permanent: true });
  routeReplace(nl, { dst: "10.244.1.0/24", gw: "10.244.1.0", dev: link.index, onlink: true });
  routeReplace(nl, { dst: "10.244.9.0/24", type: "blackhole" });
  // IPv6 device, neighbour and onlink route (flannel-v6.N).
  const link6 = linkAddVxlan(nl, {
    name: "flannel-v6.1", vni: 1, local6: "fd00::1", underlayIndex: veth0.index, port: 8472, learning: false,
    gbp: false, mtu: 1430, mac: MAC_SELF6,
  });
  linkSetUp(nl, link6.index);
  neighReplace(nl, { dev: link6.index, ip: "fd10:0:0:1::", mac: MAC_PEER, permanent: true });
  routeReplace(nl, { dst: "fd10:0:0:1::/64", gw: "fd10:0:0:1::", dev: link6.index, onlink: true });
  // Idempotent: the same replace again succeeds.
  routeReplace(nl, { dst: "10.244.1.0/24", gw: "10.244.1.0", dev: link.index, onlink: true });

  const events: NetlinkEvent[] = [];
  for (let i = 0; i < 20 && !events.some((e) => e.kind === "route" && e.route.dst === "10.244.9.0/24"); i++) {
    events.push(...mon.wait(100));
  }
  mon.close();

  return {
    veth0: veth0.index,
    link: linkByName(nl, "flannel.1"),
    linkInList: linkList(nl).find((l) => l.name === "flannel.1"),
    addrs: addrList(nl, { dev: "flannel.1", family: 4 }),
    neighs: neighList(nl, "flannel.1", 4),
    fdb: fdbList(nl, link.index),
    routes: routeList(nl, { family: 4 }),
    routesOnDev: routeList(nl, { dev: "flannel.1" }),
    link6: linkByName(nl, "flannel-v6.1"),
    neighs6: neighList(nl, link6.index, 6),
    routes6: routeList(nl, { family: 6, dev: link6.index }),
    get: { underlay: routeGet(nl, "10.0.0.2"), overlay: routeGet(nl, "10.244.1.5") },
    errors: {
      exists: failure(() => linkAddVxlan(nl, {
        name: "flannel.1", vni: 1, local: "10.0.0.1", underlayIndex: veth0.index, port: 8472, learning: false, gbp: false,
      })),
      noDevByName: failure(() => linkDel(nl, "nosuch0")),
      noDevByIndex: failure(() => linkSetUp(nl, 9999)),
      badGateway: failure(() => routeReplace(nl, { dst: "10.244.6.0/24", gw: "10.9.9.9", dev: link.index })),
      unreachable: failure(() => routeGet(nl, "192.0.2.1")),
    },
    events: events.map((e) => e.kind === "route" ? { kind: e.kind, action: e.action, dst: e.route.dst }
      : e.kind === "link" ? { kind: e.kind, action: e.action, name: e.link.name }
      : e.kind === "neigh" ? { kind: e.kind, action: e.action, ip: e.neigh.ip, family: e.neigh.family }
      : { kind: e.kind }),
  };
}

function batch(peers: number): unknown {
  const dev = linkByName(nl, "flannel.1")!.index;
  const peer = (i: number) => ({
    subnet: `10.${100 + (i >> 8)}.${i & 255}.0/24`, ip: `10.${100 + (i >> 8)}.${i & 255}.0`,
    mac: `0a:58:00:00:${((i >> 8) & 255).toString(16).padStart(2, "0")}:${(i & 255).toString(16).padStart(2, "0")}`,
    vtep: `10.0.${1 + (i >> 8)}.${i & 255}`,
  });
  const ps = Array.from({ length: peers }, (_, i) => peer(i));
  const time = (reqs: NetlinkRequest[]) => {
    const t0 = performance.now();
    const res = nl.batch(reqs);
    return { ms: performance.now() - t0, failed: res.filter((r) => r !== null).map((r) => r!.message).slice(0, 3) };
  };
  const routes = ps.map((p) => routeReplaceRequest({ dst: p.subnet, gw: p.ip, dev, onlink: true }));
  const routesOnly = time(routes);
  const routesAgain = time(ps.map((p) => routeReplaceRequest({ dst: p.subnet, gw: p.ip, dev, onlink: true })));
  const full = time(ps.flatMap((p) => [
    neighReplaceRequest({ index: dev, ip: p.ip, mac: p.mac }),
    fdbReplaceRequest({ index: dev, mac: p.mac, dst: p.vtep }),
    routeReplaceRequest({ dst: p.subnet, gw: p.ip, dev, onlink: true }),
  ]));
  const counted = {
    routes: routeList(nl, { dev }).filter((r) => r.dst.startsWith("10.1")).length,
    neighs: neighList(nl, dev, 4).length,
    fdb: fdbList(nl, dev).filter((e) => e.dst?.startsWith("10.0.") && e.dst !== "10.0.0.2").length,
  };
  const removal = time(ps.flatMap((p) => [
    routeDelRequest({ dst: p.subnet, gw: p.ip, dev }),
    fdbDelRequest({ index: dev, mac: p.mac, dst: p.vtep }),
    neighDelRequest({ index: dev, ip: p.ip }),
  ]));
  const left = {
    routes: routeList(nl, { dev }).filter((r) => r.dst.startsWith("10.1")).length,
    neighs: neighList(nl, dev, 4).length,
  };
  return { peers, routesOnly, routesAgain, full, counted, removal, left };
}

function del(): unknown {
  const link = linkByName(nl, "flannel.1")!;
  routeDel(nl, { dst: "10.244.1.0/24", gw: "10.244.1.0", dev: "flannel.1" });
  routeDel(nl, { dst: "10.244.9.0/24", type: "blackhole" });
  fdbDel(nl, { dev: link.index, mac: MAC_PEER, dst: "10.0.0.2" });
  neighDel(nl, { dev: link.index, ip: "10.244.1.0" });
  addrDel(nl, "flannel.1", "10.244.0.0/32");
  const after = {
    routes: routeList(nl, { dev: link.index }), neighs: neighList(nl, link.index, 4),
    fdb: fdbList(nl, link.index).filter((e) => e.dst === "10.0.0.2"), addrs: addrList(nl, { dev: link.index, family: 4 }),
  };
  const again = {
    route: failure(() => routeDel(nl, { dst: "10.244.1.0/24" })),
    neigh: failure(() => neighDel(nl, { dev: link.index, ip: "10.244.1.0" })),
  };
  linkDel(nl, "flannel.1");
  linkDel(nl, "flannel-v6.1");
  return { after, again, gone: linkByName(nl, "flannel.1") ?? null, delAgain: failure(() => linkDel(nl, link.index)) };
}

try {
  const out: unknown = phase === "create" ? create() : phase === "batch" ? batch(1000) : phase === "delete" ? del() : undefined;
  if (out === undefined) throw new Error(`netlink_kernel_script: phase ${JSON.stringify(phase)} is not create, batch or delete`);
  console.log(JSON.stringify({ runtime: sys.runtime, ...out as object }));
} finally {
  nl.close();
}
