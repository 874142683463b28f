/**
 * @module The VXLAN devices flannel.<VNI> and flannel-v6.<VNI> (compat §6.1): created as `ip link
 * add flannel.N mtu M address MAC type vxlan id N local IFACEADDR dev IFACE dstport PORT
 * nolearning [gbp]` (flannel-v6.N with `local IFACEADDR6`). Each device's MAC
 * is what peers put in their neighbour and FDB tables, so it must survive restarts (compat §13):
 * an existing compatible device is kept as it is, and a device that must be recreated keeps its
 * old MAC, else the previous lease's, else a new random one.
 */
import {
  type Link, type NetlinkSocket, type VxlanInfo, type VxlanLinkSpec, linkAddVxlan, linkByName, linkDel, linkSetMtu,
} from "../../../ffi/netlink/index.ts";
import type { Logger } from "../../log.ts";
import { isUnicastMac } from "./lease_data.ts";

/** `flannel.<VNI>` (IPv4) or `flannel-v6.<VNI>` (IPv6), flannel's device names. */
export function vxlanDeviceName(vni: number, family: 4 | 6 = 4): string {
  return family === 4 ? `flannel.${vni}` : `flannel-v6.${vni}`;
}

/** A random locally administered unicast MAC (first byte: bit 1 set, bit 0 clear). */
export function randomMac(random: (n: number) => Uint8Array = (n) => crypto.getRandomValues(new Uint8Array(n))): string {
  const b = random(6);
  b[0] = (b[0]! & 0xfe) | 0x02;
  return [...b].map((x) => x.toString(16).padStart(2, "0")).join(":");
}

/**
 * Why an existing link cannot serve as the wanted VXLAN device, or undefined when it can. The
 * same fields flannel compares: type, VNI, underlay index, local address, port, GBP (and
 * learning, which flannel sets at creation only).
 */
export function vxlanIncompatibility(link: Link, want: VxlanInfo): string | undefined {
  if (link.kind !== "vxlan" || !link.vxlan) return `it is a ${link.kind ?? "plain"} link, not vxlan`;
  const have = link.vxlan;
  if (have.vni !== want.vni) return `its VNI is ${have.vni}, want ${want.vni}`;
  if (have.underlayIndex !== want.underlayIndex) return `its underlay is interface ${have.underlayIndex ?? "(none)"}, want ${want.underlayIndex}`;
  if (have.local !== want.local) return `its local address is ${have.local ?? "(none)"}, want ${want.local ?? "(none)"}`;
  if (have.local6 !== want.local6) return `its local IPv6 address is ${have.local6 ?? "(none)"}, want ${want.local6 ?? "(none)"}`;
  if (have.port !== want.port) return `its port is ${have.port}, want ${want.port}`;
  if (have.gbp !== want.gbp) return `gbp is ${have.gbp ? "on" : "off"}, want ${want.gbp ? "on" : "off"}`;
  if (have.learning !== want.learning) return `learning is ${have.learning ? "on" : "off"}, want ${want.learning ? "on" : "off"}`;
  return undefined;
}

/**
 * Makes sure `spec.name` exists as wanted and returns it. A compatible device is reused with
 * its MAC (only a different MTU is corrected: that moves no route); an incompatible one is
 * deleted and recreated. `preferredMac` (e.g. the previous lease's VtepMAC) is used when there
 * is no device to take the MAC from.
 */
export function ensureVxlanDevice(nl: NetlinkSocket, spec: Omit<VxlanLinkSpec, "mac">, preferredMac: string | undefined, log: Logger): Link {
  const existing = linkByName(nl, spec.name);
  let mac = preferredMac !== undefined && isUnicastMac(preferredMac) ? preferredMac : undefined;
  if (existing) {
    const why = vxlanIncompatibility(existing, spec);
    if (why === undefined) {
      if (spec.mtu !== undefined && existing.mtu !== spec.mtu) {
        linkSetMtu(nl, existing.index, spec.mtu);
        log.info(`${spec.name}: MTU ${existing.mtu} -> ${spec.mtu}`);
        return linkByName(nl, spec.name) ?? existing;
      }
      log.info(`Reusing existing ${spec.name} (MAC ${existing.mac})`);
      return existing;
    }
    log.warn(`${spec.name} exists but ${why}: deleting and recreating it`);
    if (existing.mac && isUnicastMac(existing.mac)) mac = existing.mac;
    linkDel(nl, existing.index);
  }
  mac ??= randomMac();
  const link = linkAddVxlan(nl, { ...spec, mac });
  if (link.mac !== mac) throw new Error(`${spec.name}: mac address wanted: ${mac}, but got: ${link.mac}`);
  log.info(`Created ${spec.name} (VNI ${spec.vni}, MAC ${mac}, MTU ${spec.mtu}, local ${spec.local ?? spec.local6}, port ${spec.port})`);
  return link;
}
