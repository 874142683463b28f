/** @module The kube-mode multi-host suite (suite.ts) with host-gw, agents as the compiled `dist/weft`. */
import { kubeSuite } from "./suite.ts";

kubeSuite("host-gw", "binary");
