/**
 * The pieces of the static-file, redis-benchmark and uring-read scenarios: fio's and
 * redis-benchmark's output parsed from captured real runs (and fio run for a moment where
 * installed), the nginx static configurations (and, where nginx is
 * installed, each one serving a file byte for byte), Node's fs-stream file server, CPU time
 * from /proc/<pid>/stat, and redis-benchmark against rawio's RESP server when installed.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { get } from 'node:http';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import {
  nginxConf,
  nginxHasThreads,
  nginxStaticLocation,
  startNginx,
  treeCpuSeconds,
} from '../dist/bench/lib/external.js';
import { connectionsFor, sizeKey } from '../dist/bench/scenarios/static.js';
import { fioIops, parseFio } from '../dist/bench/scenarios/uring-read-paths.js';
import { cpuPlan } from '../dist/bench/runner.js';
import { startServer } from '../dist/bench/server.js';
import { parseRedisBenchmark, redisBenchmarkError, runRedisBenchmark, which } from '../dist/bench/tools.js';
import { serve } from './helpers/rawio.js';
import { titled } from './helpers/skips.js';
import { leakedSince, openFds } from './helpers/fds.js';

let dir: string;
const big = randomBytes((1 << 20) + 4096 + 5); // past nginx's directio 1m, not block-aligned
const small = randomBytes(5000);
beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'rawio-bench-anchors-'));
  writeFileSync(join(dir, 'big.bin'), big);
  writeFileSync(join(dir, 'small.bin'), small);
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

let fdsBefore: Map<number, string>;
beforeEach(() => {
  fdsBefore = openFds();
});
afterEach(() => {
  expect(leakedSince(fdsBefore)).toEqual([]);
});

function fetch(port: number, path: string): Promise<{ status: number; body: Buffer }> {
  return new Promise((resolve, reject) => {
    get({ host: '127.0.0.1', port, path, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(parts) }));
    }).on('error', reject);
  });
}

describe('fio output', () => {
  const fixture = (f: string) => readFileSync(new URL(`./fixtures/${f}`, import.meta.url), 'utf8');

  it("parses a captured --output-format=json run: the first job's IOPS and CPU per read", () => {
    const r = parseFio(fixture('fio-json.txt'));
    expect(r).toEqual({ iops: 22472.527473, cpuUs: expect.any(Number) });
    expect((r as { cpuUs: number }).cpuUs).toBeGreaterThan(0);
  });

  it('reads the JSON among the lines fio prints around it', () => {
    const json = fixture('fio-json.txt');
    const noisy = `note: both iodepth >= 1 and synchronous I/O engine are selected\n${json}fio: file hash not empty on exit\n`;
    expect(parseFio(noisy)).toEqual(parseFio(json));
  });

  it("is no figure when fio's job failed, read nothing, or printed no report, and says why", () => {
    // captured: fio's error line, then a report whose job has error 22 (EINVAL)
    const failed = parseFio(fixture('fio-json-job-error.txt'));
    expect(failed).toEqual({ error: expect.stringMatching(/^fio's job failed \(error 22\): fio: pid=\d+, err=22/) });
    const none = JSON.parse(fixture('fio-json.txt')) as { jobs: { read: { total_ios: number; iops: number } }[] };
    none.jobs[0]!.read.total_ios = 0;
    none.jobs[0]!.read.iops = 0;
    expect(parseFio(JSON.stringify(none, null, 2))).toEqual({ error: 'fio read nothing' });
    expect(parseFio('fio: failed parsing runtime=x\n')).toEqual({
      error: 'no JSON report from fio: fio: failed parsing runtime=x',
    });
    expect(parseFio('{\n  "jobs" : [\n}')).toEqual({ error: expect.stringMatching(/did not parse/) });
  });

  it('runs fio, and says why a run that cannot start measured nothing', (ctx) => {
    if (!which('fio')) ctx.skip('fio is not installed (CI installs it): nothing to run');
    const file = join(dir, 'fio.dat');
    writeFileSync(file, randomBytes(1 << 20));
    const ok = fioIops(file, 1 << 20, 4, 0.05, false);
    expect(ok).toEqual({ iops: expect.any(Number), cpuUs: expect.any(Number) });
    expect((ok as { iops: number }).iops).toBeGreaterThan(0);
    // installed, but failing: its own words, never "not installed"
    // under a path that is a file, not a directory: fio cannot make it
    const bad = fioIops(join(dir, 'small.bin', 'fio.dat'), 1 << 20, 1, 0.05, false);
    expect('error' in bad && bad.error).toMatch(/fio/);
    expect('error' in bad && bad.error).not.toMatch(/not installed/);
  });
});

describe('redis-benchmark output', () => {
  it('parses a captured `-q` run: the final figures, not the progress lines before them', () => {
    const out = readFileSync(new URL('./fixtures/redis-benchmark-q.txt', import.meta.url), 'utf8');
    expect(out).toContain('\r'); // the real thing, progress lines and all
    expect(parseRedisBenchmark(out)).toEqual({
      SET: { rps: 26631.16, p50us: 687 },
      GET: { rps: 28530.67, p50us: 567 },
    });
  });

  it('finds the error replies redis-benchmark shows with -e, which older versions counted as answers', () => {
    // 6.x goes on after an error reply and prints a rate of them; -e shows them on stdout
    const old = 'Error from server: ERR unknown command\nSET: 81234.56 requests per second\n';
    expect(redisBenchmarkError(old)).toBe('ERR unknown command');
    expect(redisBenchmarkError('Error from server 127.0.0.1:7000: MOVED 1 x\n')).toBe('MOVED 1 x');
    // 7.0 with -e: a warning that it has no effect, then the figures
    const seven = 'WARNING: -e option has no effect. We now immediately exit on error to avoid false results.\n';
    expect(
      redisBenchmarkError(seven + readFileSync(new URL('./fixtures/redis-benchmark-q.txt', import.meta.url), 'utf8')),
    ).toBeUndefined();
  });

  it('reads older versions without p50, and finds nothing in an error', () => {
    const old = 'SET: 81234.56 requests per second\nGET: 90000.00 requests per second\n';
    expect(parseRedisBenchmark(old).GET!.rps).toBe(90000);
    expect(parseRedisBenchmark(old).SET!.p50us).toBeNaN();
    expect(parseRedisBenchmark('Could not connect to Redis at 127.0.0.1:1: Connection refused\n')).toEqual({});
  });
});

describe('nginx static configuration', () => {
  it('writes sendfile on / off and directio with aio threads only where compiled in', () => {
    const on = nginxStaticLocation('/srv/a b', 'sendfile on', true);
    expect(on).toContain('root "/srv/a b";');
    expect(on).toMatch(/sendfile on;/);
    expect(nginxStaticLocation('/srv', 'sendfile off', true)).toMatch(/sendfile off;/);
    const dio = nginxStaticLocation('/srv', 'directio', true);
    expect(dio).toMatch(/directio 1m;/);
    expect(dio).toMatch(/aio threads;/);
    expect(nginxStaticLocation('/srv', 'directio', false)).not.toMatch(/aio/);
    const conf = nginxConf({ prefix: '/p', port: 8080, location: on, root: false });
    expect(conf).toMatch(/worker_processes 1;/);
    expect(conf).toMatch(/listen 127\.0\.0\.1:8080;/);
    expect(conf).toContain(`location / { ${on} }`);
    expect(conf).not.toMatch(/user root/);
  });

  const noNginx = which('nginx') === null ? 'nginx is not installed (CI installs it): nothing to run' : undefined;
  it.skipIf(noNginx).each(['sendfile on', 'sendfile off', 'directio'] as const)(
    titled('nginx with %s serves the files byte for byte', noNginx),

    async (mode) => {
      const n = (await startNginx(dir, cpuPlan().serverCpus, nginxStaticLocation(dir, mode, nginxHasThreads())))!;
      try {
        for (const [name, bytes] of [
          ['big.bin', big],
          ['small.bin', small],
        ] as const) {
          const r = await fetch(n.port, `/${name}`);
          expect(r.status).toBe(200);
          expect(r.body.equals(bytes)).toBe(true);
        }
      } finally {
        await n.close();
      }
    },
  );
});

describe('static scenario plan', () => {
  it('names sizes for metric keys and keeps 16 MiB files to a few connections', () => {
    expect([4 << 10, 64 << 10, 1 << 20, 16 << 20].map(sizeKey)).toEqual(['4k', '64k', '1m', '16m']);
    expect(connectionsFor(1 << 20)).toBe(50);
    expect(connectionsFor(16 << 20)).toBeLessThan(50);
  });
});

describe("Node's fs-stream file server", () => {
  it('sends a file whole with its length, and 404 for what is not there', async () => {
    const s = await startServer({
      module: new URL('../dist/bench/servers/node.js', import.meta.url).href,
      export: 'nodeStatic',
      options: { root: dir },
      cpus: cpuPlan().serverCpus,
    });
    try {
      const r = await fetch(s.port, '/big.bin');
      expect(r.status).toBe(200);
      expect(r.body.equals(big)).toBe(true);
      expect((await fetch(s.port, '/nothing.bin')).status).toBe(404);
      expect((await s.stats()).requests).toBe(2);
    } finally {
      await s.close();
    }
  });
});

describe('process CPU time', () => {
  it("reads a server tree's utime + stime from /proc/<pid>/stat, and NaN for no such process", () => {
    const before = treeCpuSeconds(process.pid);
    const until = Date.now() + 60;
    while (Date.now() < until); // burn ~60 ms of CPU (several clock ticks)
    expect(treeCpuSeconds(process.pid)).toBeGreaterThan(before);
    const gone = spawnSync('true').pid!; // exited and reaped
    expect(treeCpuSeconds(gone)).toBeNaN();
  });
});

/** Why the redis-benchmark cases skip. */
const NO_REDIS_BENCHMARK = 'redis-benchmark is not installed (CI installs redis-tools): nothing to run';

describe('redis-benchmark against rawio', () => {
  it('runs SET and GET on the single model and parses both', async (ctx) => {
    if (which('redis-benchmark') === null) ctx.skip(NO_REDIS_BENCHMARK);
    const server = await serve({ model: 'single', protocol: 'resp' });
    try {
      const r = await runRedisBenchmark({
        port: server.port,
        tests: ['set', 'get'],
        clients: 4,
        requests: 2000,
        pipeline: 4,
        cpus: cpuPlan().clientCpus,
      });
      expect(Object.keys(r).sort()).toEqual(['GET', 'SET']);
      expect(r.SET!.rps).toBeGreaterThan(0);
      expect(server.stats().requests).toBeGreaterThanOrEqual(4000);
    } finally {
      await server.close();
    }
  });

  it('rejects, naming the reply, a run against a server that answers every command with an error', async (ctx) => {
    if (which('redis-benchmark') === null) ctx.skip(NO_REDIS_BENCHMARK);
    // a RESP server of a few lines: one error reply per command it reads
    const server = createServer((c) => {
      c.on('data', (d: Buffer) => c.write('-ERR nope\r\n'.repeat((d.toString().match(/\*\d+\r\n/g) ?? []).length)));
      c.on('error', () => {});
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const port = (server.address() as AddressInfo).port;
      const run = runRedisBenchmark({
        port,
        tests: ['set', 'get'],
        clients: 2,
        requests: 200,
        pipeline: 1,
        cpus: [],
      });
      await expect(run).rejects.toThrow(/the server replied with an error: ERR nope/);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
