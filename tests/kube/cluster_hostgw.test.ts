/**
 * @module The kube-mode multi-host suite (suite.ts) with host-gw, agents as the compiled `dist/weft`;
 * the control-plane cases (outage, 410, token rotation, podCIDR wait, denial) run with vxlan only.
 */
import { kubeSuite } from "./suite.ts";

kubeSuite("host-gw", "binary", false);
