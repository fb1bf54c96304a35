import { spawn, type ChildProcess } from 'node:child_process';
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { exchange, httpGets } from '../helpers/clients.js';
import { eventually } from '../helpers/wait.js';
import { exited } from '../helpers/procs.js';
import { titled, why } from '../helpers/skips.js';

const cli = new URL('../../dist/src/cli.js', import.meta.url).pathname;

/** Starts `rawio serve …args`; resolves with the child, its port, and its stdout so far. */
async function startServe(args: string[]): Promise<{ child: ChildProcess; port: number; out: () => string }> {
  const child = spawn(process.execPath, [cli, 'serve', ...args]);
  let out = '';
  child.stdout.on('data', (d) => (out += d));
  const port = await new Promise<number>((resolve, reject) => {
    child.stdout.on('data', () => {
      const m = /serving on 127\.0\.0\.1:(\d+)/.exec(out);
      if (m) resolve(Number(m[1]));
    });
    child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
  return { child, port, out: () => out };
}

describe('rawio serve', () => {
  it('describes every option in --help', () => {
    const help = execFileSync(process.execPath, [cli, 'serve', '--help'], { encoding: 'utf8' });
    for (const opt of [
      '--model',
      '--protocol',
      '--port',
      '--workers',
      '--backend',
      '--accept',
      '--root',
      '--transfer',
      '--directio',
      '--max-in-flight',
      '--max-output',
      '--max-files',
      '--max-queue',
      '--max-header',
      '--max-request',
      '--header-timeout',
      '--idle-timeout',
      '--max-connections',
      '--drain',
    ])
      expect(help).toContain(opt);
    expect(execFileSync(process.execPath, [cli, '--help'], { encoding: 'utf8' })).toContain('serve');
  });

  it('prints its address, serves, and shuts down cleanly on SIGTERM', async () => {
    const { child, port, out } = await startServe(['--model', 'multi-reactor', '--protocol', 'http', '--workers', '2']);
    const got = await exchange(port, httpGets(3));
    expect(got.toString().split('HTTP/1.1 200 OK').length - 1).toBe(3);
    child.kill('SIGTERM');
    const code = await exited(child);
    expect(code).toBe(0);
    expect(out()).toMatch(/closed after 1 connections, 3 requests/);
  });

  it('a signal while it starts: it says it started and closes, never that it serves, and exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-cli-early-'));
    try {
      // The command imports --handler before it starts the server, its signal handlers in
      // place: this one sends SIGTERM from there (in the command's thread only).
      const handler = join(dir, 'early.mjs');
      writeFileSync(
        handler,
        "import { isMainThread } from 'node:worker_threads';\n" +
          'if (isMainThread) process.kill(process.pid, "SIGTERM");\n' +
          "export function handle() { return { body: 'x' }; }\n",
      );
      const child = spawn(process.execPath, [
        cli,
        'serve',
        '--model',
        'single',
        '--protocol',
        'http',
        '--handler',
        handler,
      ]);
      let out = '';
      child.stdout.on('data', (d) => (out += d));
      const code = await exited(child);
      expect(code).toBe(0);
      expect(out).toMatch(/^rawio: SIGTERM: closing .*\nrawio: single started on 127\.0\.0\.1:\d+ and closes /);
      expect(out).not.toContain('serving on');
      expect(out).toMatch(/closed after 0 connections, 0 requests\n$/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('--drain: SIGTERM lets a request in its handler finish (whole reply, then EOF) before it exits 0', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'rawio-cli-drain-'));
    try {
      const [inHandler, release] = [join(dir, 'in'), join(dir, 'release')];
      const hold = new URL('../fixtures/user/hold.mjs', import.meta.url).pathname;
      const { child, port, out } = await startServe([
        '--model',
        'single',
        '--protocol',
        'http',
        '--handler',
        hold,
        '--drain',
        '20000',
      ]);
      const c = net.connect(port, '127.0.0.1');
      let got = '';
      let closed = false;
      c.on('data', (d: Buffer) => (got += d.toString('latin1')));
      c.on('close', () => (closed = true));
      c.on('error', () => undefined);
      c.write(`GET /hold?mark=${inHandler}&release=${release} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(await eventually(() => existsSync(inHandler))).toBe(true);
      child.kill('SIGTERM');
      expect(await eventually(() => out().includes('draining for at most 20000 ms'))).toBe(true);
      expect(closed).toBe(false);
      writeFileSync(release, '');
      expect(await eventually(() => closed)).toBe(true);
      expect(got).toMatch(/^HTTP\/1\.1 200 OK\r\n[^]*\r\n\r\nreleased\n$/);
      expect(await exited(child)).toBe(0);
      expect(out()).toMatch(/closed after 1 connections, 1 requests/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }, 30_000);

  it('--max-connections: a connect past the limit is closed unanswered and counted', async () => {
    const { child, port, out } = await startServe([
      '--model',
      'single',
      '--protocol',
      'resp',
      '--max-connections',
      '1',
    ]);
    const talk = (c: net.Socket) =>
      new Promise<string>((resolve) => {
        let got = '';
        c.on('data', (d: Buffer) => {
          got += d.toString();
          if (got === '+PONG\r\n') resolve(got);
        });
        c.on('close', () => resolve(got));
        c.on('error', () => undefined);
        c.write('PING\r\n');
      });
    const held = net.connect(port, '127.0.0.1');
    expect(await talk(held)).toBe('+PONG\r\n');
    expect(await talk(net.connect(port, '127.0.0.1'))).toBe(''); // closed by the server, unanswered
    held.destroy();
    child.kill('SIGTERM');
    expect(await exited(child)).toBe(0);
    expect(out()).toMatch(/closed after 1 connections, 1 requests \(1 refused at --max-connections\)/);
  }, 30_000);

  it.skipIf(why.ipv6)(
    titled('prints an IPv6 address in brackets, as --target, --bench-agent and a URL take it', why.ipv6),
    async () => {
      const args = ['serve', '--model', 'single', '--protocol', 'http', '--host', '::1', '--bench-agent', '[::1]:0'];
      const child = spawn(process.execPath, [cli, ...args]);
      try {
        let out = '';
        child.stdout.on('data', (d) => (out += d));
        await new Promise<void>((resolve, reject) => {
          child.stdout.on('data', () => /bench agent on \S+\n/.test(out) && resolve());
          child.once('exit', (code) => reject(new Error(`exited ${code}: ${out}`)));
        });
        const m = /serving on \[::1\]:(\d+)\n[^]*bench agent on (http:\/\/\[::1\]:\d+\/cpu)\n/.exec(out);
        expect(m, out).not.toBeNull();
        expect(await (await fetch(`http://[::1]:${m![1]}/`)).text()).toBe('Hello, World!');
        expect((await (await fetch(m![2]!)).json()) as object).toHaveProperty('userSeconds');
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited(child)).toBe(0);
    },
  );

  it('refuses a bad option with a clear message', () => {
    let err = '';
    try {
      execFileSync(process.execPath, [cli, 'serve', '--model', 'nope', '--protocol', 'http'], {
        encoding: 'utf8',
        stdio: 'pipe',
      });
    } catch (e) {
      err = String((e as { stderr: string }).stderr);
    }
    expect(err).toMatch(/--model wants one of .*got 'nope'/);
  });
});
