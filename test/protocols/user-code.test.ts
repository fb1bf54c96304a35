/**
 * User code behind the Protocol contract, without a server: a protocol module loaded with
 * loadProtocol and an HTTP handler behind the http protocol, driven frame by frame. Errors
 * become their request's reply; responses are framed as the built-in ones are.
 */
import { openSync, closeSync, fstatSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadProtocol, type Protocol, type Reply } from '../helpers/rawio.js';
import { feed, text } from './feed.js';
import { leakedSince, openFds } from '../helpers/fds.js';

const fixture = (name: string) => new URL(`../fixtures/user/${name}`, import.meta.url);
const dir = mkdtempSync(join(tmpdir(), 'rawio-usercode-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Frames `input` with a fresh codec and handles every frame; the codec's error reply last. */
async function run(p: Protocol, input: string): Promise<Reply[]> {
  const { frames, error } = feed(p.createCodec(), Buffer.from(input, 'latin1'));
  const replies = await Promise.all(frames.map((f) => p.handle(f)));
  return error ? [...replies, error] : replies;
}

describe('protocol module', () => {
  it('frames and answers, sync and async, errors as errorReply', async () => {
    const p = await loadProtocol({ module: fixture('lines.mjs') });
    try {
      const r = await run(p, 'ECHO hi\nLATER 5\nFAIL\nAFAIL\nECHO bye\n');
      expect(r.map((x) => text(x.data))).toEqual(['hi\n', 'later 5\n', '-ERR boom\n', '-ERR async boom\n', 'bye\n']);
      expect(r.every((x) => !x.close)).toBe(true);
      expect(p.options.moduleOptions).toMatchObject({ keyspace: expect.stringMatching(/^\/proc\//) });
    } finally {
      p.close();
    }
  });

  it('ends a connection whose codec threw, after its error reply', async () => {
    const p = await loadProtocol({ module: fixture('lines.mjs') });
    const codec = p.createCodec();
    const first = codec.push(Buffer.from('CODEC-FAIL\n'));
    expect(first.frames).toEqual([]);
    expect(text(first.error!.data)).toBe('-ERR codec failed\n');
    expect(first.error!.close).toBe(true);
    expect(codec.push(Buffer.from('ECHO x\n'))).toEqual({ frames: [] });
    p.close();
  });

  it('bounds what a codec holds at 16 MiB by default, or maxRequest (limits.maxRequest), carried to every thread', async () => {
    const MiB = 1 << 20;
    for (const [limits, max] of [
      [undefined, 16 * MiB],
      [{ maxRequest: 3 * MiB }, 3 * MiB],
    ] as const) {
      const p = await loadProtocol({ module: fixture('replies.mjs'), options: {} }, limits ? { limits } : {});
      try {
        expect(p.options.limits).toEqual(limits);
        const codec = p.createCodec();
        // HOARD: the codec keeps every byte after it, frames none and says it holds none.
        // Every byte pushed since the last frame counts, HOARD's line too: max in all is held.
        const hoard = Buffer.from('HOARD\n');
        expect(codec.push(hoard)).toEqual({ frames: [] });
        expect(codec.push(Buffer.alloc(MiB - hoard.length))).toEqual({ frames: [] });
        for (let held = MiB; held < max; held += MiB) expect(codec.push(Buffer.alloc(MiB))).toEqual({ frames: [] });
        const over = codec.push(Buffer.alloc(1));
        expect(over.frames).toEqual([]);
        expect(text(over.error!.data)).toBe('-ERR ERR_RAWIO_REQUEST_TOO_LARGE\n');
        expect(over.error!.close).toBe(true);
        expect(codec.buffered).toBe(0);
        expect(codec.push(Buffer.from('ECHO x\n'))).toEqual({ frames: [] });
      } finally {
        p.close();
      }
    }
  });

  it('refuses what cannot be loaded, with the module’s own error', async () => {
    await expect(loadProtocol({ module: fixture('missing.mjs') })).rejects.toMatchObject({
      code: 'ERR_MODULE_NOT_FOUND',
    });
    await expect(loadProtocol({ module: fixture('throws.mjs') })).rejects.toThrow('module exploded at import');
    await expect(loadProtocol({ module: fixture('no-create.mjs') })).rejects.toThrow(TypeError);
    await expect(loadProtocol({ module: fixture('create-throws.mjs') })).rejects.toThrow(RangeError);
    await expect(loadProtocol({ module: 42 } as never)).rejects.toThrow(TypeError);
    await expect(loadProtocol('gopher' as never)).rejects.toThrow(TypeError);
  });
});

describe('http handler', () => {
  const load = () => loadProtocol('http', { handler: fixture('app.mjs').href });
  const GET = (path: string, extra = '') => `GET ${path} HTTP/1.1\r\nHost: x\r\n${extra}\r\n`;

  it('answers with the handler’s status, headers and body, HEAD without the body', async () => {
    const p = await load();
    const [get, head, missing] = await run(p, GET('/hello') + GET('/hello').replace('GET', 'HEAD') + GET('/x'));
    expect(text(get!.data)).toMatch(
      /^HTTP\/1\.1 200 OK\r\n(.*\r\n)*x-app: yes\r\n(.*\r\n)*Content-Length: 6\r\n\r\nhi GET$/,
    );
    expect(text(head!.data)).toMatch(/Content-Length: 7\r\n\r\n$/); // 'hi HEAD', not sent
    expect(text(missing!.data)).toMatch(/^HTTP\/1\.1 404 Not Found\r\n/);
  });

  it('hands the handler the header fields as sent: own properties, only SP and HTAB trimmed', async () => {
    const p = await load();
    const [r] = await run(
      p,
      GET('/headers', 'Constructor: a\r\n__proto__: b\r\nX-Nbsp: \xa0v\xa0\r\nX-Two: 1\r\nx-two: \t2 \r\n'),
    );
    const body = text(r!.data).split('\r\n\r\n')[1]!;
    expect(JSON.parse(Buffer.from(body, 'latin1').toString('utf8'))).toEqual([
      ['host', 'x'],
      ['constructor', 'a'],
      ['__proto__', 'b'],
      ['x-nbsp', '\xa0v\xa0'],
      ['x-two', '1, 2'],
    ]);
  });

  it('hands the handler obs-text bytes (0x80-0xFF) as latin-1 code points, as node:http does, and sends them back as the same bytes', async () => {
    const p = await load();
    const high = '\x80\x85\x9f\xa0\xff';
    const [r, back] = await run(p, GET('/headers', `X-High: ${high}\r\n`) + GET('/reflect', `X-Back: a${high}z\r\n`));
    const body = text(r!.data).split('\r\n\r\n')[1]!;
    expect(JSON.parse(Buffer.from(body, 'latin1').toString('utf8'))).toContainEqual(['x-high', high]);
    expect(text(back!.data)).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    expect(text(back!.data)).toContain(`\r\nx-back: a${high}z\r\n`);
  });

  it('answers 500 for a throw, a rejection, a header with CR LF; the connection stays', async () => {
    const p = await load();
    const r = await run(p, GET('/throw') + GET('/reject') + GET('/bad-header') + GET('/hello'));
    expect(r.map((x) => text(x.data).split(' ')[1])).toEqual(['500', '500', '500', '200']);
    expect(r.every((x) => !x.close)).toBe(true);
    expect(r.some((x) => text(x.data).includes('Injected'))).toBe(false);
  });

  it('closes after Connection: close and for HTTP/1.0 without keep-alive; says keep-alive when it keeps one', async () => {
    const p = await load();
    const [close] = await run(p, GET('/hello', 'Connection: close\r\n'));
    expect(close!.close).toBe(true);
    expect(text(close!.data)).toContain('Connection: close\r\n');
    const [old] = await run(p, 'GET /hello HTTP/1.0\r\n\r\n');
    expect(old!.close).toBe(true);
    // HTTP/1.0 with keep-alive: every reply says so, the server's own 500 and 404 too
    const ka = (path: string) => `GET ${path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`;
    const kept = await run(p, ka('/hello') + ka('/throw') + ka(`/file?path=${join(dir, 'none')}`));
    expect(
      kept.map((x) => [text(x.data).split(' ')[1], /\r\nConnection: ([^\r]*)/.exec(text(x.data))?.[1], !!x.close]),
    ).toEqual([
      ['200', 'keep-alive', false],
      ['500', 'keep-alive', false],
      ['404', 'keep-alive', false],
    ]);
  });

  it('closes after a response whose Connection holds close, and drops its other Connection values', async () => {
    const p = await load();
    const ka = (path: string) => `GET ${path} HTTP/1.0\r\nConnection: keep-alive\r\n\r\n`;
    const r = await run(p, GET('/close-me') + GET('/close-stream') + GET('/connection-other') + ka('/close-me'));
    expect(
      r.map((x) => [text(x.data).split(' ')[1], text(x.data).match(/\r\nConnection: [^\r]*/gi) ?? [], !!x.close]),
    ).toEqual([
      ['200', ['\r\nConnection: close'], true],
      ['200', ['\r\nConnection: close'], true],
      ['200', [], false],
      ['200', ['\r\nConnection: close'], true],
    ]);
    expect(text(r[0]!.data)).not.toMatch(/upgrade/i);
  });

  it('closes after a response that asked to close even when its file body fails (404, 500)', async () => {
    const path = join(dir, 'close-file.bin');
    writeFileSync(path, 'x');
    const p = await load();
    for (const [target, status] of [
      [`/close-file?path=${path}.missing`, '404'],
      [`/close-file?path=${path}&offset=5`, '500'],
      [`/close-file?path=${path}`, '200'],
    ] as const) {
      const [r] = await run(p, GET(target));
      expect([text(r!.data).split(' ')[1], /\r\nConnection: close\r\n/.test(text(r!.data)), !!r!.close]).toEqual([
        status,
        true,
        true,
      ]);
      if (r!.file) closeSync(r!.file.fd);
    }
  });

  it('sends a file region by path or by fd (reopened: the caller’s fd stays open), 404 for a missing path', async () => {
    const path = join(dir, 'f.bin');
    writeFileSync(path, Buffer.alloc(1000, 7));
    const p = await load();
    const [whole, part, gone] = await run(
      p,
      GET(`/file?path=${path}`) + GET(`/file?path=${path}&offset=10&length=90`) + GET(`/file?path=${path}.missing`),
    );
    expect(whole!.file).toMatchObject({ offset: 0, length: 1000 });
    expect(part!.file).toMatchObject({ offset: 10, length: 90 });
    expect(text(part!.data)).toContain('Content-Length: 90\r\n');
    expect(text(gone!.data)).toMatch(/^HTTP\/1\.1 404 /);
    for (const r of [whole, part]) closeSync(r!.file!.fd);
    const mine = openSync(path, 'r');
    try {
      const [byFd] = await run(p, GET(`/fd?fd=${mine}&offset=1`));
      expect(byFd!.file).toMatchObject({ offset: 1, length: 999 });
      expect(byFd!.file!.fd).not.toBe(mine);
      closeSync(byFd!.file!.fd); // as the server does once sent
      expect(fstatSync(mine).size).toBe(1000); // still open
    } finally {
      closeSync(mine);
    }
  });

  it('streams an async iterable chunked; HTTP/1.0 gets it raw and a close', async () => {
    const p = await load();
    const [r] = await run(p, GET('/stream?n=2'));
    expect(text(r!.data)).toContain('Transfer-Encoding: chunked\r\n');
    const parts: string[] = [];
    for await (const b of r!.body!) parts.push(text(b));
    expect(parts.join('')).toBe('9\r\ndata: 0\n\n\r\n9\r\ndata: 1\n\n\r\n0\r\n\r\n');
    const [old] = await run(p, 'GET /stream?n=1 HTTP/1.0\r\nConnection: keep-alive\r\n\r\n');
    expect(old!.close).toBe(true);
    expect(text(old!.data)).not.toContain('chunked');
    const raw: string[] = [];
    for await (const b of old!.body!) raw.push(text(b));
    expect(raw.join('')).toBe('data: 0\n\n');
  });

  it('answers 500 for a status outside 200 to 999 (a 1xx included) or not a number, 600 as given', async () => {
    const p = await load();
    for (const c of ['zero', '99', '100', '101', '199', '1000', 'half', 'nan', 'neg', 'string']) {
      const [r, last] = await run(p, GET(`/status-odd?case=${c}`) + GET('/last-error'));
      expect([c, text(r!.data).split(' ')[1], text(r!.data).includes('never'), !!r!.close]).toEqual([
        c,
        '500',
        false,
        false,
      ]);
      expect([c, text(last!.data).split('\r\n\r\n')[1]]).toEqual([
        c,
        c === 'string' ? 'ERR_INVALID_ARG_TYPE' : 'ERR_OUT_OF_RANGE',
      ]);
    }
    const [r] = await run(p, GET('/status?code=600&body=kept'));
    expect(text(r!.data)).toMatch(/^HTTP\/1\.1 600 Unknown\r\n[^]*\r\n\r\nkept$/);
  });

  it('sends neither a body nor a Content-Length with a 204 or a 304, the 304 of a GET and a HEAD alike', async () => {
    const p = await load();
    const r = await run(
      p,
      GET('/status?code=204&body=dropped') +
        GET('/status?code=304&body=dropped') +
        'HEAD /status?code=304 HTTP/1.1\r\nHost: x\r\n\r\n' +
        GET('/status?code=200&body=kept'),
    );
    expect(r.map((x) => [text(x.data).split(' ')[1], /\r\ncontent-length:/i.test(text(x.data))])).toEqual([
      ['204', false],
      ['304', false],
      ['304', false],
      ['200', true],
    ]);
    expect(r.slice(0, 3).every((x) => text(x.data).endsWith('\r\n\r\n') && !x.close)).toBe(true);
  });

  it('skips empty pieces of a streamed body, and ends one that throws without its last chunk', async () => {
    const p = await load();
    const [empty, throws] = await run(p, GET('/stream-empty') + GET('/stream-throws'));
    const parts: string[] = [];
    for await (const b of empty!.body!) parts.push(text(b));
    expect(parts.join('')).toBe('1\r\na\r\n1\r\nb\r\n0\r\n\r\n');
    const sent: string[] = [];
    await expect(
      (async () => {
        for await (const b of throws!.body!) sent.push(text(b));
      })(),
    ).rejects.toThrow('stream boom');
    expect(sent).toEqual(['1\r\na\r\n']);
  });

  it('ends the source of a streamed body at return(), also while a next() waits for it', async () => {
    const p = await load();
    const app = (await import(fixture('app.mjs').href)) as { stalled?: import('node:stream').Readable };
    const [r] = await run(p, GET('/stream-stalled'));
    const it = r!.body![Symbol.asyncIterator]();
    expect(text((await it.next()).value as Uint8Array)).toBe('5\r\nfirst\r\n');
    const waiting = it.next(); // the stream has nothing more: this waits
    await it.return!();
    expect(await waiting).toEqual({ value: undefined, done: true });
    expect(app.stalled!.destroyed).toBe(true);
  });

  it('ends a streamed body that is not sent (HEAD): its file stream closes', async () => {
    const path = join(dir, 'head.bin');
    writeFileSync(path, Buffer.alloc(100_000, 1));
    const p = await load();
    const before = openFds();
    const [r] = await run(p, GET(`/stream-file?path=${path}`).replace('GET', 'HEAD'));
    expect(text(r!.data)).toContain('Transfer-Encoding: chunked\r\n');
    expect(r!.body).toBeUndefined();
    // The stream opens its file asynchronously, then closes it once ended: let it settle.
    await new Promise((ok) => setTimeout(ok, 100));
    for (let i = 0; i < 100 && leakedSince(before).length > 0; i++) await new Promise((ok) => setTimeout(ok, 10));
    expect(leakedSince(before)).toEqual([]);
  });
});
