/**
 * @module kernel_paths.ts over IPv6 (its `--ipv6`: IPv6 TCP and RTT for host-gw and vxlan
 * against the same paths made by hand), as its own bench so `bun bench/run.ts` measures both
 * families. Figures `kernel_paths_v6.*`.
 *
 *   bun bench/kernel_paths_v6.ts [--rounds N] [--seconds S]
 */
process.argv.push("--ipv6");
await import("./kernel_paths.ts");
export {};
