/**
 * @module The multi-host suite (suite.ts) with the vxlan backend, agents run as `deno run -A src/main.ts`: real
 * kernel, real etcd, three hosts as network namespaces.
 */
import { multihostSuite } from "./suite.ts";

multihostSuite("vxlan", "deno");
