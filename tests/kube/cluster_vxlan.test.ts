/**
 * @module The kube-mode multi-host suite (suite.ts) with vxlan, agents as the compiled `dist/weft`:
 * real kernel, the test Kubernetes API server, three hosts as network namespaces.
 */
import { kubeSuite } from "./suite.ts";

kubeSuite("vxlan", "binary");
