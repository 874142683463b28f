/** @module The CNI plugin end to end (cni_suite.ts) with agents in etcd mode. */
import { cniSuite } from "./cni_suite.ts";

cniSuite(false);
