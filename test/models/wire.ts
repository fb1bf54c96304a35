/**
 * The wire-conformance suite: the connection contract (README, "Connection limits") checked
 * on the wire against one model, called by the model suite for every model. Bounds are
 * asserted as bounds (requests answered, fds, bytes, resident memory), never as timings:
 *   - pipelining to 3× the in-flight bound: every request answered, in order, and the
 *     connection still usable;
 *   - a client that never reads while its replies are large, or a streamed body of one-byte
 *     chunks: the server's output and memory stay bounded, and another client is served
 *     meanwhile; several such clients cost about the bytes queued for them, not a buffer
 *     object per chunk, and such a body is whole and in order once its client reads;
 *   - many small pipelined replies to a client that reads late or a byte at a time
 *     (wire-small-replies.ts);
 *   - a client pipelining file requests without reading: the server's fds stay within the
 *     per-connection file budget, another client is served, and everything is answered once
 *     it reads;
 *   - close rules: nothing after `Connection: close`, an HTTP/1.0 request or QUIT is run;
 *   - Expect: 100-continue answered with the interim 100 before the body, counted as one
 *     request; another expectation answered 417, the connection kept;
 *   - a file that shrinks mid-send closes the connection after what was sent (counted in
 *     stats), one that grows sends exactly what was promised;
 *   - header and idle timeouts close the connection, but never while rawio itself stopped
 *     reading for a budget (wire-paused-timeouts.ts);
 *   - a request arriving steadily above minRequestRate is served however many header
 *     timeouts it takes, a trickle is closed, and minRequestRate Infinity cuts the steady
 *     one at headerTimeout (http, resp: wire-request-rate.ts);
 *   - a client that stops reading its replies or a file body is closed at the idle timeout,
 *     and maxQueue drops a connection alike on every model (wire-stuck-output.ts);
 *   - maxQueue counts only what the kernel refuses, and maxRequest holds every request form
 *     (wire-limits.ts);
 *   - clients that reset mid-reply or half-close after a pipelined batch (wire-hostile.ts);
 *   - what close() does with a request in its handler, a reply being sent, an idle
 *     connection, half a request and a new connect (wire-close.ts);
 *   - the graceful close, close({ drain }): a request in its handler, pipelined requests and
 *     a file body answered whole, an idle connection closed at once, connects refused, a
 *     handler that never settles bounded by the deadline (wire-drain.ts);
 *   - the server-wide maxConnections: a connect past it closed at once and counted, the
 *     next after a close served (wire-max-connections.ts);
 *   - maxConnectionsPerClient: one client address past its limit closed at once and counted
 *     while another is served, a close freeing the client's slot (wire-max-per-client.ts);
 *   - a client pipelining a deep batch it reads at speed does not hold up another client's
 *     round trips on the same thread (wire-fairness.ts);
 *   - budgets in combination: maxInFlight 1 under a deep pipeline to a slow reader, maxOutput
 *     smaller than one reply, a half-close behind requests held by full budgets (wire-budgets.ts).
 */
import { appendFileSync, mkdtempSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serve, type ModelName, type ServeOptions, type Server } from '../helpers/rawio.js';
import { exchange, Received, resp, respReplies } from '../helpers/clients.js';
import { sampler, serverFds, serverRss } from '../helpers/server-proc.js';
import { defineSmallReplyTests } from './wire-small-replies.js';
import { definePausedTimeoutTests } from './wire-paused-timeouts.js';
import { defineStuckOutputTests } from './wire-stuck-output.js';
import { defineWireLimitTests } from './wire-limits.js';
import { defineHostileTests } from './wire-hostile.js';
import { defineCloseTests } from './wire-close.js';
import { defineDrainTests } from './wire-drain.js';
import { defineMaxConnectionsTests } from './wire-max-connections.js';
import { defineMaxPerClientTests } from './wire-max-per-client.js';
import { defineFairnessTests } from './wire-fairness.js';
import { defineBudgetTests } from './wire-budgets.js';
import { defineRequestRateTests } from './wire-request-rate.js';
import { eventually } from '../helpers/wait.js';

const MiB = 1 << 20;
const ENDLESS = new URL('../fixtures/user/endless.mjs', import.meta.url);
const DEPTH = 1024; // the default maxInFlight
const FILES = 16; // the default maxFiles
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

const count = (hay: Buffer, needle: string) => hay.toString('latin1').split(needle).length - 1;

/**
 * Resolves true once the server's output has reached `least` bytes and stopped growing over
 * half a second (its producers wait on a client that does not read), false at `ms`.
 */
function outputSettles(s: Server, least: number, ms: number): Promise<boolean> {
  let last = -1;
  return eventually(async () => {
    const now = s.stats().bytesOut;
    if (now >= least && now === last) return true;
    last = now;
    await delay(500);
    return false;
  }, ms);
}

/** A raw client: what it has received, whether the server closed it. */
class Client {
  readonly sock: net.Socket;
  readonly #got = new Received();
  closed = false;
  readonly #ready: Promise<void>;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.#ready = new Promise((r) => this.sock.once('connect', () => r()));
    this.sock.on('data', (d: Buffer) => this.#got.push(d));
    this.sock.on('close', () => (this.closed = true));
    this.sock.on('error', () => undefined); // EPIPE / ECONNRESET after the server closed: expected
  }

  /** What it has received. */
  get got(): Buffer {
    return this.#got.bytes;
  }

  async send(data: string | Buffer): Promise<void> {
    await this.#ready;
    this.sock.write(data);
  }

  /**
   * Waits until `check` holds or the server closes, at most `ms`: generous, since the wait
   * ends as soon as either comes.
   */
  until(check: (got: Buffer) => boolean, ms = 20_000): Promise<boolean> {
    return eventually(() => check(this.got) || this.closed, ms).then(() => check(this.got));
  }

  /** Waits until the server closes, at most `ms`; whether it did. */
  async untilClosed(ms = 20_000): Promise<boolean> {
    await this.until(() => false, ms);
    return this.closed;
  }

  destroy(): void {
    this.sock.destroy();
  }
}

export function defineWireSuite(model: ModelName, extra: Partial<ServeOptions> = {}): void {
  const concurrent = model !== 'iterative'; // iterative serves one client at a time: its flaw
  let root: string;
  const servers: Server[] = [];
  const start = async (protocol: ServeOptions['protocol'], opts: Partial<ServeOptions> = {}) => {
    const s = await serve({ model, protocol, workers: 2, root, ...extra, ...opts });
    servers.push(s);
    return s;
  };
  beforeAll(() => {
    root = mkdtempSync(join(tmpdir(), 'rawio-wire-'));
    writeFileSync(join(root, 'a.txt'), 'hello\n');
  });
  afterAll(async () => {
    await Promise.all(servers.map((s) => s.close()));
    rmSync(root, { recursive: true, force: true });
  });

  describe(`${model}: wire conformance`, () => {
    it('answers 3× the in-flight bound of pipelined requests, in order, and stays usable (http, resp)', async () => {
      const n = 3 * DEPTH + 7;
      const http = await start('http');
      const got = await exchange(http.port, {
        send: Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n) + 'GET /nope HTTP/1.1\r\nHost: x\r\n\r\n'),
        complete: (b) => count(b, 'HTTP/1.1 ') >= n + 1,
      });
      expect(count(got, 'HTTP/1.1 200 OK')).toBe(n);
      expect(got.toString('latin1').lastIndexOf('HTTP/1.1 404')).toBeGreaterThan(got.lastIndexOf('Hello'));
      const r = await start('resp');
      const incr = Buffer.concat([...Array.from({ length: n }, () => resp('INCR', `c-${model}`)), resp('PING')]);
      const replies = (await exchange(r.port, respReplies(incr, n + 1))).toString().trim().split('\r\n');
      expect(replies.length).toBe(n + 1);
      expect(replies.slice(0, n)).toEqual(Array.from({ length: n }, (_, i) => `:${i + 1}`));
      expect(replies[n]).toBe('+PONG');
    });

    it('keeps a client that pipelines file requests without reading within the file budget', async () => {
      const s = await start('static');
      const n = 3 * DEPTH;
      // Two connections first, so that a thread-per-connection server has its threads (and
      // their event loops' fds) cached before the count starts.
      const warm = {
        send: Buffer.from('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'),
        complete: (b: Buffer) => b.includes('hello\n'),
      };
      await Promise.all([exchange(s.port, warm), exchange(s.port, warm)]);
      await delay(100);
      const base = serverFds(model);
      const fds = sampler(() => serverFds(model));
      const hog = new Client(s.port);
      hog.sock.pause(); // never reads while the others are served
      await hog.send('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(n));
      await delay(200);
      if (concurrent) {
        const other = await exchange(s.port, {
          send: Buffer.from('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'),
          complete: (b) => b.includes('hello\n'),
        });
        expect(other.toString()).toMatch(/^HTTP\/1\.1 200/);
      }
      const peak = fds.stop();
      // The hog's own socket, the other client's and the server's side of each, plus the budget.
      expect(peak - base).toBeLessThanOrEqual(FILES + 6);
      hog.sock.resume();
      expect(await hog.until((b) => count(b, 'hello\n') >= n)).toBe(true);
      expect(count(hog.got, 'HTTP/1.1 200')).toBe(n);
      expect(hog.closed).toBe(false);
      hog.destroy();
    });

    it('honours smaller limits given as options (maxInFlight 8, maxFiles 2)', async () => {
      const s = await start('static', { maxInFlight: 8, maxFiles: 2, maxOutput: 64 << 10 });
      const warm = {
        send: Buffer.from('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'),
        complete: (b: Buffer) => b.includes('hello\n'),
      };
      await Promise.all([exchange(s.port, warm), exchange(s.port, warm)]);
      await delay(100);
      const base = serverFds(model);
      const fds = sampler(() => serverFds(model));
      const hog = new Client(s.port);
      hog.sock.pause();
      await hog.send('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(24));
      await delay(300);
      expect(fds.stop() - base).toBeLessThanOrEqual(2 + 4);
      hog.sock.resume();
      expect(await hog.until((b) => count(b, 'hello\n') >= 24)).toBe(true);
      expect(count(hog.got, 'HTTP/1.1 200')).toBe(24);
      hog.destroy();
    });

    it('bounds the output and memory of a client that never reads its large replies (resp)', async () => {
      const s = await start('resp');
      const setBig = new Client(s.port);
      await setBig.send(resp('SET', 'big', Buffer.alloc(MiB, 120)));
      expect(await setBig.until((b) => b.includes('+OK'))).toBe(true);
      setBig.destroy();
      const rss0 = serverRss(model);
      const out0 = s.stats().bytesOut;
      const rss = sampler(() => serverRss(model), 20);
      const hog = new Client(s.port);
      hog.sock.pause();
      const get = resp('GET', 'big');
      await hog.send(Buffer.concat(Array.from({ length: Math.ceil(65536 / get.length) }, () => get))); // 3 GiB of replies
      await delay(1000);
      if (concurrent) {
        const pong = await exchange(s.port, respReplies(resp('PING'), 1), 10_000);
        expect(pong.toString()).toBe('+PONG\r\n');
      }
      const peak = rss.stop();
      // Kernel socket buffers plus maxOutput and one reply, not the 3 GiB asked for.
      expect(s.stats().bytesOut - out0).toBeLessThan(48 * MiB);
      expect(peak - rss0).toBeLessThan(384 * MiB);
      hog.destroy();
    });

    it('bounds the output and memory of a client that never reads a streamed body of one-byte chunks (http handler)', async () => {
      // Millions of pieces, each its own chunk: what waits for the client is counted in
      // bytes, and nothing may be kept per chunk beyond them.
      const s = await start('http', { handler: ENDLESS.href, idleTimeout: 60_000 });
      const rss0 = serverRss(model);
      const rss = sampler(() => serverRss(model), 20);
      const hog = new Client(s.port);
      hog.sock.pause();
      await hog.send('GET /tiny?n=50000000 HTTP/1.1\r\nHost: x\r\n\r\n');
      // Until the kernel's buffers and maxOutput (1 MiB by default) are full and the producer
      // waits: a model that queues has made at least maxOutput by then (a proactor publishes
      // its count at each submit, so a long burst could look still before), a blocking one
      // stops when the kernel refuses.
      const blocking = model === 'iterative' || model === 'thread-per-connection';
      const least = blocking ? 1 : MiB;
      expect(await outputSettles(s, least, 60_000)).toBe(true);
      if (concurrent) {
        const other = await exchange(s.port, {
          send: Buffer.from('GET /none HTTP/1.1\r\nHost: x\r\n\r\n'),
          complete: (b) => b.includes('no\n'),
        });
        expect(other.toString()).toMatch(/^HTTP\/1\.1 404/);
      }
      const peak = rss.stop();
      expect(s.stats().bytesOut).toBeLessThan(48 * MiB);
      expect(peak - rss0).toBeLessThan(384 * MiB);
      hog.destroy();
    }, 90_000);

    it('sends a body of tiny chunks queued while its client did not read whole and in order once it reads (http handler)', async () => {
      // A million chunks of 5 to 12 bytes on the wire: more than the kernel holds, so most are
      // queued (gathered) behind what it refused, and sent in many partial writes once read.
      const n = 1_000_000;
      const s = await start('http', { handler: ENDLESS.href, idleTimeout: 60_000 });
      const c = new Client(s.port);
      c.sock.pause();
      await c.send(`GET /seq?n=${n} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(await outputSettles(s, 1, 30_000)).toBe(true); // queued behind the unread socket
      c.sock.resume();
      expect(await c.until((b) => b.subarray(-7).toString('latin1') === '\r\n0\r\n\r\n', 60_000)).toBe(true);
      const got = c.got;
      const head = got.indexOf('\r\n\r\n') + 4;
      expect(got.subarray(0, head).toString('latin1')).toMatch(
        /^HTTP\/1\.1 200 OK\r\n[\s\S]*Transfer-Encoding: chunked\r\n/,
      );
      const pieces: string[] = [];
      for (let at = head; ;) {
        const eol = got.indexOf('\r\n', at);
        const size = parseInt(got.subarray(at, eol).toString('latin1'), 16);
        if (size === 0) break;
        pieces.push(got.subarray(eol + 2, eol + 2 + size).toString('latin1'));
        at = eol + 2 + size + 2;
      }
      expect(pieces.length).toBe(n);
      let bad = -1;
      for (let i = 0; i < n && bad < 0; i++) if (pieces[i] !== `${i}\n`) bad = i;
      expect(bad).toBe(-1);
      c.destroy();
    }, 120_000);

    it('holds what waits for clients that never read bodies of one-byte chunks by its bytes, not per chunk (http handler)', async () => {
      // Each client's queue fills to maxOutput with 6-byte chunks (700 000 of them): kept a
      // buffer object each, that cost over 100 bytes of heap per 6 queued, 0.5 GB for these
      // four clients; gathered, about their bytes. Lesser memory is the process's own churn.
      const hogs = 4;
      const maxOutput = 4 * MiB;
      const s = await start('http', { handler: ENDLESS.href, idleTimeout: 60_000, maxOutput });
      const rss0 = serverRss(model);
      const rss = sampler(() => serverRss(model), 20);
      const clients = Array.from({ length: hogs }, () => new Client(s.port));
      try {
        for (const c of clients) {
          c.sock.pause();
          await c.send('GET /tiny?n=50000000 HTTP/1.1\r\nHost: x\r\n\r\n');
        }
        // A model that queues makes maxOutput for each client it serves before its producer
        // waits (iterative serves one at a time); a blocking one stops when the kernel refuses.
        const blocking = model === 'iterative' || model === 'thread-per-connection';
        const least = blocking ? 1 : concurrent ? hogs * maxOutput : maxOutput;
        expect(await outputSettles(s, least, 60_000)).toBe(true);
        const peak = rss.stop();
        expect(s.stats().bytesOut).toBeLessThan(hogs * (maxOutput + 16 * MiB));
        expect(peak - rss0).toBeLessThan(256 * MiB);
      } finally {
        // Even when an expectation failed: a client left connected and unread holds the
        // zero-copy proactor's close() (its sends' buffers stay the kernel's until then), and
        // the suite's afterAll with it.
        rss.stop();
        for (const c of clients) c.destroy();
      }
    }, 90_000);

    defineSmallReplyTests(model, start);
    definePausedTimeoutTests(start, () => root);
    defineStuckOutputTests(model, start, () => root);
    defineWireLimitTests(model, start);
    defineHostileTests(model, start, () => root);
    defineCloseTests(model, start, () => root);
    defineDrainTests(model, start, () => root);
    defineMaxConnectionsTests(model, start);
    defineMaxPerClientTests(model, start);
    defineFairnessTests(model, start);
    defineBudgetTests(start);
    defineRequestRateTests(start);

    it('bounds the output of an echo client that floods without reading', async () => {
      const s = await start('echo');
      const hog = new Client(s.port);
      hog.sock.pause();
      for (let i = 0; i < 64; i++) await hog.send(Buffer.alloc(MiB, i));
      await delay(500);
      if (concurrent)
        expect((await exchange(s.port, { send: Buffer.from('hi'), complete: (b) => b.length >= 2 })).toString()).toBe(
          'hi',
        );
      expect(s.stats().bytesOut).toBeLessThan(48 * MiB);
      hog.destroy();
    });

    it('runs nothing sent after QUIT or a framing error (resp), even in a later segment', async () => {
      const s = await start('resp');
      const c = new Client(s.port);
      await c.send(Buffer.concat([resp('QUIT'), resp('SET', 'after-quit', '1')]));
      expect(await c.untilClosed()).toBe(true);
      expect(c.got.toString()).toBe('+OK\r\n');
      const d = new Client(s.port);
      await d.send(resp('QUIT'));
      await delay(20);
      await d.send(resp('SET', 'after-quit-2', '1'));
      expect(await d.untilClosed()).toBe(true);
      expect(d.got.toString()).toBe('+OK\r\n');
      // A framing error closes the same way: its error reply is the last.
      const e = new Client(s.port);
      await e.send(Buffer.concat([Buffer.from('*1\r\n$x\r\n'), resp('SET', 'after-error', '1')]));
      expect(await e.untilClosed()).toBe(true);
      expect(e.got.toString()).toMatch(/^-ERR Protocol error[^\n]*\r\n$/);
      const exists = await exchange(
        s.port,
        respReplies(resp('EXISTS', 'after-quit', 'after-quit-2', 'after-error'), 1),
      );
      expect(exists.toString()).toBe(':0\r\n');
    });

    it('answers nothing after Connection: close, an HTTP/1.0 request or a malformed one (http, static)', async () => {
      for (const protocol of ['http', 'static'] as const) {
        const s = await start(protocol);
        const path = protocol === 'http' ? '/' : '/a.txt';
        for (const first of [
          `GET ${path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`,
          `GET ${path} HTTP/1.0\r\n\r\n`,
        ]) {
          const c = new Client(s.port);
          await c.send(first + `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(3));
          expect(await c.untilClosed()).toBe(true);
          expect(count(c.got, 'HTTP/1.1 200')).toBe(1);
        }
        const bad = new Client(s.port);
        await bad.send(
          `GET ${path} HTTP/1.1\r\nHost: x\r\nBad Header\r\n\r\n` + `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`,
        );
        expect(await bad.untilClosed()).toBe(true);
        expect(count(bad.got, 'HTTP/1.1 ')).toBe(1);
        expect(bad.got.toString()).toMatch(/^HTTP\/1\.1 400/);
      }
    });

    it('answers Expect: 100-continue with 100 before the body, then the request, counted once (http)', async () => {
      const s = await start('http');
      const before = s.stats().requests;
      const c = new Client(s.port);
      await c.send('POST / HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n');
      expect(await c.until((b) => b.includes('\r\n\r\n'))).toBe(true);
      expect(c.got.toString('latin1')).toBe('HTTP/1.1 100 Continue\r\n\r\n');
      await c.send('hello');
      expect(await c.until((b) => count(b, 'HTTP/1.1 ') === 2 && b.toString('latin1').endsWith('\r\n\r\nhello'))).toBe(
        true,
      );
      expect(c.got.toString('latin1')).toMatch(/^HTTP\/1\.1 100 Continue\r\n\r\nHTTP\/1\.1 200 OK\r\n/);
      // The body comes back (the http protocol answers a POST with it). The interim response
      // is no request: stats().requests grows by one (multi-process
      // publishes its workers' figures every 50 ms).
      expect(await eventually(() => s.stats().requests > before)).toBe(true);
      await delay(200);
      expect(s.stats().requests - before).toBe(1);
      c.destroy();
    });

    it('answers an unknown expectation with 417 and serves the next request on that connection (http)', async () => {
      const s = await start('http');
      const c = new Client(s.port);
      await c.send(
        'POST / HTTP/1.1\r\nHost: x\r\nExpect: foo\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\nHost: x\r\n\r\n',
      );
      expect(await c.until((b) => count(b, 'HTTP/1.1 ') === 2 && b.toString('latin1').endsWith('Hello, World!'))).toBe(
        true,
      );
      expect(c.got.toString('latin1')).toMatch(
        /^HTTP\/1\.1 417 Expectation Failed\r\n[^]*\r\n\r\nHTTP\/1\.1 200 OK\r\n/,
      );
      expect(c.closed).toBe(false);
      c.destroy();
    });

    it('closes after what was sent when a file shrinks mid-send, and counts it', async () => {
      const s = await start('static');
      const size = 32 * MiB;
      writeFileSync(join(root, 'shrink.bin'), Buffer.alloc(size, 97));
      const c = new Client(s.port);
      await c.send('GET /shrink.bin HTTP/1.1\r\nHost: x\r\n\r\n'.repeat(2));
      expect(await c.until((b) => b.length > MiB)).toBe(true);
      truncateSync(join(root, 'shrink.bin'), 64 << 10);
      expect(await c.untilClosed()).toBe(true);
      expect(count(c.got, 'HTTP/1.1 200')).toBe(1); // never a second response inside the promised body
      expect(c.got.length).toBeLessThan(size);
      expect(await eventually(() => s.stats().shortBodies >= 1)).toBe(true);
    });

    it('sends exactly the promised length when a file grows mid-send', async () => {
      const s = await start('static');
      const size = 8 * MiB;
      writeFileSync(join(root, 'grow.bin'), Buffer.alloc(size, 97));
      const c = new Client(s.port);
      await c.send('GET /grow.bin HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await c.until((b) => b.length > MiB)).toBe(true);
      appendFileSync(join(root, 'grow.bin'), Buffer.alloc(MiB, 98));
      expect(await c.until((b) => b.length >= size + b.indexOf('\r\n\r\n') + 4)).toBe(true);
      await c.send('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await c.until((b) => b.toString('latin1').endsWith('hello\n'))).toBe(true);
      const at = c.got.indexOf('\r\n\r\n') + 4;
      expect(c.got.subarray(at, at + size).indexOf(98)).toBe(-1); // no byte of the growth
      expect(c.got.subarray(at + size).toString('latin1')).toMatch(/^HTTP\/1\.1 200/);
      expect(c.closed).toBe(false);
      c.destroy();
    });

    it('closes a client whose request never completes (header timeout) and one gone quiet (idle timeout)', async () => {
      const s = await start('http', { headerTimeout: 300, idleTimeout: 600 });
      const slow = new Client(s.port);
      await slow.send('GET / HTTP/1.1\r\nHo');
      const trickle = setInterval(() => !slow.closed && slow.sock.write('a'), 50);
      const quiet = new Client(s.port);
      await quiet.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
      try {
        expect(await eventually(() => slow.closed && quiet.closed, 10_000)).toBe(true);
        expect(slow.got.length).toBe(0);
        expect(count(quiet.got, 'HTTP/1.1 200')).toBe(1);
      } finally {
        clearInterval(trickle);
        slow.destroy();
        quiet.destroy();
      }
    });
  });
}
