import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { ErrnoError, constants, sys } from './helpers/rawio.js';

const C = constants as Record<string, number>;
// The project's own filesystem (ext4 here), not /tmp, which may be a tmpfs elsewhere.
const projectDir = join(process.cwd(), 'test');
let dir: string;
let fdsBefore: Map<number, string>;

beforeAll(() => {
  fdsBefore = openFds();
  dir = mkdtempSync(join(projectDir, '.tmp-file-'));
});
afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

function withFile<T>(name: string, data: Uint8Array, flags: number, fn: (fd: number, path: string) => T): T {
  const p = join(dir, name);
  writeFileSync(p, data);
  const fd = sys.open(p, flags);
  try {
    return fn(fd, p);
  } finally {
    sys.close(fd);
  }
}

describe('open, pread, pwrite, fstat, fadvise', () => {
  it('opens close-on-exec and reports errors with the path', () => {
    withFile('a', Buffer.from('abc'), C.O_RDONLY!, (fd) => {
      const flags = /flags:\s+(\d+)/.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
      expect(parseInt(flags, 8) & C.O_CLOEXEC!).toBe(C.O_CLOEXEC);
    });
    const p = join(dir, 'missing');
    expect(() => sys.open(p, C.O_RDONLY!)).toThrow(
      expect.objectContaining({ code: 'ENOENT', syscall: 'open', path: p }),
    );
  });

  it('preads and pwrites at positions, with short counts at EOF', () => {
    withFile('rw', Buffer.from('0123456789'), C.O_RDWR!, (fd) => {
      const buf = Buffer.alloc(8);
      expect(sys.pread(fd, buf, 0, 4, 3)).toBe(4);
      expect(buf.toString('utf8', 0, 4)).toBe('3456');
      expect(sys.pread(fd, buf, 2, 6, 7)).toBe(3); // beyond EOF: short
      expect(sys.pread(fd, buf, 0, 8, 100)).toBe(0); // past the end
      expect(sys.pwrite(fd, Buffer.from('xy'), undefined, undefined, 12)).toBe(2);
      expect(sys.fstat(fd)).toMatchObject({ size: 14, blksize: expect.any(Number) });
      expect(sys.fstat(fd).mode & 0o170000).toBe(0o100000);
      expect(sys.fadvise(fd, 0, 0, C.POSIX_FADV_DONTNEED!)).toBe(0);
      expect(sys.pread(fd, Buffer.alloc(1), 0, 1, 0)).toBe(1); // O_WRONLY-free: still readable
    });
  });

  it('refuses bad arguments before any syscall', () => {
    withFile('args', Buffer.from('0123'), C.O_RDWR!, (fd) => {
      const buf = Buffer.alloc(4);
      expect(() => sys.pread(fd, buf, 0, 4, -1)).toThrow(RangeError);
      expect(() => sys.pread(fd, buf, 0, 4, 1.5)).toThrow(RangeError);
      expect(() => sys.pread(fd, buf, 0, 5, 0)).toThrow(RangeError);
      expect(() => sys.pread(fd, buf, 0, 4, '0' as unknown as number)).toThrow(TypeError);
      expect(() => sys.pwrite(fd, 'ab' as unknown as Uint8Array, 0, 2, 0)).toThrow(TypeError);
      expect(() => sys.pwrite(fd, buf, -1, 2, 0)).toThrow(RangeError);
      expect(() => sys.fadvise(fd, -1, 0, 0)).toThrow(RangeError);
      expect(() => sys.fadvise(fd, 0, 0, 9)).toThrow(RangeError);
      expect(() => sys.open('a\0b', 0)).toThrow(TypeError);
      expect(sys.fstat(fd).size).toBe(4); // nothing was written
    });
  });
});

describe('openBeneath', () => {
  let root: number;
  beforeAll(() => {
    mkdirSync(join(dir, 'www/sub'), { recursive: true });
    writeFileSync(join(dir, 'www/sub/b.txt'), 'b');
    writeFileSync(join(dir, 'secret'), 's');
    symlinkSync('/etc/passwd', join(dir, 'www/out'));
    symlinkSync('../secret', join(dir, 'www/up'));
    symlinkSync('sub/b.txt', join(dir, 'www/in'));
    root = sys.openDir(join(dir, 'www'));
  });
  afterAll(() => sys.close(root));

  it('opens paths beneath the root, symlinks inside included', () => {
    for (const p of ['sub/b.txt', 'in', './sub/../sub/b.txt']) {
      const fd = sys.openBeneath(root, p, C.O_RDONLY!);
      expect(sys.fstat(fd).size).toBe(1);
      sys.close(fd);
    }
  });

  it.each(['../secret', '/etc/passwd', 'out', 'up', 'sub/../../secret'])('refuses %s with EXDEV', (p) => {
    expect(() => sys.openBeneath(root, p, C.O_RDONLY!)).toThrow(
      expect.objectContaining({ code: 'EXDEV', syscall: 'openat2', path: p }),
    );
  });

  it('refuses /proc magic links with ELOOP', () => {
    const proc = sys.openDir('/proc/self');
    try {
      expect(() => sys.openBeneath(proc, 'fd/0', C.O_RDONLY!)).toThrow(expect.objectContaining({ code: 'ELOOP' }));
    } finally {
      sys.close(proc);
    }
  });
});

describe('alignedBuffer', () => {
  it('is aligned, zeroed and sized', () => {
    for (const align of [512, 4096, 65536]) {
      const b = sys.alignedBuffer(10_000, align);
      expect(b.length).toBe(10_000);
      expect(sys.addressAlignment(b)).toBeGreaterThanOrEqual(align);
      expect(b.every((x) => x === 0)).toBe(true);
    }
    expect(sys.alignedBuffer(0).length).toBe(0);
    expect(sys.addressAlignment(sys.alignedBuffer(8192), 1)).toBe(1);
  });

  it('is an ErrnoError ENOMEM from posix_memalign when the memory cannot be had', (ctx) => {
    // A child under an address-space limit (ulimit -v) of what node with rawio takes plus
    // 512 MiB: 2 GiB - 1 bytes cannot fit in it, whatever node's own size. Under the
    // sanitizer run (libasan preloaded) AddressSanitizer's allocator aborts the process on
    // an allocation it cannot make, where libc's posix_memalign returns ENOMEM: that run
    // cannot see the error; the plain run covers this case.
    if (/libasan/.test(process.env.LD_PRELOAD ?? ''))
      ctx.skip("AddressSanitizer's allocator aborts on out of memory instead of failing the call");
    const dist = new URL('../dist/src/index.js', import.meta.url).href;
    const node = (script: string, limitKiB?: number): string =>
      execFileSync(
        'sh',
        [
          '-c',
          `${limitKiB === undefined ? '' : `ulimit -v ${limitKiB} && `}exec "$@"`,
          'sh',
          process.execPath,
          '--input-type=module',
        ],
        { input: `import { readFileSync } from 'node:fs'; import { sys } from ${JSON.stringify(dist)};\n${script}` },
      ).toString();
    const size = Number(
      node(
        `sys.alignedBuffer(4096); console.log(/VmSize:\\s+(\\d+)/.exec(readFileSync('/proc/self/status', 'utf8'))[1]);`,
      ),
    );
    expect(size).toBeGreaterThan(0);
    const got = JSON.parse(
      node(
        `try { sys.alignedBuffer(2 ** 31 - 1); console.log('null'); } catch (e) {
          console.log(JSON.stringify({ name: e.constructor.name, code: e.code, errno: e.errno, syscall: e.syscall }));
        }`,
        size + 512 * 1024,
      ),
    ) as unknown;
    expect(got).toEqual({ name: 'ErrnoError', code: 'ENOMEM', errno: -12, syscall: 'posix_memalign' });
  });

  it('refuses bad sizes and alignments', () => {
    expect(() => sys.alignedBuffer(-1)).toThrow(RangeError);
    expect(() => sys.alignedBuffer(1.5)).toThrow(RangeError);
    expect(() => sys.alignedBuffer('1' as unknown as number)).toThrow(TypeError);
    expect(() => sys.alignedBuffer(4096, 256)).toThrow(RangeError);
    expect(() => sys.alignedBuffer(4096, 1000)).toThrow(RangeError);
    expect(() => sys.alignedBuffer(4096, 3 * 512)).toThrow(RangeError);
  });
});

describe('a detached buffer', () => {
  // Transferred away: its view reads as empty and its address as 0 (which looked aligned to 2^30).
  const detached = () => {
    const b = new Uint8Array(4096);
    structuredClone(b.buffer, { transfer: [b.buffer] });
    return b;
  };

  it('is a TypeError to addressAlignment, pread, pwrite, directRead, directWrite and directIoError', () => {
    withFile('detached', Buffer.alloc(4096, 1), C.O_RDWR!, (fd) => {
      const calls: [string, () => unknown][] = [
        ['addressAlignment', () => sys.addressAlignment(detached())],
        ['pread', () => sys.pread(fd, detached(), 0, undefined, 0)],
        ['pwrite', () => sys.pwrite(fd, detached(), 0, undefined, 0)],
        ['directRead', () => sys.directRead(fd, detached(), 0, undefined, 0)],
        ['directWrite', () => sys.directWrite(fd, detached(), 0, undefined, 0)],
        ['directIoError', () => sys.directIoError(-22, 'pread', fd, detached(), 0, 0, 0)],
      ];
      for (const [name, call] of calls) {
        expect(call, name).toThrow(TypeError);
        expect(call, name).toThrow(/not detached/);
      }
      // An empty buffer that is not detached is still fine.
      expect(sys.pread(fd, new Uint8Array(0), 0, undefined, 0)).toBe(0);
      expect(sys.addressAlignment(new Uint8Array(0))).toBeGreaterThan(0);
    });
  });
});

describe('mmap', () => {
  const data = Buffer.from(Array.from({ length: 3 * 4096 + 5 }, (_, i) => (i * 7) & 0xff));

  it('maps from any offset, clamped to EOF', () => {
    withFile('m', data, C.O_RDONLY!, (fd) => {
      const m = sys.mmap(fd, 4097, 4096);
      expect(m.equals(data.subarray(4097, 8193))).toBe(true);
      const tail = sys.mmap(fd, 8000, 1 << 20); // beyond EOF: what exists
      expect(tail.equals(data.subarray(8000))).toBe(true);
      expect(sys.mmap(fd, data.length + 10, 10).length).toBe(0); // past the end
      sys.munmap(m);
      sys.munmap(tail);
    });
  });

  it('munmap detaches the Buffer: later access sees nothing, a second munmap is a no-op', () => {
    withFile('m2', data, C.O_RDONLY!, (fd) => {
      const m = sys.mmap(fd, 0, data.length);
      expect(m[5]).toBe(data[5]);
      sys.munmap(m);
      expect(m.length).toBe(0);
      expect(m.buffer.byteLength).toBe(0);
      expect(m[5]).toBeUndefined();
      expect(() => m.readUInt8(5)).toThrow(RangeError);
      expect(m.toString()).toBe('');
      expect(() => sys.munmap(m)).not.toThrow();
    });
  });

  it('refuses what is not a whole mapping, and files that cannot be mapped', () => {
    withFile('m3', data, C.O_RDONLY!, (fd) => {
      const m = sys.mmap(fd, 0, 8192);
      expect(() => sys.munmap(m.subarray(1))).toThrow(TypeError);
      expect(() => sys.munmap(Buffer.alloc(8))).toThrow(TypeError);
      expect(() => sys.mmap(fd, -1, 10)).toThrow(RangeError);
      expect(m[8191]).toBe(data[8191]); // still mapped after the refusals
      sys.munmap(m);
    });
    const [r, w] = sys.pipe();
    expect(() => sys.mmap(r, 0, 4096)).toThrow(ErrnoError);
    sys.close(r);
    sys.close(w);
  });

  it('works in a worker thread too (the addon is context-aware)', async () => {
    const p = join(dir, 'm5');
    writeFileSync(p, data);
    const src = `
      const { parentPort } = require('node:worker_threads');
      import(${JSON.stringify(join(process.cwd(), 'dist/src/index.js'))}).then(({ sys, constants }) => {
        const fd = sys.open(${JSON.stringify(p)}, constants.O_RDONLY);
        const m = sys.mmap(fd, 1, 10);
        const copy = Array.from(m);
        sys.munmap(m);
        const a = sys.alignedBuffer(4096);
        sys.close(fd);
        parentPort.postMessage({ copy, len: m.length, aligned: sys.addressAlignment(a) >= 4096 });
      });`;
    const w = new Worker(src, { eval: true });
    const msg = await new Promise<{ copy: number[]; len: number; aligned: boolean }>((resolve, reject) =>
      w.once('message', resolve).once('error', reject),
    );
    await w.terminate();
    expect(msg).toEqual({ copy: Array.from(data.subarray(1, 11)), len: 0, aligned: true });
  });

  it('the process lives when a munmapped Buffer is used afterwards', () => {
    const p = join(dir, 'm4');
    writeFileSync(p, data);
    const script = `
      import { sys, constants } from ${JSON.stringify(join(process.cwd(), 'dist/src/index.js'))};
      import { createHash } from 'node:crypto';
      const fd = sys.open(${JSON.stringify(p)}, constants.O_RDONLY);
      const m = sys.mmap(fd, 0, 1 << 20);
      const view = new Uint8Array(m.buffer, m.byteOffset, m.length);
      sys.munmap(m);
      let sum = 0;
      for (let i = 0; i < 20000; i++) sum += (m[i] ?? 0) + (view[i] ?? 0);
      createHash('sha256').update(m).digest();
      Buffer.from(m); m.indexOf(0); m.toString('hex');
      let threw = 0;
      for (const f of [() => m.fill(1), () => m.readUInt32LE(0), () => view.set([1], 0), () => m.copy(Buffer.alloc(8))])
        try { f(); } catch { threw++; }
      console.log('alive', sum, m.length, view.length, threw);`;
    const out = execFileSync(process.execPath, ['--input-type=module', '-e', script], { encoding: 'utf8' });
    expect(out.trim()).toMatch(/^alive 0 0 0 [1-4]$/);
  });
});
