/**
 * sys.mmap's options and sys.madvise (src/sys/mmap.ts): MAP_POPULATE and each readahead
 * hint give the same bytes as a plain mapping, the pages of a populated view are resident
 * at once (the mapping's Rss in /proc/self/smaps), bad options are TypeError or
 * RangeError before any syscall, and no mapping outlives its munmap.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { constants, sys } from './helpers/rawio.js';

type MmapAdvice = sys.MmapAdvice;

const projectDir = join(process.cwd(), 'test');
const SIZE = 3 * 65536 + 123;
let dir: string;
let path: string;
let data: Buffer;
let fdsBefore: Map<number, string>;

beforeAll(() => {
  fdsBefore = openFds();
  dir = mkdtempSync(join(projectDir, '.tmp-mmap-'));
  path = join(dir, 'data.bin');
  data = Buffer.from(Array.from({ length: SIZE }, (_, i) => (i * 31 + 7) & 0xff));
  writeFileSync(path, data);
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

/** Lines of /proc/self/maps naming `p`: the live mappings of that file. */
function mappingsOf(p: string): number {
  return readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.endsWith(p)).length;
}

function withFd<T>(fn: (fd: number) => T): T {
  const fd = sys.open(path, constants.O_RDONLY!);
  try {
    return fn(fd);
  } finally {
    sys.close(fd);
  }
}

describe('mmap options', () => {
  const advices: MmapAdvice[] = ['normal', 'random', 'sequential', 'willneed'];

  it('maps the same bytes with populate and with every advice, and unmaps them all', () => {
    withFd((fd) => {
      const before = mappingsOf(path);
      const views = [
        sys.mmap(fd, 0, SIZE, { populate: true }),
        sys.mmap(fd, 4097, SIZE, { populate: true, advice: 'sequential' }),
        ...advices.map((advice) => sys.mmap(fd, 5, SIZE, { advice })),
      ];
      expect(mappingsOf(path)).toBe(before + views.length);
      expect(views[0]!.equals(data)).toBe(true);
      expect(views[1]!.equals(data.subarray(4097))).toBe(true);
      for (const v of views.slice(2)) expect(v.equals(data.subarray(5))).toBe(true);
      for (const v of views) sys.munmap(v);
      expect(mappingsOf(path)).toBe(before);
    });
  });

  it('madvise takes each hint on a live mapping, and refuses what is not one', () => {
    withFd((fd) => {
      const m = sys.mmap(fd, 0, SIZE);
      for (const a of advices) expect(() => sys.madvise(m, a)).not.toThrow();
      expect(() => sys.madvise(m.subarray(1), 'normal')).toThrow(TypeError);
      expect(() => sys.madvise(Buffer.alloc(4096), 'normal')).toThrow(TypeError);
      expect(() => sys.madvise(m, 'dontneed' as MmapAdvice)).toThrow(RangeError);
      expect(() => sys.madvise(m, 4 as unknown as MmapAdvice)).toThrow(TypeError);
      expect(() => sys.madvise('x' as unknown as Buffer, 'normal')).toThrow(TypeError);
      expect(m.equals(data)).toBe(true); // still mapped after the refusals
      sys.munmap(m);
      expect(() => sys.madvise(m, 'normal')).toThrow(TypeError); // detached
    });
  });

  it('checks its options before mapping anything', () => {
    withFd((fd) => {
      const before = mappingsOf(path);
      const bad: [unknown, ErrorConstructor][] = [
        [{ populate: 1 }, TypeError],
        [{ populate: 'yes' }, TypeError],
        [{ advice: 'hugepage' }, RangeError],
        [{ advice: 2 }, TypeError],
        [{ nope: true }, TypeError],
        [null, TypeError],
        [7, TypeError],
      ];
      for (const [opts, E] of bad)
        expect(() => sys.mmap(fd, 0, SIZE, opts as Parameters<typeof sys.mmap>[3])).toThrow(E);
      expect(mappingsOf(path)).toBe(before);
    });
  });

  it('populate makes the view resident at mmap time', () => {
    withFd((fd) => {
      const m = sys.mmap(fd, 0, SIZE, { populate: true });
      // The mapping's Rss in smaps: every page present though nothing has read the view.
      const smaps = readFileSync('/proc/self/smaps', 'utf8').split('\n');
      const at = smaps.findIndex((l) => l.endsWith(path));
      const rss = Number(/^Rss:\s+(\d+) kB/m.exec(smaps.slice(at, at + 8).join('\n'))![1]);
      sys.munmap(m);
      expect(rss * 1024).toBeGreaterThanOrEqual(SIZE - 4096);
    });
  });

  // A reservation (kept only for a Buffer once lent to io_uring or MSG_ZEROCOPY) would stay
  // until the garbage collector ran; a mapping never lent leaves no trace at its addresses.
  it('munmap of a mapping never lent to the kernel frees its addresses at once', () => {
    withFd((fd) => {
      const m = sys.mmap(fd, 0, SIZE);
      const line = readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .find((l) => l.endsWith(path))!;
      const range = line.split(' ')[0]!;
      sys.munmap(m);
      const [lo, hi] = range.split('-').map((x) => BigInt(`0x${x}`)) as [bigint, bigint];
      const overlapping = readFileSync('/proc/self/maps', 'utf8')
        .split('\n')
        .filter((l) => {
          const [a, b] = l
            .split(' ')[0]!
            .split('-')
            .map((x) => (x ? BigInt(`0x${x}`) : 0n)) as [bigint, bigint];
          return a < hi && b > lo;
        });
      expect(overlapping).toEqual([]);
    });
  });

  it('maps nothing for an empty range whatever the options', () => {
    withFd((fd) => {
      expect(sys.mmap(fd, SIZE + 1, 10, { populate: true, advice: 'willneed' }).length).toBe(0);
    });
  });
});

// A loop device over a small file: a block device, whose fstat size is 0. Attaching one
// needs root (and a kernel with loop devices); elsewhere the test is skipped.
function loopDevice(file: string): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const r = spawnSync('losetup', ['-f', '--show', file], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : undefined;
}

describe('mmap of a block device', () => {
  it("is clamped to the device's end, as a regular file's to EOF (a child: SIGBUS fails)", (ctx) => {
    const img = join(dir, 'blk.img');
    writeFileSync(img, data.subarray(0, 8192));
    const dev = loopDevice(img);
    if (dev === undefined) ctx.skip('attaching a loop device needs root and losetup');
    try {
      // fstat gives a block device size 0: the view was not clamped, and reading past the
      // device's end raised SIGBUS.
      const index = new URL('../dist/src/index.js', import.meta.url).href;
      const code = `
        const { sys, constants } = await import(${JSON.stringify(index)});
        const fd = sys.open(${JSON.stringify(dev)}, constants.O_RDONLY);
        const out = [];
        for (const [off, len] of [[0, 1 << 20], [4101, 1 << 20], [100, 200], [8192, 10], [1 << 30, 10]]) {
          const m = sys.mmap(fd, off, len);
          out.push([m.length, m.length > 0 ? m[m.length - 1] : -1]);
          if (m.length > 0) sys.munmap(m);
        }
        sys.close(fd);
        console.log(JSON.stringify(out));`;
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
      expect(r.signal, r.stderr).toBeNull();
      expect(r.status, r.stderr).toBe(0);
      expect(JSON.parse(r.stdout)).toEqual([
        [8192, data[8191]],
        [8192 - 4101, data[8191]],
        [200, data[299]],
        [0, -1],
        [0, -1],
      ]);
    } finally {
      spawnSync('losetup', ['-d', dev!]);
    }
  }, 30_000);
});
