/**
 * The Ring-vs-fio target's own measurement, at queue depth 1, 32 and 128. This VM's disk
 * swings by 2x from one second to the next and the machine is shared, so a 5% target cannot
 * be read off one run per side. At each depth, Ring (default setup, batched submits), Ring
 * as fio (fio's ring setup, SINGLE_ISSUER | DEFER_TASKRUN, and its one-read-per-enter submit
 * pattern), fio, and fio a second time (the A/A noise floor) run
 * 1 s each, interleaved (A B C D, then D C B A …) over the same file with the same flags;
 * the verdict reads the median of the paired per-round ratios against that floor. CPU per
 * read is kept beside IOPS: where the device is the limit IOPS converge, CPU still differs.
 */
import { compare, ratio as pairedRatioOf } from '../runner.js';
import { formatRatio, summarize, type Summary } from '../stats.js';
import type { BenchContext, Table } from '../scenario.js';
import { noiseFloor } from '../verdict.js';
import { RING_VS_FIO_MIN } from '../targets.js';
import { BS, fioIops, ringIops, type Sample } from './uring-read-paths.js';

/** The depths the target is judged at. */
export const JUDGED_DEPTHS = [1, 32, 128] as const;

const SIDES = ['Ring', 'Ring as fio', 'fio', 'fio A/A'] as const;
type Side = (typeof SIDES)[number];

/**
 * One side's run at a depth; NaN IOPS when fio measured nothing (not installed, exited
 * non-zero, its job failed), the reason handed to `failed` — the rounds stay paired and the
 * medians leave it out.
 */
function runSide(side: Side, path: string, size: number, qd: number, failed: (why: string) => void): Sample {
  const blocks = size / BS;
  if (side === 'Ring') return ringIops(path, blocks, qd, 1, false);
  if (side === 'Ring as fio') return ringIops(path, blocks, qd, 1, false, true, true);
  const r = fioIops(path, size, qd, 1, false);
  if (!('error' in r)) return r;
  failed(r.error);
  return { iops: NaN, cpuUs: NaN };
}

export interface DepthResult {
  qd: number;
  iops: Record<Side, Summary>;
  cpuUs: Record<Side, number>;
  ring: Summary;
  asFio: Summary;
  floor?: number;
  /** Whether fio measured nothing in some of its runs (their reasons are in the log). */
  fioFailed: boolean;
}

/**
 * Where the progress bar stands in the duel that starts at `at` (0..1), at depth `depth`
 * (an index into JUDGED_DEPTHS) after `done` of its `total` runs: the depths share what is
 * left of the bar equally, each filling its own share.
 */
export function duelProgress(at: number, depth: number, done: number, total: number): number {
  const share = (1 - at) / JUDGED_DEPTHS.length;
  return at + share * (depth + done / total);
}

async function duelAt(
  ctx: BenchContext,
  path: string,
  size: number,
  qd: number,
  rounds: number,
  at: number,
  depth: number,
) {
  const cpu = new Map<Side, number[]>(SIDES.map((s) => [s, []]));
  const failures = new Set<string>();
  const c = await compare(
    SIDES.map((side) => ({
      name: side,
      run: (round: number) => {
        const s = runSide(side, path, size, qd, (why) => failures.add(`QD${qd} ${side}: ${why}`));
        if (round > 0) cpu.get(side)!.push(s.cpuUs); // round 0 is the warm-up
        return Promise.resolve(s.iops);
      },
    })),
    {
      warmup: 1,
      repeats: rounds,
      onRun: (d, t, name) => ctx.progress(duelProgress(at, depth, d, t), `QD${qd} duel: ${name}`),
    },
  );
  for (const f of failures) ctx.log(f);
  const med = (xs: number[]) => summarize(xs).median;
  const result: DepthResult = {
    qd,
    iops: Object.fromEntries(SIDES.map((s) => [s, c.summary[s]!])) as Record<Side, Summary>,
    cpuUs: Object.fromEntries(SIDES.map((s) => [s, med(cpu.get(s)!)])) as Record<Side, number>,
    ring: pairedRatioOf(c, 'Ring', 'fio'),
    asFio: pairedRatioOf(c, 'Ring as fio', 'fio'),
    floor: noiseFloor(c.samples.fio ?? [], c.samples['fio A/A'] ?? []),
    fioFailed: failures.size > 0,
  };
  return result;
}

/** Metric keys: uring-read.ring-as-fio-over-fio.qd<N>, .ring-over-fio.qd<N>, .floor.qd<N>, .duel.<side>.qd<N>.cpuUs. */
function metricsOf(r: DepthResult): Record<string, number> {
  // no paired ratio: where fio failed, the flag targets.ts names as the reason (the log has fio's words)
  if (!Number.isFinite(r.asFio.median)) return r.fioFailed ? { [`uring-read.fio-failed.qd${r.qd}`]: 1 } : {};
  const out: Record<string, number> = {
    [`uring-read.ring-over-fio.qd${r.qd}`]: r.ring.median,
    [`uring-read.ring-as-fio-over-fio.qd${r.qd}`]: r.asFio.median,
    [`uring-read.duel.ring-as-fio.qd${r.qd}.cpuUs`]: r.cpuUs['Ring as fio'],
    [`uring-read.duel.fio.qd${r.qd}.cpuUs`]: r.cpuUs.fio,
  };
  if (r.floor !== undefined) out[`uring-read.floor.qd${r.qd}`] = r.floor;
  return out;
}

/** Runs the duel at every judged depth; `at` is where the progress bar stands when it starts. */
export async function duel(
  ctx: BenchContext,
  path: string,
  size: number,
  rounds: number,
  at: number,
): Promise<{ table: Table; metrics: Record<string, number> }> {
  const results: DepthResult[] = [];
  for (const [i, qd] of JUDGED_DEPTHS.entries()) results.push(await duelAt(ctx, path, size, qd, rounds, at, i));
  return duelReport(results, rounds);
}

/** The duel's table and metrics from its depths' results. */
export function duelReport(
  results: readonly DepthResult[],
  rounds: number,
): { table: Table; metrics: Record<string, number> } {
  const cpu = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '—');
  const iops = (x: number) => (Number.isFinite(x) ? Math.round(x) : '—');
  return {
    table: {
      title:
        'The target: Ring vs fio at QD 1, 32 and 128, 1 s runs interleaved (IOPS median, paired ratio with its range)',
      columns: [
        'QD',
        'Ring',
        'Ring as fio',
        'fio',
        'Ring / fio',
        'Ring as fio / fio',
        'fio A/A floor',
        'CPU µs/read: Ring as fio',
        'fio',
      ],
      rows: results.map((r) => [
        r.qd,
        iops(r.iops.Ring.median),
        iops(r.iops['Ring as fio'].median),
        iops(r.iops.fio.median),
        formatRatio(r.ring),
        formatRatio(r.asFio, [RING_VS_FIO_MIN]), // the target's ratio: digits that tell it from its bound
        r.floor === undefined ? '—' : `${r.floor.toFixed(2)}x`,
        cpu(r.cpuUs['Ring as fio']),
        cpu(r.cpuUs.fio),
      ]),
      note:
        `${rounds} measured rounds per depth after one warm-up, each side 1 s. "Ring" submits every ` +
        `re-prepared read in the enter that waits; "Ring as fio" sets up its ring as fio 3.33 does ` +
        `(SINGLE_ISSUER | DEFER_TASKRUN) and submits each read as soon as it is re-prepared, as fio's ` +
        `iodepth_batch_submit=1 does (the ring's submitEach option: prep and enter in one call). The target compares it with fio: the same ring setup and submit ` +
        `pattern, driven from JavaScript. fio runs with --norandommap, so both read uniformly random blocks, ` +
        `repeats allowed. The floor is the widest fio / fio A/A ratio of the rounds: a Ring / fio ratio ` +
        `that close to ${RING_VS_FIO_MIN} reads "within noise". What separates the two paths is written up in ` +
        `docs/PERFORMANCE.md.`,
    },
    metrics: Object.assign({}, ...results.map(metricsOf)) as Record<string, number>,
  };
}
