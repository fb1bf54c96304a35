/**
 * `rawio loadgen` and what the command adds to the load generator: a run by request count,
 * raw bytes from a file, the HDR percentile table, and the command line itself (`--help`,
 * unknown flags refused, `--json`), run as a real process against servers in this one.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer as createHttpServer } from 'node:http';
import { createServer, type AddressInfo, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { hdrTable, loadgen, percentile, resolveTarget } from '../dist/src/loadgen/index.js';
import { packageRoot } from '../dist/src/sys/native.js';

const CLI = join(packageRoot, 'dist/src/cli.js');

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return (server.address() as AddressInfo).port;
}

function close(server: Server): Promise<void> {
  return new Promise((resolve) => server.close(() => resolve()));
}

/** Runs `rawio ...` without blocking this process's loop (the servers live here). */
function rawio(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += String(d)));
    child.stderr.on('data', (d: Buffer) => (stderr += String(d)));
    child.on('close', (status) => resolve({ status, stdout, stderr }));
  });
}

describe('a run by request count', () => {
  it('sends exactly N requests over several threads and connections and waits for every reply', async () => {
    let seen = 0;
    const server = createHttpServer((_req, res) => {
      seen++;
      res.end('ok');
    });
    const port = await listen(server);
    const r = await loadgen({ port, protocol: 'http', connections: 5, threads: 2, pipeline: 3, requests: 1001 });
    server.closeAllConnections();
    await close(server);
    expect(r.sent).toBe(1001);
    expect(r.received).toBe(1001);
    expect(r.requests).toBe(1001);
    expect(seen).toBe(1001);
    expect(r.latencyUs.count).toBe(1001);
  });
});

describe('raw bytes from a file', () => {
  it('sends the file as each request and counts replies of --reply-size bytes', async () => {
    const request = Buffer.from('*1\r\n$4\r\nPING\r\n');
    const reply = Buffer.from('+PONG\r\n');
    let requests = 0;
    const server = createServer((s) => {
      let pending = 0;
      s.on('data', (d) => {
        pending += d.length;
        const n = Math.floor(pending / request.length);
        pending -= n * request.length;
        requests += n;
        s.write(Buffer.concat(Array.from({ length: n }, () => reply)));
      });
    });
    const port = await listen(server);
    const dir = mkdtempSync(join(tmpdir(), 'rawio-loadgen-'));
    const file = join(dir, 'request.bin');
    writeFileSync(file, request);
    const res = await rawio([
      'loadgen',
      '--target',
      `127.0.0.1:${port}`,
      '--protocol',
      'raw',
      '--file',
      file,
      '--reply-size',
      String(reply.length),
      '--pipeline',
      '4',
      '--connections',
      '2',
      '--requests',
      '500',
      '--json',
    ]);
    await close(server);
    rmSync(dir, { recursive: true });
    expect(res.status, res.stderr).toBe(0);
    const r = JSON.parse(res.stdout) as { received: number; bytesOut: number; bytesIn: number };
    expect(r.received).toBe(500);
    expect(requests).toBe(500);
    expect(r.bytesOut).toBe(500 * request.length);
    expect(r.bytesIn).toBe(500 * reply.length);
  });
});

describe('the HDR percentile table', () => {
  // 1000 samples: 1..1000 µs, one each, as (ns, count) pairs.
  const hist = new Float64Array(Array.from({ length: 1000 }, (_, i) => [(i + 1) * 1000, 1]).flat());

  it('gives the value at each level and the count at or below it', () => {
    expect(percentile(hist, 0.5)).toBe(500);
    expect(percentile(hist, 0.99)).toBe(990);
    expect(percentile(hist, 1)).toBe(1000);
    const rows = hdrTable(hist);
    expect(rows[0]).toMatchObject({ percentile: 0, valueUs: 1, totalCount: 1 });
    expect(rows.at(-1)).toMatchObject({ percentile: 1, valueUs: 1000, totalCount: 1000, inverse: Infinity });
    for (const r of rows) expect(r.totalCount).toBe(Math.max(1, Math.ceil(r.percentile * 1000 - 1e-9)));
    // the levels close in on 100% but stop where 1000 samples can no longer resolve them
    expect(rows.filter((r) => r.inverse > 1000 && Number.isFinite(r.inverse))).toEqual([]);
    expect(hdrTable(new Float64Array(0))).toEqual([]);
  });

  it('is printed by --latency, beside p50 … p99.999', async () => {
    const server = createHttpServer((_req, res) => res.end('ok'));
    const port = await listen(server);
    const res = await rawio(['loadgen', '--target', `127.0.0.1:${port}`, '--requests', '300', '--latency']);
    server.closeAllConnections();
    await close(server);
    expect(res.status, res.stderr).toBe(0);
    expect(res.stdout).toContain('300 requests');
    for (const level of ['50.000%', '99.900%', '99.990%', '99.999%', '100.000%']) expect(res.stdout).toContain(level);
    expect(res.stdout).toMatch(/Value\s+Percentile\s+TotalCount 1\/\(1-Percentile\)/);
    expect(res.stdout).toMatch(/1\.000000\s+300\s*$/m);
  });
});

describe('the command line', () => {
  it('--help prints the flags', async () => {
    const res = await rawio(['loadgen', '--help']);
    expect(res.status).toBe(0);
    for (const flag of ['--target', '--rate', '--requests', '--pipeline', '--threads', '--json', '--latency'])
      expect(res.stdout).toContain(flag);
  });

  it.each([
    [['--target', '127.0.0.1:1', '--conections', '3'], /unknown option '--conections'/i],
    [['--protocol', 'http'], /--target HOST:PORT is required/],
    [['--target', '127.0.0.1:1', '--connections', 'many'], /--connections wants a whole number/],
    [['--target', '127.0.0.1:1', '--duration', 'soon'], /--duration wants a time/],
    [['--target', '127.0.0.1:1', '--protocol', 'raw'], /needs --file/],
    [['--target', '127.0.0.1:1', '--command', 'get:1,del:1', '--protocol', 'resp'], /unknown command 'del'/],
    [['--target', 'nohostport'], /HOST:PORT/],
  ])('refuses %j', async (args, message) => {
    const res = await rawio(['loadgen', ...args]);
    expect(res.status).not.toBe(0);
    expect(res.stderr).toMatch(message);
  });

  it('resolves names and IPv6 targets once, to numeric addresses', async () => {
    expect(await resolveTarget('[::1]:80')).toEqual({ host: '::1', port: 80 });
    expect(await resolveTarget('127.0.0.1:8080')).toEqual({ host: '127.0.0.1', port: 8080 });
    expect((await resolveTarget('localhost:80')).host).toMatch(/^(127\.0\.0\.1|::1)$/);
    await expect(resolveTarget('127.0.0.1:70000')).rejects.toThrow(RangeError);
  });
});
