/**
 * @module The `alloc` backend: takes a lease and programs nothing (flannel's alloc). Useful
 * where another component owns the data path, and for testing the control plane alone.
 */
import type { Backend, Network } from "./types.ts";

export const allocBackend: Backend = {
  type: "alloc",
  async createNetwork(ctx): Promise<Network> {
    return {
      leaseAttrs: {}, // flanneld writes no BackendType for alloc
      mtu: ctx.extIface.mtu,
      async start() {},
      async reconcile() {},
      async apply() {},
      async close() {},
    };
  },
};
