/**
 * The bench's accounting: the figures a scenario computes from what it measured, checked
 * against real runs — a rate is its units over the seconds they came in, never the units of
 * a whole run (warm-up, drain, reads still queued) over the nominal window.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, fsyncSync, mkdtempSync, openSync, readFileSync, readlinkSync, rmSync, writeSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually } from './helpers/wait.js';
import { loadgen } from '../dist/src/loadgen/index.js';
import { formatResult } from '../dist/src/loadgen-cli.js';
import { oneRound, roundFiles } from '../dist/bench/scenarios/copy.js';
import { sampleOf } from '../dist/bench/scenarios/pollution.js';
import { sys } from '../dist/src/index.js';
import { parseRedisBenchmark, parseWrk, wrkMeasured } from '../dist/bench/tools.js';
import { BS, fsPromisesIops, makeFile, parseFio } from '../dist/bench/scenarios/uring-read-paths.js';

/** An HTTP server that answers every GET with a `size`-byte body. */
function bodyServer(size: number): Server {
  const reply = Buffer.concat([
    Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${size}\r\n\r\n`),
    Buffer.alloc(size, 0x61),
  ]);
  return createServer({ noDelay: true }, (s) => {
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      for (let m = /^GET [^]*?\r\n\r\n/.exec(buf); m; m = /^GET [^]*?\r\n\r\n/.exec(buf)) {
        buf = buf.slice(m[0].length);
        s.write(reply);
      }
    });
    s.on('error', () => s.destroy());
  });
}

describe('pollution: the large streams’ MB/s', () => {
  it('is the bytes read inside the window over its seconds, not the warm-up’s and the drain’s too', async () => {
    const server = bodyServer(1 << 20);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      // the warm-up streams as much as the window: a rate of every byte over the window doubles
      const r = await loadgen({
        port,
        protocol: 'http',
        path: '/large.bin',
        connections: 1,
        warmupMs: 200,
        durationMs: 200,
        drainMs: 2000,
      });
      expect(r.bytesInWindow).toBeGreaterThan(0);
      expect(r.bytesIn).toBeGreaterThan(r.bytesInWindow); // the warm-up's bytes are not the window's
      const s = sampleOf([r], []);
      expect(s.excluded).toBeUndefined();
      expect(s.largeMBps).toBeCloseTo(r.bytesInWindow / r.seconds / 1e6, 9);
      // `rawio loadgen`'s "MiB/s in" line is the same rate
      const line = formatResult('127.0.0.1', { port, protocol: 'http' }, r, false).split('\n')[1]!;
      expect(line).toContain(`, ${(r.bytesInWindow / r.seconds / 2 ** 20).toFixed(2)} MiB/s in`);
      expect(line).not.toContain(`, ${(r.bytesIn / r.seconds / 2 ** 20).toFixed(2)} MiB/s in`);
    } finally {
      await new Promise((r) => server.close(r));
    }
  });
});

describe('loadgen: bytesInWindow', () => {
  it('holds the bytes of every reply a count counts, those that come in a stop’s drain too, as seconds does', async () => {
    // Reads the count's requests and answers none until the stop: every reply, and all its
    // bytes, come in the drain, yet they are the count's (requests, seconds to the last one).
    const body = 256 << 10;
    const reply = Buffer.concat([
      Buffer.from(`HTTP/1.1 200 OK\r\nContent-Length: ${body}\r\n\r\n`),
      Buffer.alloc(body, 0x62),
    ]);
    let seen = 0;
    const socks: Socket[] = [];
    const server = createServer((sock) => {
      socks.push(sock);
      sock.on('data', (d) => (seen += d.toString('latin1').split('GET ').length - 1));
      sock.on('error', () => sock.destroy());
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const { port } = server.address() as AddressInfo;
    try {
      const ac = new AbortController();
      const run = loadgen({ port, protocol: 'http', connections: 5, requests: 5, drainMs: 20_000, signal: ac.signal });
      expect(await eventually(() => seen === 5)).toBe(true);
      ac.abort();
      for (const sock of socks) sock.write(reply);
      const r = await run;
      expect([r.ended, r.requests, r.errors.lost]).toEqual(['stopped', 5, 0]);
      expect(r.bytesIn).toBe(5 * reply.length);
      expect(r.bytesInWindow).toBe(r.bytesIn); // no warm-up: every byte is a counted reply's
    } finally {
      for (const sock of socks) sock.destroy();
      await new Promise((r) => server.close(r));
    }
  });
});

describe('uring-read: local IOPS', () => {
  let dir: string;
  beforeAll(() => {
    // O_DIRECT wants a real file system: the working directory's, as the bench's own temp dir
    dir = mkdtempSync(join(process.cwd(), '.rawio-accounting-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('fs.promises: the reads counted over the seconds they took, the ones queued at the end included', async (ctx) => {
    const path = join(dir, 'reads.dat');
    makeFile(path, 4 << 20);
    let s;
    try {
      // 64 reads queued on libuv's 4 threads: those begun inside the window come back after it
      s = await fsPromisesIops(path, (4 << 20) / BS, 64, 0.01);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'EINVAL') return ctx.skip('O_DIRECT not supported on this file system');
      throw e;
    }
    expect(s.reads).toBeGreaterThan(0);
    expect(s.seconds).toBeGreaterThanOrEqual(0.01);
    expect(s.iops).toBe(s.reads! / s.seconds!);
  });
});

/** Bytes of `path` in the page cache, by fincore(1) (util-linux); undefined without it. */
function resident(path: string): number | undefined {
  const r = spawnSync('fincore', ['--bytes', '--noheadings', '--output', 'RES', path], { encoding: 'utf8' });
  return r.status === 0 ? Number(r.stdout.trim()) : undefined;
}

/**
 * A sink that reads nothing until the round ends (the bench's reader may lag as far behind):
 * what the sender queued stays in the socket, holding sendfile's pages.
 */
async function lazySink() {
  const held: Socket[] = [];
  let arrived = () => {};
  const server = createServer({ pauseOnConnect: true }, (s) => {
    held.push(s);
    arrived();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const { port } = server.address() as AddressInfo;
  return {
    send: async (write: (fd: number) => Promise<void>) => {
      const fd = sys.connectTcp('127.0.0.1', port);
      await write(fd);
      sys.close(fd);
      if (held.length === 0) await new Promise<void>((r) => (arrived = r));
      const s = held.shift()!;
      let n = 0;
      s.on('data', (d: Buffer) => (n += d.length));
      s.resume();
      await new Promise((r) => s.once('end', r));
      return n;
    },
    close: () => new Promise((r) => server.close(r)),
  };
}

describe('copy: a cold round', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(process.cwd(), '.rawio-accounting-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('sends every file with none of its pages cached, though the socket still holds the ones sent before', async (ctx) => {
    if (resident(process.execPath) === undefined) return ctx.skip('fincore (util-linux) is not installed');
    const sink = await lazySink();
    const size = 64 << 10;
    const cell = { size, cache: 'cold' as const, method: 'sendfile', bytes: 4 * size };
    // the warm cells' file (its pages clean, as the scenario's: DONTNEED drops only those)
    const path = join(dir, 'warm.dat');
    const w = openSync(path, 'w');
    writeSync(w, Buffer.alloc(size, 0x61));
    fsyncSync(w);
    closeSync(w);
    const warm = sys.open(path, 0);
    const fds = roundFiles(dir, size, 'cold', cell.bytes, warm);
    const cached: number[] = [];
    try {
      await oneRound(sink, fds, cell, (fd) => cached.push(resident(readlinkSync(`/proc/self/fd/${fd}`))!));
    } finally {
      for (const fd of new Set([...fds, warm])) sys.close(fd);
      await sink.close();
    }
    expect(cached).toEqual([0, 0, 0, 0]);
  });
});

/** Output the tools printed on the machine the audit ran on (wrk 4, redis-benchmark 7.0.15, fio 3.33). */
describe('the anchors’ own output, recorded, read as they mean it', () => {
  const fixture = (f: string) => readFileSync(new URL(`./fixtures/${f}`, import.meta.url), 'utf8');

  it('wrk: percentiles in us and ms to µs, the total and the rate as printed', () => {
    const w = parseWrk(fixture('wrk-units.txt'));
    expect(w).toEqual({
      rps: 32322.82,
      requests: 33764,
      latencyUs: { p50: 128, p90: 58330, p99: 191210 },
      errors: 0,
    });
    expect(wrkMeasured(w)).toBe(true);
  });

  it('wrk: a socket errors line is errors, and the run no figure', () => {
    const w = parseWrk(fixture('wrk-socket-errors.txt'));
    expect(w.errors).toBe(2811);
    expect(w.requests).toBe(1408);
    expect(wrkMeasured(w)).toBe(false);
  });

  it('redis-benchmark -q -P 16: the final line of each test, not its progress lines', () => {
    expect(parseRedisBenchmark(fixture('redis-benchmark-7-p16.txt'))).toEqual({
      SET: { rps: 735294.06, p50us: 727 },
      GET: { rps: 884955.75, p50us: 647 },
    });
  });

  it('fio: IOPS as reported (total_ios over the read runtime), CPU per read from usr/sys % of the job runtime', () => {
    const r = parseFio(fixture('fio-3.33-qd32.txt'));
    if ('error' in r) throw new Error(r.error);
    expect(r.iops).toBeCloseTo((9945 / 1410) * 1000, 4);
    // (0.567779 + 2.838893)% of 1409 ms, over 9945 reads
    expect(r.cpuUs).toBeCloseTo((((0.567779 + 2.838893) / 100) * 1409 * 1000) / 9945, 9);
  });
});
