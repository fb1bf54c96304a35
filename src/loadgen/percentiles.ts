/**
 * Percentiles and the HDR-style percentile table of a load generator run, computed from the
 * histogram the native side returns: its non-empty log-linear buckets as (value ns, count)
 * pairs. The table follows HdrHistogram's percentile distribution (as wrk2 prints it): the
 * percentile levels close in on 100% by halving the distance to it, `ticksPerHalf` rows
 * per halving, each row giving the value, the level, the cumulative count of samples at or
 * below it and 1/(1-level); levels finer than the sample count can resolve are not printed.
 */
import * as v from '../sys/validate.js';

export interface HdrRow {
  /** Latency in microseconds at this level. */
  valueUs: number;
  /** The level, 0..1. */
  percentile: number;
  /** Samples at or below `valueUs`. */
  totalCount: number;
  /** 1 / (1 - percentile): Infinity for the last row. */
  inverse: number;
}

function total(hist: Float64Array): number {
  if (!(hist instanceof Float64Array)) throw v.typeError('histogram', 'an instance of Float64Array', hist);
  let n = 0;
  for (let i = 1; i < hist.length; i += 2) n += hist[i]!;
  return n;
}

/** The bucket holding the sample of rank `ceil(q * count)`: its value (µs) and cumulative count. */
function at(hist: Float64Array, q: number, count: number): { valueUs: number; totalCount: number } {
  const rank = Math.max(1, Math.ceil(q * count - 1e-9));
  let seen = 0;
  for (let i = 0; i < hist.length; i += 2) {
    seen += hist[i + 1]!;
    if (seen >= rank) return { valueUs: hist[i]! / 1000, totalCount: seen };
  }
  return { valueUs: hist.length ? hist[hist.length - 2]! / 1000 : 0, totalCount: seen };
}

/** The latency in microseconds at quantile `q` (0..1); 0 for an empty histogram. */
export function percentile(hist: Float64Array, q: number): number {
  const count = total(hist);
  v.num('q', q, 0, 1);
  return count === 0 ? 0 : at(hist, q, count).valueUs;
}

/** The percentile distribution rows, from 0% to 100%. */
export function hdrTable(hist: Float64Array, ticksPerHalf = 5): HdrRow[] {
  const count = total(hist);
  // The rows grow as ticksPerHalf: 0 or a negative would never reach 100%, a fraction or a
  // huge count would take forever.
  v.int('ticksPerHalf', ticksPerHalf, 1, 1000);
  if (count === 0) return [];
  const rows: HdrRow[] = [];
  const row = (level: number) => {
    const p = Math.min(level, 100) / 100;
    rows.push({ ...at(hist, p, count), percentile: p, inverse: p >= 1 ? Infinity : 1 / (1 - p) });
  };
  for (let level = 0; level < 100;) {
    row(level);
    // Past the level the samples can resolve, only 100% is left to say.
    const halvings = Math.floor(Math.log2(100 / (100 - level))) + 1;
    level += 100 / (ticksPerHalf * 2 ** halvings);
    if (100 / (100 - level) > count) break;
  }
  row(100);
  return rows;
}

const LEVELS: [string, number][] = [
  ['50.000%', 0.5],
  ['75.000%', 0.75],
  ['90.000%', 0.9],
  ['99.000%', 0.99],
  ['99.900%', 0.999],
  ['99.990%', 0.9999],
  ['99.999%', 0.99999],
  ['100.000%', 1],
];

/** The summary levels (p50 … p99.999, max) and the full distribution, as wrk2 prints them. */
export function formatHdrTable(hist: Float64Array, meanUs: number): string {
  const count = total(hist);
  if (typeof meanUs !== 'number') throw v.typeError('meanUs', 'of type number', meanUs);
  const ms = (us: number) => `${(us / 1000).toFixed(3)}ms`;
  const lines = ['  Latency Distribution (HdrHistogram - Recorded Latency)'];
  for (const [name, q] of LEVELS) lines.push(`${name.padStart(9)}  ${ms(percentile(hist, q)).padStart(10)}`);
  lines.push('', '  Detailed Percentile spectrum:', '       Value   Percentile   TotalCount 1/(1-Percentile)', '');
  for (const r of hdrTable(hist)) {
    const inv = Number.isFinite(r.inverse) ? r.inverse.toFixed(2).padStart(14) : '';
    lines.push(
      `${(r.valueUs / 1000).toFixed(3).padStart(12)} ${r.percentile.toFixed(6).padStart(12)} ${String(r.totalCount).padStart(12)} ${inv}`,
    );
  }
  const max = count ? hist[hist.length - 2]! / 1000 : 0;
  lines.push(
    `#[Mean    = ${(meanUs / 1000).toFixed(3).padStart(12)}, Max         = ${(max / 1000).toFixed(3).padStart(12)}]`,
    `#[Total count    = ${String(count).padStart(12)}]  (values in milliseconds)`,
  );
  return lines.join('\n');
}
