/**
 * read: sequential pread(2) of one file through the page cache (warm, and cold after
 * POSIX_FADV_DONTNEED) against O_DIRECT pread into aligned buffers, at block sizes from
 * 4 KiB to 1 MiB. Reports throughput, CPU seconds per GiB and context switches (getrusage).
 * Direct IO skips the page cache copy but waits for the device on every block; claim 5 of
 * bench/claims.ts (direct IO for the large files under concurrency) rests on this trade.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { constants, sys } from '../../src/index.js';
import { measure, round, sizeLabel, summarize, type Sample } from '../lib/measure.js';
import type { BenchContext, Chart, Scenario, ScenarioResult, Table } from '../scenario.js';

const BLOCKS = [4 << 10, 16 << 10, 64 << 10, 256 << 10, 1 << 20];
const MODES = ['buffered warm', 'buffered cold', 'O_DIRECT'] as const;
type Mode = (typeof MODES)[number];

interface Cell {
  block: number;
  mode: Mode;
  samples: Sample[];
}

function makeFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  const chunk = randomBytes(1 << 20);
  for (let done = 0; done < size; done += chunk.length) writeSync(fd, chunk);
  fsyncSync(fd);
  closeSync(fd);
}

/** Reads the whole file sequentially in `buf.length` blocks; returns the bytes read. */
function readAll(fd: number, buf: Buffer, size: number, direct: boolean): number {
  let pos = 0;
  while (pos < size) {
    const n = direct ? sys.directRead(fd, buf, 0, buf.length, pos) : sys.pread(fd, buf, 0, buf.length, pos);
    if (n <= 0) throw new Error(`pread at ${pos}: ${n}`);
    pos += n;
  }
  return pos;
}

export const read: Scenario = {
  name: 'read',
  title: 'Buffered pread vs O_DIRECT pread',
  description:
    'Reads one file sequentially with pread at block sizes from 4 KiB to 1 MiB: page cache warm, page cache ' +
    'cold, and O_DIRECT into aligned buffers; throughput, CPU seconds per GiB and context switches.',
  estimate: { quick: 30, full: 180 },
  async run(ctx: BenchContext): Promise<ScenarioResult> {
    const size = (ctx.profile === 'full' ? 512 : 64) << 20;
    const reps = ctx.profile === 'full' ? 7 : 5;
    const path = join(ctx.tmpDir, 'read-file');
    makeFile(path, size);
    const fd = sys.open(path, constants.O_RDONLY!);
    let dfd = -1;
    try {
      dfd = sys.open(path, constants.O_RDONLY! | constants.O_DIRECT!);
    } catch (e) {
      ctx.log(`O_DIRECT refused here: ${(e as Error).message}`);
    }
    const align = dfd >= 0 ? sys.dioAlignment(dfd) : undefined;
    const modes = MODES.filter((m) => m !== 'O_DIRECT' || dfd >= 0);
    const cells: Cell[] = BLOCKS.flatMap((block) => modes.map((mode) => ({ block, mode, samples: [] })));
    try {
      for (const [i, block] of BLOCKS.entries()) {
        ctx.progress(i / BLOCKS.length, `${sizeLabel(block)} blocks`);
        const buf = sys.alignedBuffer(block, Math.max(4096, align?.memAlign ?? 0));
        const mine = cells.filter((c) => c.block === block);
        for (let r = -1; r < reps; r++) {
          for (const c of mine) {
            if (c.mode === 'buffered cold') sys.fadvise(fd, 0, 0, constants.POSIX_FADV_DONTNEED!);
            if (c.mode === 'buffered warm') readAll(fd, buf, size, false); // make sure it is cached
            const s = await measure(() => {
              readAll(c.mode === 'O_DIRECT' ? dfd : fd, buf, size, c.mode === 'O_DIRECT');
            });
            if (r >= 0) c.samples.push(s); // r = -1 is the warm-up
          }
        }
      }
    } finally {
      sys.close(fd);
      if (dfd >= 0) sys.close(dfd);
    }
    const rows = cells.map((c) => {
      const s = summarize(c.samples, size);
      return [
        sizeLabel(c.block),
        c.mode,
        round(s.mbps, 0),
        round(s.cpuPerGiB, 3),
        round(s.volPerGiB, 0),
        round(s.involPerGiB, 0),
      ];
    });
    const table: Table = {
      title: `Sequential pread of a ${sizeLabel(size)} file`,
      columns: ['block', 'mode', 'MB/s', 'CPU s/GiB', 'vol cs/GiB', 'invol cs/GiB'],
      rows,
      note:
        `Medians of ${reps} interleaved passes. Cold: POSIX_FADV_DONTNEED before the pass (a VM host may still ` +
        `cache the disk). O_DIRECT alignment: ${align ? `${align.memAlign}/${align.offsetAlign} (${align.detail})` : 'not measured'}.`,
    };
    const chart: Chart = {
      title: 'Sequential pread throughput by block size',
      xLabel: 'block size (bytes)',
      yLabel: 'MB/s',
      logX: true,
      series: modes.map((m) => ({
        name: m,
        points: cells
          .filter((c) => c.mode === m)
          .map((c) => [c.block, round(summarize(c.samples, size).mbps, 0)] as [number, number]),
      })),
    };
    return { tables: [table], charts: [chart], data: cells };
  },
};
