/**
 * User code breaking its contract, on every model (called from usercode-suite.ts): replies
 * of the wrong shape (detached bytes included), a body whose iterator cannot be made, a
 * codec's bad results, a createCodec() that throws, errors thrown outside any request (a timer, a
 * promise nobody handles), process.exit(), a truthy `close`, a half-sent request to a
 * module's codec, a request past maxRequest (a codec that holds bytes without framing them
 * included), an onError that is async and rejects, an onError or errorReply that is a getter
 * which throws, options that are not plain data, HTTP header values that would split the
 * response, and fds a module opens with node:fs. Each must end as that request's error
 * reply (or that connection's close), counted in stats().errors and handed to onError, with
 * the serving thread or process going on — the guarantees the built-in protocols have.
 */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, fstatSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type ModelName, type Server } from '../helpers/rawio.js';
import { exchange, type Exchange } from '../helpers/clients.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { eventually } from '../helpers/wait.js';

const fixture = (name: string) => new URL(`../fixtures/user/${name}`, import.meta.url);
const REPLIES = fixture('replies.mjs');
const LINES = fixture('lines.mjs');
const APP = fixture('app.mjs');
const SIZE = 4096;

/** Waits for `n` newline-ended replies, or the server's close. */
function lines(send: string, n: number): Exchange {
  return { send: Buffer.from(send), complete: (got) => got.toString().split('\n').length - 1 >= n };
}

const ask = async (port: number, line: string) => (await exchange(port, lines(`${line}\n`, 1))).toString();

/**
 * Sends `data` and resolves with what came back once the server closes the connection; each
 * later step is sent once the server has answered something more (so it is a push of its own).
 */
function untilClosed(port: number, data: string, timeoutMs = 25_000, ...later: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const c = net.connect(port, '127.0.0.1', () => c.write(data));
    c.on('data', () => {
      const next = later.shift();
      if (next !== undefined) c.write(next);
    });
    const timer = setTimeout(() => {
      c.destroy();
      reject(new Error(`still open after ${timeoutMs} ms, got ${JSON.stringify(got)}`));
    }, timeoutMs);
    c.on('data', (d) => (got += d.toString('latin1')));
    c.on('close', () => {
      clearTimeout(timer);
      resolve(got);
    });
    c.on('error', () => undefined); // a reset is a close too
  });
}

export function defineUserCodeFenceTests(model: ModelName): void {
  let dir: string;
  let path: string;
  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'rawio-fence-'));
    path = join(dir, 'region.bin');
    writeFileSync(path, randomBytes(SIZE));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  describe(`${model} × user code that breaks its contract`, () => {
    let server: Server;
    let pids: number[];
    let fdsBefore: Map<number, string>;
    beforeAll(async () => {
      fdsBefore = openFds();
      // One serving thread (or process), so a thread that died would show.
      server = await serve({
        model,
        protocol: { module: REPLIES, options: { path, dir, size: SIZE } },
        workers: 1,
        pool: 1,
        headerTimeout: 300,
        idleTimeout: 60_000,
      });
      pids = server.workerPids();
    });
    afterAll(() => server.close());

    it('answers a reply of the wrong shape with that request’s error, and serves on', async () => {
      const cases: [string, string][] = [
        ['FD-STRING', 'ERR_INVALID_ARG_TYPE'],
        ['FD-NEGATIVE', 'ERR_OUT_OF_RANGE'],
        ['FD-NOT-OPEN', 'EBADF'],
        ['FD-DIRECTORY', 'ERR_INVALID_ARG_VALUE'],
        ['OFFSET-NEGATIVE', 'ERR_OUT_OF_RANGE'],
        ['OFFSET-FRACTION', 'ERR_OUT_OF_RANGE'],
        ['OFFSET-STRING', 'ERR_INVALID_ARG_TYPE'],
        ['OFFSET-PAST-END', 'ERR_OUT_OF_RANGE'],
        ['LENGTH-NEGATIVE', 'ERR_OUT_OF_RANGE'],
        ['LENGTH-PAST-END', 'ERR_OUT_OF_RANGE'],
        ['LENGTH-UNSAFE', 'ERR_OUT_OF_RANGE'],
        ['FILE-NOT-OBJECT', 'ERR_INVALID_ARG_TYPE'],
        ['BODY-STRING', 'ERR_INVALID_ARG_TYPE'],
        ['BODY-BYTES', 'ERR_INVALID_ARG_TYPE'],
        ['DATA-DETACHED', 'ERR_INVALID_ARG_TYPE'],
        ['THEN-THROWS', 'E_THEN'],
        ['DATA-STRING', 'ERR_INVALID_ARG_TYPE'],
      ];
      const errorsBefore = server.stats().errors;
      const send = cases.map(([cmd], i) => `${cmd}\nECHO after ${i}\n`).join('');
      const got = await exchange(server.port, lines(send, cases.length * 2));
      const want = cases.map(([, code], i) => `-ERR ${code}\nafter ${i}\n`).join('');
      expect(got.toString()).toBe(want);
      expect(await eventually(() => server.stats().errors - errorsBefore >= cases.length)).toBe(true);
      expect(await ask(server.port, 'LAST-ERROR')).toBe('ERR_INVALID_ARG_TYPE\n'); // DATA-STRING's, via onError
      // A good region still goes out after all that, from the same thread.
      const file = await exchange(server.port, {
        send: Buffer.from('FILE-OK\nECHO done\n'),
        complete: (g) => g.length >= 5 + 10 + 5,
      });
      expect(file.subarray(0, 5).toString()).toBe('file\n');
      expect(file.subarray(15).toString()).toBe('done\n');
      expect(server.workerPids()).toEqual(pids);
    });

    it('closes the connection after what was sent when a body yields a chunk that is not bytes', async () => {
      const errorsBefore = server.stats().errors;
      expect(await untilClosed(server.port, 'BODY-BAD-CHUNK\nECHO never\n')).toBe('head\ngood\n');
      expect(await eventually(() => server.stats().errors > errorsBefore)).toBe(true);
      expect(await ask(server.port, 'LAST-ERROR')).toBe('ERR_INVALID_ARG_TYPE\n');
      expect(await ask(server.port, 'ECHO alive')).toBe('alive\n');
    });

    it('closes the connection after what was sent when a body cannot start, its result cannot be read or it yields detached bytes; counts it once', async () => {
      for (const [cmd, code] of [
        ['BODY-ITERATOR-THROWS', 'E_NO_ITERATOR'],
        ['BODY-STEP-THROWS', 'E_STEP'],
        ['BODY-DETACHED-CHUNK', 'ERR_INVALID_ARG_TYPE'],
      ]) {
        const errorsBefore = server.stats().errors;
        const want = cmd === 'BODY-DETACHED-CHUNK' ? 'head\ngood\n' : 'head\n';
        expect(await untilClosed(server.port, `${cmd}\nECHO never\n`), cmd).toBe(want);
        expect(await eventually(() => server.stats().errors > errorsBefore), cmd).toBe(true);
        expect(await ask(server.port, 'LAST-ERROR'), cmd).toBe(`${code}\n`);
        expect(server.stats().errors - errorsBefore, cmd).toBe(1);
      }
      expect(await ask(server.port, 'ECHO alive')).toBe('alive\n');
      expect(server.workerPids()).toEqual(pids);
    });

    it('answers a bad push() result like a throwing push(): the error reply, then that connection closes', async () => {
      for (const line of [
        'PUSH-STRING-FRAME',
        'PUSH-NUMBER-FRAME',
        'PUSH-BAD-ERROR',
        'PUSH-NOT-OBJECT',
        'PUSH-BAD-BUFFERED',
        'PUSH-FRACTION-BUFFERED',
        'PUSH-NAN-BUFFERED',
        'PUSH-DETACHED-FRAME',
        'PUSH-STRING-INTERIM',
        'PUSH-INTERIM-PAST',
      ]) {
        const errorsBefore = server.stats().errors;
        expect(await untilClosed(server.port, 'ECHO first\n', 25_000, `${line}\nECHO never\n`), line).toMatch(
          /^first\n-ERR (ERR_INVALID_ARG_TYPE|ERR_OUT_OF_RANGE)\n$/,
        );
        expect(await eventually(() => server.stats().errors > errorsBefore), line).toBe(true);
      }
      expect(await ask(server.port, 'ECHO alive')).toBe('alive\n');
      expect(server.workerPids()).toEqual(pids);
    });

    it('honours a truthy close that is not a boolean, as `close: true`', async () => {
      for (const cmd of ['CLOSE-NUMBER', 'CLOSE-STRING']) {
        expect(await untilClosed(server.port, `ECHO a\n${cmd}\nECHO never\n`), cmd).toBe('a\nbye\n');
      }
    });

    it('turns process.exit() in a request into that request’s error (ERR_RAWIO_EXIT_IN_THREAD)', async () => {
      const errorsBefore = server.stats().errors;
      const got = await exchange(server.port, lines('EXIT\nECHO after\n', 2));
      expect(got.toString()).toBe('-ERR ERR_RAWIO_EXIT_IN_THREAD\nafter\n');
      expect(await eventually(() => server.stats().errors > errorsBefore)).toBe(true);
      expect(await ask(server.port, 'ECHO alive')).toBe('alive\n');
      expect(server.workerPids()).toEqual(pids);
    });

    const strays: [string, string][] = [
      ['STRAY-THROW', 'E_STRAY_THROW'],
      ['STRAY-REJECT', 'E_STRAY_REJECT'],
      ['STRAY-EXIT', 'ERR_RAWIO_EXIT_IN_THREAD'],
    ];
    for (const [cmd, code] of strays) {
      it(`counts an error thrown outside any request (${cmd}), hands it to onError, and serves on`, async () => {
        const errorsBefore = server.stats().errors;
        expect(await ask(server.port, cmd)).toBe('ok\n');
        // Each exchange is I/O on the serving thread: its loop turns and the stray error comes.
        expect(await eventually(async () => (await ask(server.port, 'LAST-ERROR')) === `${code}\n`)).toBe(true);
        expect(await eventually(() => server.stats().errors > errorsBefore)).toBe(true);
        expect(await ask(server.port, 'ECHO alive')).toBe('alive\n');
        expect(server.workerPids()).toEqual(pids);
      });
    }

    it('closes a connection whose request stops half-way after headerTimeout, as the built-in protocols do', async () => {
      // idleTimeout is a minute: a close within the wait can only be the header timeout's.
      expect(await untilClosed(server.port, 'ECHO whole\nECHO half')).toBe('whole\n');
    });

    it('closes every fd a refused reply owned', async () => {
      await server.close();
      expect(await eventually(() => leakedSince(fdsBefore).length === 0)).toBe(true);
      expect(leakedSince(fdsBefore)).toEqual([]);
    });
  });

  describe(`${model} × maxRequest on a module's codec`, () => {
    const MAX = 100_000;
    let server: Server;
    beforeAll(async () => {
      server = await serve({
        model,
        protocol: { module: REPLIES, options: { path, dir, size: SIZE } },
        workers: 1,
        pool: 1,
        maxRequest: MAX,
        idleTimeout: 60_000, // a close within the wait is not the idle timeout's
      });
    });
    afterAll(() => server.close());

    it('answers a request larger than maxRequest with errorReply(ERR_RAWIO_REQUEST_TOO_LARGE) after the ones before it, then closes', async () => {
      const errorsBefore = server.stats().errors;
      const long = `ECHO first\nECHO ${'y'.repeat(MAX)}`;
      expect(await untilClosed(server.port, long)).toBe('first\n-ERR ERR_RAWIO_REQUEST_TOO_LARGE\n');
      // The client's doing, not the module's: not counted, not passed to onError.
      expect(await ask(server.port, 'LAST-ERROR')).toBe('none\n');
      expect(server.stats().errors).toBe(errorsBefore);
    });

    it('stops a codec that holds bytes without framing them, whatever its buffered says', async () => {
      // HOARD: from here the codec keeps every byte, frames none and reports buffered 0.
      const got = await untilClosed(server.port, 'ECHO first\nHOARD\n', 25_000, 'z'.repeat(3 * MAX));
      expect(got).toBe('first\n-ERR ERR_RAWIO_REQUEST_TOO_LARGE\n');
    });

    it('serves a request of maxRequest bytes', async () => {
      const word = 'w'.repeat(MAX - 'ECHO \n'.length);
      expect(await ask(server.port, `ECHO ${word}`)).toBe(`${word}\n`);
    });
  });

  // An onError that fails is no error to count again, nor to hand back to it: the module's two
  // errors (a failed handle(), one thrown outside any request) are counted once each, the
  // request is answered with errorReply, and the thread serves on.
  const failingOnError = [
    {
      what: 'is async and always rejects',
      does: 'logs its rejection rather than handing it back to it',
      option: { onErrorRejects: true },
      stray: 'STRAY-REJECT',
      seen: 'E_STRAY_REJECT', // what onError recorded before its promise rejected
    },
    {
      what: 'is a getter which throws',
      does: 'logs the getter’s error',
      option: { onErrorGetterThrows: true },
      stray: 'STRAY-THROW',
      seen: 'none', // the hook is never reached
    },
  ];
  for (const { what, does, option, stray, seen } of failingOnError) {
    describe(`${model} × an onError that ${what}`, () => {
      it(`counts each error once, ${does}, answers the request with errorReply, and serves on`, async () => {
        const server = await serve({
          model,
          protocol: { module: REPLIES, options: { path, dir, size: SIZE, ...option } },
          workers: 1,
          pool: 1,
        });
        try {
          const pids = server.workerPids();
          const errorsBefore = server.stats().errors;
          const got = await exchange(server.port, lines('DATA-STRING\nECHO after\n', 2));
          expect(got.toString()).toBe('-ERR ERR_INVALID_ARG_TYPE\nafter\n');
          expect(await ask(server.port, stray)).toBe('ok\n');
          expect(await eventually(async () => (await ask(server.port, 'LAST-ERROR')) === `${seen}\n`)).toBe(true);
          expect(await eventually(() => server.stats().errors - errorsBefore >= 2)).toBe(true);
          expect(await ask(server.port, 'ECHO alive')).toBe('alive\n');
          expect(server.stats().errors - errorsBefore).toBe(2);
          expect(server.workerPids()).toEqual(pids);
        } finally {
          await server.close();
        }
      });
    });
  }

  describe(`${model} × an errorReply that fails`, () => {
    const what = { throw: 'throws', promise: 'returns a promise', getter: 'is a getter that throws' };
    for (const [how, code] of [
      ['throw', 'E_ERROR_REPLY'],
      ['promise', 'ERR_INVALID_ARG_TYPE'],
      ['getter', 'E_ERROR_REPLY_GETTER'],
    ] as const) {
      it(`closes the connection after the replies before it when errorReply ${what[how]}, counting both errors`, async () => {
        const server = await serve({
          model,
          protocol: { module: REPLIES, options: { path, dir, size: SIZE, errorReplyFails: how } },
          workers: 1,
          pool: 1,
          idleTimeout: 60_000, // a close within the wait is not the idle timeout's
        });
        try {
          const pids = server.workerPids();
          const errorsBefore = server.stats().errors;
          // A failed handle(), then a failed push(): each with no reply to give, so a close.
          expect(await untilClosed(server.port, 'ECHO a\nDATA-STRING\nECHO never\n')).toBe('a\n');
          expect(await untilClosed(server.port, 'ECHO b\n', 25_000, 'PUSH-STRING-FRAME\nECHO never\n')).toBe('b\n');
          expect(await eventually(() => server.stats().errors - errorsBefore >= 4)).toBe(true);
          expect(await ask(server.port, 'LAST-ERROR')).toBe(`${code}\n`);
          expect(await ask(server.port, 'ECHO alive')).toBe('alive\n');
          expect(server.stats().errors - errorsBefore).toBe(4);
          expect(server.workerPids()).toEqual(pids);
        } finally {
          await server.close();
        }
      });
    }
  });

  describe(`${model} × a createCodec() that throws`, () => {
    it('answers each connection with the error reply and closes it at once, without waiting for the client', async () => {
      const server = await serve({
        model,
        protocol: { module: REPLIES, options: { path, dir, size: SIZE, codecThrows: true } },
        workers: 1,
        pool: 1,
        idleTimeout: 60_000, // a close within the wait is not the idle timeout's
      });
      try {
        const errorsBefore = server.stats().errors;
        // A client that waits to be spoken to, and one that sends first.
        expect(await untilClosed(server.port, '')).toBe('-ERR E_CODEC\n');
        expect(await untilClosed(server.port, 'ECHO never\n')).toBe('-ERR E_CODEC\n');
        expect(await eventually(() => server.stats().errors - errorsBefore >= 2)).toBe(true);
      } finally {
        await server.close();
      }
    });
  });

  describe(`${model} × fds user code opens with node:fs`, () => {
    it('closes a file reply’s fd once: not again when the serving thread exits', async () => {
      const server = await serve({
        model,
        protocol: { module: REPLIES, options: { path, dir, size: SIZE } },
        workers: 1,
        pool: 1,
      });
      const mine: number[] = [];
      try {
        const pid = Number(await ask(server.port, 'PID'));
        for (let i = 0; i < 4; i++) {
          const got = await exchange(server.port, { send: Buffer.from('FILE-OK\n'), complete: (g) => g.length >= 15 });
          expect(got.length).toBe(15);
        }
        // The fds the thread opened (and rawio closed) are free again: take the lowest free
        // fds here, which include them once rawio has closed them.
        if (pid === process.pid) for (let i = 0; i < 32; i++) mine.push(openSync(path, 'r'));
      } finally {
        await server.close();
      }
      // Node closes at a worker's exit what it opened with node:fs and did not close with
      // node:fs: rawio closed those fds itself, so that would close this test's files.
      const closed = mine.filter((fd) => {
        try {
          fstatSync(fd);
          return false;
        } catch {
          return true;
        }
      });
      for (const fd of mine) if (!closed.includes(fd)) closeSync(fd);
      expect(closed).toEqual([]);
    });
  });

  describe(`${model} × module options`, () => {
    const bad: [string, unknown, string][] = [
      ['a function', { f: () => 1 }, 'protocol.options.f'],
      ['a class instance', { when: new Date(0) }, 'protocol.options.when'],
      ['a Map deep in an array', { list: [1, { m: new Map() }] }, 'protocol.options.list[1].m'],
      ['a bigint', { n: 1n }, 'protocol.options.n'],
      ['a symbol', { s: Symbol('s') }, 'protocol.options.s'],
      ['a number JSON cannot carry', { x: Number.NaN }, 'protocol.options.x'],
      [
        'a cycle',
        (() => {
          const o: Record<string, unknown> = {};
          o.self = o;
          return o;
        })(),
        'protocol.options.self',
      ],
    ];
    for (const [what, options, name] of bad) {
      it(`refuses options holding ${what} up front, naming ${name}`, async () => {
        const err = await serve({ model, workers: 1, protocol: { module: LINES, options } }).then(
          (s) => s.close().then(() => undefined),
          (e: unknown) => e,
        );
        expect(err).toBeInstanceOf(TypeError);
        expect((err as Error).message).toContain(name);
      });
    }

    it('refuses options published by create() that are not plain data, closing that instance', async () => {
      const before = openFds();
      const err = await serve({
        model,
        workers: 1,
        protocol: { module: REPLIES, options: { path, dir, size: SIZE, shareFunction: true } },
      }).then(
        (s) => s.close().then(() => undefined),
        (e: unknown) => e,
      );
      expect(err).toBeInstanceOf(TypeError);
      expect((err as Error).message).toContain('options.hook');
      // Its Keyspace (a memfd) was closed with it.
      expect(await eventually(() => leakedSince(before).length === 0)).toBe(true);
    });

    it('serves with options larger than one environment variable may hold (256 KiB), in every thread and process', async () => {
      const big = 'b'.repeat(256 << 10);
      const server = await serve({
        model,
        workers: 2,
        protocol: { module: REPLIES, options: { path, dir, size: SIZE, big } },
      });
      try {
        const got = await Promise.all(Array.from({ length: 4 }, () => ask(server.port, 'BIG')));
        expect(got).toEqual(Array.from({ length: 4 }, () => `${big.length}\n`));
      } finally {
        await server.close();
      }
    });

    it('serves with plain data of every kind', async () => {
      const options = { s: 'x', n: 1.5, b: true, z: null, list: [1, 'two', [3]], nested: { a: { b: [] } } };
      const server = await serve({ model, workers: 1, protocol: { module: LINES, options } });
      try {
        expect(await ask(server.port, 'ECHO plain')).toBe('plain\n');
      } finally {
        await server.close();
      }
    });
  });

  describe(`${model} × an HTTP handler's replies`, () => {
    let server: Server;
    beforeAll(async () => {
      server = await serve({ model, protocol: 'http', handler: APP, workers: 1, pool: 1 });
    });
    afterAll(() => server.close());

    const routes = [
      '/bad-header', // CR LF
      '/header-wide-chars', // U+010D U+010A: CR LF once written as latin1
      '/header-control', // ESC
      '/header-undefined',
      '/header-object',
      '/header-boolean',
      '/header-nested-array',
      '/headers-array',
      '/headers-map',
    ];
    for (const route of routes) {
      it(`answers a handler's header value of ${route} with 500, writing none of it`, async () => {
        const send = `GET ${route} HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n`;
        const got = (
          await exchange(server.port, {
            send: Buffer.from(send),
            complete: (g) => g.toString('latin1').endsWith('hi GET'),
          })
        ).toString('latin1');
        expect(got).toMatch(/^HTTP\/1\.1 500 /);
        expect(got).not.toMatch(/injected|x-bad|x-odd/i);
        expect(got).toMatch(/HTTP\/1\.1 200 OK[^]*hi GET$/);
      });
    }

    it('answers a file body of the wrong shape with 500 and the error a module’s reply.file gets', async () => {
      const fifo = join(dir, 'fifo');
      rmSync(fifo, { force: true });
      execFileSync('mkfifo', [fifo]);
      const cases: [string, string][] = [
        ['FD-STRING', 'ERR_INVALID_ARG_TYPE'],
        ['FD-NEGATIVE', 'ERR_OUT_OF_RANGE'],
        ['FD-FRACTION', 'ERR_OUT_OF_RANGE'],
        ['FD-NOT-OPEN', 'EBADF'],
        ['PATH-NUMBER', 'ERR_INVALID_ARG_TYPE'],
        ['PATH-DIRECTORY', 'ERR_INVALID_ARG_VALUE'],
        ['PATH-FIFO', 'ERR_INVALID_ARG_VALUE'],
        ['OFFSET-NEGATIVE', 'ERR_OUT_OF_RANGE'],
        ['OFFSET-FRACTION', 'ERR_OUT_OF_RANGE'],
        ['OFFSET-STRING', 'ERR_INVALID_ARG_TYPE'],
        ['OFFSET-PAST-END', 'ERR_OUT_OF_RANGE'],
        ['LENGTH-NEGATIVE', 'ERR_OUT_OF_RANGE'],
        ['LENGTH-STRING', 'ERR_INVALID_ARG_TYPE'],
        ['LENGTH-PAST-END', 'ERR_OUT_OF_RANGE'],
        ['LENGTH-UNSAFE', 'ERR_OUT_OF_RANGE'],
      ];
      const fds = openFds();
      const where = `path=${encodeURIComponent(path)}&dir=${encodeURIComponent(dir)}&fifo=${encodeURIComponent(fifo)}`;
      const get = (target: string) => `GET ${target} HTTP/1.1\r\nHost: x\r\n\r\n`;
      for (const [name, code] of cases) {
        const send = get(`/bad-file?case=${name}&${where}`) + get('/last-error');
        const got = (
          await exchange(server.port, {
            send: Buffer.from(send),
            complete: (g) => g.toString('latin1').split('HTTP/1.1 ').length > 2 && /\r\n\r\n\S+$/.test(g.toString()),
          })
        ).toString('latin1');
        expect(got, name).toMatch(/^HTTP\/1\.1 500 /);
        expect(got.slice(got.lastIndexOf('\r\n\r\n') + 4), name).toBe(code);
      }
      // Every fd the handler's reopen took is closed again (the server runs in this process
      // on the thread models; on the others this is the test's own count): the fds on the
      // test's files. Not a thread's own (an epoll, pipes, an eventfd): thread-per-connection
      // starts a thread when none is waiting in its cache, and keeps it there afterwards.
      const handlerFds = () => leakedSince(fds).filter((l) => l.endsWith(dir) || l.includes(`${dir}/`));
      expect(await eventually(() => handlerFds().length === 0), handlerFds().join(', ')).toBe(true);
      const ok = await exchange(server.port, {
        send: Buffer.from(get('/hello')),
        complete: (g) => g.toString().endsWith('hi GET'),
      });
      expect(ok.toString()).toMatch(/^HTTP\/1\.1 200 /);
    });

    it('closes the connection after what was sent when a streamed chunk is detached bytes, counting it', async () => {
      const errorsBefore = server.stats().errors;
      const send = 'GET /stream-detached HTTP/1.1\r\nHost: x\r\n\r\nGET /hello HTTP/1.1\r\nHost: x\r\n\r\n';
      const got = await untilClosed(server.port, send);
      expect(got).toMatch(/^HTTP\/1\.1 200 [^]*\r\n\r\n6\r\nbefore\r\n$/);
      expect(await eventually(() => server.stats().errors > errorsBefore)).toBe(true);
    });

    it('answers a response whose `then` getter throws with 500, counted and passed to onError', async () => {
      const errorsBefore = server.stats().errors;
      const send = 'GET /then-throws HTTP/1.1\r\nHost: x\r\n\r\nGET /last-error HTTP/1.1\r\nHost: x\r\n\r\n';
      const got = (
        await exchange(server.port, { send: Buffer.from(send), complete: (g) => g.toString().endsWith('E_THEN') })
      ).toString('latin1');
      expect(got).toMatch(/^HTTP\/1\.1 500 [^]*HTTP\/1\.1 200 [^]*E_THEN$/);
      expect(await eventually(() => server.stats().errors > errorsBefore)).toBe(true);
    });

    it('still sends header values that are strings, numbers and arrays of them', async () => {
      const send = 'GET /header-fine HTTP/1.1\r\nHost: x\r\n\r\n';
      const got = (
        await exchange(server.port, { send: Buffer.from(send), complete: (g) => g.toString().endsWith('fine') })
      ).toString('latin1');
      expect(got).toMatch(/^HTTP\/1\.1 200 /);
      expect(got).toContain('\r\nx-num: 42\r\n');
      expect(got).toContain('\r\nx-list: a\r\nx-list: 7\r\n');
      expect(got).toContain('\r\nx-tab: a\tb\r\n');
    });
  });
}
