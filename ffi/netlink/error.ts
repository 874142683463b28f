/**
 * @module NetlinkError: the kernel refused a request. Carries the errno (so callers can treat
 * EEXIST or ENOENT as "already done"), the operation, a summary of the request in `ip` terms,
 * and the kernel's extended-ack text when it sent one.
 */
import { errnoName } from "../sys.ts";

export class NetlinkError extends Error {
  /**
   * @param errno positive errno, e.g. 17 (EEXIST)
   * @param op the operation, e.g. "routeReplace"
   * @param request what was asked, e.g. "10.244.1.0/24 via 10.244.1.0 dev 4 onlink"
   * @param extAck the kernel's NETLINK_EXT_ACK message, e.g. "Nexthop has invalid gateway"
   */
  constructor(readonly errno: number, readonly op: string, readonly request: string, readonly extAck?: string) {
    super(`netlink ${op} ${request}: ${errnoName(errno)} (${errno})${extAck ? `: ${extAck}` : ""}`);
    this.name = "NetlinkError";
  }

  /** errno's symbolic name, e.g. "EEXIST". */
  get code(): string {
    return errnoName(this.errno);
  }
}
