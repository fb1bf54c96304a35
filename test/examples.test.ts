/**
 * Every program in examples/ runs as a user would run it (`node examples/<name>.mjs`,
 * importing 'rawio' through the package's own name) and does what its header says.
 * Servers are started on port 0; the test reads the port from their first line of output.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import net from 'node:net';
import { exited } from './helpers/procs.js';
import { Ring, modelNames } from './helpers/rawio.js';

const examples = fileURLToPath(new URL('../examples/', import.meta.url));
const dir = mkdtempSync(join(tmpdir(), 'rawio-examples-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

interface Run {
  child: ChildProcess;
  port: number;
  exited: Promise<number | null>;
}

/** Starts an example server and resolves once it prints the line with its port. */
function start(name: string, args: string[]): Promise<Run> {
  const child = spawn(process.execPath, [join(examples, name), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  const exited = new Promise<number | null>((r) => child.once('exit', (code) => r(code)));
  return new Promise((resolve, reject) => {
    let out = '';
    child.stdout!.on('data', (d: Buffer) => {
      out += d.toString();
      const m = /:(\d+)\/?\S*\n/.exec(out);
      if (m) resolve({ child, port: Number(m[1]), exited });
    });
    void exited.then((code) => reject(new Error(`${name} exited with ${code}: ${out}`)));
  });
}

async function stop(run: Run): Promise<void> {
  run.child.kill('SIGTERM');
  await run.exited;
}

/** Runs an example to its end: its exit code and output. */
function runToEnd(name: string, args: string[] = []): Promise<{ code: number | null; out: string }> {
  const child = spawn(process.execPath, [join(examples, name), ...args], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.on('data', (d: Buffer) => (out += d.toString()));
  // 'close', not 'exit': 'exit' may come before the last of stdout has been read.
  return exited(child).then((code) => ({ code, out }));
}

function request(
  port: number,
  method: string,
  path: string,
  body?: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method, path, headers, agent: false }, (res) => {
      const parts: Buffer[] = [];
      res.on('data', (d: Buffer) => parts.push(d));
      res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
    });
    req.on('error', reject);
    req.end(body);
  });
}

const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

describe('examples/', () => {
  it('echo-et.mjs echoes over edge-triggered epoll', async () => {
    const run = await start('echo-et.mjs', ['0']);
    try {
      const echoed = await new Promise<string>((resolve, reject) => {
        let got = '';
        const s = net.connect(run.port, '127.0.0.1', () => s.end('edge-triggered\n'.repeat(1000)));
        s.on('data', (d: Buffer) => (got += d.toString()));
        s.on('end', () => resolve(got));
        s.on('error', reject);
      });
      expect(echoed).toBe('edge-triggered\n'.repeat(1000));
    } finally {
      await stop(run);
    }
  });

  it('json-api.mjs serves a shared to-do list from every reactor thread', async () => {
    const run = await start('json-api.mjs', ['0']);
    try {
      for (const title of ['one', 'two', 'three']) {
        const r = await request(run.port, 'POST', '/todos', JSON.stringify({ title }));
        expect(r.status).toBe(201);
      }
      const all = await Promise.all(Array.from({ length: 6 }, () => request(run.port, 'GET', '/todos')));
      for (const r of all) {
        expect(r.headers['content-type']).toBe('application/json');
        expect(JSON.parse(r.body.toString())).toEqual([
          { id: 1, title: 'one' },
          { id: 2, title: 'two' },
          { id: 3, title: 'three' },
        ]);
      }
      expect((await request(run.port, 'POST', '/todos', '{bad json')).status).toBe(500);
      expect((await request(run.port, 'GET', '/nope')).status).toBe(404);
    } finally {
      await stop(run);
    }
    expect(await run.exited).toBe(0);
  });

  it('static-headers.mjs sends files with its own headers, and refuses to leave the root', async () => {
    const root = mkdtempSync(join(dir, 'root-'));
    const data = Buffer.alloc(200_000, 'rawio ');
    writeFileSync(join(root, 'page.html'), data);
    const run = await start('static-headers.mjs', [root, '0']);
    try {
      const r = await request(run.port, 'GET', '/page.html');
      expect(r.status).toBe(200);
      expect(r.headers['cache-control']).toBe('public, max-age=60');
      expect(r.headers['content-type']).toBe('text/html; charset=utf-8');
      expect(sha(r.body)).toBe(sha(data));
      const again = await request(run.port, 'GET', '/page.html', undefined, { 'if-none-match': r.headers.etag! });
      expect(again.status).toBe(304);
      expect((await request(run.port, 'GET', '/%2e%2e/%2e%2e/etc/passwd')).status).toBeGreaterThanOrEqual(403);
      expect((await request(run.port, 'GET', '/missing')).status).toBe(404);
    } finally {
      await stop(run);
    }
  });

  it('lines-all-models.mjs serves one protocol module on every model', async () => {
    const { code, out } = await runToEnd('lines-all-models.mjs');
    expect(code).toBe(0);
    const rows = out.trim().split('\n');
    expect(rows).toHaveLength(modelNames.length);
    for (const row of rows)
      expect(row).toMatch(/PONG \| hello \| 1 \| 2 \| -ERR unknown command 'NOPE' \| bye \(errors: 1\)$/);
  });

  it('uring-read.mjs reads a file through io_uring, byte-exact', async (ctx) => {
    const file = join(dir, 'read.bin');
    const data = Buffer.alloc(1_000_003);
    for (let i = 0; i < data.length; i++) data[i] = (i * 7) & 0xff;
    writeFileSync(file, data);
    const { code, out } = await runToEnd('uring-read.mjs', [file]);
    expect(code).toBe(0);
    // Said so, as the example promises, only where rawio says so too: then there is no read to check.
    if (out.includes('io_uring is not available here')) {
      expect(Ring.supported()).toBe(false);
      return ctx.skip('io_uring is not available here (the example said so)');
    }
    expect(out).toContain(`${data.length} bytes, sha256 ${sha(data)}`);
  });

  it('sendfile-node-http.mjs sends a file from a node:http response with sendfile', async () => {
    const file = join(dir, 'send.bin');
    const data = Buffer.alloc(3_000_000, 'sendfile ');
    writeFileSync(file, data);
    const run = await start('sendfile-node-http.mjs', [file, '0']);
    try {
      for (let i = 0; i < 3; i++) {
        const r = await request(run.port, 'GET', '/');
        expect(r.status).toBe(200);
        expect(sha(r.body)).toBe(sha(data));
      }
      const head = await request(run.port, 'HEAD', '/');
      expect(head.headers['content-length']).toBe(String(data.length));
    } finally {
      await stop(run);
    }
  });

  it('every example is tested here', () => {
    const tested = readFileSync(fileURLToPath(import.meta.url), 'utf8');
    const programs = ['echo-et', 'json-api', 'static-headers', 'lines-all-models', 'uring-read', 'sendfile-node-http'];
    for (const p of programs) expect(tested).toContain(`'${p}.mjs'`);
  });
});
