/**
 * Hostile clients on the wire, for every model (called by wire.ts): a client that resets
 * its connection (SO_LINGER 0) in the middle of a reply, or half-closes right after a
 * pipelined batch, gets the same treatment on every model.
 *   - A reset in the middle of a file body is not a short body (stats().shortBodies counts
 *     files that shrank), the file's fd is closed, and the server keeps serving.
 *   - A reset before a file reply could be written closes that file too, at once, not when
 *     some later client arrives (a blocking thread must not go back to waiting with it open).
 *   - A reset in the middle of an endless streamed body (an HTTP handler's async iterable)
 *     ends the body's producer, also when it runs on a pool thread, and close() returns;
 *     so does a reset while the producer waits for its next chunk (a Node stream fed by
 *     events): it is closed then, not when a chunk comes. A producer of empty pieces alone,
 *     which no backpressure stops, does not keep other clients of its thread waiting.
 *   - shutdown(SHUT_WR) right after a pipelined batch: every reply arrives, in order, then
 *     the server closes (echo, http, static, resp).
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { constants, sys, type ModelName, type ServeOptions, type Server } from '../helpers/rawio.js';
import { exchange, resp } from '../helpers/clients.js';
import { serverFds, serverFdsTo } from '../helpers/server-proc.js';
import { eventually } from '../helpers/wait.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const KiB = 1 << 10;
const MiB = 1 << 20;
const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ENDLESS = new URL('../fixtures/user/endless.mjs', import.meta.url);

/**
 * A raw client with a 4 KiB receive buffer that resets its connection once it has `bytes`
 * (or the server closed, or 20 s passed), reading what arrives as it comes (1 ms waits).
 * Past the first segment (about 32 KiB over loopback) such a window takes in 8 KiB per
 * zero-window probe of the sender, one every ~200 ms: asking for little more than that first
 * segment resets within milliseconds, still in the middle of the body.
 */
async function resetAfter(port: number, request: string, bytes: number): Promise<number> {
  const fd = sys.connectTcp('127.0.0.1', port);
  let got = 0;
  try {
    sys.setBufferSizes(fd, { recv: 4 * KiB });
    const req = Buffer.from(request);
    expect(sys.write(fd, req, 0, req.length)).toBe(req.length);
    const buf = Buffer.alloc(64 * KiB);
    const end = Date.now() + 20_000;
    while (got < bytes && Date.now() < end) {
      const r = sys.read(fd, buf);
      if (r > 0) got += r;
      else if (r === -constants.EAGAIN) await delay(1);
      else break;
    }
    sys.setLingerZero(fd);
  } finally {
    sys.close(fd); // RST
  }
  return got;
}

/** Sends `data`, then shuts its side down at once; resolves with all it got once the server closes. */
function halfClose(port: number, data: Buffer): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = net.connect(port, '127.0.0.1', () => s.end(data));
    const timer = setTimeout(() => {
      s.destroy();
      reject(new Error(`the server did not close after the half-close (got ${Buffer.concat(chunks).length} bytes)`));
    }, 20_000);
    s.on('data', (d: Buffer) => chunks.push(d));
    s.on('error', reject);
    s.on('end', () => {
      clearTimeout(timer);
      resolve(Buffer.concat(chunks));
    });
  });
}

export function defineHostileTests(model: ModelName, start: Start, root: () => string): void {
  const marks = mkdtempSync(join(tmpdir(), 'rawio-hostile-'));
  afterAll(() => rmSync(marks, { recursive: true, force: true }));

  it('counts no short body when a client resets in the middle of a file body, and closes the file', async () => {
    // Larger than what the server's socket and the client's 4 KiB window can hold: the reset
    // comes while the body is still being sent.
    const size = 6 * MiB;
    writeFileSync(join(root(), 'reset.bin'), Buffer.alloc(size, 114));
    const s = await start('static', { idleTimeout: 20_000 });
    const get = 'GET /reset.bin HTTP/1.1\r\nHost: x\r\n\r\n';
    // Two whole fetches at once first: a transfer method's per-thread resources (a ring,
    // pipes) and thread-per-connection's cached threads exist before the fds are counted.
    const whole = { send: Buffer.from(get), complete: (b: Buffer) => b.length > size };
    for (const got of await Promise.all([exchange(s.port, whole), exchange(s.port, whole)]))
      expect(got.toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK');
    expect(await eventually(() => s.stats().connections === 0)).toBe(true);
    const base = serverFds(model);
    // Reset at once after the first segment, and once after a zero-window probe (~200 ms of
    // the server waiting on a full socket).
    for (const bytes of [16 * KiB, 40 * KiB, 16 * KiB]) {
      expect(await resetAfter(s.port, get.repeat(2), bytes)).toBeGreaterThan(0);
      expect(await eventually(() => s.stats().connections === 0)).toBe(true);
    }
    expect(await eventually(() => s.stats().connections === 0 && serverFds(model) <= base)).toBe(true);
    const a = await exchange(s.port, {
      send: Buffer.from('GET /a.txt HTTP/1.1\r\nHost: x\r\n\r\n'),
      complete: (b) => b.includes('hello\n'),
    });
    expect(a.toString()).toMatch(/^HTTP\/1\.1 200 OK/);
    expect(s.stats().shortBodies).toBe(0);
  }, 30_000);

  it('closes the file of a reply whose client reset before it was written, with no other client coming', async () => {
    // The client sends its requests and resets at once, while the server is still busy with
    // another client (iterative serves it later): the reply's head write fails, and its file
    // body must still end, and its fd close, before the thread waits for a next client.
    const size = 6 * MiB;
    writeFileSync(join(root(), 'early-reset.bin'), Buffer.alloc(size, 101));
    const s = await start('static', { idleTimeout: 20_000 });
    const get = 'GET /early-reset.bin HTTP/1.1\r\nHost: x\r\n\r\n';
    const open = () => serverFdsTo(model, (target) => target.endsWith('/early-reset.bin'));
    const busy = sys.connectTcp('127.0.0.1', s.port);
    try {
      sys.setBufferSizes(busy, { recv: 4 * KiB });
      expect(sys.write(busy, Buffer.from(get), 0, get.length)).toBe(get.length);
      for (let i = 0; i < 3; i++) {
        const fd = sys.connectTcp('127.0.0.1', s.port);
        const req = Buffer.from(get.repeat(2));
        expect(sys.write(fd, req, 0, req.length)).toBe(req.length);
        sys.setLingerZero(fd);
        sys.close(fd); // RST, before the server could answer
      }
      await delay(200);
      sys.setLingerZero(busy);
    } finally {
      sys.close(busy);
    }
    expect(await eventually(() => s.stats().connections === 0 && open() === 0, 10_000)).toBe(true);
  }, 30_000);

  it('ends the producer of an endless streamed body when its client resets (http handler)', async () => {
    const s = await start('http', { handler: ENDLESS.href, idleTimeout: 20_000 });
    const mark = join(marks, `${model}-endless`);
    const got = await resetAfter(s.port, `GET /endless?mark=${mark} HTTP/1.1\r\nHost: x\r\n\r\n`, 16 * KiB);
    expect(got).toBeGreaterThan(0);
    expect(await eventually(() => existsSync(mark))).toBe(true);
    expect(await eventually(() => s.stats().connections === 0)).toBe(true);
  }, 30_000);

  it('ends the source of a streamed body waiting for its next chunk when its client resets (http handler)', async () => {
    // A Node stream that sent a chunk and waits for an event that may never come (a
    // subscription, a slow upstream): the reset must close it now, not at that event.
    const s = await start('http', { handler: ENDLESS.href, idleTimeout: 20_000 });
    const mark = join(marks, `${model}-stalled`);
    // The head and most of the one 4 KiB chunk: the server is waiting for the next.
    const got = await resetAfter(s.port, `GET /stalled?mark=${mark} HTTP/1.1\r\nHost: x\r\n\r\n`, 4 * KiB);
    expect(got).toBeGreaterThanOrEqual(4 * KiB);
    expect(await eventually(() => existsSync(mark), 10_000)).toBe(true);
    expect(await eventually(() => s.stats().connections === 0)).toBe(true);
  }, 30_000);

  it('serves other clients while a streamed body yields only empty pieces, and ends it when its client resets (http handler)', async () => {
    // Empty pieces take no output, so backpressure never stops such a producer: it must not
    // keep its thread from everyone else (iterative serves one client at a time: after it).
    const s = await start('http', { handler: ENDLESS.href, idleTimeout: 20_000 });
    const mark = join(marks, `${model}-spin`);
    const hog = sys.connectTcp('127.0.0.1', s.port);
    const other = () =>
      exchange(s.port, {
        send: Buffer.from('GET /none HTTP/1.1\r\nHost: x\r\n\r\n'),
        complete: (b) => b.includes('no\n'),
      });
    try {
      const req = Buffer.from(`GET /spin?mark=${mark} HTTP/1.1\r\nHost: x\r\n\r\n`);
      expect(sys.write(hog, req, 0, req.length)).toBe(req.length);
      const buf = Buffer.alloc(4 * KiB);
      let got = '';
      expect(
        await eventually(() => {
          const n = sys.read(hog, buf);
          if (n > 0) got += buf.toString('latin1', 0, n);
          return got.includes('spinning');
        }),
      ).toBe(true);
      if (model !== 'iterative') expect((await other()).toString()).toMatch(/^HTTP\/1\.1 404/);
      sys.setLingerZero(hog);
    } finally {
      sys.close(hog); // RST
    }
    expect(await eventually(() => existsSync(mark), 10_000)).toBe(true);
    expect((await other()).toString()).toMatch(/^HTTP\/1\.1 404/);
  }, 30_000);

  it('answers every request of a pipelined batch sent with a half-close, then closes (echo, http, static, resp)', async () => {
    // Four servers, independent of each other: started and checked at once.
    const [echo, http, stat, r] = await Promise.all([start('echo'), start('http'), start('static'), start('resp')]);
    const payload = Buffer.alloc(256 * KiB, 7);
    const http11 = async (s: Server, path: string) => {
      const batch = `GET ${path} HTTP/1.1\r\nHost: x\r\n\r\n`.repeat(50) + `GET /nope HTTP/1.1\r\nHost: x\r\n\r\n`;
      const got = (await halfClose(s.port, Buffer.from(batch))).toString('latin1');
      expect(got.split('HTTP/1.1 200 OK').length - 1).toBe(50);
      expect(got.lastIndexOf('HTTP/1.1 404')).toBeGreaterThan(got.lastIndexOf('HTTP/1.1 200'));
    };
    const cmds = Buffer.concat([...Array.from({ length: 50 }, () => resp('INCR', `half-${model}`)), resp('PING')]);
    await Promise.all([
      halfClose(echo.port, payload).then((got) => expect(got.equals(payload)).toBe(true)),
      http11(http, '/'),
      http11(stat, '/a.txt'),
      halfClose(r.port, cmds).then((got) =>
        expect(got.toString().trim().split('\r\n')).toEqual([
          ...Array.from({ length: 50 }, (_, i) => `:${i + 1}`),
          '+PONG',
        ]),
      ),
    ]);
  }, 30_000);
}
