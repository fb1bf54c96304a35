/**
 * The C baseline of copy-c (bench/c/transfer.c through bench/lib/c-driver.ts): it compiles
 * with the system's C compiler into a private cache, sends a random file through each method
 * to a real loopback sink byte for byte, prints well-formed JSON, fails loudly on bad input,
 * and a machine without a compiler gets a reason, not a crash. Also the target that pairs
 * copy-c's rawio and C figures. The driver tests skip, saying so, where there is no cc.
 */
import { spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildTransferDriver, runTransferDriver, type CDriver, type CMethod } from '../dist/bench/lib/c-driver.js';
import { Sink } from '../dist/bench/lib/sink-client.js';
import { judgeTargets } from '../dist/bench/targets.js';
import { leakedSince, openFds } from './helpers/fds.js';
import { titled, why } from './helpers/skips.js';

const root = new URL('..', import.meta.url).pathname;
const source = join(root, 'bench/c/transfer.c');
const METHODS: CMethod[] = ['readwrite', 'mmap', 'sendfile', 'splice'];
// Past one 8 MiB mmap window and not a multiple of a page, a 128 KiB chunk or a 64 KiB pipe.
const SIZE = (8 << 20) + 12345;

const dir = mkdtempSync(join(tmpdir(), 'rawio-bench-c-'));
const file = join(dir, 'data');
const data = randomBytes(SIZE);
writeFileSync(file, data);
const fdsBefore = openFds();

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  expect(leakedSince(fdsBefore)).toEqual([]);
});

/** A sink that reads each connection to EOF and resolves with its byte count and SHA-256. */
function hashingSink(): Promise<{ server: Server; port: number; next: () => Promise<{ n: number; hash: string }> }> {
  const waiting: ((r: { n: number; hash: string }) => void)[] = [];
  const server = createServer((sock) => {
    const h = createHash('sha256');
    let n = 0;
    sock.on('data', (b: Buffer) => {
      n += b.length;
      h.update(b);
    });
    sock.on('end', () => waiting.shift()?.({ n, hash: h.digest('hex') }));
  });
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () =>
      resolve({
        server,
        port: (server.address() as AddressInfo).port,
        next: () => new Promise((r) => waiting.push(r)),
      }),
    ),
  );
}

describe.skipIf(why.cc)(titled('bench/c/transfer.c', why.cc), () => {
  let driver: CDriver;
  let bin = '';
  let sink: Awaited<ReturnType<typeof hashingSink>>;

  beforeAll(async () => {
    driver = buildTransferDriver({ source });
    if (!driver.ok) throw new Error(driver.reason);
    bin = driver.path;
    sink = await hashingSink();
  });

  afterAll(() => new Promise<void>((resolve) => sink.server.close(() => resolve())));

  it('compiles once into a private cache keyed by the source', () => {
    const again = buildTransferDriver({ source });
    expect(again).toMatchObject({ ok: true, path: bin, compiled: false });
    expect(statSync(join(bin, '..')).mode & 0o077).toBe(0);
    // The build ships the same source in dist/bench/c, where the scenario finds it.
    expect(readFileSync(join(root, 'dist/bench/c/transfer.c'), 'utf8')).toBe(readFileSync(source, 'utf8'));
  });

  it.each(METHODS)('%s sends the file exactly, count times, and reports it as JSON', async (method) => {
    const got = sink.next();
    const r = await runTransferDriver(bin, { port: sink.port, file, method, count: 2 });
    const twice = createHash('sha256').update(data).update(data).digest('hex');
    expect(await got).toEqual({ n: 2 * SIZE, hash: twice });
    expect(r).toMatchObject({ method, bytes: 2 * SIZE });
    expect(r.elapsedNs).toBeGreaterThan(0);
    for (const k of ['userUs', 'sysUs', 'voluntary', 'involuntary'] as const) {
      expect(Number.isInteger(r[k]) && r[k] >= 0, k).toBe(true);
    }
  });

  it("feeds the bench's own sink process, which counts what it read", async () => {
    const s = await Sink.start();
    try {
      const closed = s.closed();
      await runTransferDriver(bin, { port: s.port, file, method: 'splice', count: 3 });
      expect(await closed).toBe(3 * SIZE);
    } finally {
      s.stop();
    }
  });

  it('exits non-zero with a clear message on bad input', async () => {
    const port = sink.port;
    await expect(runTransferDriver(bin, { port, file, method: 'tee' as CMethod, count: 1 })).rejects.toThrow(
      /unknown method 'tee'/,
    );
    await expect(runTransferDriver(bin, { port, file: join(dir, 'none'), method: 'mmap', count: 1 })).rejects.toThrow(
      /No such file/,
    );
    await expect(runTransferDriver(bin, { port, file, method: 'sendfile', count: 0 })).rejects.toThrow(/bad count/);
    // A port nobody listens on: take one from a closed listener.
    const closed = await hashingSink();
    await new Promise<void>((resolve) => closed.server.close(() => resolve()));
    await expect(runTransferDriver(bin, { port: closed.port, file, method: 'readwrite', count: 1 })).rejects.toThrow(
      /connect.*refused/i,
    );
  });

  it('builds again when a header the source includes by quotes changes, and caches otherwise', () => {
    const src = join(dir, 'inc.c');
    const header = join(dir, 'inc.h');
    writeFileSync(src, '#include "inc.h"\nint main(void) { return ANSWER; }\n');
    writeFileSync(header, '#define ANSWER 3\n');
    const first = buildTransferDriver({ source: src, dir });
    expect(first).toMatchObject({ ok: true, compiled: true });
    expect(buildTransferDriver({ source: src, dir })).toMatchObject({ ok: true, compiled: false });
    writeFileSync(header, '#define ANSWER 4\n');
    const second = buildTransferDriver({ source: src, dir });
    expect(second).toMatchObject({ ok: true, compiled: true });
    expect(second.ok && first.ok && second.path !== first.path).toBe(true);
    expect(spawnSync(second.ok ? second.path : '', []).status).toBe(4);
  });

  it('builds again when a header included by a header changes, and survives include cycles', () => {
    const src = join(dir, 'nest.c');
    const outer = join(dir, 'nest-outer.h');
    const inner = join(dir, 'sub', 'nest-inner.h');
    mkdirSync(join(dir, 'sub'), { recursive: true });
    writeFileSync(src, '#include "nest-outer.h"\nint main(void) { return ANSWER; }\n');
    // The inner header is found beside the outer one, and includes it back (guarded).
    writeFileSync(outer, '#ifndef OUTER\n#define OUTER\n#include "sub/nest-inner.h"\n#endif\n');
    writeFileSync(inner, '#include "../nest-outer.h"\n#define ANSWER 5\n');
    const first = buildTransferDriver({ source: src, dir });
    expect(first).toMatchObject({ ok: true, compiled: true });
    expect(buildTransferDriver({ source: src, dir })).toMatchObject({ ok: true, compiled: false });
    writeFileSync(inner, '#include "../nest-outer.h"\n#define ANSWER 6\n');
    const second = buildTransferDriver({ source: src, dir });
    expect(second).toMatchObject({ ok: true, compiled: true });
    expect(spawnSync(second.ok ? second.path : '', []).status).toBe(6);
  });

  it('says why when the source does not compile', () => {
    const bad = join(dir, 'bad.c');
    writeFileSync(bad, 'int main(void) { return nope; }\n');
    const r = buildTransferDriver({ source: bad, dir });
    expect(r).toMatchObject({ ok: false, code: 'build-failed' });
    expect(!r.ok && r.reason).toMatch(/nope/);
  });
});

describe('copy-c without a C compiler', () => {
  it('reports the reason instead of failing', () => {
    const r = buildTransferDriver({ source, env: { PATH: dir } });
    expect(r).toEqual({ ok: false, code: 'no-compiler', reason: expect.stringMatching(/no C compiler/) });
  });
});

describe('the transferFile vs C target', () => {
  const target = (m: Record<string, number>) => judgeTargets(m).find((t) => /same syscalls from C/.test(t.target))!;
  const key = (side: string, method: string, size: string) => `copy-c.${side}.${method}.${size}.MBps`;

  it('pairs rawio and C per method and size, and says which pair missed', () => {
    const m: Record<string, number> = {};
    for (const method of METHODS)
      for (const size of ['1MiB', '64MiB']) {
        m[key('rawio', method, size)] = 1000;
        m[key('c', method, size)] = 1000;
      }
    expect(target(m).status).toBe('met');
    expect(target(m).keys).toContainEqual([key('rawio', 'splice', '64MiB'), key('c', 'splice', '64MiB')]);
    const t = target({ ...m, [key('rawio', 'mmap', '1MiB')]: 900 });
    expect(t.status).toBe('missed');
    expect(t.figures).toMatch(/copy-c\.rawio\.mmap\.1MiB\.MBps: 0\.90x \(missed by 5%\)/);
  });

  it("reads each pair against its own cell's A/A floor (the C driver run twice a round)", () => {
    const m: Record<string, number> = {};
    for (const method of METHODS)
      for (const size of ['1MiB', '64MiB']) {
        m[key('rawio', method, size)] = 1000;
        m[key('c', method, size)] = 1000;
        m[`copy-c.floor.${method}.${size}`] = 1.02;
      }
    // 0.90x against a 2% floor: clearly missed
    const missed = target({ ...m, [key('rawio', 'mmap', '1MiB')]: 900 });
    expect(missed.status).toBe('missed');
    expect(missed.floor).toBe(1.02);
    expect(missed.figures).toMatch(/A\/A floors up to ±2\.0%/);
    // the same 0.90x where that cell's C ran 8% apart from itself: within noise, not missed
    const noisy = target({ ...m, [key('rawio', 'mmap', '1MiB')]: 900, 'copy-c.floor.mmap.1MiB': 1.08 });
    expect(noisy.status).toBe('within noise');
    expect(noisy.figures).toMatch(/copy-c\.rawio\.mmap\.1MiB\.MBps: 0\.90x \(within noise\)/);
    expect(noisy.floor).toBe(1.08);
    // another cell's noise excuses nothing
    const other = target({ ...m, [key('rawio', 'mmap', '1MiB')]: 900, 'copy-c.floor.splice.64MiB': 1.5 });
    expect(other.status).toBe('missed');
  });

  it('is "not measured: no C compiler" when copy-c ran without one', () => {
    const t = target({ [key('rawio', 'sendfile', '1MiB')]: 1000, 'copy-c.c.no-compiler': 1 });
    expect(t.status).toBe('not measured');
    expect(t.figures).toMatch(/^not measured: no C compiler/);
  });
});
