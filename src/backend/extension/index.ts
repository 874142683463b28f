/**
 * @module The `extension` backend (flannel Documentation/extension.md): the data path is built by
 * shell commands from the network config, run with `sh -c` as flanneld v0.20.2 runs them, so the
 * documented examples work unchanged.
 *
 * Design notes: flanneld runs a peer's command once and forgets it when it fails. weft keeps, per
 * peer, whether its SubnetAddCommand has succeeded for the lease as it is now, and retries what
 * failed at the next change and at every periodic check (10 s), logging each distinct failure once
 * with its exit status and output. Commands run one at a time, in event order. A removed peer
 * whose add never succeeded gets its SubnetRemoveCommand once (it may have half-built something);
 * one whose add did gets it until it succeeds. A changed lease runs SubnetAddCommand again, as
 * flanneld does. Nothing can be known of what the commands built, so nothing is removed at start.
 */
import type { Backend } from "../types.ts";
import { ExtensionNetwork } from "./network.ts";

export const extensionBackend: Backend = {
  type: "extension",
  createNetwork: (ctx) => ExtensionNetwork.create(ctx),
};
