import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { constants, sys } from './helpers/rawio.js';

const C = constants as Record<string, number>;
const EINVAL = -C.EINVAL!;
const EAGAIN = -C.EAGAIN!;
const data = randomBytes(3 * 4096 + 17);
let dir: string;
let file: number;
let empty: number;
let fdsBefore: Map<number, string>;

beforeAll(() => {
  fdsBefore = openFds();
  dir = mkdtempSync(join(tmpdir(), 'rawio-zerocopy-'));
  writeFileSync(join(dir, 'data'), data);
  writeFileSync(join(dir, 'empty'), '');
  file = sys.open(join(dir, 'data'), C.O_RDONLY!);
  empty = sys.open(join(dir, 'empty'), C.O_RDONLY!);
});
afterAll(() => {
  sys.close(file);
  sys.close(empty);
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

/** Runs fn with a connected socketpair and a pipe, closing all four afterwards. */
function withFds(fn: (s: [number, number], p: [number, number]) => void): void {
  const s = sys.socketpair();
  const p = sys.pipe();
  try {
    fn(s, p);
  } finally {
    for (const fd of [...s, ...p]) sys.close(fd);
  }
}

/** Everything readable now from a non-blocking fd. */
function drain(fd: number): Buffer {
  const parts: Buffer[] = [];
  const b = Buffer.alloc(65536);
  for (;;) {
    const n = sys.read(fd, b);
    if (n <= 0) break;
    parts.push(Buffer.from(b.subarray(0, n)));
  }
  return Buffer.concat(parts);
}

describe('sendfile', () => {
  it('sends a file range to a socket without moving the file position', () => {
    withFds(([a, b]) => {
      expect(sys.sendfile(a, file, 5, 1000)).toBe(1000);
      expect(drain(b).equals(data.subarray(5, 1005))).toBe(true);
      expect(sys.sendfile(a, file, null, 3)).toBe(3); // null: from the file position (0)
      expect(sys.sendfile(a, file, null, 3)).toBe(3);
      expect(drain(b).equals(data.subarray(0, 6))).toBe(true);
    });
  });

  it('gives the kernel answer past EOF: short count, then 0, and 0 for an empty file', () => {
    withFds(([a, b]) => {
      expect(sys.sendfile(a, file, data.length - 10, 100)).toBe(10);
      expect(sys.sendfile(a, file, data.length + 10, 100)).toBe(0);
      expect(sys.sendfile(a, empty, 0, 100)).toBe(0);
      expect(drain(b).equals(data.subarray(data.length - 10))).toBe(true);
    });
  });

  it('refuses a pipe as its source with EINVAL, writing nothing', () => {
    withFds(([a, b], [r, w]) => {
      sys.write(w, Buffer.from('hello'));
      expect(sys.sendfile(a, r, null, 5)).toBe(EINVAL);
      expect(sys.read(b, Buffer.alloc(8))).toBe(EAGAIN);
    });
  });

  it('returns EAGAIN on a full non-blocking socket', () => {
    withFds(([a]) => {
      let r = 0;
      for (let i = 0; i < 10_000 && r >= 0; i++) r = sys.sendfile(a, file, 0, data.length);
      expect(r).toBe(EAGAIN);
    });
  });
});

describe('splice and tee', () => {
  it('moves file → pipe → socket byte-exactly, with and without offsets', () => {
    withFds(([a, b], [r, w]) => {
      expect(sys.splice(file, 4097, w, null, 5000)).toBe(5000);
      expect(sys.splice(r, null, a, null, 5000, C.SPLICE_F_MOVE)).toBe(5000);
      expect(drain(b).equals(data.subarray(4097, 9097))).toBe(true);
      expect(sys.splice(file, data.length - 7, w, null, 100)).toBe(7); // short at EOF
      expect(sys.splice(file, data.length + 7, w, null, 100)).toBe(0); // past the end
      expect(sys.splice(empty, 0, w, null, 100)).toBe(0);
      expect(drain(r).equals(data.subarray(data.length - 7))).toBe(true);
    });
  });

  it('refuses with no pipe on either side (EINVAL), writing nothing', () => {
    withFds(([a, b]) => {
      expect(sys.splice(file, 0, a, null, 100)).toBe(EINVAL);
      expect(sys.read(b, Buffer.alloc(8))).toBe(EAGAIN);
    });
  });

  it('tee duplicates pipe contents without consuming them', () => {
    withFds(([, ,], [r, w]) => {
      const [r2, w2] = sys.pipe();
      try {
        sys.write(w, Buffer.from('abcdef'));
        expect(sys.tee(r, w2, 100)).toBe(6);
        expect(drain(r2).toString()).toBe('abcdef');
        expect(drain(r).toString()).toBe('abcdef');
        expect(sys.tee(r, w2, 100, C.SPLICE_F_NONBLOCK)).toBe(EAGAIN); // empty source
      } finally {
        sys.close(r2);
        sys.close(w2);
      }
    });
  });

  it('tee between non-pipes is EINVAL, writing nothing', () => {
    withFds(([a, b], [r]) => {
      expect(sys.tee(file, a, 100)).toBe(EINVAL);
      expect(sys.tee(r, a, 100)).toBe(EINVAL);
      expect(sys.read(b, Buffer.alloc(8))).toBe(EAGAIN);
    });
  });
});

describe('copyFileRange', () => {
  it('copies between files, short past EOF, 0 beyond it', () => {
    const p = join(dir, 'copy');
    const out = sys.open(p, C.O_RDWR! | C.O_CREAT! | C.O_TRUNC!);
    try {
      let done = 0;
      while (done < data.length) {
        const n = sys.copyFileRange(file, done, out, done, data.length - done);
        expect(n).toBeGreaterThan(0);
        done += n;
      }
      expect(sys.copyFileRange(file, data.length - 3, out, 100_000, 50)).toBe(3);
      expect(sys.copyFileRange(file, data.length + 3, out, 0, 50)).toBe(0);
      const got = readFileSync(p);
      expect(got.subarray(0, data.length).equals(data)).toBe(true);
      expect(got.subarray(100_000).equals(data.subarray(data.length - 3))).toBe(true);
      withFds(([a]) => expect(sys.copyFileRange(file, 0, a, null, 10)).toBeLessThan(0));
    } finally {
      sys.close(out);
    }
  });
});

describe('argument checks', () => {
  it('throws TypeError / RangeError before any syscall', () => {
    withFds(([a, b], [r, w]) => {
      expect(() => sys.sendfile(a, file, -1, 10)).toThrow(RangeError);
      expect(() => sys.sendfile(a, file, 0, -10)).toThrow(RangeError);
      expect(() => sys.sendfile(a, file, 0.5, 10)).toThrow(RangeError);
      expect(() => sys.sendfile(a, file, 0, 2 ** 60)).toThrow(RangeError);
      expect(() => sys.sendfile('1' as unknown as number, file, 0, 10)).toThrow(TypeError);
      expect(() => sys.splice(file, -1, w, null, 10)).toThrow(RangeError);
      expect(() => sys.splice(file, 0, w, null, 1.5)).toThrow(RangeError);
      expect(() => sys.splice(file, 0, w, null, 10, -1)).toThrow(RangeError);
      expect(() => sys.splice(file, '0' as unknown as number, w, null, 10)).toThrow(TypeError);
      expect(() => sys.tee(r, w, -1)).toThrow(RangeError);
      expect(() => sys.copyFileRange(file, 0, a, -5, 10)).toThrow(RangeError);
      expect(() => sys.pipe({ size: -1 })).toThrow(RangeError);
      expect(sys.read(b, Buffer.alloc(8))).toBe(EAGAIN); // nothing was sent
      expect(sys.read(r, Buffer.alloc(8))).toBe(EAGAIN);
    });
  });
});
