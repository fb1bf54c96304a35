/**
 * The Ring's and Proactor's argument order agrees with sys.pread / sys.pwrite: (offset,
 * length, position, opts). `ring.read(fd, buf, 0, 5, 3)` reads 5 bytes from position 3
 * (it used to read from 0, taking 3 as the options); a number where the options (or the
 * Proactor's callback) go is a TypeError in every method; the earlier (position, length,
 * opts) form still works. An O_DIRECT EINVAL from a Ring read names the alignment.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { Proactor, Ring, constants as c, sys } from './helpers/rawio.js';
import { titled, why } from './helpers/skips.js';
import { alignedView, pattern, scratchFile } from './helpers/uring.js';

const data = pattern(64 * 1024, 3);

describe.skipIf(why.ring)(titled('Ring and Proactor argument order', why.ring), () => {
  const scratch = scratchFile(data);
  let fd: number;
  let ring: Ring;
  let before: Map<number, string>;
  beforeEach(() => {
    before = openFds();
    ring = new Ring({ entries: 32 });
    fd = sys.open(scratch.path, c.O_RDWR);
  });
  afterEach(() => {
    sys.close(fd);
    ring.close();
    expect(leakedSince(before)).toEqual([]);
  });

  it('read(fd, buf, offset, length, position) reads as sys.pread does', async () => {
    const viaRing = Buffer.alloc(8);
    const viaPread = Buffer.alloc(8);
    expect(await ring.read(fd, viaRing, 0, 5, 3)).toBe(5);
    expect(sys.pread(fd, viaPread, 0, 5, 3)).toBe(5);
    expect(viaRing).toEqual(viaPread);
    expect(viaRing.subarray(0, 5)).toEqual(data.subarray(3, 8));
    const at = Buffer.alloc(16);
    expect(await ring.read(fd, at, 4, 8, 1000)).toBe(8);
    expect(at.subarray(4, 12)).toEqual(data.subarray(1000, 1008));
    expect(at.subarray(0, 4)).toEqual(Buffer.alloc(4));
    expect(await ring.read(fd, at, undefined, undefined, 2000, {})).toBe(16);
    expect(at).toEqual(data.subarray(2000, 2016));
  });

  it('write(fd, buf, offset, length, position) writes as sys.pwrite does', async () => {
    const src = Buffer.from('..hello..');
    expect(await ring.write(fd, src, 2, 5, 100)).toBe(5);
    const back = Buffer.alloc(5);
    sys.pread(fd, back, 0, 5, 100);
    expect(back.toString()).toBe('hello');
  });

  it('readFixed takes the same order', async () => {
    ring.registerBuffers([Buffer.alloc(4096)]);
    expect(await ring.readFixed(fd, 0, 0, 5, 3)).toBe(5);
  });

  it('keeps the earlier (position, length, opts) form working', async () => {
    const b = Buffer.alloc(8);
    expect(await ring.read(fd, b, 3)).toBe(8);
    expect(b).toEqual(data.subarray(3, 11));
    expect(await ring.read(fd, b, 10, 4)).toBe(4);
    expect(b.subarray(0, 4)).toEqual(data.subarray(10, 14));
    expect(await ring.read(fd, b, 20, 4, { signal: new AbortController().signal })).toBe(4);
    expect(b.subarray(0, 4)).toEqual(data.subarray(20, 24));
  });

  it('refuses a number where the options go, in every promise method', () => {
    const n = 3 as never;
    const b = Buffer.alloc(8);
    const calls: [string, () => unknown][] = [
      ['read', () => ring.read(fd, b, 0, 5, 3, n)],
      ['write', () => ring.write(fd, b, 0, 5, 3, n)],
      ['readv', () => ring.readv(fd, [b], 0, n)],
      ['writev', () => ring.writev(fd, [b], 0, n)],
      ['fsync', () => ring.fsync(fd, n)],
      ['openat', () => ring.openat(c.AT_FDCWD, scratch.path, c.O_RDONLY, 0, n)],
      ['close', () => ring.close(1000, n)],
      ['statx', () => ring.statx(c.AT_FDCWD, scratch.path, n)],
      ['accept', () => ring.accept(fd, n)],
      ['recv', () => ring.recv(fd, b, n)],
      ['send', () => ring.send(fd, b, n)],
      ['splice', () => ring.splice(fd, 0, fd, 0, 1, 0, n)],
      ['timeout', () => ring.timeout(1, n)],
      ['nop', () => ring.nop(n)],
      ['cancel', () => ring.cancel(1, n)],
      ['prepAccept', () => ring.prepAccept(fd, 1, n)],
    ];
    for (const [name, call] of calls) {
      let thrown: unknown;
      try {
        const p = call() as Promise<unknown> | undefined;
        p?.catch?.(() => {});
      } catch (e) {
        thrown = e;
      }
      expect(thrown, name).toBeInstanceOf(TypeError);
    }
  });

  it('Proactor.read/write take (offset, length, position, cb); a number for the callback is a TypeError', async () => {
    const px = new Proactor({ entries: 16 });
    try {
      px.attach();
      const b = Buffer.alloc(8);
      const n = await new Promise<number>((resolve) => px.read(fd, b, 1, 5, 3, resolve));
      expect(n).toBe(5);
      expect(b.subarray(1, 6)).toEqual(data.subarray(3, 8));
      const old = await new Promise<number>((resolve) => px.read(fd, b, 40, 8, resolve));
      expect(old).toBe(8);
      expect(b).toEqual(data.subarray(40, 48));
      expect(() => px.read(fd, b, 0, 5, 3 as never)).toThrow(TypeError);
      expect(() => px.accept(fd, () => {}, 3 as never)).toThrow(TypeError);
    } finally {
      px.close();
    }
  });

  it('refuses a Ring length of 4 GiB or more, which an SQE cannot hold, rather than cutting it to 32 bits; a Proactor splits it', async () => {
    // A buffer of 4 GiB (Node 20's largest): untouched, so only address space. Its default
    // length went in as 0; each path that takes a length from a buffer refuses it.
    const big = new Uint8Array(2 ** 32);
    const [a, b] = sys.socketpair();
    const failure = async (f: () => Promise<unknown>) => {
      try {
        await f();
      } catch (e) {
        return e;
      }
      return undefined;
    };
    try {
      for (const [what, f] of [
        ['read', () => ring.read(fd, big, 0, undefined, 0)],
        ['write', () => ring.write(fd, big, 0, 2 ** 32, 0)],
        ['send', () => ring.send(a, big)],
        ['recv', () => ring.recv(b, big, { length: 2 ** 32 })],
      ] as const) {
        const err = await failure(f);
        expect(err, what).toBeInstanceOf(RangeError);
        expect((err as Error).message, what).toContain('4294967295');
      }
      // 4 GiB - 1 goes through: a read of what the file holds.
      expect(await ring.read(fd, big, 1, 2 ** 32 - 1, 0)).toBe(data.length);
      // The Proactor's requests go in 4 GiB - 1 at a time: a read of 4 GiB comes back short.
      const px = new Proactor({ entries: 16 });
      try {
        px.attach();
        expect(await new Promise<number>((resolve) => px.read(fd, big, 0, 2 ** 32, 0, resolve))).toBe(data.length);
      } finally {
        px.close();
      }
    } finally {
      sys.close(a);
      sys.close(b);
    }
  });

  it('explains a misaligned O_DIRECT read as sys.directRead does', async () => {
    const dfd = sys.open(scratch.path, c.O_RDONLY | c.O_DIRECT);
    try {
      const buf = alignedView(8192);
      expect(await ring.read(dfd, buf, 0, 4096, 4096)).toBe(4096);
      const e = await ring.read(dfd, buf, 1, 4096, 4096).catch((x: unknown) => x);
      expect(e).toMatchObject({ code: 'EINVAL', syscall: 'read' });
      expect(String(e)).toMatch(/O_DIRECT here needs the buffer address aligned to \d+ bytes/);
      expect(String(e)).toMatch(/misaligned: buffer address/);
      const p = await ring.read(dfd, buf, 0, 4096, 100).catch((x: unknown) => x);
      expect(String(p)).toMatch(/misaligned: position 100/);
      const wfd = sys.open(scratch.path, c.O_RDWR | c.O_DIRECT);
      const w = await ring.write(wfd, buf, 0, 100, 0).catch((x: unknown) => x);
      sys.close(wfd);
      expect(w).toMatchObject({ code: 'EINVAL', syscall: 'write' });
      expect(String(w)).toMatch(/misaligned: length 100/);
      // A plain fd's EINVAL (an eventfd read shorter than 8 bytes) stays a bare EINVAL.
      const efd = sys.eventfd(1);
      const plain = await ring.read(efd, Buffer.alloc(4), 0, 4, -1).catch((x: unknown) => x);
      sys.close(efd);
      expect(plain).toMatchObject({ code: 'EINVAL' });
      expect(String(plain)).not.toMatch(/O_DIRECT/);
    } finally {
      sys.close(dfd);
    }
  });
});
