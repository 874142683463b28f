/**
 * @module The multi-host suite (suite.ts) with the vxlan backend, agents run as the compiled `dist/weft`: real
 * kernel, real etcd, three hosts as network namespaces.
 */
import { multihostSuite } from "./suite.ts";

multihostSuite("vxlan", "binary");
