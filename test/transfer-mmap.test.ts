/**
 * transferFile's `mmap` options (src/transfer/mmap.ts, mmap-cache.ts): every combination of
 * populate, advice and reuse sends the same bytes as a plain mapping; reuse keeps one view
 * per file version and gives it back on closeMmapCache; a file truncated mid-send ends the
 * transfer short or with EFAULT — never SIGBUS — with each option, and the next transfer
 * sends the file as it now is. Mappings are counted in /proc/self/maps by the file's path.
 */
import { mkdtempSync, rmSync, truncateSync, writeFileSync, utimesSync } from 'node:fs';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { makeFile as makeTestFile, mappingsOf } from './helpers/files.js';
import { sha256, tcpPeer } from './helpers/peer.js';
import {
  closeMmapCache,
  constants,
  mmapCacheStats,
  sys,
  transferFile,
  waitWritable,
  type MmapTransferOptions,
} from './helpers/rawio.js';

const projectDir = join(process.cwd(), 'test');
let dir: string;
let fdsBefore: Map<number, string>;

beforeAll(() => {
  fdsBefore = openFds();
  dir = mkdtempSync(join(projectDir, '.tmp-tmmap-'));
});
afterAll(() => {
  closeMmapCache();
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

const makeFile = (name: string, data: Buffer) => makeTestFile(dir, name, data);

async function send(fd: number, mmap: MmapTransferOptions, extra: { offset?: number; length?: number } = {}) {
  const peer = await tcpPeer();
  let n: number;
  try {
    n = await transferFile(peer.sockFd, fd, { method: 'mmap', mmap, ...extra });
  } finally {
    sys.close(peer.sockFd);
  }
  return { n, got: await peer.received };
}

const OPTIONS: MmapTransferOptions[] = [
  {},
  { populate: true },
  { advice: 'sequential' },
  { advice: 'willneed' },
  { populate: true, advice: 'sequential' },
  { reuse: true },
  { reuse: true, populate: true },
  { reuse: true, populate: true, advice: 'willneed' },
];

describe.each(OPTIONS)('transferFile mmap %j', (mmap) => {
  it('is byte-exact across sizes, offsets and lengths, and leaves no mapping behind', async () => {
    for (const size of [1, 4095, 4097, (1 << 20) + 3, (9 << 20) + 5]) {
      const data = randomBytes(size);
      const f = makeFile(`exact-${size}`, data);
      try {
        for (const [offset, length] of [
          [0, undefined],
          [7, undefined],
          [size >> 1, (size >> 2) + 1],
          [size + 3, 5],
        ] as [number, number | undefined][]) {
          const { n, got } = await send(f.fd, mmap, { offset, length });
          const want = data.subarray(Math.min(offset, size), length === undefined ? size : offset + length);
          expect(n).toBe(want.length);
          expect(got.sha256).toBe(sha256(want));
        }
        expect(mappingsOf(f.path)).toBe(mmap.reuse ? 1 : 0); // one cached view per file, else none
      } finally {
        sys.close(f.fd);
      }
      closeMmapCache();
      expect(mappingsOf(f.path)).toBe(0);
    }
  });

  it('ends short or with EFAULT when the file is truncated mid-send, then sends the new file', async () => {
    const size = 24 << 20;
    const data = randomBytes(size);
    const f = makeFile('shrink.bin', data);
    try {
      if (mmap.reuse) await send(f.fd, mmap); // the view is cached before the file shrinks
      const peer = await tcpPeer({ slow: true });
      sys.setBufferSizes(peer.sockFd, { send: 4096 });
      let waits = 0;
      const wait = (fd: number) => {
        if (++waits === 3) truncateSync(f.path, 64 << 10);
        return waitWritable(fd);
      };
      const r = await transferFile(peer.sockFd, f.fd, { method: 'mmap', mmap, wait }).then(
        (n) => ({ n }),
        (e: unknown) => ({ e }),
      );
      sys.close(peer.sockFd);
      peer.reader.destroy();
      expect(waits).toBeGreaterThanOrEqual(3);
      if ('e' in r) expect(r.e).toMatchObject({ code: 'EFAULT', syscall: 'write' });
      else expect(r.n).toBeLessThan(size);
      // The next transfer sees the file as it is now, never the old view.
      const again = await send(f.fd, mmap);
      expect(again.n).toBe(64 << 10);
      expect(again.got.sha256).toBe(sha256(data.subarray(0, 64 << 10)));
    } finally {
      sys.close(f.fd);
    }
    closeMmapCache();
    expect(mappingsOf(f.path)).toBe(0);
  });
});

describe('transferFile mmap reuse', () => {
  it('keeps one view per file version: a rewrite with a new mtime drops the old one', async () => {
    closeMmapCache();
    const a = randomBytes(100_000);
    const f = makeFile('versions.bin', a);
    try {
      await send(f.fd, { reuse: true });
      await send(f.fd, { reuse: true });
      expect(mmapCacheStats()).toEqual({ mappings: 1, bytes: a.length });
      const b = randomBytes(a.length);
      writeFileSync(f.path, b); // same size, same inode, new contents
      utimesSync(f.path, new Date(), new Date(Date.now() + 5000)); // a distinct mtime
      const { got } = await send(f.fd, { reuse: true });
      expect(got.sha256).toBe(sha256(b));
      expect(mmapCacheStats().mappings).toBe(1);
      expect(mappingsOf(f.path)).toBe(1);
    } finally {
      sys.close(f.fd);
    }
    closeMmapCache();
    expect(mmapCacheStats()).toEqual({ mappings: 0, bytes: 0 });
    expect(mappingsOf(f.path)).toBe(0);
  });

  it('maps files over 64 MiB per transfer, caching nothing', async () => {
    closeMmapCache();
    const path = join(dir, 'big.bin');
    writeFileSync(path, Buffer.alloc(0));
    truncateSync(path, (64 << 20) + 1); // sparse: reads as zeros
    const fd = sys.open(path, constants.O_RDONLY!);
    try {
      const { n, got } = await send(fd, { reuse: true }, { offset: (64 << 20) - 10 });
      expect(n).toBe(11);
      expect(got.sha256).toBe(sha256(Buffer.alloc(11)));
      expect(mmapCacheStats().mappings).toBe(0);
    } finally {
      sys.close(fd);
    }
  });

  it('refuses bad mmap options with TypeError and RangeError before sending', async () => {
    const f = makeFile('opts.bin', randomBytes(10));
    try {
      const bad: [unknown, ErrorConstructor][] = [
        [{ populate: 1 }, TypeError],
        [{ reuse: 'yes' }, TypeError],
        [{ advice: 'dontneed' }, RangeError],
        [{ advice: 3 }, TypeError],
        [{ huge: true }, TypeError],
        [null, TypeError],
        ['populate', TypeError],
      ];
      for (const [mmap, E] of bad)
        await expect(transferFile(1, f.fd, { method: 'mmap', mmap: mmap as MmapTransferOptions })).rejects.toThrow(E);
    } finally {
      sys.close(f.fd);
    }
  });
});
