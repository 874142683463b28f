/**
 * @module The `host-gw` backend (compat §6.2): registered by name in ../registry.ts; the work is
 * in network.ts.
 */
import type { Backend } from "../types.ts";
import { HostGwNetwork } from "./network.ts";

export const hostgwBackend: Backend = {
  type: "host-gw",
  createNetwork: (ctx) => HostGwNetwork.create(ctx),
};
