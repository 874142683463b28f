/**
 * @module Kernel VXLAN set up by hand beside an overlay under test, on the same hosts and
 * containers, as the benches' unencrypted ceiling: `vxb` (VNI 42, port 4789, MTU 1450) on each
 * host, a second address 10.60.<i>.2 on each host's first container, and the route
 * `10.60.0.0/16 via <cni0> src 10.60.<i>.2 mtu 1450` in it; permanent neighbours and FDB entries
 * between the hosts. Returns the containers' VXLAN addresses.
 */
import { exec, type Host, ip } from "../../tests/support/netns.ts";

export function setUpVxlan(hosts: Host[]): string[] {
  const macs: string[] = [];
  hosts.forEach((h, i) => {
    const mac = `02:00:00:00:42:${(i + 1).toString(16).padStart(2, "0")}`;
    macs.push(mac);
    ip(h.ns, "link", "add", "vxb", "address", mac, "mtu", "1450", "type", "vxlan", "id", "42", "dstport", "4789", "local", h.ip, "dev", "eth0", "nolearning");
    ip(h.ns, "addr", "add", `10.60.${i + 1}.0/32`, "dev", "vxb");
    ip(h.ns, "link", "set", "vxb", "up");
    ip(h.ns, "route", "add", `10.60.${i + 1}.0/24`, "dev", "cni0");
    const ct = h.containers[0]!;
    ip(ct.ns, "addr", "add", `10.60.${i + 1}.2/32`, "dev", "eth0");
    const gw = h.env!.subnet!.split("/")[0]!;
    ip(ct.ns, "route", "add", "10.60.0.0/16", "via", gw, "src", `10.60.${i + 1}.2`, "mtu", "1450");
  });
  hosts.forEach((h, i) => {
    hosts.forEach((peer, j) => {
      if (i === j) return;
      ip(h.ns, "neigh", "add", `10.60.${j + 1}.0`, "lladdr", macs[j]!, "dev", "vxb", "nud", "permanent");
      exec(h.ns, ["bridge", "fdb", "append", macs[j]!, "dev", "vxb", "dst", peer.ip]);
      ip(h.ns, "route", "add", `10.60.${j + 1}.0/24`, "via", `10.60.${j + 1}.0`, "dev", "vxb", "onlink");
    });
  });
  return hosts.map((_, i) => `10.60.${i + 1}.2`);
}
