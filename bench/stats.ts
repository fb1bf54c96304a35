/**
 * The small statistics the runner reports: medians, quartiles and ratios with their spread.
 * Benchmarks on a shared machine are noisy; a median with its min/max and IQR says how
 * much to trust it, and a ratio of paired (interleaved) samples cancels slow drift.
 */

export interface Summary {
  n: number;
  median: number;
  min: number;
  max: number;
  q1: number;
  q3: number;
}

/** The q-quantile (0..1) of sorted values, linearly interpolated. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return NaN;
  const pos = (sorted.length - 1) * q;
  const lo = Math.floor(pos);
  const hi = Math.ceil(pos);
  return sorted[lo]! + (sorted[hi]! - sorted[lo]!) * (pos - lo);
}

/**
 * Median, quartiles and range of the finite values (a failed run recorded as NaN is left
 * out, and `n` says how many counted): a NaN inside a sort makes its order, and so the
 * median, arbitrary.
 */
export function summarize(values: readonly number[]): Summary {
  const s = values.filter(Number.isFinite).sort((a, b) => a - b);
  return {
    n: s.length,
    median: quantile(s, 0.5),
    min: s[0] ?? NaN,
    max: s[s.length - 1] ?? NaN,
    q1: quantile(s, 0.25),
    q3: quantile(s, 0.75),
  };
}

/** The median of the finite values, the middle two averaged for an even count; NaN when none. */
export function median(values: readonly number[]): number {
  return summarize(values).median;
}

/**
 * a / b per pair (same round), summarized: the spread of a ratio measured side by side.
 * A round where either side is not a finite number, or b is not positive, is skipped.
 */
export function pairedRatio(a: readonly number[], b: readonly number[]): Summary {
  const n = Math.min(a.length, b.length);
  const r: number[] = [];
  for (let i = 0; i < n; i++) if (Number.isFinite(a[i]) && Number.isFinite(b[i]) && b[i]! > 0) r.push(a[i]! / b[i]!);
  return summarize(r);
}

/** Two decimals, or as many as show two significant digits of a small ratio (0.004: "0.0040", never "0.00"). */
function leastDigits(x: number): number {
  const a = Math.abs(x);
  return a > 0 && a < 0.1 && Number.isFinite(a) ? Math.min(20, 1 - Math.floor(Math.log10(a))) : 2;
}

/**
 * The digits (at least two, or two significant ones of a small ratio; at most 20) that print
 * x apart from each bound it is not equal to: 1.0996 against 1.1 takes 4 ("1.0996", not a
 * "1.10" that reads as the bound), and 0.004 takes 4 ("0.0040", not a "0.00" that reads as
 * nothing measured).
 */
export function digitsApart(x: number, bounds: readonly number[], least = leastDigits(x)): number {
  let digits = least;
  const blurs = (d: number) => bounds.some((b) => x !== b && Number(x.toFixed(d)) === b);
  // toFixed(20) tells apart any two doubles of a ratio's size
  while (digits < 20 && blurs(digits)) digits++;
  return digits;
}

/**
 * "1.23x (1.10–1.30)": a ratio with its min–max. `bounds`: the bounds a target reads this
 * ratio against, so that its median prints with the digits that tell it from them — the
 * table never shows "0.95x" where the target says 0.9496x missed 0.95.
 */
export function formatRatio(s: Summary, bounds: readonly number[] = []): string {
  if (!Number.isFinite(s.median)) return 'n/a';
  return `${s.median.toFixed(digitsApart(s.median, bounds))}x (${s.min.toFixed(2)}–${s.max.toFixed(2)})`;
}

/** A number for a table: thousands separated, sensible digits. */
export function fmt(x: number, digits = 0): string {
  if (!Number.isFinite(x)) return 'n/a';
  return x.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits });
}
