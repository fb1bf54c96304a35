/**
 * copy: file → socket over loopback with each transfer method (read + write, mmap + write,
 * sendfile, splice with the default and with a 1 MiB pipe) at 4 KiB, 64 KiB, 1 MiB and 64 MiB
 * files, page cache warm and cold (POSIX_FADV_DONTNEED before every transfer). Reports throughput, CPU seconds per GiB and
 * context switches per GiB of the sending process (getrusage); the reader is a separate
 * process (bench/lib/tcp-sink.ts), so its work is not counted. Methods run interleaved
 * (A B C D A B C D …) and the tables give medians. Tests claims 3 and 4 (bench/claims.ts):
 * sendfile >= 2x read + write with fewer switches; mmap between the two.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { constants, sys, transferFile, type TransferMethodName } from '../../src/index.js';
import { closePipePool } from '../../src/transfer/index.js';
import { measure, round, sizeLabel, summarize, type Sample } from '../lib/measure.js';
import { Sink } from '../lib/sink-client.js';
import type { BenchContext, Chart, ClaimResult, Scenario, ScenarioResult, Table } from '../scenario.js';

/** Each method once, and splice again with a 1 MiB pipe (F_SETPIPE_SZ) beside the default 64 KiB. */
const VARIANTS: { name: string; method: TransferMethodName; pipeSize?: number }[] = [
  { name: 'readwrite', method: 'readwrite' },
  { name: 'mmap', method: 'mmap' },
  { name: 'sendfile', method: 'sendfile' },
  { name: 'splice', method: 'splice' },
  { name: 'splice 1M pipe', method: 'splice', pipeSize: 1 << 20 },
];
const METHODS = VARIANTS.map((v) => v.name);
const SIZES = [4 << 10, 64 << 10, 1 << 20, 64 << 20];
const CACHES = ['warm', 'cold'] as const;
type Cache = (typeof CACHES)[number];

interface Cell {
  size: number;
  cache: Cache;
  method: string;
  bytes: number;
  samples: Sample[];
}

function makeFile(path: string, size: number): number {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(Math.min(size, 1 << 20));
  for (let done = 0; done < size; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, size - done));
  fsyncSync(fd); // clean pages, so DONTNEED can drop them
  closeSync(fd);
  return sys.open(path, constants.O_RDONLY!);
}

/** Bytes per measured round: enough to swamp per-round overheads, less when cold. */
function roundBytes(ctx: BenchContext, size: number, cache: Cache): number {
  const target = (cache === 'warm' ? 64 : 8) << 20;
  return Math.max(size, ctx.profile === 'full' ? target * 4 : target);
}

async function oneRound(sink: Sink, fd: number, cell: Cell): Promise<Sample> {
  const count = cell.bytes / cell.size;
  const { method, pipeSize } = VARIANTS.find((v) => v.name === cell.method)!;
  const opts = pipeSize ? { method, pipeSize } : { method };
  let got = 0;
  const sample = await measure(async () => {
    const sock = sink.connect();
    for (let i = 0; i < count; i++) {
      if (cell.cache === 'cold') sys.fadvise(fd, 0, 0, constants.POSIX_FADV_DONTNEED!);
      await transferFile(sock, fd, opts);
    }
    got = await sink.finish(sock);
  });
  if (got !== cell.bytes) throw new Error(`${cell.method}: sink read ${got} of ${cell.bytes} bytes`);
  return sample;
}

function tables(cells: Cell[]): Table[] {
  const out: Table[] = [];
  for (const cache of CACHES) {
    const rows: (string | number)[][] = [];
    for (const size of SIZES) {
      const base = cells.find((c) => c.size === size && c.cache === cache && c.method === 'readwrite')!;
      const baseMbps = summarize(base.samples, base.bytes).mbps;
      for (const c of cells.filter((x) => x.size === size && x.cache === cache)) {
        const s = summarize(c.samples, c.bytes);
        rows.push([
          sizeLabel(size),
          c.method,
          round(s.mbps, 0),
          round(s.mbps / baseMbps),
          round(s.cpuPerGiB, 3),
          round(s.volPerGiB, 0),
          round(s.involPerGiB, 0),
        ]);
      }
    }
    out.push({
      title: `File → socket over loopback, page cache ${cache}`,
      columns: ['file', 'method', 'MB/s', 'x readwrite', 'CPU s/GiB', 'vol cs/GiB', 'invol cs/GiB'],
      rows,
      note:
        `Medians of interleaved rounds; each round sends many files over one connection to a reader process ` +
        `and ends when the reader has them all. CPU and context switches are the sender's (getrusage).` +
        (cache === 'cold' ? ' Cold: POSIX_FADV_DONTNEED before each file (a VM host may still cache it).' : ''),
    });
  }
  return out;
}

function charts(cells: Cell[]): Chart[] {
  return CACHES.map((cache) => ({
    title: `File → socket throughput, page cache ${cache}`,
    xLabel: 'file size (bytes)',
    yLabel: 'MB/s',
    logX: true,
    series: METHODS.map((m) => ({
      name: m,
      points: cells
        .filter((c) => c.cache === cache && c.method === m)
        .map((c) => [c.size, round(summarize(c.samples, c.bytes).mbps, 0)] as [number, number]),
    })),
  }));
}

function claims(cells: Cell[]): ClaimResult[] {
  const big = (m: string) => {
    const c = cells.find((x) => x.size === 64 << 20 && x.cache === 'warm' && x.method === m)!;
    return summarize(c.samples, c.bytes);
  };
  const [rw, mm, sf, sp] = ['readwrite', 'mmap', 'sendfile', 'splice'].map(big) as ReturnType<typeof big>[];
  const ratio = sf!.mbps / rw!.mbps;
  const fewer = sf!.volPerGiB + sf!.involPerGiB <= rw!.volPerGiB + rw!.involPerGiB;
  const mmBetween = mm!.mbps > rw!.mbps && mm!.mbps < Math.max(sf!.mbps, sp!.mbps);
  return [
    {
      id: 3,
      claim: 'Zero-copy (sendfile) is at least 2x read + write, with fewer context switches.',
      rule: '64 MiB warm: sendfile MB/s >= 2x readwrite and sendfile switches/GiB <= readwrite',
      figures: `sendfile ${round(sf!.mbps, 0)} MB/s vs readwrite ${round(rw!.mbps, 0)} (x${round(ratio)}); CPU s/GiB ${round(sf!.cpuPerGiB, 3)} vs ${round(rw!.cpuPerGiB, 3)}`,
      verdict: ratio >= 2 && fewer ? 'confirmed' : ratio > 1 ? 'depends' : 'refuted',
    },
    {
      id: 4,
      claim: 'mmap + write saves a copy over read + write, but is not the best zero-copy.',
      rule: '64 MiB warm: readwrite < mmap < max(sendfile, splice) in MB/s',
      figures: `mmap ${round(mm!.mbps, 0)} MB/s; readwrite ${round(rw!.mbps, 0)}; sendfile ${round(sf!.mbps, 0)}; splice ${round(sp!.mbps, 0)}`,
      verdict: mmBetween ? 'confirmed' : 'refuted',
    },
  ];
}

/** 'copy.<method>.<size>.<warm|cold>.MBps' (e.g. copy.sendfile.64MiB.warm.MBps), as claims.ts and targets.ts read them. */
function metricsOf(cells: Cell[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const c of cells) {
    if (c.samples.length === 0) continue;
    const key = `copy.${c.method.replace(/ /g, '-')}.${sizeLabel(c.size).replace(' ', '')}.${c.cache}.MBps`;
    m[key] = summarize(c.samples, c.bytes).mbps;
  }
  return m;
}

export const copy: Scenario = {
  name: 'copy',
  title: 'File → socket: read + write, mmap, sendfile, splice',
  description:
    'Sends files of 4 KiB to 64 MiB over loopback with each transfer method, page cache warm and cold, and ' +
    'reports throughput, CPU seconds per GiB and context switches of the sender (claims 3 and 4).',
  estimate: { quick: 30, full: 240 },
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const reps = ctx.profile === 'full' ? 9 : 5;
    const sink = await Sink.start();
    const fds = new Map(SIZES.map((s) => [s, makeFile(join(ctx.tmpDir, `copy-${s}`), s)]));
    const cells: Cell[] = [];
    for (const size of SIZES)
      for (const cache of CACHES)
        for (const method of METHODS)
          cells.push({ size, cache, method, bytes: roundBytes(ctx, size, cache), samples: [] });
    try {
      const groups = SIZES.flatMap((size) => CACHES.map((cache) => ({ size, cache })));
      let done = 0;
      for (const g of groups) {
        const mine = cells.filter((c) => c.size === g.size && c.cache === g.cache);
        ctx.progress(done / groups.length, `${sizeLabel(g.size)} ${g.cache}`);
        for (const c of mine) await oneRound(sink, fds.get(g.size)!, { ...c, samples: [] }); // warm-up
        for (let r = 0; r < reps; r++) for (const c of mine) c.samples.push(await oneRound(sink, fds.get(g.size)!, c));
        done++;
      }
    } finally {
      sink.stop();
      for (const fd of fds.values()) sys.close(fd);
      closePipePool();
    }
    return {
      tables: tables(cells),
      charts: charts(cells),
      claims: claims(cells),
      data: cells,
      metrics: metricsOf(cells),
    };
  },
};
