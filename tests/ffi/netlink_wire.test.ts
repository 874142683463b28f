/**
 * Byte-exact tests of the netlink builders against what iproute2 sent (tests/fixtures/netlink,
 * captured by capture.ts), and parsers against what the kernel replied.
 */
import { describe, expect, test } from "bun:test";
import {
  RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH, RTM_DELROUTE, RTM_GETADDR, RTM_GETLINK, RTM_GETNEIGH, RTM_GETROUTE,
  RTM_NEWADDR, RTM_NEWLINK, RTM_NEWNEIGH, RTM_NEWROUTE, AF_INET6, NLMSG_DONE, NLMSG_ERROR, NLM_F_MULTI,
  AF_INET,
} from "../../ffi/netlink/constants.ts";
import { setSeq, parseErrorReply } from "../../ffi/netlink/message.ts";
import {
  buildLinkAddVxlan, buildLinkDel, buildLinkDump, buildLinkGetByName, buildLinkSetAddress, buildLinkSetMtu,
  buildLinkSetUp, parseLink,
} from "../../ffi/netlink/link.ts";
import { buildAddr, buildAddrDump, parseAddr } from "../../ffi/netlink/addr.ts";
import { buildRoute, buildRouteDump, buildRouteGet, parseRoute } from "../../ffi/netlink/route.ts";
import { buildFdb, buildFdbDump, buildNeigh, buildNeighDump, parseNeigh } from "../../ffi/netlink/neigh.ts";
import { receivedMessages, sentRequest, toHex } from "../fixtures/netlink/fixtures.ts";

// Interface indexes in the capture namespace (see capture.ts).
const VETH0 = 3, FLANNEL1 = 4, FLANNEL2 = 5, FLANNEL6 = 6;

/** [fixture, message type, builder] — each builder must produce iproute2's bytes. */
const CASES: [string, number, () => Uint8Array][] = [
  ["link_add_vxlan", RTM_NEWLINK, () => buildLinkAddVxlan({
    name: "flannel.1", vni: 1, local: "10.0.0.1", underlayIndex: VETH0, port: 8472, learning: false, gbp: false,
    mtu: 1450, mac: "0a:58:0a:f4:00:00",
  })],
  ["link_add_vxlan_gbp", RTM_NEWLINK, () => buildLinkAddVxlan({
    name: "flannel.2", vni: 2, local: "10.0.0.1", underlayIndex: VETH0, port: 8472, learning: false, gbp: true,
  })],
  ["link_add_vxlan6", RTM_NEWLINK, () => buildLinkAddVxlan({
    name: "flannel-v6.1", vni: 1, local6: "fd00::1", underlayIndex: VETH0, port: 8472, learning: false, gbp: false,
  })],
  ["link_set_up", RTM_GETLINK, () => buildLinkGetByName("flannel.1")],
  ["link_set_up", RTM_NEWLINK, () => buildLinkSetUp(FLANNEL1)],
  ["link_set_mtu", RTM_NEWLINK, () => buildLinkSetMtu(FLANNEL1, 1400)],
  ["link_set_address", RTM_NEWLINK, () => buildLinkSetAddress(FLANNEL1, "0a:58:0a:f4:00:01")],
  ["link_del", RTM_DELLINK, () => buildLinkDel(FLANNEL1)],
  ["link_dump", RTM_GETLINK, () => buildLinkDump()],
  ["addr_add", RTM_NEWADDR, () => buildAddr("add", { index: FLANNEL1, cidr: "10.244.0.0/32" })],
  ["addr_replace", RTM_NEWADDR, () => buildAddr("replace", { index: FLANNEL1, cidr: "10.244.0.0/32" })],
  ["addr_add6", RTM_NEWADDR, () => buildAddr("add", { index: FLANNEL6, cidr: "fd10::/128", nodad: true })],
  ["addr_del", RTM_DELADDR, () => buildAddr("del", { index: FLANNEL1, cidr: "10.244.0.0/32" })],
  ["addr_list", RTM_GETADDR, () => buildAddrDump(0, FLANNEL1)],
  ["neigh_replace", RTM_NEWNEIGH, () => buildNeigh("replace", { index: FLANNEL1, ip: "10.244.1.0", mac: "0a:58:0a:f4:01:00" })],
  ["neigh_replace6", RTM_NEWNEIGH, () => buildNeigh("replace", { index: FLANNEL6, ip: "fd10:0:0:1::", mac: "0a:58:0a:f4:01:00" })],
  ["neigh_del", RTM_DELNEIGH, () => buildNeigh("del", { index: FLANNEL1, ip: "10.244.1.0" })],
  ["neigh_list", RTM_GETNEIGH, () => buildNeighDump(0, FLANNEL1)],
  ["fdb_replace", RTM_NEWNEIGH, () => buildFdb("replace", { index: FLANNEL1, mac: "0a:58:0a:f4:01:00", dst: "10.0.0.2" })],
  ["fdb_del", RTM_DELNEIGH, () => buildFdb("del", { index: FLANNEL1, mac: "0a:58:0a:f4:01:00", dst: "10.0.0.2" })],
  ["fdb_list", RTM_GETNEIGH, () => buildFdbDump(FLANNEL1)],
  ["route_replace_onlink", RTM_NEWROUTE, () => buildRoute("replace", { dst: "10.244.1.0/24", gw: "10.244.1.0", dev: FLANNEL1, onlink: true })],
  ["route_replace_gw", RTM_NEWROUTE, () => buildRoute("replace", { dst: "10.244.2.0/24", gw: "10.0.0.2" })],
  ["route_replace_dev_gw", RTM_NEWROUTE, () => buildRoute("replace", { dst: "10.244.4.0/24", gw: "10.0.0.2", dev: VETH0 })],
  ["route_replace_blackhole", RTM_NEWROUTE, () => buildRoute("replace", { dst: "10.244.3.0/24", type: "blackhole" })],
  ["route_replace_scope_link", RTM_NEWROUTE, () => buildRoute("replace", { dst: "10.245.0.0/16", dev: FLANNEL1, scope: "link" })],
  ["route_replace_table", RTM_NEWROUTE, () => buildRoute("replace", { dst: "10.244.5.0/24", gw: "10.0.0.2", dev: VETH0, table: 100, priority: 10 })],
  ["route_replace6", RTM_NEWROUTE, () => buildRoute("replace", { dst: "fd10:0:0:1::/64", gw: "fd10:0:0:1::", dev: FLANNEL6, onlink: true })],
  ["route_invalid_gw", RTM_NEWROUTE, () => buildRoute("replace", { dst: "10.244.6.0/24", gw: "10.9.9.9", dev: FLANNEL1 })],
  ["route_del", RTM_DELROUTE, () => buildRoute("del", { dst: "10.244.1.0/24" })],
  ["route_get", RTM_GETROUTE, () => buildRouteGet("10.0.0.2")],
  ["route_list", RTM_GETROUTE, () => buildRouteDump(4)],
  // IPv6: what the vxlan (flannel-v6.N) and host-gw backends send for IPv6 peers.
  ["link_add_vxlan6_mtu", RTM_NEWLINK, () => buildLinkAddVxlan({
    name: "flannel-v6.2", vni: 2, local6: "fd00::1", underlayIndex: VETH0, port: 8472, learning: false, gbp: false,
    mtu: 1430, mac: "0a:58:0a:f4:00:00",
  })],
  ["fdb_replace6", RTM_NEWNEIGH, () => buildFdb("replace", { index: FLANNEL6, mac: "0a:58:0a:f4:01:00", dst: "fd00::2" })],
  ["fdb_del6", RTM_DELNEIGH, () => buildFdb("del", { index: FLANNEL6, mac: "0a:58:0a:f4:01:00", dst: "fd00::2" })],
  ["fdb_list6", RTM_GETNEIGH, () => buildFdbDump(FLANNEL6)],
  ["neigh_del6", RTM_DELNEIGH, () => buildNeigh("del", { index: FLANNEL6, ip: "fd10:0:0:1::" })],
  ["neigh_list6", RTM_GETNEIGH, () => buildNeighDump(AF_INET6, FLANNEL6)],
  ["route_replace6_dev_gw", RTM_NEWROUTE, () => buildRoute("replace", { dst: "fd10:0:0:5::/64", gw: "fd00::2", dev: VETH0 })],
  ["route_del6", RTM_DELROUTE, () => buildRoute("del", { dst: "fd10:0:0:5::/64", gw: "fd00::2", dev: VETH0 })],
  ["route_get6", RTM_GETROUTE, () => buildRouteGet("fd00::2")],
  ["route_list6", RTM_GETROUTE, () => buildRouteDump(6)],
];

describe("netlink builders equal iproute2's bytes", () => {
  for (const [name, type, build] of CASES) {
    test(`${name} (type ${type})`, () => {
      const want = sentRequest(name, type);
      const got = build();
      setSeq(got, want.seq);
      expect(toHex(got)).toBe(toHex(want.bytes));
    });
  }
});

describe("netlink parsers read the kernel's replies", () => {
  test("parseLink() reads a VXLAN device back (ip -d link show flannel.1)", () => {
    const { seq } = sentRequest("link_get", RTM_GETLINK);
    const links = receivedMessages("link_get").filter((m) => m.type === RTM_NEWLINK).map(parseLink);
    const l = links.find((x) => x.name === "flannel.1")!;
    expect(seq).toBeGreaterThan(0);
    expect(l).toMatchObject({
      index: FLANNEL1, name: "flannel.1", up: true, mtu: 1400, mac: "0a:58:0a:f4:00:01", kind: "vxlan",
      vxlan: { vni: 1, local: "10.0.0.1", underlayIndex: VETH0, port: 8472, learning: false, gbp: false },
    });
  });

  test("parseLink() reads a multipart link dump ending in NLMSG_DONE", () => {
    const msgs = receivedMessages("link_dump", sentRequest("link_dump", RTM_GETLINK).seq);
    expect(msgs.at(-1)!.type).toBe(NLMSG_DONE);
    const parts = msgs.filter((m) => m.type === RTM_NEWLINK);
    expect(parts.every((m) => (m.flags & NLM_F_MULTI) !== 0)).toBe(true);
    const byName = new Map(parts.map(parseLink).map((l) => [l.name, l]));
    expect([...byName.keys()].sort()).toEqual(["flannel-v6.1", "flannel.1", "flannel.2", "lo", "veth0", "veth1"]);
    expect(byName.get("veth0")).toMatchObject({ index: VETH0, kind: "veth", up: true, mtu: 1500 });
    expect(byName.get("flannel.2")!.vxlan).toMatchObject({ vni: 2, gbp: true, learning: false });
    expect(byName.get("flannel-v6.1")!.vxlan).toMatchObject({ vni: 1, local6: "fd00::1", port: 8472 });
    expect(byName.get("flannel-v6.1")!.vxlan!.local).toBeUndefined();
    expect(byName.get("flannel.2")!.index).toBe(FLANNEL2);
  });

  test("parseAddr() reads ip addr show", () => {
    const addrs = receivedMessages("addr_list").filter((m) => m.type === RTM_NEWADDR).map(parseAddr);
    expect(addrs.find((a) => a.index === FLANNEL1)).toMatchObject({
      family: AF_INET, cidr: "10.244.0.0/32", local: "10.244.0.0", address: "10.244.0.0", prefixLen: 32, label: "flannel.1",
    });
    // IPv6 addresses carry only IFA_ADDRESS; the dump was filtered to flannel.1 by the kernel.
    expect(addrs.find((a) => a.family === AF_INET6)).toMatchObject({ index: FLANNEL1, scope: 253, prefixLen: 64 });
    expect(addrs.every((a) => a.index === FLANNEL1)).toBe(true);
  });

  test("parseNeigh() reads ip neigh show dev flannel.1", () => {
    const n = receivedMessages("neigh_list").filter((m) => m.type === RTM_NEWNEIGH).map(parseNeigh);
    expect(n).toContainEqual(expect.objectContaining({
      family: AF_INET, index: FLANNEL1, ip: "10.244.1.0", mac: "0a:58:0a:f4:01:00", permanent: true,
    }));
  });

  test("parseNeigh() reads bridge fdb show dev flannel.1 (remote VTEP in ip)", () => {
    const n = receivedMessages("fdb_list").filter((m) => m.type === RTM_NEWNEIGH).map(parseNeigh);
    expect(n.filter((e) => e.index === FLANNEL1)).toContainEqual(expect.objectContaining({
      family: 7, mac: "0a:58:0a:f4:01:00", ip: "10.0.0.2", permanent: true, flags: 2,
    }));
  });

  test("parseRoute() reads ip route show table main", () => {
    const r = receivedMessages("route_list").filter((m) => m.type === RTM_NEWROUTE).map(parseRoute);
    const find = (dst: string) => r.find((x) => x.dst === dst);
    expect(find("10.244.1.0/24")).toMatchObject({ gw: "10.244.1.0", dev: FLANNEL1, onlink: true, table: 254, protocol: 3, typeName: "unicast" });
    expect(find("10.244.2.0/24")).toMatchObject({ gw: "10.0.0.2", dev: VETH0, onlink: false });
    expect(find("10.244.3.0/24")).toMatchObject({ typeName: "blackhole" });
    expect(find("10.245.0.0/16")).toMatchObject({ dev: FLANNEL1, scope: 253 });
    expect(find("10.0.0.0/24")).toMatchObject({ dev: VETH0, src: "10.0.0.1", protocol: 2 });
  });

  test("parseRoute() reads ip route get 10.0.0.2 (device and source)", () => {
    const r = receivedMessages("route_get").filter((m) => m.type === RTM_NEWROUTE).map(parseRoute);
    expect(r[0]).toMatchObject({ dst: "10.0.0.2/32", dev: VETH0, src: "10.0.0.1" });
    expect(r[0]!.gw).toBeUndefined();
  });

  test("parseNeigh() reads ip -6 neigh show dev flannel-v6.1", () => {
    const n = receivedMessages("neigh_list6").filter((m) => m.type === RTM_NEWNEIGH).map(parseNeigh);
    expect(n).toContainEqual(expect.objectContaining({
      family: AF_INET6, index: FLANNEL6, ip: "fd10:0:0:1::", mac: "0a:58:0a:f4:01:00", permanent: true,
    }));
  });

  test("parseNeigh() reads bridge fdb show dev flannel-v6.1 (remote VTEP fd00::2)", () => {
    const n = receivedMessages("fdb_list6").filter((m) => m.type === RTM_NEWNEIGH).map(parseNeigh);
    expect(n.filter((e) => e.index === FLANNEL6)).toContainEqual(expect.objectContaining({
      family: 7, mac: "0a:58:0a:f4:01:00", ip: "fd00::2", permanent: true,
    }));
  });

  test("parseRoute() reads ip -6 route show table main", () => {
    const r = receivedMessages("route_list6").filter((m) => m.type === RTM_NEWROUTE).map(parseRoute);
    const find = (dst: string) => r.find((x) => x.dst === dst && x.table === 254);
    expect(find("fd10:0:0:1::/64")).toMatchObject({ gw: "fd10:0:0:1::", dev: FLANNEL6, onlink: true, typeName: "unicast" });
    expect(find("fd10:0:0:5::/64")).toMatchObject({ gw: "fd00::2", dev: VETH0, onlink: false, typeName: "unicast" });
    expect(find("fd00::/64")).toMatchObject({ dev: VETH0 });
    expect(find("fd00::/64")!.gw).toBeUndefined();
  });

  test("parseRoute() reads ip route get fd00::2 (device, no gateway)", () => {
    const r = receivedMessages("route_get6").filter((m) => m.type === RTM_NEWROUTE).map(parseRoute);
    expect(r[0]).toMatchObject({ dst: "fd00::2/128", dev: VETH0 });
    expect(r[0]!.gw).toBeUndefined();
  });

  test("parseErrorReply() reads an ack", () => {
    const { seq } = sentRequest("route_replace_onlink", RTM_NEWROUTE);
    const ack = receivedMessages("route_replace_onlink", seq).find((m) => m.type === NLMSG_ERROR)!;
    expect(parseErrorReply(ack)).toMatchObject({ errno: 0, requestType: RTM_NEWROUTE, requestSeq: seq });
  });

  test("parseErrorReply() reads errno and the extended ack text", () => {
    const { seq } = sentRequest("route_invalid_gw", RTM_NEWROUTE);
    const err = receivedMessages("route_invalid_gw", seq).find((m) => m.type === NLMSG_ERROR)!;
    expect(parseErrorReply(err)).toMatchObject({ errno: 101, requestType: RTM_NEWROUTE, extAck: "Nexthop has invalid gateway" });
  });

  test("parseErrorReply() reads EEXIST and ENODEV", () => {
    const exists = receivedMessages("link_add_exists", sentRequest("link_add_exists", RTM_NEWLINK).seq)
      .find((m) => m.type === NLMSG_ERROR)!;
    expect(parseErrorReply(exists).errno).toBe(17);
    const missing = receivedMessages("link_del_missing", sentRequest("link_del_missing", RTM_GETLINK).seq)
      .find((m) => m.type === NLMSG_ERROR)!;
    expect(parseErrorReply(missing).errno).toBe(19);
  });
});
