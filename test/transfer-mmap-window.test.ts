/**
 * The `mmap` method's per-transfer mappings, held natively (native.mmapSend / mmapDrop,
 * file.cc; src/transfer/mmap.ts): the addon refuses bad arguments with TypeError and
 * RangeError, tells file-side failures from the socket's, keeps a window across EAGAIN and
 * resumes from it byte-exact, and leaves no mapping behind — after a whole transfer, a
 * parked one, an aborted one, a failed one, or a file truncated under the window. Mappings
 * are counted in /proc/self/maps and in the addon's own table.
 */
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { constants as os } from 'node:os';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { native } from '../dist/src/sys/native.js';
import { MMAP_WINDOW } from '../dist/src/transfer/mmap.js';
import { lentStat } from '../dist/src/transfer/stat.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { makeFile as makeTestFile, mappingsOf } from './helpers/files.js';
import { eventually } from './helpers/wait.js';
import { sha256, tcpPeer } from './helpers/peer.js';
import {
  closeMmapCache,
  constants,
  mmapCacheStats,
  registerTransferMethod,
  sys,
  transferFile,
  transferMethods,
  waitWritable,
} from './helpers/rawio.js';

const projectDir = join(process.cwd(), 'test');
let dir: string;
let fdsBefore: Map<number, string>;

beforeAll(() => {
  fdsBefore = openFds();
  dir = mkdtempSync(join(projectDir, '.tmp-tmwin-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

/** Shared read-only mappings (perms r--s): what a file mapping is, whatever its path; the heap's pages are rw-p. */
const sharedMappings = () =>
  readFileSync('/proc/self/maps', 'utf8')
    .split('\n')
    .filter((l) => l.split(' ')[1] === 'r--s').length;
const makeFile = (name: string, data: Buffer) => makeTestFile(dir, name, data);

const FILE_SIDE = 1 << 16;
const MADV_SEQUENTIAL = native.constants.MADV_SEQUENTIAL!;

describe('native.mmapSend and mmapDrop', () => {
  it('refuse bad arguments with TypeError and RangeError, mapping nothing', () => {
    const f = makeFile('args.bin', randomBytes(8192));
    const [r, w] = sys.pipe();
    try {
      const ok = [0, w, f.fd, 0, 10, MMAP_WINDOW, 0, -1] as const;
      const call = (i: number, v: unknown) => {
        const args: unknown[] = [...ok];
        args[i] = v;
        return () => (native.mmapSend as (...a: unknown[]) => number)(...args);
      };
      const TYPE = { name: 'TypeError', code: 'ERR_INVALID_ARG_TYPE' };
      const RANGE = { name: 'RangeError', code: 'ERR_OUT_OF_RANGE' };
      for (let i = 0; i < ok.length; i++) expect(call(i, 'x'), `argument ${i}`).toThrow(expect.objectContaining(TYPE));
      expect(call(0, -1)).toThrow(expect.objectContaining(RANGE)); // slot
      expect(call(0, 1 << 20)).toThrow(expect.objectContaining(RANGE));
      expect(call(0, 0.5)).toThrow(expect.objectContaining(RANGE));
      expect(call(1, -1)).toThrow(expect.objectContaining(RANGE)); // sockFd
      expect(call(2, 2 ** 31)).toThrow(expect.objectContaining(RANGE)); // fileFd
      expect(call(3, -1)).toThrow(expect.objectContaining(RANGE)); // position
      expect(call(3, 2 ** 53)).toThrow(expect.objectContaining(RANGE));
      expect(call(4, 0)).toThrow(expect.objectContaining(RANGE)); // count
      expect(call(5, 0)).toThrow(expect.objectContaining(RANGE)); // window
      expect(call(5, 2 ** 31)).toThrow(expect.objectContaining(RANGE));
      expect(call(6, 1)).toThrow(expect.objectContaining(RANGE)); // flags: MAP_POPULATE or 0 only
      expect(call(7, -2)).toThrow(expect.objectContaining(RANGE)); // advice
      expect(call(7, 4 /* MADV_DONTNEED */)).toThrow(expect.objectContaining(RANGE));
      expect(() => (native.mmapSend as (...a: unknown[]) => number)(0, w, f.fd)).toThrow(expect.objectContaining(TYPE));
      expect(() => (native.mmapDrop as (s: unknown) => number)('0')).toThrow(expect.objectContaining(TYPE));
      expect(() => native.mmapDrop(-1)).toThrow(expect.objectContaining(RANGE));
      expect(native.mmapWindows()).toBe(0);
      expect(mappingsOf(f.path)).toBe(0);
      // An unused slot, however high, holds nothing to drop.
      expect(native.mmapDrop((1 << 20) - 1)).toBe(0);
    } finally {
      sys.close(f.fd);
      sys.close(r);
      sys.close(w);
    }
  });

  it('tells file-side failures (-(errno | kind << 16)) from the write’s -errno, and EOF as 0', () => {
    const f = makeFile('sides.bin', randomBytes(8192));
    const wo = sys.open(f.path, constants.O_WRONLY!);
    const [r, w] = sys.pipe();
    try {
      // Not readable: mmap(2) refuses with EACCES; a pipe is no regular file: EINVAL.
      expect(native.mmapSend(0, w, wo, 0, 10, MMAP_WINDOW, 0, -1)).toBe(-(os.errno.EACCES | FILE_SIDE));
      expect(native.mmapSend(0, w, r, 0, 10, MMAP_WINDOW, 0, -1)).toBe(-(os.errno.EINVAL | FILE_SIDE));
      // At or past EOF nothing is mapped.
      expect(native.mmapSend(0, w, f.fd, 8192, 10, MMAP_WINDOW, 0, -1)).toBe(0);
      // The socket side: a pipe whose reader is gone is EPIPE, plain -errno; the window stays
      // (the transfer did not finish) until dropped.
      const [r2, w2] = sys.pipe();
      sys.close(r2);
      expect(native.mmapSend(1, w2, f.fd, 0, 10, MMAP_WINDOW, 0, MADV_SEQUENTIAL)).toBe(-os.errno.EPIPE);
      sys.close(w2);
      expect(native.mmapWindows()).toBe(1);
      expect(mappingsOf(f.path)).toBe(1);
      expect(native.mmapDrop(1)).toBe(1);
      expect(native.mmapDrop(1)).toBe(0);
      expect(mappingsOf(f.path)).toBe(0);
      // A step that writes its whole count unmaps at once.
      expect(native.mmapSend(0, w, f.fd, 100, 50, MMAP_WINDOW, native.constants.MAP_POPULATE!, -1)).toBe(50);
      expect(native.mmapWindows()).toBe(0);
      const got = Buffer.alloc(50);
      expect(sys.read(r, got)).toBe(50);
      expect(got.equals(readFileSync(f.path).subarray(100, 150))).toBe(true);
    } finally {
      sys.close(wo);
      sys.close(f.fd);
      sys.close(r);
      sys.close(w);
    }
  });
});

describe('transferFile mmap: mappings held natively', () => {
  it('rejects with the mmap error of a file it cannot map, holding nothing', async () => {
    const f = makeFile('wronly.bin', randomBytes(4096));
    const wo = sys.open(f.path, constants.O_WRONLY!);
    const peer = await tcpPeer();
    try {
      const err = await transferFile(peer.sockFd, wo, { method: 'mmap' }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: 'EACCES', syscall: 'mmap' });
    } finally {
      sys.close(peer.sockFd);
      sys.close(wo);
      sys.close(f.fd);
    }
    await peer.received;
    expect(native.mmapWindows()).toBe(0);
  });

  it('keeps its window across EAGAIN, resumes byte-exact, and unmaps when done', async () => {
    const size = (MMAP_WINDOW + (1 << 20)) | 7; // two windows, the second short
    const data = randomBytes(size);
    const f = makeFile('parked.bin', data);
    // The reader runs on this thread: it reads only while the transfer waits, so a small send
    // buffer fills at once and every round meets EAGAIN.
    const peer = await tcpPeer();
    sys.setBufferSizes(peer.sockFd, { send: 65536 });
    let waits = 0;
    let heldWhileParked = 0;
    let mapsChecked = 0;
    const wait = (fd: number) => {
      waits++;
      if (native.mmapWindows() === 1) heldWhileParked++;
      // /proc/self/maps is slow to read: now and then, not at every wait.
      if (waits % 16 === 1) mapsChecked += mappingsOf(f.path) === 1 ? 1 : 1000;
      return waitWritable(fd);
    };
    try {
      const n = await transferFile(peer.sockFd, f.fd, { method: 'mmap', offset: 5, wait });
      expect(n).toBe(size - 5);
    } finally {
      sys.close(peer.sockFd);
    }
    const got = await peer.received;
    expect(got.sha256).toBe(sha256(data.subarray(5)));
    expect(waits).toBeGreaterThan(1);
    expect(heldWhileParked).toBe(waits); // one window, held at every wait
    expect(mapsChecked).toBe(Math.ceil(waits / 16)); // and it is one mapping of the file
    expect(native.mmapWindows()).toBe(0);
    expect(mappingsOf(f.path)).toBe(0);
    sys.close(f.fd);
  });

  it('unmaps a parked window when the transfer is aborted or the peer goes away', async () => {
    const f = makeFile('abort.bin', randomBytes(4 << 20));
    try {
      const peer = await tcpPeer({ slow: true });
      sys.setBufferSizes(peer.sockFd, { send: 4096 });
      const ac = new AbortController();
      let waits = 0;
      const wait = (fd: number) => {
        if (++waits === 2) ac.abort();
        return waitWritable(fd);
      };
      const err = await transferFile(peer.sockFd, f.fd, { method: 'mmap', wait, signal: ac.signal }).catch(
        (e: unknown) => e,
      );
      expect(err).toMatchObject({ name: 'AbortError' });
      expect(native.mmapWindows()).toBe(0);
      sys.close(peer.sockFd);
      peer.reader.destroy();

      const gone = await tcpPeer({ slow: true });
      sys.setBufferSizes(gone.sockFd, { send: 4096 });
      const wait2 = (fd: number) => {
        gone.reader.resetAndDestroy();
        return waitWritable(fd);
      };
      const err2 = await transferFile(gone.sockFd, f.fd, { method: 'mmap', wait: wait2 }).catch((e: unknown) => e);
      expect(err2).toMatchObject({ code: expect.stringMatching(/^(EPIPE|ECONNRESET)$/) });
      sys.close(gone.sockFd);
      expect(native.mmapWindows()).toBe(0);
      expect(mappingsOf(f.path)).toBe(0);
    } finally {
      sys.close(f.fd);
    }
  });

  it('ends short or with EFAULT when the file shrinks under a parked window, holding nothing after', async () => {
    const size = 6 << 20;
    const data = randomBytes(size);
    const f = makeFile('shrink.bin', data);
    try {
      const peer = await tcpPeer({ slow: true });
      sys.setBufferSizes(peer.sockFd, { send: 4096 });
      let waits = 0;
      const wait = (fd: number) => {
        if (++waits === 2) truncateSync(f.path, 8192);
        return waitWritable(fd);
      };
      const r = await transferFile(peer.sockFd, f.fd, { method: 'mmap', wait }).then(
        (n) => ({ n }),
        (e: unknown) => ({ e }),
      );
      sys.close(peer.sockFd);
      peer.reader.destroy();
      if ('e' in r) expect(r.e).toMatchObject({ code: 'EFAULT', syscall: 'write' });
      else expect(r.n).toBeLessThan(size);
      expect(native.mmapWindows()).toBe(0);
      expect(mappingsOf(f.path)).toBe(0);
    } finally {
      sys.close(f.fd);
    }
  });

  it("unmaps a worker's parked window when the worker is terminated", async () => {
    const f = makeFile('worker.bin', randomBytes(4 << 20));
    const [r, w] = sys.pipe(); // non-blocking, and nobody reads: the transfer parks at once
    const src = `
      const { parentPort, workerData } = require('node:worker_threads');
      import(${JSON.stringify(join(process.cwd(), 'dist/src/index.js'))}).then(({ transferFile, waitWritable }) => {
        const wait = (fd) => {
          parentPort.postMessage('parked');
          return waitWritable(fd);
        };
        transferFile(workerData.w, workerData.file, { method: 'mmap', wait }).catch(() => {});
      });`;
    const worker = new Worker(src, { eval: true, workerData: { w, file: f.fd } });
    try {
      await new Promise((resolve, reject) => worker.once('message', resolve).once('error', reject));
      expect(mappingsOf(f.path)).toBe(1); // the worker's window, in the process's one address space
      expect(native.mmapWindows()).toBe(0); // and in the worker's table, not this thread's
      await worker.terminate();
      // The worker's table goes with its thread, and its window with it.
      expect(await eventually(() => mappingsOf(f.path) === 0)).toBe(true);
    } finally {
      sys.close(r);
      sys.close(w);
      sys.close(f.fd);
    }
  });

  it('leaves /proc/self/maps as it found it after many transfers of every kind', async () => {
    const files = [1, 4096, 65536, (1 << 20) + 3].map((n) => ({ n, ...makeFile(`many-${n}.bin`, randomBytes(n)) }));
    try {
      // Once first: the sockets, the waiter and the heap settle before the count.
      const warm = await tcpPeer();
      for (const f of files) await transferFile(warm.sockFd, f.fd, { method: 'mmap' });
      sys.close(warm.sockFd);
      await warm.received;
      const before = sharedMappings();
      const peer = await tcpPeer();
      let sent = 0;
      for (let i = 0; i < 200; i++) {
        const f = files[i % files.length]!;
        const mmap = i % 3 === 0 ? { populate: true } : i % 3 === 1 ? { advice: 'sequential' as const } : undefined;
        sent += await transferFile(peer.sockFd, f.fd, { method: 'mmap', offset: i % 5, mmap });
      }
      sys.close(peer.sockFd);
      const got = await peer.received;
      expect(got.bytes).toBe(sent);
      expect(native.mmapWindows()).toBe(0);
      for (const f of files) expect(mappingsOf(f.path)).toBe(0);
      expect(sharedMappings()).toBe(before);
    } finally {
      for (const f of files) sys.close(f.fd);
    }
  });
});

describe('transferFile: built-in cores and replaced methods', () => {
  it('resolves a promise with the count when the kernel takes the file whole, for each method', async () => {
    const data = randomBytes(65536 + 11);
    const f = makeFile('whole.bin', data);
    try {
      for (const method of ['readwrite', 'mmap', 'sendfile', 'splice', 'auto'] as const) {
        const peer = await tcpPeer();
        let reported = 0;
        const p = transferFile(peer.sockFd, f.fd, { method, offset: 1, onSent: (b) => (reported += b) });
        expect(p).toBeInstanceOf(Promise);
        const n = await p;
        sys.close(peer.sockFd);
        const got = await peer.received;
        expect(n).toBe(data.length - 1);
        expect(reported).toBe(n);
        expect(got.sha256).toBe(sha256(data.subarray(1)));
      }
    } finally {
      sys.close(f.fd);
    }
  });

  it('runs a method replaced by registerTransferMethod, not the built-in core', async () => {
    const f = makeFile('replaced.bin', randomBytes(4096));
    const original = transferMethods.sendfile!;
    let called = 0;
    registerTransferMethod('sendfile', (job) => {
      called++;
      return original(job);
    });
    try {
      const peer = await tcpPeer();
      const n = await transferFile(peer.sockFd, f.fd, { method: 'sendfile' });
      sys.close(peer.sockFd);
      await peer.received;
      expect(n).toBe(4096);
      expect(called).toBe(1);
    } finally {
      registerTransferMethod('sendfile', original);
      sys.close(f.fd);
    }
  });

  it('settles through a promise whatever a method or an argument does', async () => {
    const f = makeFile('settle.bin', randomBytes(4096));
    const [r, w] = sys.pipe();
    try {
      // A method added at run time that breaks its type and returns a plain count.
      registerTransferMethod('plain-count', (() => 7) as unknown as Parameters<typeof registerTransferMethod>[1]);
      const p = transferFile(w, f.fd, { method: 'plain-count' as 'sendfile' });
      expect(p).toBeInstanceOf(Promise);
      expect(await p).toBe(7);
      // One that throws in the call: a rejection, not a throw out of transferFile.
      registerTransferMethod('throws-now', () => {
        throw new RangeError('now');
      });
      const q = transferFile(w, f.fd, { method: 'throws-now' as 'sendfile' });
      expect(q).toBeInstanceOf(Promise);
      await expect(q).rejects.toThrow('now');
      // Bad arguments: rejections too.
      const bad = transferFile(w, -1, { method: 'sendfile' });
      expect(bad).toBeInstanceOf(Promise);
      await expect(bad).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    } finally {
      sys.close(r);
      sys.close(w);
      sys.close(f.fd);
    }
  });

  it('keeps the public methods promise-returning: a failure is a rejection, never a throw', async () => {
    const f = makeFile('reject.bin', randomBytes(4096));
    const wo = sys.open(f.path, constants.O_WRONLY!);
    const [r, w] = sys.pipe();
    sys.close(r); // every write now fails with EPIPE
    try {
      for (const name of ['readwrite', 'mmap', 'sendfile', 'splice', 'auto']) {
        const job = { sockFd: w, fileFd: f.fd, offset: 0, length: 4096, wait: waitWritable, directio: 2 ** 53 - 1 };
        const p = transferMethods[name]!(job);
        expect(p).toBeInstanceOf(Promise);
        await expect(p).rejects.toMatchObject({ code: 'EPIPE' });
      }
      const bad = { sockFd: w, fileFd: wo, offset: 0, length: 4096, wait: waitWritable, directio: 2 ** 53 - 1 };
      const p = transferMethods.mmap!(bad);
      expect(p).toBeInstanceOf(Promise);
      await expect(p).rejects.toMatchObject({ code: 'EACCES', syscall: 'mmap' });
      expect(native.mmapWindows()).toBe(0);
    } finally {
      sys.close(w);
      sys.close(wo);
      sys.close(f.fd);
    }
  });
});

describe('the fstat transferFile lends to its method', () => {
  it('is lent only within the call: never after it, a failed one included', async () => {
    const f = makeFile('lent.bin', randomBytes(65536));
    const [r, w] = sys.pipe();
    try {
      let during: Float64Array | undefined;
      registerTransferMethod('peek-stat', (job) => {
        during = lentStat(job.fileFd);
        return Promise.resolve(0);
      });
      await transferFile(w, f.fd, { method: 'peek-stat' as 'sendfile' });
      expect(during?.[0]).toBe(65536); // the size transferFile's fstat read
      expect(lentStat(f.fd)).toBeUndefined();
      // A pipe as the file: fstat'd, refused, and nothing left lent.
      await expect(transferFile(w, r, { method: 'sendfile' })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE' });
      expect(lentStat(r)).toBeUndefined();
      // A transfer that waits: nothing lent while it is parked.
      const peer = await tcpPeer();
      sys.setBufferSizes(peer.sockFd, { send: 4096 });
      let lentWhileParked = 0;
      const wait = (fd: number) => {
        if (lentStat(f.fd) !== undefined) lentWhileParked++;
        return waitWritable(fd);
      };
      const n = await transferFile(peer.sockFd, f.fd, { method: 'mmap', mmap: { reuse: true }, wait });
      sys.close(peer.sockFd);
      await peer.received;
      expect(n).toBe(65536);
      expect(lentWhileParked).toBe(0);
    } finally {
      sys.close(r);
      sys.close(w);
      sys.close(f.fd);
    }
  });

  it('keys reused mappings by the version the lent fstat saw: a changed file gets a new view', async () => {
    closeMmapCache(); // what earlier tests cached
    const path = join(dir, 'versions.bin');
    const v1 = randomBytes(8192);
    writeFileSync(path, v1);
    const fd = sys.open(path, constants.O_RDONLY!);
    try {
      const sendOnce = async () => {
        const peer = await tcpPeer();
        const n = await transferFile(peer.sockFd, fd, { method: 'mmap', mmap: { reuse: true } });
        sys.close(peer.sockFd);
        return { n, got: await peer.received };
      };
      const a = await sendOnce();
      const b = await sendOnce(); // the same view
      expect(mmapCacheStats().mappings).toBe(1);
      expect(mappingsOf(path)).toBe(1);
      const v2 = randomBytes(4096);
      writeFileSync(path, v2); // a new size (and mtime)
      const c = await sendOnce();
      expect([a.n, b.n, c.n]).toEqual([8192, 8192, 4096]);
      expect(a.got.sha256).toBe(sha256(v1));
      expect(b.got.sha256).toBe(sha256(v1));
      expect(c.got.sha256).toBe(sha256(v2));
      expect(mmapCacheStats().mappings).toBe(1); // the old version dropped
      expect(mappingsOf(path)).toBe(1);
    } finally {
      sys.close(fd);
      closeMmapCache();
    }
    expect(mappingsOf(path)).toBe(0);
  });
});
