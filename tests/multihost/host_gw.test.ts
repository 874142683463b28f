/**
 * @module The multi-host suite (suite.ts) with the host-gw backend, agents run as the compiled `dist/weft`: real
 * kernel, real etcd, three hosts as network namespaces.
 */
import { multihostSuite } from "./suite.ts";

multihostSuite("host-gw", "binary");
