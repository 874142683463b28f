/**
 * @module The CNI plugin end to end (tests/multihost/cni_suite.ts) with agents in kube mode: the
 * plugin reads the subnet.env written from the Node's podCIDR, exactly as in etcd mode.
 */
import { cniSuite } from "../multihost/cni_suite.ts";

cniSuite(true);
