/**
 * A file named as a directory, through running servers: every spelling (`/a.txt/`,
 * `/a.txt/.`, `/a.txt//`, `/a.txt/..`, `%2f`, `%2e` …) pipelined on one connection is a
 * 404 with no file bytes, in order, on every transfer method and every model; the file
 * itself is still served after them.
 */
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { modelNames, serve, type ServeOptions } from '../helpers/rawio.js';

const AS_DIR = [
  '/a.txt/',
  '/a.txt/.',
  '/a.txt//',
  '/a.txt/./',
  '/a.txt/..',
  '/a.txt/../a.txt',
  '/a.txt%2f',
  '/a.txt%2F.',
  '/a.txt/%2e',
  '/a.txt/%2E%2E',
  '/sub/b.txt/',
  '/sub//b.txt//.',
];
const TRANSFERS = ['readwrite', 'mmap', 'sendfile', 'splice', 'uring', 'direct', 'auto'] as const;

/** Pipelines GETs of `targets` (the last with Connection: close) and returns each [status, body]. */
function pipeline(port: number, targets: string[]): Promise<[number, string][]> {
  const req = targets
    .map((t, i) => `GET ${t} HTTP/1.1\r\nHost: x\r\n${i === targets.length - 1 ? 'Connection: close\r\n' : ''}\r\n`)
    .join('');
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const c = net.connect(port, '127.0.0.1', () => c.write(req));
    c.on('data', (d) => chunks.push(d));
    c.on('error', reject);
    c.on('close', () => {
      const s = Buffer.concat(chunks).toString('latin1');
      const out: [number, string][] = [];
      for (let at = 0; at < s.length;) {
        const end = s.indexOf('\r\n\r\n', at);
        if (end < 0) break;
        const head = s.slice(at, end);
        const len = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        out.push([Number(head.split(' ')[1]), s.slice(end + 4, end + 4 + len)]);
        at = end + 4 + len;
      }
      resolve(out);
    });
  });
}

describe('a file named as a directory is a 404', () => {
  let base: string;
  beforeAll(() => {
    base = mkdtempSync(join(tmpdir(), 'rawio-asdir-'));
    mkdirSync(join(base, 'sub'));
    writeFileSync(join(base, 'a.txt'), 'FILE-A');
    writeFileSync(join(base, 'sub', 'b.txt'), 'FILE-B');
  });
  afterAll(() => rmSync(base, { recursive: true, force: true }));

  async function check(opts: Partial<ServeOptions>): Promise<void> {
    const server = await serve({ model: 'single', protocol: 'static', root: base, workers: 1, pool: 1, ...opts });
    try {
      const got = await pipeline(server.port, [...AS_DIR, '/a.txt', '/sub/b.txt/', '/sub/b.txt']);
      const want: [number, string][] = [
        ...AS_DIR.map((): [number, string] => [404, 'Not Found\n']),
        [200, 'FILE-A'],
        [404, 'Not Found\n'],
        [200, 'FILE-B'],
      ];
      expect(got).toEqual(want);
    } finally {
      await server.close();
    }
  }

  it.each(TRANSFERS)('with transfer %s', (transfer) => check({ transfer }));
  it.each(modelNames)('on model %s', (model) => check({ model }));
});
