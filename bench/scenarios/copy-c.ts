/**
 * copy-c: rawio's `transferFile` against the same syscalls driven from C (bench/c/transfer.c),
 * for readwrite, mmap, sendfile and splice at 1 MiB and 64 MiB files, page cache warm — the
 * target "rawio adds no cost of its own" (>= 0.95x C; see bench/targets.ts). Both send the same bytes per
 * round over one fresh loopback connection to the same sink process (bench/lib/tcp-sink.ts),
 * interleaved A B / B A with a warm-up round discarded. Both time only the sending (from the
 * first byte of the first file to the last write returning, the connection already made) and
 * count their own CPU time and context switches over that window with getrusage: the C
 * program in its process, rawio in this one (all of Node's threads, so GC counts against it).
 * The senders share one CPU (ctx.clientCpus) and the sink has the other (ctx.serverCpus).
 * The C driver runs twice a round: the spread of that pair is each cell's A/A noise floor,
 * which the target reads its ratio against.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { constants, sys, transferFile, waitWritable } from '../../src/index.js';
import { closePipePool } from '../../src/transfer/index.js';
import { buildTransferDriver, runTransferDriver, type CDriver, type CMethod } from '../lib/c-driver.js';
import { median, round, sizeLabel, type Sample } from '../lib/measure.js';
import { Sink } from '../lib/sink-client.js';
import { compare, ratio, type Contender } from '../runner.js';
import type { Summary } from '../stats.js';
import type { BenchContext, Scenario, ScenarioResult, Table } from '../scenario.js';
import { noiseFloor } from '../verdict.js';

const METHODS: CMethod[] = ['readwrite', 'mmap', 'sendfile', 'splice'];
const SIZES = [1 << 20, 64 << 20];
const SIDES = ['rawio', 'c'] as const;
/** The C driver measured a second time each round: with 'c', the cell's A/A noise floor. */
const AA = 'c-aa';
type Side = (typeof SIDES)[number] | typeof AA;
const WARMUP = 1;

interface Cell {
  method: CMethod;
  size: number;
  /** Bytes per round: a whole number of files. */
  bytes: number;
  samples: Record<Side, Sample[]>;
  /** rawio / C per round, from the paired (interleaved) throughputs. */
  ratio?: Summary;
  /** The A/A floor of the C driver against itself, round by round (a factor >= 1). */
  floor?: number;
}

function makeFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(Math.min(size, 1 << 20));
  for (let done = 0; done < size; done += chunk.length) writeSync(fd, chunk, 0, Math.min(chunk.length, size - done));
  fsyncSync(fd);
  closeSync(fd);
}

function check(side: Side, cell: Cell, got: number): void {
  if (got !== cell.bytes) throw new Error(`${side} ${cell.method}: the sink read ${got} of ${cell.bytes} bytes`);
}

/** One round of rawio: connect, wait until connected, then time the transfers alone. */
async function rawioRound(sink: Sink, fd: number, cell: Cell): Promise<Sample> {
  let sample: Sample | undefined;
  const got = await sink.send(async (sock) => {
    await waitWritable(sock);
    const r0 = process.resourceUsage();
    const t0 = process.hrtime.bigint();
    for (let sent = 0; sent < cell.bytes; sent += cell.size) await transferFile(sock, fd, { method: cell.method });
    const t1 = process.hrtime.bigint();
    const r1 = process.resourceUsage();
    sample = {
      seconds: Number(t1 - t0) / 1e9,
      cpuSeconds: (r1.userCPUTime - r0.userCPUTime + r1.systemCPUTime - r0.systemCPUTime) / 1e6,
      voluntary: r1.voluntaryContextSwitches - r0.voluntaryContextSwitches,
      involuntary: r1.involuntaryContextSwitches - r0.involuntaryContextSwitches,
    };
  });
  check('rawio', cell, got);
  return sample!;
}

/** One round of the C driver: it connects, times and counts itself (its own getrusage). */
async function cRound(sink: Sink, bin: string, path: string, cell: Cell): Promise<Sample> {
  const closed = sink.closed();
  const count = cell.bytes / cell.size;
  const r = await runTransferDriver(bin, { port: sink.port, file: path, method: cell.method, count });
  check('c', cell, await closed);
  return {
    seconds: r.elapsedNs / 1e9,
    cpuSeconds: (r.userUs + r.sysUs) / 1e6,
    voluntary: r.voluntary,
    involuntary: r.involuntary,
  };
}

const mbps = (cell: Cell, s: Sample) => cell.bytes / s.seconds / 1e6;
const cpuPerGiB = (cell: Cell, s: Sample[]) => median(s.map((x) => x.cpuSeconds / (cell.bytes / 2 ** 30)));

/** rawio / C as the target judges it (ratio of the medians), with the min–max of the per-round ratios. */
function ratioCell(c: Cell, rawioMBps: number, cMBps: number): string {
  if (!c.ratio || !(cMBps > 0)) return 'n/a';
  return `${(rawioMBps / cMBps).toFixed(2)}x (${c.ratio.min.toFixed(2)}–${c.ratio.max.toFixed(2)})`;
}

function table(cells: Cell[], driver: CDriver): Table {
  const rows = cells.map((c) => {
    const [r, k] = [c.samples.rawio, c.samples.c];
    const na = k.length === 0;
    const [rm, km] = [median(r.map((s) => mbps(c, s))), median(k.map((s) => mbps(c, s)))];
    return [
      c.method,
      sizeLabel(c.size),
      round(rm, 0),
      na ? 'n/a' : round(km, 0),
      ratioCell(c, rm, km),
      c.floor === undefined ? 'n/a' : `±${((c.floor - 1) * 100).toFixed(1)}%`,
      round(cpuPerGiB(c, r), 3),
      na ? 'n/a' : round(cpuPerGiB(c, k), 3),
    ];
  });
  return {
    title: 'transferFile vs the same syscalls from C (file → socket over loopback, page cache warm)',
    columns: ['method', 'file', 'rawio MB/s', 'C MB/s', 'rawio / C', 'C A/A floor', 'rawio CPU s/GiB', 'C CPU s/GiB'],
    rows,
    note:
      (driver.ok ? '' : `C side not measured: ${driver.reason}. `) +
      'Medians of interleaved rounds (rawio, C, then C, rawio …), warm-up discarded; each round sends the same ' +
      'bytes over a fresh connection to one sink process. Both time the sending only; CPU is each sender ' +
      "process's own (getrusage). rawio / C: the ratio of the medians (what the target judges), with the " +
      'min–max of the per-round ratios. C A/A floor: the C driver run twice a round, the largest spread of the ' +
      'pair: a ratio that close to the 0.95x bound is within noise.',
  };
}

/** 'copy-c.<rawio|c>.<method>.<1MiB|64MiB>.MBps', and 'copy-c.c.<code>' = 1 when C could not run. */
function metricsOf(cells: Cell[], driver: CDriver): Record<string, number> {
  const m: Record<string, number> = driver.ok ? {} : { [`copy-c.c.${driver.code}`]: 1 };
  for (const c of cells)
    for (const side of SIDES) {
      const s = c.samples[side];
      if (s.length > 0)
        m[`copy-c.${side}.${c.method}.${sizeLabel(c.size).replace(' ', '')}.MBps`] = median(s.map((x) => mbps(c, x)));
    }
  for (const c of cells)
    if (c.floor !== undefined) m[`copy-c.floor.${c.method}.${sizeLabel(c.size).replace(' ', '')}`] = c.floor;
  return m;
}

/** Runs one side's round, keeps its sample past the warm-up, and returns its MB/s for the pairing. */
async function side(cell: Cell, name: Side, n: number, once: () => Promise<Sample>): Promise<number> {
  const s = await once();
  if (n >= WARMUP) cell.samples[name].push(s);
  return mbps(cell, s);
}

/** Pins this thread (and so the C driver, which inherits the mask at spawn) while `fn` runs. */
async function pinned<T>(cpus: number[], fn: () => Promise<T>): Promise<T> {
  const before = sys.getAffinity();
  sys.setAffinity(cpus);
  try {
    return await fn();
  } finally {
    sys.setAffinity(before);
  }
}

export const copyC: Scenario = {
  name: 'copy-c',
  title: 'transferFile vs the same syscalls from C',
  description:
    'Sends 1 MiB and 64 MiB files over loopback with readwrite, mmap, sendfile and splice from rawio and from a ' +
    'small C program making the same syscalls, interleaved, and reports the ratio (target: rawio >= 0.95x C).',
  estimate: { quick: 30, full: 110 },
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    // Rounds are short (~0.1 s) and this machine's noise is not: enough pairs for a steady median.
    const reps = ctx.profile === 'full' ? 15 : 9;
    const perRound = (ctx.profile === 'full' ? 256 : 128) << 20;
    const driver = buildTransferDriver();
    ctx.log(driver.ok ? `C driver: ${driver.path} (${driver.compiler})` : `C side not measured: ${driver.reason}`);
    const cells: Cell[] = SIZES.flatMap((size) =>
      METHODS.map((method) => ({
        method,
        size,
        bytes: Math.max(size, perRound),
        samples: { rawio: [], c: [], [AA]: [] },
      })),
    );
    const paths = new Map(SIZES.map((s) => [s, join(ctx.tmpDir, `copy-c-${s}`)]));
    for (const [size, path] of paths) makeFile(path, size);
    const fds = new Map([...paths].map(([size, path]) => [size, sys.open(path, constants.O_RDONLY!)]));
    const sink = await Sink.start(ctx.serverCpus);
    try {
      await pinned(ctx.clientCpus, async () => {
        for (const [i, cell] of cells.entries()) {
          const contenders: Contender[] = [
            { name: 'rawio', run: (r) => side(cell, 'rawio', r, () => rawioRound(sink, fds.get(cell.size)!, cell)) },
          ];
          if (driver.ok)
            for (const name of ['c', AA] as const)
              contenders.push({
                name,
                run: (r) => side(cell, name, r, () => cRound(sink, driver.path, paths.get(cell.size)!, cell)),
              });
          const label = `${cell.method} ${sizeLabel(cell.size)}`;
          const cmp = await compare(contenders, {
            warmup: WARMUP,
            repeats: reps,
            onRun: (done, total, name) => ctx.progress((i + done / total) / cells.length, `${label} ${name}`),
          });
          if (driver.ok) {
            cell.ratio = ratio(cmp, 'rawio', 'c');
            cell.floor = noiseFloor(
              cell.samples.c.map((x) => mbps(cell, x)),
              cell.samples[AA].map((x) => mbps(cell, x)),
            );
          }
        }
      });
    } finally {
      sink.stop();
      for (const fd of fds.values()) sys.close(fd);
      closePipePool();
    }
    return { tables: [table(cells, driver)], data: { driver, cells }, metrics: metricsOf(cells, driver) };
  },
};
