/**
 * rawio's servers driven by real clients nobody here wrote: curl (static files, full and
 * ranged, byte-exact), redis-cli (SET/GET/INCR round trips), redis-benchmark (every reply
 * correct under pipelining) and wrk (HTTP keep-alive load without socket errors), against
 * every model. `npm run test:interop`; .ci/run installs the clients with apt-get first.
 * A client that is not installed fails the test: these tests exist to run it.
 */
import { execFile } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { multiProactorUnsupported } from '../../dist/src/models/multi-proactor.js';
import { modelNames, serve, type ModelName, type Server } from '../helpers/rawio.js';
import { why } from '../helpers/skips.js';
import { eventually } from '../helpers/wait.js';

const run = promisify(execFile);
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

async function tool(cmd: string, args: string[], timeout = 60_000): Promise<{ stdout: string; stderr: string }> {
  return run(cmd, args, { timeout, maxBuffer: 64 << 20, encoding: 'utf8' });
}

async function curlBytes(args: string[]): Promise<Buffer> {
  const r = await promisify(execFile)('curl', ['-sS', '--fail', ...args], {
    encoding: 'buffer',
    maxBuffer: 64 << 20,
    timeout: 30_000,
  });
  return r.stdout;
}

const workersFor = (model: ModelName) => (model === 'thread-per-connection' ? 64 : 2);

let root: string;
let file: Buffer;
beforeAll(() => {
  root = mkdtempSync(join(tmpdir(), 'rawio-interop-'));
  file = randomBytes((3 << 20) + 123);
  writeFileSync(join(root, 'data.bin'), file);
  writeFileSync(join(root, 'index.html'), '<h1>rawio</h1>\n');
});
afterAll(() => rmSync(root, { recursive: true, force: true }));

/** Models this kernel cannot run, with the reason the skip reports. */
const unsupported = new Map<ModelName, string | undefined>([
  ['proactor', why.ring],
  ['multi-proactor', multiProactorUnsupported()],
]);
const runnable = modelNames.filter((m) => unsupported.get(m) === undefined);
for (const m of modelNames.filter((n) => !runnable.includes(n))) it(m, (ctx) => ctx.skip(unsupported.get(m)));

describe.each(runnable.map((m) => [m]))('%s', (model) => {
  describe('static × curl', () => {
    let server: Server;
    beforeAll(async () => {
      server = await serve({ model, protocol: 'static', root, workers: workersFor(model) });
    });
    afterAll(() => server.close());

    it('fetches a file byte-exact, whole and by range', async () => {
      const base = `http://127.0.0.1:${server.port}`;
      expect(sha(await curlBytes([`${base}/data.bin`]))).toBe(sha(file));
      expect((await curlBytes([`${base}/`])).toString()).toBe('<h1>rawio</h1>\n');
      const ranged = await curlBytes(['-r', '1000-2000999', `${base}/data.bin`]);
      expect(sha(ranged)).toBe(sha(file.subarray(1000, 2001000)));
      const suffix = await curlBytes(['-H', 'Range: bytes=-4096', `${base}/data.bin`]);
      expect(suffix.equals(file.subarray(file.length - 4096))).toBe(true);
      const status = await tool('curl', ['-s', '-o', '/dev/null', '-w', '%{http_code}', `${base}/%2e%2e/etc/passwd`]);
      expect(['403', '404', '400']).toContain(status.stdout);
    });
  });

  describe('resp × redis-cli and redis-benchmark', () => {
    let server: Server;
    beforeAll(async () => {
      server = await serve({ model, protocol: 'resp', workers: workersFor(model) });
    });
    afterAll(() => server.close());

    it('round-trips SET, GET and INCR with redis-cli', async () => {
      const cli = (...args: string[]) => tool('redis-cli', ['-p', String(server.port), ...args]);
      expect((await cli('SET', 'greeting', 'hello world')).stdout.trim()).toBe('OK');
      expect((await cli('GET', 'greeting')).stdout.trim()).toBe('hello world');
      await cli('INCR', 'n');
      expect((await cli('INCR', 'n')).stdout.trim()).toBe('2');
      expect((await cli('PING')).stdout.trim()).toBe('PONG');
    });

    it('completes redis-benchmark -t set,get -n 20000 -c 20 -P 4 with every reply correct', async () => {
      // The iterative model serves one client at a time, to the end: 20 clients that all stay
      // connected until the run is over would wait forever (its flaw), so it gets one.
      const clients = model === 'iterative' ? '1' : '20';
      const { stdout } = await tool(
        'redis-benchmark',
        ['-p', String(server.port), '-t', 'set,get', '-n', '20000', '-c', clients, '-P', '4', '-q', '--csv'],
        120_000,
      ).catch((e: Error) => {
        // What the server saw says where a stalled run stopped (connections, requests, replies).
        const out = (e as Error & { stdout?: string }).stdout ?? '';
        throw new Error(
          `${e.message}\nredis-benchmark printed: ${out}\nserver stats: ${JSON.stringify(server.stats())}`,
          { cause: e },
        );
      });
      // --csv prints one line per test; redis-benchmark exits non-zero on a wrong reply.
      expect(stdout).toMatch(/"SET"/);
      expect(stdout).toMatch(/"GET"/);
      const ks = await tool('redis-cli', ['-p', String(server.port), 'EXISTS', 'key:__rand_int__']);
      expect(ks.stdout.trim()).toBe('1');
    });
  });

  describe('http × wrk', () => {
    let server: Server;
    beforeAll(async () => {
      server = await serve({ model, protocol: 'http', workers: workersFor(model) });
    });
    afterAll(() => server.close());

    it('serves wrk -d2s with requests recorded and no socket errors', async () => {
      // --timeout: wrk counts a reply slower than 2 s as a socket error, which says how busy
      // the machine is (thread-per-connection starts a thread per new client), not what the
      // server answered; every request must still be answered within the run.
      const url = `http://127.0.0.1:${server.port}/`;
      const { stdout } = await tool('wrk', ['-t', '1', '-c', '16', '-d', '2s', '--timeout', '20s', url]);
      const requests = Number(/(\d+) requests in/.exec(stdout)?.[1] ?? 0);
      expect(requests).toBeGreaterThan(100);
      expect(stdout).not.toMatch(/Socket errors/);
      expect(stdout).not.toMatch(/Non-2xx/);
      // multi-process workers publish their counters every 50 ms: a moment later, longer on a
      // loaded machine.
      await eventually(() => server.stats().requests >= requests);
      expect(server.stats().requests).toBeGreaterThanOrEqual(requests);
    });
  });
});
