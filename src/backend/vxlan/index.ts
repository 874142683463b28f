/**
 * @module The `vxlan` backend (compat §6.1): registered by name in ../registry.ts; the work is in
 * network.ts.
 */
import type { Backend } from "../types.ts";
import { VxlanNetwork } from "./network.ts";

export const vxlanBackend: Backend = {
  type: "vxlan",
  createNetwork: (ctx) => VxlanNetwork.create(ctx),
};
