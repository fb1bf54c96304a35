import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { leakedSince, openFds } from './helpers/fds.js';
import { constants, sys } from './helpers/rawio.js';
import { titled } from './helpers/skips.js';

const C = constants as Record<string, number>;
const fdsBefore = openFds();

/** Creates an O_DIRECT file in a new directory in `base`, or says why it cannot. */
function directFile(base: string): { dir: string; fd: number } | string {
  let dir: string;
  try {
    dir = mkdtempSync(join(base, '.rawio-direct-'));
  } catch (e) {
    return `${base} is not writable: ${(e as Error).message}`;
  }
  try {
    const fd = sys.open(join(dir, 'd'), C.O_RDWR! | C.O_CREAT! | C.O_DIRECT!);
    return { dir, fd };
  } catch (e) {
    rmSync(dir, { recursive: true, force: true });
    return `O_DIRECT refused on ${base}: ${(e as Error).message}`;
  }
}

/** Whether `fd` (O_DIRECT) takes a misaligned read: one aligned block written, then read at 100. */
function laxDirect(fd: number): boolean {
  const block = sys.alignedBuffer(4096, 4096);
  sys.pwrite(fd, block, 0, 4096, 0);
  return sys.pread(fd, sys.alignedBuffer(3 * 4096, 4096), 1, 100, 100) >= 0;
}

/**
 * What O_DIRECT in `base` allows, probed as the tests are collected so that a skipped test's
 * title says why: why it is refused, or whether misaligned I/O goes through. The probe's file
 * is gone before this returns: collection alone (`vitest list`) leaves nothing behind.
 */
function probe(base: string): { refused: string } | { refused: undefined; lax: boolean } {
  const f = directFile(base);
  if (typeof f === 'string') return { refused: f };
  try {
    return { refused: undefined, lax: laxDirect(f.fd) };
  } finally {
    sys.close(f.fd);
    rmSync(f.dir, { recursive: true, force: true });
  }
}

// The project's filesystem (ext4 here) and tmpfs (O_DIRECT there since Linux 6.6).
const bases = { project: join(process.cwd(), 'test'), tmpfs: '/dev/shm' };
const places = Object.entries(bases).map(([name, base]) => ({ name, base, ...probe(base) }));

/** The tests' O_DIRECT files, by base, made before they run and removed after. */
const files = new Map<string, { dir: string; fd: number }>();
beforeAll(() => {
  for (const p of places) {
    if (p.refused !== undefined) continue;
    const f = directFile(p.base);
    if (typeof f === 'string') throw new Error(f); // refused now, though the probe was taken
    files.set(p.base, f);
  }
});

afterAll(() => {
  for (const f of files.values()) {
    sys.close(f.fd);
    rmSync(f.dir, { recursive: true, force: true });
  }
  expect(leakedSince(fdsBefore)).toEqual([]);
});

// A filesystem that refuses O_DIRECT here says why in the title of its skipped tests.
describe.each(places.map((p) => [p.name, p] as const))('O_DIRECT on the %s filesystem', (_name, place) => {
  const skip = place.refused;
  let fd = -1;
  beforeAll(() => {
    fd = files.get(place.base)?.fd ?? -1;
  });

  it.skipIf(skip)(titled('reports its alignment', skip), () => {
    const a = sys.dioAlignment(fd);
    expect(a.supported).toBe(true);
    expect(a.memAlign).toBeGreaterThan(0);
    expect(a.offsetAlign).toBeGreaterThan(0);
    expect(a.memAlign & (a.memAlign - 1)).toBe(0);
    expect(['statx', 'fallback']).toContain(a.source);
  });

  it.skipIf(skip)(titled('writes and reads through alignedBuffer', skip), () => {
    const a = sys.dioAlignment(fd);
    const n = Math.max(4096, a.offsetAlign) * 4;
    const out = sys.alignedBuffer(n, Math.max(512, a.memAlign));
    for (let i = 0; i < n; i++) out[i] = (i * 31) & 0xff;
    expect(sys.directWrite(fd, out, 0, n, a.offsetAlign)).toBe(n);
    const back = sys.alignedBuffer(n, Math.max(512, a.memAlign));
    expect(sys.directRead(fd, back, 0, n, a.offsetAlign)).toBe(n);
    expect(back.equals(out)).toBe(true);
    // At EOF the kernel gives a short (aligned) read, then 0.
    expect(sys.directRead(fd, back, 0, n, a.offsetAlign + n)).toBe(0);
  });

  // tmpfs (no block device) takes O_DIRECT at any alignment: nothing to refuse there. Probed
  // as the tests are collected, so the skipped test's title says why; over one written block,
  // since a read at or past EOF returns 0 before any alignment is checked.
  const strict = skip ?? (place.lax ? 'this filesystem enforces no O_DIRECT alignment' : undefined);
  it.skipIf(strict)(
    titled('explains EINVAL with the alignment dioAlignment requires', strict),

    () => {
      const a = sys.dioAlignment(fd);
      const buf = sys.alignedBuffer(3 * 4096, 4096);
      const cases: [number, number, number, RegExp][] = [
        [1, 4096, 0, /misaligned: buffer address/],
        [0, 4096, 100, /misaligned: position 100/],
        [0, 100, 0, /misaligned: length 100/],
      ];
      for (const [off, len, pos, what] of cases) {
        expect(sys.pread(fd, buf, off, len, pos)).toBe(-C.EINVAL!); // the raw call: -errno
        let err: Error | undefined;
        try {
          sys.directRead(fd, buf, off, len, pos);
        } catch (e) {
          err = e as Error;
        }
        expect(err).toMatchObject({ code: 'EINVAL', syscall: 'pread' });
        expect(err!.message).toContain(`aligned to ${a.memAlign} bytes`);
        expect(err!.message).toContain(`multiples of ${a.offsetAlign}`);
        expect(err!.message).toMatch(what);
        expect(() => sys.directWrite(fd, buf, off, len, pos)).toThrow(/EINVAL.*O_DIRECT here needs/);
      }
    },
  );
});

describe('dioAlignment', () => {
  it('answers from statx on the project filesystem, with a fallback elsewhere', () => {
    const fd = sys.open(join(process.cwd(), 'package.json'), C.O_RDONLY!);
    try {
      const a = sys.dioAlignment(fd);
      expect(a).toMatchObject({ source: expect.stringMatching(/^(statx|fallback)$/), detail: expect.any(String) });
      if (a.source === 'statx') expect(a).toMatchObject({ supported: true, detail: 'statx STATX_DIOALIGN' });
      else expect(a.detail).toMatch(/no statx answer/);
    } finally {
      sys.close(fd);
    }
    const shm = sys.open(`/dev/shm/rawio-dio-${process.pid}`, C.O_RDWR! | C.O_CREAT!);
    try {
      const a = sys.dioAlignment(shm);
      // tmpfs reports no STATX_DIOALIGN: the fallback says so, without a block device.
      // A tmpfs that came to answer would be statx's answer, said as such.
      if (a.source === 'fallback') expect(a.detail).toMatch(/no statx answer/);
      else expect(a).toMatchObject({ source: 'statx', supported: true, detail: 'statx STATX_DIOALIGN' });
    } finally {
      sys.close(shm);
      rmSync(`/dev/shm/rawio-dio-${process.pid}`);
    }
    expect(() => sys.dioAlignment(-1)).toThrow(RangeError);
  });

  it('a FIFO with no writer, a pipe, a socket, a character device: unsupported, never reopened', () => {
    // A FIFO with no writer: the probe's reopen through /proc/self/fd blocked for ever. A
    // child process with a deadline, so that a hang fails the test instead of the runner.
    const dir = mkdtempSync(join(tmpdir(), 'rawio-dio-fifo-'));
    const index = fileURLToPath(new URL('../dist/src/index.js', import.meta.url));
    const code = `
      const { sys, constants } = await import(${JSON.stringify(index)});
      const fifo = sys.open(${JSON.stringify(join(dir, 'fifo'))}, constants.O_RDONLY | constants.O_NONBLOCK);
      const [r, w] = sys.pipe();
      const [a, b] = sys.socketpair();
      const dev = sys.open('/dev/null', constants.O_RDONLY);
      const got = [fifo, r, a, dev].map((fd) => sys.dioAlignment(fd));
      const buf = Buffer.alloc(8);
      const err = sys.directIoError(-constants.EINVAL, 'pread', fifo, buf, 0, 8, 0).message;
      console.log(JSON.stringify({ got, err }));`;
    try {
      execFileSync('mkfifo', [join(dir, 'fifo')]);
      const r = spawnSync(process.execPath, ['--input-type=module', '-e', code], { encoding: 'utf8', timeout: 20_000 });
      expect(r.signal, 'hung: the FIFO was reopened').toBeNull();
      expect(r.status, r.stderr).toBe(0);
      const { got, err } = JSON.parse(r.stdout) as { got: unknown[]; err: string };
      const no = { memAlign: 0, offsetAlign: 0, supported: false, detail: expect.stringMatching(/not a regular file/) };
      expect(got).toEqual([no, no, no, no].map((x) => expect.objectContaining(x)));
      expect(err).toMatch(/O_DIRECT is not supported here: not a regular file/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);
});

describe('collection', () => {
  it('leaves no O_DIRECT directory behind when the tests are only listed', () => {
    // `vitest list` collects this file and runs no hook: what collection creates stays.
    const testDir = fileURLToPath(new URL('.', import.meta.url));
    const leftovers = () => readdirSync(testDir).filter((n) => n.startsWith('.rawio-direct-'));
    const before = new Set(leftovers());
    const vitest = fileURLToPath(new URL('../node_modules/vitest/vitest.mjs', import.meta.url));
    const r = spawnSync(process.execPath, [vitest, 'list', fileURLToPath(import.meta.url)], {
      cwd: fileURLToPath(new URL('..', import.meta.url)),
      encoding: 'utf8',
      timeout: 50_000,
    });
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain('reports its alignment');
    expect(leftovers().filter((n) => !before.has(n))).toEqual([]);
  }, 60_000);
});
