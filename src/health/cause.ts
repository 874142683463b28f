/**
 * @module Why a peer is unreachable through the overlay, in a user's words, from what the prober
 * could observe when it went down: the kernel's route to the peer's overlay address, and whether
 * the peer's agent answers the same probe on the underlay (a connected UDP socket, which also
 * learns of ICMP port/host unreachable).
 */

/** What the underlay check saw: a reply, an ICMP port unreachable, an ICMP host/net unreachable, or nothing. */
export type UnderlayResult = "answers" | "refused" | "unreachable" | "silent";

export interface DownEvidence {
  peer: string;
  publicIP: string;
  /** The overlay address probed. */
  overlayAddr: string;
  port: number;
  backend: string;
  /** Undefined when it could not be checked; else whether the kernel routes the overlay address into the overlay. */
  route?: { ok: boolean; detail: string };
  underlay?: UnderlayResult;
  /** ICMP echo to the overlay address (asked only when the agent does not answer); undefined: not asked or not permitted. */
  overlayIcmp?: "answers" | "silent";
}

/** The encapsulation's own port, which a firewall must let through. */
export function overlayPort(backend: string): string {
  if (backend === "vxlan") return "UDP 8472 (vxlan; the Backend's Port if set)";
  if (backend === "udp") return "UDP 8285 (udp; the Backend's Port if set)";
  return "the forwarded traffic";
}

/** One sentence: the likely cause and what to check. */
export function likelyCause(e: DownEvidence): string {
  if (e.route && !e.route.ok) {
    return `no route to ${e.peer} through the overlay in this host's kernel (${e.route.detail}): deleted by hand? weft puts it back at its next check`;
  }
  switch (e.underlay) {
    case "answers":
      return `the peer's agent answers on the underlay (${e.publicIP}:${e.port}) but not through the overlay: ${overlayPort(e.backend)} is dropped between the hosts, or the peer's FORWARD chain drops it`;
    case "refused":
      if (e.overlayIcmp === "answers") return `host ${e.publicIP} is up and answers ICMP through the overlay (${e.overlayAddr}), but no weft agent answers on UDP ${e.port}: weft stopped with its data path in place, or a flanneld host`;
      if (e.overlayIcmp === "silent") return `host ${e.publicIP} is up but no weft agent answers on UDP ${e.port}, and the overlay does not carry ICMP to ${e.overlayAddr} either: the agent is stopped and its data path gone`;
      return `host ${e.publicIP} is up but no weft agent answers on UDP ${e.port} (agent stopped, or a flanneld host)`;
    case "unreachable":
      return `host ${e.publicIP} is unreachable on the underlay (host down or gone)`;
    case "silent":
      return `nothing answers on the underlay either (${e.publicIP}:${e.port}): the host is down, or a firewall drops UDP to it`;
    default:
      return "cause not diagnosed";
  }
}

/** The MTU finding, in words. */
export function mtuCause(peer: string, mtu: number): string {
  return `full-size probes (${mtu} bytes, DF) to ${peer} are lost while small ones pass: an MTU black hole — the overlay MTU ${mtu} does not fit the path (check the underlay MTU on both hosts and FLANNEL_MTU)`;
}
