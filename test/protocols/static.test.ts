import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { mkdtempSync, mkdirSync, readSync, rmSync, symlinkSync, writeFileSync, closeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { createServer } from 'node:net';
import { createProtocol, type SyncProtocol, type Reply } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { feed, text } from './feed.js';

const b = (s: string): Buffer => Buffer.from(s, 'latin1');
const CONTENT = Buffer.from(Array.from({ length: 1000 }, (_, i) => (i * 13) & 0xff));

interface Got {
  status: number;
  headers: Map<string, string>;
  body: string;
  /** the file region's bytes, read from the reply's fd (then closed) */
  file?: Buffer;
  reply: Reply;
}

function get(p: SyncProtocol, target: string, extra = '', method = 'GET'): Got {
  const { frames, error } = feed(p.createCodec(), b(`${method} ${target} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`));
  const reply = error ?? p.handle(frames[0]);
  const s = text(reply.data);
  const end = s.indexOf('\r\n\r\n');
  const [line, ...fields] = s.slice(0, end).split('\r\n');
  const headers = new Map(fields.map((f) => [f.slice(0, f.indexOf(':')).toLowerCase(), f.slice(f.indexOf(':') + 2)]));
  const got: Got = { status: Number(line.split(' ')[1]), headers, body: s.slice(end + 4), reply };
  if (reply.file) {
    const buf = Buffer.alloc(reply.file.length);
    readSync(reply.file.fd, buf, 0, buf.length, reply.file.offset);
    closeSync(reply.file.fd);
    got.file = buf;
  }
  return got;
}

describe('static protocol', () => {
  let dir: string;
  let root: string;
  let p: SyncProtocol;
  let before: Map<number, string>;

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rawio-static-'));
    root = join(dir, 'root');
    mkdirSync(join(root, 'sub', 'deeper'), { recursive: true });
    mkdirSync(join(root, 'noindex'));
    writeFileSync(join(root, 'index.html'), '<h1>hi</h1>');
    writeFileSync(join(root, 'data.bin'), CONTENT);
    writeFileSync(join(root, 'empty.txt'), '');
    writeFileSync(join(root, 'sub', 'a b.css'), 'body{}');
    writeFileSync(join(root, 'sub', 'deeper', 'index.html'), 'deep');
    writeFileSync(join(dir, 'secret'), 'outside');
    symlinkSync(join(dir, 'secret'), join(root, 'escape'));
    symlinkSync('../secret', join(root, 'relative-escape'));
    symlinkSync('data.bin', join(root, 'inside-link'));
    execFileSync('mkfifo', [join(root, 'fifo')]);
    before = openFds();
    p = createProtocol('static', { root });
  });

  afterAll(() => {
    p.close();
    expect(leakedSince(before)).toEqual([]); // the root fd and every reply fd are closed
    rmSync(dir, { recursive: true, force: true });
  });

  it('frames request bodies up to 64 KiB, or maxRequest when smaller, and answers 413 past it', () => {
    const post = (q: SyncProtocol, n: number) => get(q, '/data.bin', `Content-Length: ${n}\r\n`, 'POST').status;
    expect(post(p, (64 << 10) + 1)).toBe(413);
    const small = createProtocol('static', { root, limits: { maxBody: 100 } });
    try {
      expect(post(small, 101)).toBe(413);
      const { frames, error } = feed(
        small.createCodec(),
        b('POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n' + 'x'.repeat(100)),
      );
      expect(error).toBeUndefined();
      expect(text(small.handle(frames[0]).data)).toMatch(/^HTTP\/1\.1 405/);
    } finally {
      small.close();
    }
    const big = createProtocol('static', { root, limits: { maxBody: 1 << 20 } });
    try {
      expect(post(big, (64 << 10) + 1)).toBe(413);
    } finally {
      big.close();
    }
  });

  it('serves a file through a file region with its Content-Type', () => {
    const g = get(p, '/data.bin');
    expect(g.status).toBe(200);
    expect(g.headers.get('content-length')).toBe('1000');
    expect(g.headers.get('content-type')).toBe('application/octet-stream');
    expect(g.headers.get('accept-ranges')).toBe('bytes');
    expect(g.reply.file).toMatchObject({ offset: 0, length: 1000 });
    expect(g.file!.equals(CONTENT)).toBe(true);
    expect(get(p, '/sub/a%20b.css').headers.get('content-type')).toBe('text/css; charset=utf-8');
    expect(get(p, '/sub/./a%20b.css?x=1#f').file!.toString()).toBe('body{}');
    expect(get(p, '/inside-link').file!.equals(CONTENT)).toBe(true);
  });

  it('serves index.html for directories; 403 for a directory without one', () => {
    const g = get(p, '/');
    expect(g.headers.get('content-type')).toBe('text/html; charset=utf-8');
    expect(g.file!.toString()).toBe('<h1>hi</h1>');
    expect(get(p, '/sub/deeper/').file!.toString()).toBe('deep');
    expect(get(p, '/noindex').status).toBe(403);
  });

  it('answers HEAD with headers only, and an empty file without a region', () => {
    const h = get(p, '/data.bin', '', 'HEAD');
    expect(h.status).toBe(200);
    expect(h.headers.get('content-length')).toBe('1000');
    expect(h.reply.file).toBeUndefined();
    expect(h.body).toBe('');
    const e = get(p, '/empty.txt');
    expect(e.headers.get('content-length')).toBe('0');
    expect(e.reply.file).toBeUndefined();
  });

  it('honours one Range: bytes= range (206) and refuses unsatisfiable ones (416)', () => {
    const cases: [string, number, number][] = [
      ['bytes=0-9', 0, 10],
      ['bytes=990-', 990, 10],
      ['bytes=-5', 995, 5],
      ['bytes=100-5000', 100, 900],
    ];
    for (const [range, offset, length] of cases) {
      const g = get(p, '/data.bin', `Range: ${range}\r\n`);
      expect(g.status).toBe(206);
      expect(g.headers.get('content-range')).toBe(`bytes ${offset}-${offset + length - 1}/1000`);
      expect(g.headers.get('content-length')).toBe(String(length));
      expect(g.file!.equals(CONTENT.subarray(offset, offset + length))).toBe(true);
    }
    for (const range of ['bytes=1000-', 'bytes=-0']) {
      const g = get(p, '/data.bin', `Range: ${range}\r\n`);
      expect(g.status).toBe(416);
      expect(g.headers.get('content-range')).toBe('bytes */1000');
      expect(g.reply.file).toBeUndefined();
    }
    // several ranges, a malformed one (`bytes` and `=` apart too), If-Range, or two Range
    // fields (whichever is first, and one unsatisfiable): the whole file
    for (const extra of [
      'Range: bytes=0-1,5-6\r\n',
      'Range: lines=1-2\r\n',
      'Range: bytes =0-1\r\n',
      'Range: bytes\t=0-1\r\n',
      'Range: bytes=0-1\r\nIf-Range: "x"\r\n',
      'Range: bytes=0-1\r\nRange: bytes=5-6\r\n',
      'Range: bytes=0-1\r\nX: y\r\nrange: bytes=5000-\r\n',
      'Range: bytes=5000-\r\nRange: bytes=0-1\r\n',
    ]) {
      const g = get(p, '/data.bin', extra);
      expect([extra, g.status, g.reply.file?.length]).toEqual([extra, 200, 1000]);
    }
    // blanks around the numbers are let through, as nginx does
    expect(get(p, '/data.bin', 'Range: bytes= 1 - 2 \r\n').headers.get('content-range')).toBe('bytes 1-2/1000');
    // any range of an empty file is ignored: 200, empty (a suffix range is satisfiable there)
    for (const range of ['bytes=0-0', 'bytes=0-', 'bytes=-1', 'bytes=-0']) {
      const g = get(p, '/empty.txt', `Range: ${range}\r\n`);
      expect([range, g.status, g.headers.get('content-length'), g.headers.has('content-range')]).toEqual([
        range,
        200,
        '0',
        false,
      ]);
    }
  });

  it('refuses every way out of the root', () => {
    const refused: [string, number][] = [
      ['/../secret', 403],
      ['/sub/../../secret', 403],
      ['/%2e%2e/secret', 403],
      ['/%2E%2E%2Fsecret', 403],
      ['/sub/%2e%2e%2f%2e%2e%2fsecret', 403],
      ['/..%5csecret', 403],
      ['/sub\\..\\..\\secret', 403],
      ['/escape', 403],
      ['/relative-escape', 403],
      ['/%00', 400],
      ['/data.bin%00.html', 400],
      ['/%zz', 400],
      ['/%ff%fe', 400],
      ['relative', 400],
      ['/missing', 404],
      ['/fifo', 403], // not a regular file, and opening it did not block
      ['/data.bin/x', 404],
      [`/${'a'.repeat(5000)}`, 414],
    ];
    for (const [target, status] of refused) {
      const g = get(p, target);
      expect([target, g.status]).toEqual([target, status]);
      expect(g.reply.file).toBeUndefined();
    }
    // an absolute path is taken relative to the root
    expect(get(p, '//etc/passwd').status).toBe(404);
    expect(get(p, `//${dir}/secret`).status).toBe(404);
  });

  it('serves an absolute-form target by its path, as RFC 9112 asks of every server', () => {
    expect(get(p, 'http://x/data.bin').file!.equals(CONTENT)).toBe(true);
    expect(get(p, 'HTTPS://user@x:8080/sub/a%20b.css?q=1').file!.toString()).toBe('body{}');
    for (const root of ['http://x', 'http://x/', 'http://x?q=/data.bin', 'http://x#/data.bin'])
      expect([root, get(p, root).file?.toString()]).toEqual([root, '<h1>hi</h1>']);
    // the path is judged as an origin-form one: no way out through the authority either
    expect(get(p, 'http://x/../secret').status).toBe(403);
    expect(get(p, 'http://x/%2e%2e/secret').status).toBe(403);
    expect(get(p, 'http://../secret').status).toBe(404); // '..' is the authority; the path is /secret
    expect(get(p, 'http://x/escape').status).toBe(403);
    // other forms and what is no URI stay 400
    for (const target of ['*', 'x:80', 'http:/data.bin', '1http://x/data.bin', '://x/data.bin', 'http://x/%00'])
      expect([target, get(p, target).status]).toEqual([target, 400]);
  });

  it('refuses a Unix socket under the root as it refuses a FIFO: 403, not a server error', async () => {
    const path = join(root, 'sock');
    const srv = createServer();
    await new Promise<void>((resolve) => srv.listen(path, resolve));
    try {
      const g = get(p, '/sock');
      expect(g.status).toBe(403);
      expect(g.reply.file).toBeUndefined();
    } finally {
      await new Promise((resolve) => srv.close(resolve));
      rmSync(path, { force: true });
    }
  });

  it('answers 404 for a file named as a directory (ENOTDIR), in every spelling', () => {
    const asDir = [
      '/data.bin/',
      '/data.bin/.',
      '/data.bin//',
      '/data.bin/./',
      '/data.bin/..',
      '/data.bin/../',
      '/data.bin/../index.html',
      '/data.bin%2f',
      '/data.bin%2F',
      '/data.bin%2f.',
      '/data.bin/%2e',
      '/data.bin/%2e%2e',
      '/data.bin%2f%2e%2e',
      '/data.bin/.?x=1',
      '/data.bin/#frag',
      '/sub/a%20b.css/',
      '/sub//a%20b.css//.',
      '/inside-link/',
      '/index.html/',
    ];
    for (const target of asDir) {
      const g = get(p, target);
      expect([target, g.status]).toEqual([target, 404]);
      expect(g.reply.file).toBeUndefined();
    }
    for (const method of ['HEAD', 'GET']) expect(get(p, '/data.bin/', '', method).status).toBe(404);
    // Directories still resolve through `.`, `..` and doubled slashes.
    expect(get(p, '/sub/deeper/.').file!.toString()).toBe('deep');
    expect(get(p, '/sub/deeper/../deeper//').file!.toString()).toBe('deep');
    expect(get(p, '/sub/..').file!.toString()).toBe('<h1>hi</h1>');
    expect(get(p, '//data.bin').file!.equals(CONTENT)).toBe(true);
  });

  it('tells an HTTP/1.0 keep-alive client it is kept, whatever the status, and closes without keep-alive', () => {
    const ka = 'Connection: keep-alive\r\n';
    const req = (line: string, extra = ka) => `${line} HTTP/1.0\r\n${extra}\r\n`;
    const { frames } = feed(
      p.createCodec(),
      b(
        req('GET /data.bin') +
          req('HEAD /data.bin') +
          req('GET /data.bin', `${ka}Range: bytes=0-9\r\n`) +
          req('GET /data.bin', `${ka}Range: bytes=5000-\r\n`) +
          req('GET /missing') +
          req('GET /%00') +
          req('POST /data.bin', `${ka}Content-Length: 0\r\n`) +
          req('GET /data.bin', ''),
      ),
    );
    const replies = frames.map((f) => p.handle(f));
    for (const r of replies) if (r.file) closeSync(r.file.fd);
    const got = replies.map((r) => [
      text(r.data).split(' ')[1],
      /\r\nConnection: ([^\r]*)/.exec(text(r.data))?.[1],
      !!r.close,
    ]);
    expect(got).toEqual([
      ['200', 'keep-alive', false],
      ['200', 'keep-alive', false],
      ['206', 'keep-alive', false],
      ['416', 'keep-alive', false],
      ['404', 'keep-alive', false],
      ['400', 'keep-alive', false],
      ['405', 'keep-alive', false],
      ['200', 'close', true],
    ]);
  });

  it('answers 405 with Allow for other methods', () => {
    const g = get(p, '/data.bin', 'Content-Length: 0\r\n', 'POST');
    expect(g.status).toBe(405);
    expect(g.headers.get('allow')).toBe('GET, HEAD');
  });

  it('needs a root directory', () => {
    expect(() => createProtocol('static', {})).toThrow(TypeError);
    expect(() => createProtocol('static', { root: join(dir, 'nope') })).toThrow(/ENOENT/);
    expect(() => createProtocol('static', { root: join(root, 'index.html') })).toThrow(/ENOTDIR/);
  });
});
