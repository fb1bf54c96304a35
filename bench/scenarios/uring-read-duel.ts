/**
 * The Ring-vs-fio target's own measurement, at queue depth 1, 32 and 128. This VM's disk
 * swings by 2x from one second to the next and the machine is shared, so a 5% target cannot
 * be read off one run per side. At each depth, Ring (default setup), Ring with fio's own ring
 * setup (SINGLE_ISSUER | DEFER_TASKRUN), fio, and fio a second time (the A/A noise floor) run
 * 1 s each, interleaved (A B C D, then D C B A …) over the same file with the same flags;
 * the verdict reads the median of the paired per-round ratios against that floor. CPU per
 * read is kept beside IOPS: where the device is the limit IOPS converge, CPU still differs.
 */
import { compare, ratio as pairedRatioOf } from '../runner.js';
import { formatRatio, summarize, type Summary } from '../stats.js';
import type { BenchContext, Table } from '../scenario.js';
import { noiseFloor } from '../verdict.js';
import { BS, fioIops, ringIops, type Sample } from './uring-read-paths.js';

/** The depths the target is judged at. */
export const JUDGED_DEPTHS = [1, 32, 128] as const;

const SIDES = ['Ring', 'Ring defer', 'fio', 'fio A/A'] as const;
type Side = (typeof SIDES)[number];

/** One side's run at a depth; NaN IOPS when it could not run (fio missing). */
function runSide(side: Side, path: string, size: number, qd: number): Sample {
  const blocks = size / BS;
  if (side === 'Ring') return ringIops(path, blocks, qd, 1, false);
  if (side === 'Ring defer') return ringIops(path, blocks, qd, 1, false, true);
  return fioIops(path, size, qd, 1, false) ?? { iops: NaN, cpuUs: NaN };
}

interface DepthResult {
  qd: number;
  iops: Record<Side, Summary>;
  cpuUs: Record<Side, number>;
  ring: Summary;
  defer: Summary;
  floor?: number;
}

async function duelAt(ctx: BenchContext, path: string, size: number, qd: number, rounds: number, at: number) {
  const cpu = new Map<Side, number[]>(SIDES.map((s) => [s, []]));
  const c = await compare(
    SIDES.map((side) => ({
      name: side,
      run: (round: number) => {
        const s = runSide(side, path, size, qd);
        if (round > 0) cpu.get(side)!.push(s.cpuUs); // round 0 is the warm-up
        return Promise.resolve(s.iops);
      },
    })),
    {
      warmup: 1,
      repeats: rounds,
      onRun: (d, t, name) => ctx.progress(at + (0.25 * d) / t / 3, `QD${qd} duel: ${name}`),
    },
  );
  const med = (xs: number[]) => summarize(xs).median;
  const result: DepthResult = {
    qd,
    iops: Object.fromEntries(SIDES.map((s) => [s, c.summary[s]!])) as Record<Side, Summary>,
    cpuUs: Object.fromEntries(SIDES.map((s) => [s, med(cpu.get(s)!)])) as Record<Side, number>,
    ring: pairedRatioOf(c, 'Ring', 'fio'),
    defer: pairedRatioOf(c, 'Ring defer', 'fio'),
    floor: noiseFloor(c.samples.fio ?? [], c.samples['fio A/A'] ?? []),
  };
  return result;
}

/** Metric keys: uring-read.ring-defer-over-fio.qd<N>, .ring-over-fio.qd<N>, .floor.qd<N>, .duel.<side>.qd<N>.cpuUs. */
function metricsOf(r: DepthResult): Record<string, number> {
  if (!Number.isFinite(r.defer.median)) return {};
  const out: Record<string, number> = {
    [`uring-read.ring-over-fio.qd${r.qd}`]: r.ring.median,
    [`uring-read.ring-defer-over-fio.qd${r.qd}`]: r.defer.median,
    [`uring-read.duel.ring-defer.qd${r.qd}.cpuUs`]: r.cpuUs['Ring defer'],
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
  for (const [i, qd] of JUDGED_DEPTHS.entries())
    results.push(await duelAt(ctx, path, size, qd, rounds, at + (i * (1 - at)) / JUDGED_DEPTHS.length));
  const cpu = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '—');
  return {
    table: {
      title:
        'The target: Ring vs fio at QD 1, 32 and 128, 1 s runs interleaved (IOPS median, paired ratio with its range)',
      columns: [
        'QD',
        'Ring',
        'Ring defer',
        'fio',
        'Ring / fio',
        'Ring defer / fio',
        'fio A/A floor',
        'CPU µs/read: Ring defer',
        'fio',
      ],
      rows: results.map((r) => [
        r.qd,
        Math.round(r.iops.Ring.median),
        Math.round(r.iops['Ring defer'].median),
        Math.round(r.iops.fio.median),
        formatRatio(r.ring),
        formatRatio(r.defer),
        r.floor === undefined ? '—' : `${r.floor.toFixed(2)}x`,
        cpu(r.cpuUs['Ring defer']),
        cpu(r.cpuUs.fio),
      ]),
      note:
        `${rounds} measured rounds per depth after one warm-up, each side 1 s. "Ring defer" sets up its ring ` +
        `as fio 3.33 does (SINGLE_ISSUER | DEFER_TASKRUN); the target compares it with fio: the same ring ` +
        `setup, driven from JavaScript. fio runs with --norandommap, so both read uniformly random blocks, ` +
        `repeats allowed. The floor is the widest fio / fio A/A ratio of the rounds: a Ring / fio ratio ` +
        `that close to 0.95 reads "within noise". What separates the two paths is written up in ` +
        `docs/PERFORMANCE.md.`,
    },
    metrics: Object.assign({}, ...results.map(metricsOf)) as Record<string, number>,
  };
}
