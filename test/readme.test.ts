/**
 * The README's echo server is a program people will paste: run it (in a child process, since
 * run() owns its thread) on a free port and check that it echoes.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, it } from 'vitest';

const root = fileURLToPath(new URL('..', import.meta.url));

it('the README echo server runs and echoes', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const code = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!).find((c) => c.includes('epoll-et'))!;
  expect(code).toContain("backend: 'epoll-et'");
  const program = code
    .replace("from 'rawio'", `from ${JSON.stringify(join(root, 'dist/src/index.js'))}`)
    .replace("sys.listenTcp('127.0.0.1', 7000)", "sys.listenTcp('127.0.0.1', 0)")
    .replace(/console\.log\(.*\);/, 'console.log(sys.localPort(lfd));');
  const dir = mkdtempSync(join(tmpdir(), 'rawio-readme-'));
  const file = join(dir, 'echo.mjs');
  writeFileSync(file, program);
  const child = spawn(process.execPath, [file], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      child.once('exit', (c) => reject(new Error(`exited with ${c}`)));
    });
    expect(port).toBeGreaterThan(0);
    const echoed = await new Promise<string>((resolve, reject) => {
      let got = '';
      const s = net.connect(port, '127.0.0.1', () => s.end('hello, edge-triggered world\n'));
      s.on('data', (d: Buffer) => (got += d.toString()));
      s.on('end', () => resolve(got));
      s.on('error', reject);
    });
    expect(echoed).toBe('hello, edge-triggered world\n');
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});

it('the README first program (server.mjs + app.mjs) runs and answers', async () => {
  const readme = readFileSync(join(root, 'README.md'), 'utf8');
  const blocks = [...readme.matchAll(/```js\n([\s\S]*?)```/g)].map((m) => m[1]!);
  const app = blocks.find((b) => b.startsWith('// app.mjs'))!;
  const server = blocks
    .find((b) => b.startsWith('// server.mjs'))!
    .replace("from 'rawio'", `from ${JSON.stringify(join(root, 'dist/src/index.js'))}`)
    .replace('port: 8080', 'port: 0');
  const dir = mkdtempSync(join(tmpdir(), 'rawio-readme-'));
  writeFileSync(join(dir, 'app.mjs'), app);
  writeFileSync(join(dir, 'server.mjs'), server);
  const child = spawn(process.execPath, [join(dir, 'server.mjs')], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    const port = await new Promise<number>((resolve, reject) => {
      child.stdout.once('data', (d: Buffer) => resolve(Number(/:(\d+)\//.exec(d.toString())![1])));
      child.once('exit', (c) => reject(new Error(`exited with ${c}`)));
    });
    const got = await new Promise<string>((resolve, reject) => {
      let text = '';
      const s = net.connect(port, '127.0.0.1', () =>
        s.write('GET /anything HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n'),
      );
      s.on('data', (d: Buffer) => (text += d.toString()));
      s.on('end', () => resolve(text));
      s.on('error', reject);
    });
    expect(got).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(got.endsWith('\r\n\r\nhello from GET /anything\n')).toBe(true);
  } finally {
    child.kill();
    rmSync(dir, { recursive: true, force: true });
  }
});
