/**
 * @module NetlinkMonitor: a non-blocking NETLINK_ROUTE socket subscribed to multicast groups
 * (links, routes, neighbours, addresses), as `ip monitor` is. `read()` drains what is queued
 * without blocking, so it fits a poll loop on `fd`; `wait()` blocks up to a timeout for tests and
 * benchmarks that watch for a route to appear. Events are parsed into the same plain objects the
 * dumps return.
 */
import { EAGAIN, EINTR, MSG_DONTWAIT, POLLFD_SIZE, POLLIN, setPollfd, structBuffer } from "../linux.ts";
import type { Sys } from "../sys.ts";
import { check } from "../sys.ts";
import { type Addr, parseAddr } from "./addr.ts";
import {
  NETLINK_ADD_MEMBERSHIP, RTM_DELADDR, RTM_DELLINK, RTM_DELNEIGH, RTM_DELROUTE, RTM_NEWADDR, RTM_NEWLINK,
  RTM_NEWNEIGH, RTM_NEWROUTE, RTNLGRP_IPV4_IFADDR, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_IFADDR, RTNLGRP_IPV6_ROUTE,
  RTNLGRP_LINK, RTNLGRP_NEIGH, SOL_NETLINK,
} from "./constants.ts";
import { type Link, parseLink } from "./link.ts";
import { parseMessages } from "./message.ts";
import { type Neigh, parseNeigh } from "./neigh.ts";
import { type Route, parseRoute } from "./route.ts";
import { openRouteSocket } from "./socket.ts";

/** What a monitor can subscribe to. */
export type MonitorGroup = "link" | "neigh" | "ipv4-route" | "ipv6-route" | "ipv4-addr" | "ipv6-addr";

const GROUPS: Record<MonitorGroup, number> = {
  link: RTNLGRP_LINK, neigh: RTNLGRP_NEIGH, "ipv4-route": RTNLGRP_IPV4_ROUTE, "ipv6-route": RTNLGRP_IPV6_ROUTE,
  "ipv4-addr": RTNLGRP_IPV4_IFADDR, "ipv6-addr": RTNLGRP_IPV6_IFADDR,
};

/** One change the kernel announced; `action` is "new" (added or changed) or "del". */
export type NetlinkEvent =
  | { readonly kind: "link"; readonly action: "new" | "del"; readonly link: Link }
  | { readonly kind: "route"; readonly action: "new" | "del"; readonly route: Route }
  | { readonly kind: "neigh"; readonly action: "new" | "del"; readonly neigh: Neigh }
  | { readonly kind: "addr"; readonly action: "new" | "del"; readonly addr: Addr }
  /** The socket's queue overflowed and events were lost: re-read the state with a dump. */
  | { readonly kind: "overrun" };

const ENOBUFS = 105;

export class NetlinkMonitor {
  private readonly buf = structBuffer(64 * 1024);
  private readonly pollfd = structBuffer(POLLFD_SIZE);
  private closed = false;

  private constructor(private readonly sys: Sys, readonly fd: number) {
    setPollfd(this.pollfd, 0, fd, POLLIN);
  }

  /** Equivalent to: `ip monitor link route neigh …` (a socket joined to those groups). */
  static open(sys: Sys, groups: readonly MonitorGroup[]): NetlinkMonitor {
    const fd = openRouteSocket(sys, true, "NetlinkMonitor.open");
    try {
      for (const g of groups) {
        const id = GROUPS[g];
        if (id === undefined) throw new TypeError(`NetlinkMonitor group ${JSON.stringify(g)} is not one of ${Object.keys(GROUPS).join(", ")}`);
        const v = structBuffer(4);
        new DataView(v.buffer).setUint32(0, id, true);
        check(sys.setsockopt(fd, SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, v), `NetlinkMonitor.open: join group ${g}`);
      }
    } catch (e) {
      sys.close(fd);
      throw e;
    }
    return new NetlinkMonitor(sys, fd);
  }

  /** Everything queued now, without blocking (an empty array when nothing is). */
  read(): NetlinkEvent[] {
    const out: NetlinkEvent[] = [];
    for (;;) {
      const n = this.sys.recvfrom(this.fd, this.buf, this.buf.length, MSG_DONTWAIT, null);
      if (n === -EAGAIN) return out;
      if (n === -EINTR) continue;
      if (n === -ENOBUFS) { out.push({ kind: "overrun" }); continue; }
      if (n < 0) check(n, "NetlinkMonitor.read: recvfrom");
      for (const m of parseMessages(this.buf, n)) {
        const action = m.type === RTM_DELLINK || m.type === RTM_DELROUTE || m.type === RTM_DELNEIGH || m.type === RTM_DELADDR
          ? "del" : "new";
        switch (m.type) {
          case RTM_NEWLINK: case RTM_DELLINK: out.push({ kind: "link", action, link: parseLink(m) }); break;
          case RTM_NEWROUTE: case RTM_DELROUTE: out.push({ kind: "route", action, route: parseRoute(m) }); break;
          case RTM_NEWNEIGH: case RTM_DELNEIGH: out.push({ kind: "neigh", action, neigh: parseNeigh(m) }); break;
          case RTM_NEWADDR: case RTM_DELADDR: out.push({ kind: "addr", action, addr: parseAddr(m) }); break;
        }
      }
    }
  }

  /**
   * Blocks up to `timeoutMs` for events and returns them (empty on timeout). Use for tests and
   * benchmarks; the agent polls `fd` in its own loop and calls `read()`.
   */
  wait(timeoutMs: number): NetlinkEvent[] {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const events = this.read();
      if (events.length > 0) return events;
      const left = deadline - Date.now();
      if (left <= 0) return events;
      const r = this.sys.poll(this.pollfd, 1, left);
      if (r < 0 && r !== -EINTR) check(r, "NetlinkMonitor.wait: poll");
    }
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.sys.close(this.fd);
  }
}
