/**
 * @module Pod CIDRs for Nodes, as kube-controller-manager's range allocator hands them out with
 * `--allocate-node-cidrs --cluster-cidr=… --node-cidr-mask-size=…`: per cluster CIDR (one per IP
 * family for dual-stack) a set of subnets of the mask size, the next one after the last given
 * (wrapping around), so a fresh cluster's first node gets 10.244.0.0/24. Pure bookkeeping.
 */
import { isIP } from "node:net";
import { formatIPv4, formatIPv6, parseIPv4Net, parseIPv6Net } from "../../../src/net/ip.ts";

interface Pool { cidr: string; family: 4 | 6; base: bigint; bits: number; maskLen: number; size: bigint; used: Set<bigint>; next: bigint }

export class PodCidrAllocator {
  private pools: Pool[];

  /**
   * @param clusterCidrs e.g. `["10.244.0.0/16", "fd00:10:244::/56"]`
   * @param maskSizes one per cluster CIDR, e.g. `[24, 64]`
   */
  constructor(clusterCidrs: string[], maskSizes: number[]) {
    if (clusterCidrs.length === 0 || clusterCidrs.length > 2) throw new RangeError(`cluster CIDRs ${JSON.stringify(clusterCidrs)}: give one, or two of different IP families`);
    if (maskSizes.length !== clusterCidrs.length) throw new RangeError(`node CIDR mask sizes ${JSON.stringify(maskSizes)}: give one per cluster CIDR (${clusterCidrs.join(",")})`);
    this.pools = clusterCidrs.map((c, i) => {
      const family = isIP(c.split("/")[0] ?? "") === 6 ? 6 : 4;
      const net = family === 4 ? parseIPv4Net(c, "cluster CIDR", true) : parseIPv6Net(c, "cluster CIDR", true);
      const maskLen = maskSizes[i]!;
      const bits = family === 4 ? 32 : 128;
      if (!Number.isInteger(maskLen) || maskLen < net.len || maskLen > bits) throw new RangeError(`node CIDR mask ${maskLen} for ${c} must be between ${net.len} and ${bits}`);
      if (maskLen - net.len > 32) throw new RangeError(`node CIDR mask ${maskLen} for ${c} makes more than 2^32 subnets`);
      return { cidr: c, family, base: BigInt(net.ip), bits, maskLen, size: 1n << BigInt(maskLen - net.len), used: new Set<bigint>(), next: 0n };
    });
    if (this.pools.length === 2 && this.pools[0]!.family === this.pools[1]!.family) throw new RangeError(`cluster CIDRs ${clusterCidrs.join(",")} must be of different IP families`);
  }

  /** One CIDR per cluster CIDR, in their order; throws when a pool is full. */
  allocate(): string[] {
    const picks = this.pools.map((p) => {
      for (let n = 0n; n < p.size; n++) {
        const i = (p.next + n) % p.size;
        if (!p.used.has(i)) return i;
      }
      throw new RangeError(`no pod CIDR of /${p.maskLen} is left in cluster CIDR ${p.cidr} (${p.size} given out)`);
    });
    return this.pools.map((p, k) => {
      p.used.add(picks[k]!);
      p.next = (picks[k]! + 1n) % p.size;
      return this.format(p, picks[k]!, p.maskLen);
    });
  }

  /** Marks CIDRs as taken (a Node created with its podCIDRs set). Ignores CIDRs outside the pools. */
  occupy(cidrs: readonly string[]): void {
    for (const c of cidrs) { const at = this.locate(c); at?.pool.used.add(at.index); }
  }

  release(cidrs: readonly string[]): void {
    for (const c of cidrs) { const at = this.locate(c); at?.pool.used.delete(at.index); }
  }

  private locate(cidr: string): { pool: Pool; index: bigint } | undefined {
    const [ip, len] = cidr.split("/");
    const family = isIP(ip ?? "");
    for (const p of this.pools) {
      if (p.family !== family || Number(len) !== p.maskLen) continue;
      const addr = family === 4 ? BigInt(parseIPv4Net(cidr).ip) : parseIPv6Net(cidr).ip;
      const offset = addr - p.base;
      const index = offset >> BigInt(p.bits - p.maskLen);
      if (offset >= 0n && index < p.size) return { pool: p, index };
    }
    return undefined;
  }

  private format(p: Pool, index: bigint, len: number): string {
    const addr = p.base + (index << BigInt(p.bits - p.maskLen));
    return `${p.family === 4 ? formatIPv4(Number(addr)) : formatIPv6(addr)}/${len}`;
  }
}
