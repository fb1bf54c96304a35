/**
 * One suite for user code on every server model: the same protocol module
 * (test/fixtures/user/lines.mjs) and the same HTTP handler (test/fixtures/user/app.mjs)
 * must keep request order under pipelining (sync and async replies mixed), answer an
 * exception in user code for that request alone and go on serving, send file bodies by
 * every transfer method, share state between every thread and process, and make serve()
 * reject when a module cannot be loaded — in the caller's thread or only in a worker
 * thread or process, with the module's own error and the worker named — with no fd or
 * process left behind; and close() must not wait for a timer a module left running.
 */
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type ModelName, type Server, type TransferMethodName } from '../helpers/rawio.js';
import { exchange, Received, type Exchange } from '../helpers/clients.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { childrenOf } from '../helpers/procs.js';
import { defineUserCodeFenceTests } from './usercode-fence.js';
import { defineStrayTimerTests } from './usercode-stray-timer.js';
import { defineStuckThreadTests } from './usercode-stuck.js';
import { eventually } from '../helpers/wait.js';

const fixture = (name: string) => new URL(`../fixtures/user/${name}`, import.meta.url);
const LINES = fixture('lines.mjs');
const APP = fixture('app.mjs');
const sha = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');
const transfers: TransferMethodName[] = ['readwrite', 'mmap', 'sendfile', 'splice', 'uring', 'direct', 'auto'];

/** Waits for `n` newline-ended replies (or the server's close). */
function lines(send: string, n: number): Exchange {
  return { send: Buffer.from(send), complete: (got) => got.toString().split('\n').length - 1 >= n };
}

/** HTTP responses parsed from a byte stream: status, headers, body (Content-Length or chunked). */
export function responses(
  got: Buffer,
  heads: readonly number[] = [],
): { status: number; headers: Record<string, string>; body: Buffer }[] {
  const out = [];
  let at = 0;
  while (at < got.length) {
    const end = got.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const [line, ...fields] = got.subarray(at, end).toString('latin1').split('\r\n');
    const headers: Record<string, string> = {};
    for (const f of fields) headers[f.slice(0, f.indexOf(':')).toLowerCase()] = f.slice(f.indexOf(':') + 1).trim();
    let i = end + 4;
    let body: Buffer;
    if (heads.includes(out.length)) {
      body = Buffer.alloc(0); // the answer to a HEAD: headers only
    } else if (headers['transfer-encoding'] === 'chunked') {
      const parts: Buffer[] = [];
      for (;;) {
        const nl = got.indexOf('\r\n', i);
        if (nl < 0) return out;
        const size = parseInt(got.subarray(i, nl).toString(), 16);
        i = nl + 2 + size + 2;
        if (size === 0) break;
        parts.push(got.subarray(nl + 2, nl + 2 + size));
      }
      body = Buffer.concat(parts);
    } else {
      const len = Number(headers['content-length'] ?? 0);
      body = got.subarray(i, i + len);
      i += len;
    }
    out.push({ status: Number(line!.split(' ')[1]), headers, body });
    at = i;
  }
  return out;
}

function http(send: string, n: number, heads: readonly number[] = []): Exchange {
  return { send: Buffer.from(send), complete: (got) => responses(got, heads).length >= n };
}

const get = (path: string, method = 'GET') => `${method} ${path} HTTP/1.1\r\nHost: x\r\n\r\n`;

export function defineUserCodeSuite(model: ModelName): void {
  defineUserCodeFenceTests(model);
  describe(`${model} × a module's stray timer`, () => defineStrayTimerTests(model));
  defineStuckThreadTests(model);
  let dir: string;
  let file: Buffer;
  let path: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rawio-user-'));
    file = randomBytes(300_000);
    path = join(dir, 'body.bin');
    writeFileSync(path, file);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe(`${model} × protocol module`, () => {
    let server: Server;
    beforeAll(async () => {
      server = await serve({ model, protocol: { module: LINES, options: {} }, workers: 2 });
    });
    afterAll(() => server.close());

    it('answers pipelined requests in order, sync and async, errors for their request only', async () => {
      const send = 'ECHO a\nLATER 80\nFAIL\nAFAIL\nECHO b\nLATER 3\nBAD\nECHO c\n';
      const got = await exchange(server.port, lines(send, 8));
      expect(got.toString()).toBe(
        'a\nlater 80\n-ERR boom\n-ERR async boom\nb\nlater 3\n-ERR The "reply" argument must be an object with data: Uint8Array. Received an instance of Object\nc\n',
      );
      expect(await eventually(() => server.stats().errors >= 3)).toBe(true);
    });

    it.each([
      [65536, 64],
      [100, 4000],
    ])(
      'sends the bytes each body chunk held when it was yielded, the buffer refilled after, to a client slow to read (%i-byte chunks)',
      async (size, n) => {
        const want = Buffer.concat([
          Buffer.from(`reused ${size * n}\n`),
          ...Array.from({ length: n }, (_, i) => Buffer.alloc(size, 97 + (i % 26))),
        ]);
        const got = new Received();
        const c = net.connect(server.port, '127.0.0.1', () => c.write(`REUSED ${size} ${n}\n`));
        c.on('error', () => undefined);
        try {
          // Not read at first: the socket's buffers fill and the model holds a chunk unsent
          // while it asks the body for the next one.
          c.pause();
          await new Promise((r) => setTimeout(r, 300));
          c.on('data', (d: Buffer) => got.push(d));
          c.resume();
          expect(await eventually(() => got.length >= want.length)).toBe(true);
          expect(got.length).toBe(want.length);
          expect(sha(got.bytes)).toBe(sha(want));
        } finally {
          c.destroy();
        }
      },
    );

    it('serves other clients while a reply body yields only empty chunks', async () => {
      // No output, so no backpressure: such a body must not keep its thread from the others
      // (iterative serves one client at a time: after it, once it has gone).
      const spin = net.connect(server.port, '127.0.0.1');
      spin.on('error', () => undefined);
      let got = '';
      spin.on('data', (d: Buffer) => (got += d.toString()));
      spin.write('SPIN\n');
      try {
        expect(await eventually(() => got.includes('spinning'))).toBe(true);
        if (model !== 'iterative') {
          expect((await exchange(server.port, lines('ECHO still here\n', 1))).toString()).toBe('still here\n');
        }
      } finally {
        spin.resetAndDestroy();
      }
      expect((await exchange(server.port, lines('ECHO after\n', 1))).toString()).toBe('after\n');
    });

    it('closes only the connection whose codec threw, after its error reply', async () => {
      const got = await exchange(server.port, lines('ECHO x\nCODEC-FAIL\n', 3));
      expect(got.toString()).toBe('-ERR codec failed\n');
      expect((await exchange(server.port, lines('ECHO still\n', 1))).toString()).toBe('still\n');
    });

    it('shares state between every thread and process (a Keyspace named in options)', async () => {
      const got = await Promise.all(Array.from({ length: 12 }, () => exchange(server.port, lines('INCR\n', 1))));
      const counts = got.map((g) => Number(g.toString())).sort((a, b) => a - b);
      expect(counts).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
    });

    it('sends a file region a module returns', async () => {
      const send = Buffer.from(`FILE ${path} 1000 5000\nECHO after\n`);
      const whole = 'file 5000\n'.length + 5000 + 'after\n'.length;
      const got = await exchange(server.port, { send, complete: (g) => g.length >= whole });
      const head = 'file 5000\n';
      expect(got.subarray(0, head.length).toString()).toBe(head);
      expect(sha(got.subarray(head.length, head.length + 5000))).toBe(sha(file.subarray(1000, 6000)));
      expect(got.subarray(head.length + 5000).toString()).toBe('after\n');
    });
  });

  describe(`${model} × http handler`, () => {
    let server: Server;
    beforeAll(async () => {
      server = await serve({ model, protocol: 'http', handler: APP, workers: 2 });
    });
    afterAll(() => server.close());

    it('keeps order and keep-alive across sync, async and failing handlers', async () => {
      const json = '{"a":[1,2]}';
      const chunkedPost =
        'POST /json HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n' +
        `4\r\n${json.slice(0, 4)}\r\n${(json.length - 4).toString(16)}\r\n${json.slice(4)}\r\n0\r\n\r\n`;
      const send =
        get('/later?n=60') +
        get('/throw') +
        get('/hello') +
        get('/reject') +
        chunkedPost +
        get('/hello', 'HEAD') +
        get('/nope') +
        get('/bad-header') +
        get('/hello');
      const got = await exchange(server.port, http(send, 9, [5]));
      const r = responses(got, [5]);
      expect(r.map((x) => x.status)).toEqual([200, 500, 200, 500, 200, 200, 404, 500, 200]);
      expect(r[0]!.body.toString()).toBe('later 60');
      expect(r[2]!.body.toString()).toBe('hi GET');
      expect(r[2]!.headers['x-app']).toBe('yes');
      expect(JSON.parse(r[4]!.body.toString())).toEqual({ method: 'POST', te: 'chunked', got: { a: [1, 2] } });
      expect(r[5]!.headers['content-length']).toBe('7'); // 'hi HEAD', not sent
      expect(r[5]!.body.length).toBe(0);
      expect(r.every((x) => x.headers.connection === undefined)).toBe(true);
      expect(await eventually(() => server.stats().errors >= 3)).toBe(true);
    });

    it('refuses smuggling framings as before (Content-Length with Transfer-Encoding)', async () => {
      const bad = 'POST /json HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n';
      const r = responses(await exchange(server.port, http(get('/hello') + bad + get('/hello'), 2)));
      expect(r.map((x) => x.status)).toEqual([200, 400]);
    });

    it("ends the connection after a handler's Connection: close, its streamed body whole, nothing after it answered", async () => {
      const send = get('/hello') + get('/close-stream') + get('/hello') + get('/close-me');
      const r = responses(await exchange(server.port, http(send, 99))); // until the server closes
      expect(r.map((x) => [x.status, x.headers.connection, x.body.toString()])).toEqual([
        [200, undefined, 'hi GET'],
        [200, 'close', 'data: 0\n\ndata: 1\n\n'],
      ]);
    });

    it('streams an async-iterable body chunked', async () => {
      const r = responses(await exchange(server.port, http(get('/stream?n=4') + get('/hello'), 2)));
      expect(r[0]!.headers['transfer-encoding']).toBe('chunked');
      expect(r[0]!.body.toString()).toBe('data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\n');
      expect(r[1]!.body.toString()).toBe('hi GET');
    });
    it("streams a file read by Node's fs streams, and waits for Node timers, in the serving thread", async () => {
      const send = get(`/stream-file?path=${encodeURIComponent(path)}`) + get('/later-timer') + get('/hello');
      const r = responses(await exchange(server.port, http(send, 3)));
      expect(r.map((x) => x.status)).toEqual([200, 200, 200]);
      expect(sha(r[0]!.body)).toBe(sha(file));
      expect(r[1]!.body.toString()).toBe('timer fired');
    });
  });

  describe(`${model} × http handler: what a response may hold`, () => {
    let server: Server;
    beforeAll(async () => {
      server = await serve({ model, protocol: 'http', handler: APP, workers: 2 });
    });
    afterAll(() => server.close());

    it('frames a response by the status it sent, a status getter read once', async () => {
      const r = responses(await exchange(server.port, http(get('/status-twice') + get('/hello'), 2)));
      expect(r.map((x) => [x.status, x.headers['content-length'], x.body.toString()])).toEqual([
        [200, '6', 'framed'],
        [200, '6', 'hi GET'],
      ]);
    });

    it('sends the bytes each chunk held when it was yielded, the buffer refilled after (HTTP/1.0, unframed)', async () => {
      const size = 65536;
      const n = 48;
      const send = Buffer.from(`GET /stream-reused?size=${size}&n=${n} HTTP/1.0\r\n\r\n`);
      const got = await exchange(server.port, { send, complete: () => false }); // to the server's close
      const body = got.subarray(got.indexOf('\r\n\r\n') + 4);
      const want = Buffer.concat(Array.from({ length: n }, (_, i) => Buffer.alloc(size, 48 + (i % 10))));
      expect(body.length).toBe(want.length);
      expect(sha(body)).toBe(sha(want));
    });

    it('ends the streamed body of a response refused for a header or a headers getter (a file stream is closed)', async () => {
      const marker = join(dir, `closed-${model}`);
      writeFileSync(marker, '');
      const q = `/refused-stream?path=${encodeURIComponent(path)}&marker=${encodeURIComponent(marker)}`;
      const r = responses(await exchange(server.port, http(get(q) + get(`${q}&how=getter`) + get('/hello'), 3)));
      expect(r.map((x) => x.status)).toEqual([500, 500, 200]);
      expect(await eventually(() => readFileSync(marker, 'latin1') === 'cc')).toBe(true);
    });

    it("lets a handler transfer its request body's buffer, other requests unharmed", async () => {
      const post = (body: string) =>
        `POST /transfer-body HTTP/1.1\r\nHost: x\r\nContent-Length: ${body.length}\r\n\r\n${body}`;
      const send = post('one') + get('/hello') + post('two') + get('/hello');
      const r = responses(await exchange(server.port, http(send, 4)));
      expect(r.map((x) => [x.status, x.body.toString()])).toEqual([
        [200, 'moved one'],
        [200, 'hi GET'],
        [200, 'moved two'],
        [200, 'hi GET'],
      ]);
      expect(responses(await exchange(server.port, http(get('/hello'), 1)))[0]!.body.toString()).toBe('hi GET');
    });
  });

  describe(`${model} × file bodies by every transfer method`, () => {
    for (const transfer of transfers) {
      it(transfer, async () => {
        const server = await serve({ model, protocol: 'http', handler: APP, workers: 1, transfer });
        try {
          const q = `/file?path=${encodeURIComponent(path)}`;
          const send = get(q) + get(`${q}&offset=7&length=70000`) + get(q, 'HEAD') + get('/hello');
          const r = responses(await exchange(server.port, http(send, 4, [2])), [2]);
          expect(r.map((x) => x.status)).toEqual([200, 200, 200, 200]);
          expect(sha(r[0]!.body)).toBe(sha(file));
          expect(sha(r[1]!.body)).toBe(sha(file.subarray(7, 70007)));
          expect(r[2]!.headers['content-length']).toBe(String(file.length));
          expect(r[3]!.body.toString()).toBe('hi GET');
        } finally {
          await server.close();
        }
      });
    }
  });

  describe(`${model} × module load failure`, () => {
    // Taken here, not for the whole file: other suites of the file may hold servers open.
    let fdsBefore: Map<number, string>;
    let childrenBefore: number[];
    beforeAll(() => {
      fdsBefore = openFds();
      childrenBefore = childrenOf(process.pid);
    });
    const failing: [string, object, RegExp][] = [
      ['a missing module', { protocol: { module: fixture('missing.mjs') } }, /Cannot find module|ERR_MODULE_NOT_FOUND/],
      ['a module that throws at import', { protocol: { module: fixture('throws.mjs') } }, /module exploded at import/],
      ['a module without create()', { protocol: { module: fixture('no-create.mjs') } }, /create\(\)/],
      ['a create() that throws', { protocol: { module: fixture('create-throws.mjs') } }, /create refused/],
      ['a handler without handle()', { protocol: 'http', handler: fixture('no-create.mjs') }, /handle\(\)/],
      [
        'a handler that throws at import',
        { protocol: 'http', handler: fixture('throws.mjs') },
        /module exploded at import/,
      ],
    ];
    for (const [what, opts, message] of failing) {
      it(`rejects serve() with the module's error: ${what}`, async () => {
        await expect(serve({ model, workers: 1, ...opts } as Parameters<typeof serve>[0])).rejects.toThrow(message);
      });
    }

    // Modules that load here but fail in every other thread or process (the fixtures look
    // at isMainThread and RAWIO_WORKER): the error must come from the worker, not be
    // replaced by "exited" or a crash count.
    const inWorker: [string, string, { name: string; message: RegExp; code?: string; stack?: RegExp }][] = [
      [
        'throws at import',
        'throws-in-worker.mjs',
        {
          name: 'Error',
          message: /^refusing to load in a worker$/,
          code: 'E_FIXTURE_WORKER',
          stack: /throws-in-worker\.mjs:6/,
        },
      ],
      [
        'create() throws',
        'create-throws-in-worker.mjs',
        {
          name: 'RangeError',
          message: /^create refused in a worker$/,
          code: 'E_FIXTURE_CREATE',
          stack: /at create .*create-throws-in-worker\.mjs:8/,
        },
      ],
      [
        'throws a value that is not an Error',
        'throws-value-in-worker.mjs',
        { name: 'Error', message: /not an Error object/ },
      ],
    ];
    for (const [what, file, want] of inWorker) {
      it(`rejects serve() with a worker's own error when the module ${what} only in a worker`, async () => {
        const mod = (await import(fixture(file).href)) as { create: (o: object) => { close?(): void } };
        mod.create({}).close?.(); // it does load in this thread: the failure below is the worker's
        const err = await serve({ model, workers: 2, protocol: { module: fixture(file) } }).then(
          (s) => s.close().then(() => undefined),
          (e: unknown) => e as Error & { code?: string; worker?: string },
        );
        expect(err).toBeInstanceOf(Error);
        expect(err!.name).toBe(want.name);
        expect(err!.message).toMatch(want.message);
        expect(err!.code).toBe(want.code);
        if (want.stack) expect(err!.stack).toMatch(want.stack);
        expect(err!.worker).toMatch(/thread|worker \d+ \(pid \d+\)/);
      });
    }

    it('leaves no fd and no process behind after the failed starts', async () => {
      await eventually(() => leakedSince(fdsBefore).length === 0);
      expect(leakedSince(fdsBefore)).toEqual([]);
      await eventually(() => childrenOf(process.pid).every((p) => childrenBefore.includes(p)));
      expect(childrenOf(process.pid).filter((p) => !childrenBefore.includes(p))).toEqual([]);
    });
  });
}
