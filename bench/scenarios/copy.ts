/**
 * copy: file → socket over loopback with each transfer method (read + write, mmap + write
 * three ways, sendfile, splice with the default and with a 1 MiB pipe) at 4 KiB, 64 KiB,
 * 1 MiB and 64 MiB files, page cache warm and cold (POSIX_FADV_DONTNEED before every
 * transfer). mmap runs with a mapping per transfer (faulted a page at a time), with
 * MAP_POPULATE, and with a reused mapping (`mmap: { reuse: true }`: mapped once, sent from
 * again — warm only, since DONTNEED cannot drop pages a live mapping holds). A cold round
 * sends a file of its own each time (coldFiles): DONTNEED cannot drop the pages a socket
 * still holds from an earlier sendfile or splice either. read + write
 * runs twice, as A and A′: their spread in each round is the scenario's A/A noise floor.
 * Reports throughput, CPU seconds per GiB and context switches per GiB of the sending
 * process (getrusage); the reader is a separate process (bench/lib/tcp-sink.ts), so its
 * work is not counted. Variants run interleaved (A B C D A B C D …) and the tables give
 * medians. Tests claims 3 and 4 (bench/claims.ts decides them from `metrics`).
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { constants, sys, transferFile, type TransferMethodName } from '../../src/index.js';
import { closeMmapCache, closePipePool, type MmapTransferOptions } from '../../src/transfer/index.js';
import { formatFloor, noiseFloor } from '../verdict.js';
import { measure, round, sizeLabel, summarize, type Sample } from '../lib/measure.js';
import { Sink } from '../lib/sink-client.js';
import type { BenchContext, Chart, Scenario, ScenarioResult, Table } from '../scenario.js';

interface Variant {
  name: string;
  method: TransferMethodName;
  pipeSize?: number;
  mmap?: MmapTransferOptions;
  /** Not run with a cold cache (a reused mapping keeps its pages cached). */
  warmOnly?: boolean;
}

/**
 * Each method once; read + write again as the A/A pair; mmap with MAP_POPULATE and with a
 * reused mapping beside the per-transfer one; splice with a 1 MiB pipe (F_SETPIPE_SZ) too.
 */
const VARIANTS: Variant[] = [
  { name: 'readwrite', method: 'readwrite' },
  { name: 'readwrite again', method: 'readwrite' },
  { name: 'mmap', method: 'mmap' },
  { name: 'mmap populate', method: 'mmap', mmap: { populate: true } },
  { name: 'mmap reuse', method: 'mmap', mmap: { reuse: true }, warmOnly: true },
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

/**
 * `count` files of `size` bytes (in `copy-cold-<size>` under `dir`), opened: a cold round sends
 * each once. DONTNEED cannot drop a page the socket still holds (sendfile and splice queue
 * the page cache's own pages until the reader has read them), so a round that sent one file
 * again and again would find it still cached from the transfer before: the cold cells would
 * be partly warm for exactly the zero-copy methods.
 */
export function coldFiles(dir: string, size: number, count: number): number[] {
  mkdirSync(coldDir(dir, size), { recursive: true });
  return Array.from({ length: count }, (_, i) => makeFile(join(coldDir(dir, size), `${i}`), size));
}

/** Where coldFiles puts the files of a size (removed once its rounds are done). */
const coldDir = (dir: string, size: number) => join(dir, `copy-cold-${size}`);

/**
 * The files a group's rounds send from: warm, the one file (`warmFd`) again and again; cold,
 * a file of its own per transfer of a round (coldFiles), closed by the caller.
 */
export function roundFiles(dir: string, size: number, cache: Cache, bytes: number, warmFd: number): number[] {
  return cache === 'warm' ? [warmFd] : coldFiles(dir, size, bytes / size);
}

/** What oneRound needs of the sink: a connection, and the bytes it read once closed. */
export type SinkLike = Pick<Sink, 'send'>;

/**
 * One measured round: `cell.bytes / cell.size` transfers over one connection, transfer i
 * from `fds[i % fds.length]` — warm: one file again and again; cold: a file of its own
 * (coldFiles), its pages dropped right before it (`afterDrop` is called then, for the
 * tests), every one received before the round ends.
 */
export async function oneRound(
  sink: SinkLike,
  fds: readonly number[],
  cell: Pick<Cell, 'size' | 'cache' | 'method' | 'bytes'>,
  afterDrop?: (fd: number) => void,
): Promise<Sample> {
  const count = cell.bytes / cell.size;
  const { method, pipeSize, mmap } = VARIANTS.find((v) => v.name === cell.method)!;
  const opts = { method, ...(pipeSize ? { pipeSize } : {}), ...(mmap ? { mmap } : {}) };
  let got = 0;
  const sample = await measure(async () => {
    got = await sink.send(async (sock) => {
      for (let i = 0; i < count; i++) {
        const fd = fds[i % fds.length]!;
        if (cell.cache === 'cold') {
          sys.fadvise(fd, 0, 0, constants.POSIX_FADV_DONTNEED!);
          afterDrop?.(fd);
        }
        await transferFile(sock, fd, opts);
      }
    });
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
    const floors = SIZES.map(
      (size) =>
        `${sizeLabel(size)} MB/s ${formatFloor(floorOf(cells, size, cache))}, CPU ${formatFloor(floorOf(cells, size, cache, 'cpuPerGiB'))}`,
    ).join('; ');
    out.push({
      title: `File → socket over loopback, page cache ${cache}`,
      columns: ['file', 'method', 'MB/s', 'x readwrite', 'CPU s/GiB', 'vol cs/GiB', 'invol cs/GiB'],
      rows,
      note:
        `Medians of interleaved rounds; each round sends many files over one connection to a reader process ` +
        `and ends when the reader has them all. CPU and context switches are the sender's (getrusage). ` +
        `"mmap" maps per file, "mmap populate" with MAP_POPULATE, "mmap reuse" sends from one cached mapping. ` +
        `Read + write measured twice (A/A, round by round): ${floors}; a ratio inside it is noise.` +
        (cache === 'cold'
          ? ' Cold: each file of a round a file of its own, POSIX_FADV_DONTNEED right before it is sent (a VM host may still cache it): DONTNEED cannot drop the pages a socket still holds from a sendfile or splice of the same file. No "mmap reuse", whose live mapping keeps the pages cached.'
          : ''),
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
    series: METHODS.filter((m) => m !== 'readwrite again')
      .map((m) => ({
        name: m,
        points: cells
          .filter((c) => c.cache === cache && c.method === m)
          .map((c) => [c.size, round(summarize(c.samples, c.bytes).mbps, 0)] as [number, number]),
      }))
      .filter((series) => series.points.length > 0),
  }));
}

const cellKey = (size: number, cache: Cache) => `${sizeLabel(size).replace(' ', '')}.${cache}`;

type Figure = 'mbps' | 'cpuPerGiB';
const perSample: Record<Figure, (s: Sample, bytes: number) => number> = {
  mbps: (s, bytes) => bytes / s.seconds / 1e6,
  cpuPerGiB: (s, bytes) => s.cpuSeconds / (bytes / 2 ** 30),
};

/** The A/A floor of one size and cache state: read + write against itself, round by round. */
function floorOf(cells: Cell[], size: number, cache: Cache, figure: Figure = 'mbps'): number | undefined {
  const of = (name: string) => {
    const c = cells.find((x) => x.size === size && x.cache === cache && x.method === name);
    return (c?.samples ?? []).map((s) => perSample[figure](s, c!.bytes));
  };
  return noiseFloor(of('readwrite'), of('readwrite again'));
}

/**
 * 'copy.<variant>.<size>.<warm|cold>.MBps' and '….cpuPerGiB' (e.g. copy.sendfile.64MiB.warm.MBps,
 * copy.mmap-reuse.1MiB.warm.cpuPerGiB), and the A/A floors 'copy.floor.<size>.<cache>' (MB/s),
 * 'copy.floor-cpu.<size>.<cache>' (CPU per GiB) and 'copy.floor' (the widest MB/s one), as claims.ts reads them.
 */
function metricsOf(cells: Cell[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const c of cells) {
    if (c.samples.length === 0) continue;
    const s = summarize(c.samples, c.bytes);
    const key = `copy.${c.method.replace(/ /g, '-')}.${cellKey(c.size, c.cache)}`;
    m[`${key}.MBps`] = s.mbps;
    m[`${key}.cpuPerGiB`] = s.cpuPerGiB;
  }
  for (const size of SIZES)
    for (const cache of CACHES) {
      const f = floorOf(cells, size, cache);
      const fc = floorOf(cells, size, cache, 'cpuPerGiB');
      if (fc !== undefined) m[`copy.floor-cpu.${cellKey(size, cache)}`] = fc;
      if (f === undefined) continue;
      m[`copy.floor.${cellKey(size, cache)}`] = f;
      m['copy.floor'] = Math.max(m['copy.floor'] ?? 1, f);
    }
  return m;
}

export const copy: Scenario = {
  name: 'copy',
  title: 'File → socket: read + write, mmap (per transfer, populated, reused), sendfile, splice',
  description:
    'Sends files of 4 KiB to 64 MiB over loopback with each transfer method, page cache warm and cold, and ' +
    'reports throughput, CPU seconds per GiB and context switches of the sender, with an A/A floor (claims 3 and 4).',
  estimate: { quick: 75, full: 480 },
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const reps = ctx.profile === 'full' ? 9 : 5;
    const sink = await Sink.start();
    const fds = new Map(SIZES.map((s) => [s, makeFile(join(ctx.tmpDir, `copy-${s}`), s)]));
    const cells: Cell[] = [];
    for (const size of SIZES)
      for (const cache of CACHES)
        for (const method of METHODS.filter((n) => cache === 'warm' || !VARIANTS.find((v) => v.name === n)!.warmOnly))
          cells.push({ size, cache, method, bytes: roundBytes(ctx, size, cache), samples: [] });
    try {
      const groups = SIZES.flatMap((size) => CACHES.map((cache) => ({ size, cache })));
      let done = 0;
      for (const g of groups) {
        const mine = cells.filter((c) => c.size === g.size && c.cache === g.cache);
        ctx.progress(done / groups.length, `${sizeLabel(g.size)} ${g.cache}`);
        // cold: a file per transfer of a round, so that none is still held by the socket when dropped
        const files = roundFiles(ctx.tmpDir, g.size, g.cache, roundBytes(ctx, g.size, g.cache), fds.get(g.size)!);
        try {
          for (const c of mine) await oneRound(sink, files, c); // warm-up
          for (let r = 0; r < reps; r++) for (const c of mine) c.samples.push(await oneRound(sink, files, c));
        } finally {
          if (g.cache === 'cold') {
            for (const fd of files) sys.close(fd);
            rmSync(coldDir(ctx.tmpDir, g.size), { recursive: true, force: true });
          }
        }
        closeMmapCache(); // a reused mapping lives for its size's rounds only
        done++;
      }
    } finally {
      closeMmapCache();
      sink.stop();
      for (const fd of fds.values()) sys.close(fd);
      closePipePool();
    }
    return {
      tables: tables(cells),
      charts: charts(cells),
      data: cells,
      metrics: metricsOf(cells),
    };
  },
};
