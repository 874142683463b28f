/**
 * @module Pure parts of the test API server: the node IPAM allocator (the range allocator's
 * order, wrap-around, a full pool, dual-stack, bad settings) and the command line's parser (the
 * documented form, and errors that name the flag, the value and what is allowed).
 */
import { describe, expect, test } from "bun:test";
import { parseServerArgs } from "../support/kube_api_server.ts";
import { PodCidrAllocator } from "../support/kube/cidr_allocator.ts";

describe("PodCidrAllocator", () => {
  test("gives the next subnet after the last one, skipping taken ones, wrapping around", () => {
    const a = new PodCidrAllocator(["10.244.0.0/22"], [24]);
    a.occupy(["10.244.1.0/24"]);
    expect([a.allocate(), a.allocate()]).toEqual([["10.244.0.0/24"], ["10.244.2.0/24"]]);
    a.release(["10.244.0.0/24"]);
    expect([a.allocate(), a.allocate()]).toEqual([["10.244.3.0/24"], ["10.244.0.0/24"]]); // after .3 it wraps to the freed .0
    expect(() => a.allocate()).toThrow("no pod CIDR of /24 is left in cluster CIDR 10.244.0.0/22 (4 given out)");
  });

  test("dual-stack: one subnet per cluster CIDR, in their order; CIDRs outside the pools are ignored", () => {
    const a = new PodCidrAllocator(["fd00:10:244::/56", "10.244.0.0/16"], [64, 24]);
    a.occupy(["192.0.2.0/24", "fd00:10:244::/64"]);
    expect(a.allocate()).toEqual(["fd00:10:244:1::/64", "10.244.0.0/24"]);
  });

  test("bad settings are refused, naming the value", () => {
    expect(() => new PodCidrAllocator(["10.244.0.0/16"], [12])).toThrow("node CIDR mask 12 for 10.244.0.0/16 must be between 16 and 32");
    expect(() => new PodCidrAllocator(["10.244.0.0/16", "10.245.0.0/16"], [24, 24])).toThrow("must be of different IP families");
    expect(() => new PodCidrAllocator(["10.244.0.0/16"], [24, 64])).toThrow("give one per cluster CIDR");
    expect(() => new PodCidrAllocator(["10.244.1.0/16"], [24])).toThrow(/host bits set/);
    expect(() => new PodCidrAllocator(["fd00::/8"], [64])).toThrow(/more than 2\^32 subnets/);
  });
});

describe("parseServerArgs", () => {
  test("the documented command line", () => {
    expect(parseServerArgs(["--listen", "127.0.0.1:6443", "--nodes", "h1,h2,h3", "--cluster-cidr", "10.244.0.0/16", "--node-cidr-mask", "24", "--kubeconfig", "/tmp/k"])).toEqual({
      options: { host: "127.0.0.1", port: 6443, nodes: ["h1", "h2", "h3"], clusterCidrs: ["10.244.0.0/16"], nodeCidrMasks: [24] },
      kubeconfig: "/tmp/k",
    });
    const dual = parseServerArgs(["--listen=[::1]:0", "--cluster-cidr=10.244.0.0/16,fd00:10:244::/56", "--node-cidr-mask=24,64", "--cidr-delay-ms", "500", "--allocate-node-cidrs=false"]);
    expect(dual.options).toMatchObject({ host: "::1", port: 0, clusterCidrs: ["10.244.0.0/16", "fd00:10:244::/56"], nodeCidrMasks: [24, 64], cidrDelayMs: 500, allocateNodeCidrs: false });
  });

  test("errors name the flag, the value and what is allowed", () => {
    expect(() => parseServerArgs(["--nodes", "h1"])).toThrow("--listen ADDR:PORT is required");
    expect(() => parseServerArgs(["--listen", "6443"])).toThrow('--listen "6443" must be ADDR:PORT (e.g. 127.0.0.1:6443, [::1]:6443)');
    expect(() => parseServerArgs(["--listen", "127.0.0.1:1", "--node-cidr-mask", "24,x"])).toThrow('"x" is not a prefix length');
    expect(() => parseServerArgs(["--listen", "127.0.0.1:1", "--cidr-delay-ms", "-5"])).toThrow('--cidr-delay-ms "-5" must be an integer ≥ 0');
    expect(() => parseServerArgs(["--listen", "127.0.0.1:1", "--allocate-node-cidrs=no"])).toThrow('--allocate-node-cidrs "no" must be true or false');
    expect(() => parseServerArgs(["--listen", "127.0.0.1:1", "--frob", "1"])).toThrow("unknown flag --frob");
    expect(() => parseServerArgs(["--listen"])).toThrow("flag --listen needs a value");
  });
});
