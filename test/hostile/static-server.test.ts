/**
 * Static-server escapes through a running server (the protocol's own test checks handle()
 * directly): every spelling of `..`, encoded slashes and backslashes, absolute and
 * NUL-carrying paths, a symlink out of the root, a very long path, and an oversized head —
 * each refused with a 4xx and never the secret's bytes, while the root's file is served.
 */
import { mkdtempSync, rmSync, symlinkSync, writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type Server } from '../helpers/rawio.js';

function raw(port: number, request: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => c.write(request));
    c.on('data', (d) => {
      chunks.push(d);
      const s = Buffer.concat(chunks).toString('latin1');
      const m = /content-length: (\d+)/i.exec(s);
      const end = s.indexOf('\r\n\r\n');
      if (end >= 0 && m && s.length >= end + 4 + Number(m[1])) {
        c.destroy();
        resolve(s);
      }
    });
    c.on('close', () => resolve(Buffer.concat(chunks).toString('latin1')));
    c.on('error', reject);
  });
}

describe.each(['single', 'multi-reactor-pool'] as const)('static escapes through a running %s server', (model) => {
  let server: Server;
  let base: string;
  const SECRET = 'TOP-SECRET-BYTES';
  beforeAll(async () => {
    base = mkdtempSync(join(tmpdir(), 'rawio-escape-'));
    mkdirSync(join(base, 'root', 'sub'), { recursive: true });
    writeFileSync(join(base, 'secret.txt'), SECRET);
    writeFileSync(join(base, 'root', 'ok.txt'), 'fine');
    symlinkSync(join(base, 'secret.txt'), join(base, 'root', 'link.txt'));
    symlinkSync(base, join(base, 'root', 'sub', 'up'));
    server = await serve({ model, protocol: 'static', root: join(base, 'root'), workers: 1, pool: 1 });
  });
  afterAll(async () => {
    await server.close();
    rmSync(base, { recursive: true });
  });

  const get = (path: string) => raw(server.port, `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`);

  it('serves a file inside the root', async () => {
    expect(await get('/ok.txt')).toMatch(/^HTTP\/1\.1 200[\s\S]*fine$/);
  });

  it.each([
    '/../secret.txt',
    '/%2e%2e/secret.txt',
    '/%2E%2E/secret.txt',
    '/.%2e/secret.txt',
    '/..%2fsecret.txt',
    '/..%2Fsecret.txt',
    '/sub/../../secret.txt',
    '/sub/%2e%2e/%2e%2e/secret.txt',
    '/..\\secret.txt',
    '/..%5csecret.txt',
    '//etc/passwd',
    `/${'../'.repeat(20)}etc/passwd`,
    '/%2fetc%2fpasswd',
    '/ok.txt%00.png',
    '/ok.txt\0',
    '/link.txt',
    '/sub/up/secret.txt',
    '/%252e%252e/secret.txt',
    `/${'a/'.repeat(3000)}x`,
    'http://x/../secret.txt',
    '../secret.txt',
  ])('refuses %s', async (path) => {
    const got = await get(path);
    expect(got).not.toContain(SECRET);
    expect(got).not.toContain('root:x:0');
    expect(got).toMatch(/^HTTP\/1\.1 4\d\d /);
  });

  it('answers 431 to a head over the limit and stays up', async () => {
    const got = await raw(server.port, `GET /ok.txt HTTP/1.1\r\nHost: x\r\nX: ${'a'.repeat(70_000)}\r\n\r\n`);
    expect(got).toMatch(/^HTTP\/1\.1 431 /);
    expect(await get('/ok.txt')).toMatch(/^HTTP\/1\.1 200/);
  });
});
