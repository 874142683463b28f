/**
 * @module Statistics and printing for the benches: median and percentiles of samples, a plain
 * text table, and one `FIGURE <bench>.<name> <value> <unit>` line per headline figure so
 * `bench/run.ts` can collect them into its summary.
 */

/** The `p`-th percentile (0..100) of `xs`, nearest-rank; NaN for no samples. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1));
  return s[rank]!;
}

/** The median of `xs` (the mean of the two middle samples for an even count). */
export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}

/** Rounds for display: 3 significant digits below 100, integers above. */
export function fmt(x: number, digits = 3): string {
  if (!Number.isFinite(x)) return String(x);
  return Math.abs(x) >= 100 ? Math.round(x).toString() : Number(x.toPrecision(digits)).toString();
}

/** Prints rows as an aligned table (first row = header). */
export function printTable(rows: readonly (readonly string[])[]): void {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => (r[i] ?? "").length)));
  for (const [k, r] of rows.entries()) {
    console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
    if (k === 0) console.log(widths.map((w) => "-".repeat(w)).join("  "));
  }
}

/** Prints one machine-readable headline figure. */
export function figure(bench: string, name: string, value: number, unit: string): void {
  console.log(`FIGURE ${bench}.${name} ${fmt(value, 4)} ${unit}`);
}
