/**
 * uring-read: 4 KiB random reads with O_DIRECT at queue depth 1, 8, 32 and 128 — rawio's Ring
 * (plain buffers and registered buffers, through the batch API), synchronous pread, Node's
 * `fs.promises` read with that many reads outstanding, and fio's io_uring engine with the same
 * block size and depth when fio is installed. The page cache is out of the picture (O_DIRECT),
 * so this measures how close each path gets to the device. Quick profile: a 256 MiB file and
 * short runs; full: 1 GiB. The Ring-vs-fio target is judged by a paired duel of its own at
 * QD 1, 32 and 128 (uring-read-duel.ts); the read paths themselves are in uring-read-paths.ts.
 */
import { join } from 'node:path';
import type { BenchContext, Chart, Scenario, ScenarioResult } from '../scenario.js';
import { median } from '../stats.js';
import { duel, JUDGED_DEPTHS } from './uring-read-duel.js';
import { which } from '../tools.js';
import { BS, fioIops, fsPromisesIops, makeFile, preadIops, ringIops, type Sample } from './uring-read-paths.js';

const DEPTHS = [1, 8, 32, 128];

/** 'uring-read.<method>.qd<N>.iops' / '.cpuUs' (the target itself is judged from uring-read-duel.ts). */
function metrics(iops: Map<string, number[]>, cpu: Map<string, number[]>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, values] of iops) {
    const key = name
      .toLowerCase()
      .replace(/[^a-z]+/g, '-')
      .replace(/-fixedbufs$/, '-fixed');
    DEPTHS.forEach((qd, i) => {
      if (Number.isFinite(values[i])) out[`uring-read.${key}.qd${qd}.iops`] = values[i]!;
      const c = cpu.get(name)?.[i];
      if (c !== undefined && Number.isFinite(c)) out[`uring-read.${key}.qd${qd}.cpuUs`] = c;
    });
  }
  return out;
}

async function run(ctx: BenchContext): Promise<ScenarioResult> {
  const full = ctx.profile === 'full';
  const size = (full ? 1024 : 256) << 20;
  const seconds = full ? 2 : 0.5;
  const reps = full ? 3 : 2;
  const path = join(ctx.tmpDir, 'uring-read.dat');
  ctx.progress(0, 'writing the test file');
  makeFile(path, size);
  const blocks = size / BS;
  const probe = fioIops(path, size, 1, 0.1, false);
  const hasFio = !('error' in probe);
  const fioMissing = 'error' in probe && which('fio') === null;
  if (fioMissing) ctx.log('fio not installed: its column is empty');
  // installed but failing: the reason it gave, never "not installed"
  else if ('error' in probe) ctx.log(`fio failed: ${probe.error}; its columns are empty`);
  const fioFailures = new Set<string>();
  const fio = (qd: number, fixed: boolean): Sample | undefined => {
    if (!hasFio) return undefined;
    const r = fioIops(path, size, qd, Math.max(1, Math.round(seconds)), fixed);
    if (!('error' in r)) return r;
    fioFailures.add(`fio${fixed ? ' fixedbufs' : ''} QD${qd}: ${r.error}`);
    return undefined;
  };
  const methods: [string, (qd: number) => Promise<Sample | undefined> | Sample | undefined][] = [
    ['Ring', (qd) => ringIops(path, blocks, qd, seconds, false)],
    ['Ring fixed', (qd) => ringIops(path, blocks, qd, seconds, true)],
    ['Ring defer', (qd) => ringIops(path, blocks, qd, seconds, false, true)],
    ['pread', () => preadIops(path, blocks, seconds)],
    ['fs.promises', (qd) => fsPromisesIops(path, blocks, qd, seconds)],
    ['fio', (qd) => fio(qd, false)],
    ['fio fixedbufs', (qd) => fio(qd, true)],
  ];
  const iops = new Map<string, number[]>(); // method → IOPS per depth
  const cpu = new Map<string, number[]>(); // method → CPU µs per read, per depth
  let step = 0;
  for (const qd of DEPTHS) {
    const samples = new Map<string, Sample[]>();
    for (let r = 0; r < reps; r++) {
      for (const [name, fn] of methods) {
        ctx.progress((0.5 * step++) / (DEPTHS.length * reps * methods.length), `${name} QD${qd}`);
        const v = await fn(qd); // interleaved: A B C … A B C …
        if (v !== undefined) samples.set(name, [...(samples.get(name) ?? []), v]);
      }
    }
    for (const [name] of methods) {
      const got = samples.get(name) ?? [];
      iops.set(name, [...(iops.get(name) ?? []), got.length ? median(got.map((x) => x.iops)) : NaN]);
      cpu.set(name, [...(cpu.get(name) ?? []), got.length ? median(got.map((x) => x.cpuUs)) : NaN]);
    }
  }
  for (const f of fioFailures) ctx.log(f);
  const judged = hasFio ? await duel(ctx, path, size, full ? 9 : 5, 0.5) : undefined;
  const fmtCpu = (x: number) => (Number.isFinite(x) ? x.toFixed(1) : '—');
  const fmt = (x: number) => (Number.isFinite(x) ? Math.round(x) : '—');
  const ratio = (a: number, b: number) =>
    Number.isFinite(a) && Number.isFinite(b) && b > 0 ? (a / b).toFixed(2) : '—';
  const col = (name: string) => iops.get(name)!;
  const rows = DEPTHS.map((qd, i) => [
    qd,
    ...methods.map(([name]) => fmt(col(name)[i]!)),
    ratio(col('Ring')[i]!, col('fio')[i]!),
    ratio(col('Ring defer')[i]!, col('fio')[i]!),
    ratio(col('Ring fixed')[i]!, col('fio fixedbufs')[i]!),
    ratio(col('Ring')[i]!, col('fs.promises')[i]!),
  ]);
  const chart: Chart = {
    title: '4 KiB O_DIRECT random reads: IOPS vs queue depth',
    xLabel: 'queue depth',
    yLabel: 'IOPS',
    logX: true,
    series: methods
      .filter(([name]) => col(name).some(Number.isFinite))
      .map(([name]) => ({ name, points: DEPTHS.map((qd, i) => [qd, col(name)[i]!] as [number, number]) })),
  };
  return {
    tables: [
      {
        title: '4 KiB O_DIRECT random reads (IOPS, median of interleaved runs)',
        columns: ['QD', ...methods.map(([n]) => n), 'Ring/fio', 'defer/fio', 'fixed/fio fixed', 'Ring/fs.promises'],
        rows,
        note:
          `${size >> 20} MiB file, ${seconds} s per run, ${reps} interleaved runs per cell. pread is synchronous (QD 1 ` +
          `whatever the row); fs.promises keeps QD reads outstanding on libuv's thread pool ` +
          `(UV_THREADPOOL_SIZE=${process.env.UV_THREADPOOL_SIZE ?? 4}); its reads still queued when the window ` +
          `closes are counted, and so is the time they take: every local path's IOPS is its reads over the ` +
          `seconds from the first submit to the last read counted, as fio's are over its job's runtime. fio (3.33) sets up its ring with ` +
          `SINGLE_ISSUER | DEFER_TASKRUN, as "Ring defer" does; "Ring" is the default ring (completions posted ` +
          `by the kernel as they happen, which attach mode needs). Each Ring batch is one io_uring_enter. The target (Ring >= 0.95x fio at QD ${JUDGED_DEPTHS.join(', ')}) is judged from the paired table below, not from this grid.`,
      },
      {
        title: 'CPU per read (µs, user + system, all threads; fio from its usr_cpu/sys_cpu)',
        columns: ['QD', ...methods.map(([n]) => n)],
        rows: DEPTHS.map((qd, i) => [qd, ...methods.map(([name]) => fmtCpu(cpu.get(name)![i]!))]),
        note: 'Where the device is the bottleneck, IOPS converge; CPU per read still tells the paths apart.',
      },
      ...(judged ? [judged.table] : []),
    ],
    charts: [chart],
    data: { size, seconds, reps, depths: DEPTHS, iops: Object.fromEntries(iops), cpuUs: Object.fromEntries(cpu) },
    // no fio, or a fio that failed: the flags targets.ts names as the reason its targets are not measured
    metrics: {
      ...metrics(iops, cpu),
      ...judged?.metrics,
      ...(fioMissing ? { 'uring-read.no-fio': 1 } : hasFio ? {} : { 'uring-read.fio-failed': 1 }),
    },
  };
}

export const uringRead: Scenario = {
  name: 'uring-read',
  title: 'io_uring: 4 KiB O_DIRECT random reads vs pread, fs.promises and fio',
  description:
    'Random 4 KiB O_DIRECT reads at queue depth 1-128 through rawio’s Ring (plain and registered buffers), ' +
    'synchronous pread, fs.promises and fio --ioengine=io_uring: how close a JavaScript proactor gets to the device.',
  estimate: { quick: 130, full: 400 },
  run,
};
