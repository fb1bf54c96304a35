/**
 * The graceful close, `server.close({ drain })`, the same on every model (called by wire.ts;
 * the rule is README's "Closing a server"):
 *   - a request in its handler when the drain begins gets its whole reply, then EOF; a
 *     connect meanwhile is refused; close() resolves once that connection has closed;
 *   - an idle keep-alive connection is closed at once (EOF, nothing more sent);
 *   - pipelined requests already read are answered, and a request half read when the drain
 *     began is answered once it arrives whole; then the connection closes;
 *   - a file body being sent goes out to its end to a client that reads it late, and a
 *     streamed body being made to its last chunk;
 *   - a handler that never settles: close() still resolves (after the drain's deadline, or
 *     at once when close() is called again without drain);
 *   - the option is checked: TypeError / RangeError, and nothing is closed by a bad call;
 *   - clients waiting in the listen queue when the drain begins (the one thread that would
 *     accept them blocked in a handler's synchronous code, or at its thread cap) are served as
 *     connections accepted before it: one that sent a request gets its reply, then EOF, one
 *     that sent nothing EOF, none a reset; maxConnections still holds for them.
 *     On `multi-reactor`, `multi-reactor-pool` and `worker-pool` the thread that accepts runs
 *     no handler, so the clients wait in a reactor's inbox or the pool's queue instead; on
 *     `proactor` and `multi-proactor` in the listen queue or, accepted by the kernel for a ring
 *     that is blocked, in its completions: the outcome asked is the same.
 * Everything the server opened is closed afterwards (fds, threads, processes). The handler
 * is test/fixtures/user/hold.mjs (it settles, or its synchronous loop ends, when the test
 * says so). Deadlines here are stall guards, never what is measured.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { ModelName, ServeOptions, Server } from '../helpers/rawio.js';
import { titled } from '../helpers/skips.js';
import { eventually } from '../helpers/wait.js';
import { Client, closing, heldInHandler, holdings } from './wire-close.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const MiB = 1 << 20;
const HOLD = new URL('../fixtures/user/hold.mjs', import.meta.url).href;
const APP = new URL('../fixtures/user/app.mjs', import.meta.url).href;
const STALL_MS = 20_000;

/** The HTTP replies in `got`, each whole (head and Content-Length body), and any bytes after the last. */
function replies(got: Buffer): { status: number; body: Buffer }[] {
  const out: { status: number; body: Buffer }[] = [];
  let at = 0;
  for (;;) {
    const end = got.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const head = got.toString('latin1', at, end);
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(head)?.[1] ?? 0);
    if (end + 4 + length > got.length) break;
    out.push({ status: Number(head.slice(9, 12)), body: got.subarray(end + 4, end + 4 + length) });
    at = end + 4 + length;
  }
  expect(at, 'bytes after the last whole reply').toBe(got.length);
  return out;
}

/** Connects until one is refused (a connect the server took as its drain began is closed by it). */
async function refused(port: number): Promise<boolean> {
  return eventually(async () => {
    const c = new Client(port);
    const how = await c.connected;
    c.sock.destroy();
    return how === 'ECONNREFUSED';
  }, STALL_MS);
}

/** Writes `data` and resolves once the kernel has taken it (it waits in the server's socket then). */
async function sent(c: Client, data: string): Promise<void> {
  expect(await c.connected).toBe('connected');
  await new Promise((resolve) => c.sock.write(data, resolve));
}

/**
 * A server whose accepting thread is blocked (the `/block` handler, workers: 1; a worker
 * process, or thread-per-connection's one thread, alike) and clients connected meanwhile:
 * `asking` sent a whole request, `silent` nothing. Returns once all are connected.
 */
async function queuedBehindBlock(
  start: Start,
  mark: (name: string) => string,
  name: string,
  counts: { asking: number; silent: number },
  opts: Partial<ServeOptions>,
) {
  const s = await start('http', {
    handler: HOLD,
    workers: 1,
    pool: 1,
    idleTimeout: STALL_MS,
    headerTimeout: STALL_MS,
    ...opts,
  });
  const [inHandler, release] = [mark(`${name}-in`), mark(`${name}-release`)];
  const busy = new Client(s.port);
  await sent(busy, `GET /block?mark=${inHandler}&release=${release} HTTP/1.1\r\nHost: x\r\n\r\n`);
  expect(await eventually(() => existsSync(inHandler), STALL_MS)).toBe(true);
  const asking = Array.from({ length: counts.asking }, () => new Client(s.port));
  const silent = Array.from({ length: counts.silent }, () => new Client(s.port));
  for (const c of asking) await sent(c, 'GET /quick HTTP/1.1\r\nHost: x\r\n\r\n');
  for (const c of silent) expect(await c.connected).toBe('connected');
  return { s, busy, asking, silent, release: () => writeFileSync(release, '') };
}

export function defineDrainTests(model: ModelName, start: Start, root: () => string): void {
  const marks = mkdtempSync(join(tmpdir(), 'rawio-drain-'));
  afterAll(() => rmSync(marks, { recursive: true, force: true }));
  const mark = (name: string) => join(marks, `${model}-${name}`);

  it('close({ drain }) lets a request in its handler finish: whole reply, then EOF; connects refused meanwhile; resolves after', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: STALL_MS });
    held.started(s);
    const release = mark('busy-release');
    const busy = await heldInHandler(s.port, { mark: mark('busy-in'), release });
    const c = closing(s, { drain: STALL_MS });
    expect(await refused(s.port)).toBe(true);
    // The handler has not settled: the connection is open, nothing sent, close() waits.
    expect(busy.closed).toBe(false);
    expect(busy.got.length).toBe(0);
    expect(c.resolved()).toBe(false);
    writeFileSync(release, '');
    expect(await eventually(() => busy.closed, STALL_MS)).toBe(true);
    const got = replies(busy.got);
    expect(got.map((r) => [r.status, r.body.toString()])).toEqual([[200, 'released\n']]);
    expect(await c.done).toBe(true);
    await held.gone();
  }, 30_000);

  it('close({ drain }) closes an idle keep-alive connection at once and resolves', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: STALL_MS });
    held.started(s);
    const idle = new Client(s.port);
    await idle.send('GET /quick HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await eventually(() => idle.got.includes('quick\n'), STALL_MS)).toBe(true);
    const reply = idle.got.length;
    const c = closing(s, { drain: STALL_MS });
    // Closed by the drain, not by the deadline (20 s away) nor by the close after it.
    expect(await eventually(() => idle.closed, STALL_MS / 2)).toBe(true);
    expect(idle.got.length).toBe(reply);
    expect(await refused(s.port)).toBe(true);
    expect(await c.done).toBe(true);
    await held.gone();
  }, 30_000);

  it('close({ drain }) answers pipelined requests already read, and one half read that arrives whole, then closes', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: STALL_MS, headerTimeout: STALL_MS });
    held.started(s);
    const [inHandler, release] = [mark('pipe-in'), mark('pipe-release')];
    const client = new Client(s.port);
    // One write: once the first request is in its handler, the server has read the second
    // (whole) and the start of the third.
    await client.send(
      `GET /hold?mark=${inHandler}&release=${release} HTTP/1.1\r\nHost: x\r\n\r\n` +
        'GET /quick HTTP/1.1\r\nHost: x\r\n\r\nGET /quick HTTP/1.1\r\nHo',
    );
    expect(await eventually(() => existsSync(inHandler), STALL_MS)).toBe(true);
    const c = closing(s, { drain: STALL_MS });
    await client.send('st: x\r\n\r\n');
    writeFileSync(release, '');
    expect(await eventually(() => client.closed, STALL_MS)).toBe(true);
    const got = replies(client.got);
    expect(got.map((r) => [r.status, r.body.toString()])).toEqual([
      [200, 'released\n'],
      [200, 'quick\n'],
      [200, 'quick\n'],
    ]);
    expect(await c.done).toBe(true);
    await held.gone();
  }, 30_000);

  it('close({ drain }) sends a file body being sent to its end, to a client that reads it late', async () => {
    const size = 8 * MiB;
    writeFileSync(join(root(), 'drain-big.bin'), Buffer.alloc(size, 99));
    const held = holdings(model);
    const s = await start('static', { idleTimeout: STALL_MS });
    held.started(s);
    const slow = new Client(s.port);
    slow.sock.pause();
    await slow.send('GET /drain-big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await eventually(() => s.stats().bytesOut > 0, STALL_MS)).toBe(true);
    const c = closing(s, { drain: STALL_MS });
    expect(c.resolved()).toBe(false);
    slow.sock.resume();
    expect(await eventually(() => slow.closed, STALL_MS)).toBe(true);
    const got = replies(slow.got);
    expect(got.length).toBe(1);
    expect(got[0]!.status).toBe(200);
    expect(got[0]!.body.length).toBe(size);
    expect(await c.done).toBe(true);
    await held.gone();
  }, 30_000);

  it('close({ drain }) sends a streamed body being made to its end', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: APP, idleTimeout: STALL_MS });
    held.started(s);
    const client = new Client(s.port);
    // Five chunks, one every 50 ms of a Node timer: the drain begins after the first.
    await client.send('GET /gaps?n=5&ms=50 HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await eventually(() => client.got.includes('data: 0'), STALL_MS)).toBe(true);
    const c = closing(s, { drain: STALL_MS });
    expect(await eventually(() => client.closed, STALL_MS)).toBe(true);
    const text = client.got.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 200 OK\r\n/);
    for (let i = 0; i < 5; i++) expect(text).toContain(`data: ${i}\n\n`);
    expect(text.endsWith('\r\n0\r\n\r\n')).toBe(true); // the chunked body's end, then EOF
    expect(await c.done).toBe(true);
    await held.gone();
  }, 30_000);

  it('close({ drain }) resolves after its deadline when a handler never settles', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: 300 });
    held.started(s);
    const busy = await heldInHandler(s.port, { mark: mark('never') });
    const c = closing(s, { drain: 300 });
    expect(await c.done).toBe(true);
    expect(await eventually(() => busy.closed, STALL_MS)).toBe(true);
    expect(busy.got.length).toBe(0);
    await held.gone();
  }, 30_000);

  it('close() without drain during a drain ends the drain now (drain: Infinity would wait for ever)', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: 300 });
    held.started(s);
    const busy = await heldInHandler(s.port, { mark: mark('cut') });
    const drained = closing(s, { drain: Infinity });
    const c = closing(s);
    expect(await c.done).toBe(true);
    expect(await drained.done).toBe(true); // the same close
    expect(await eventually(() => busy.closed, STALL_MS)).toBe(true);
    expect(busy.got.length).toBe(0);
    await held.gone();
  }, 30_000);

  // multi-process's strategies differ in where the queue is: each worker's own socket, or one shared.
  const variants: [string, Partial<ServeOptions>][] =
    model === 'multi-process'
      ? [
          ['reuseport', { accept: 'reuseport' }],
          ['exclusive', { accept: 'exclusive' }],
          ['mutex', { accept: 'mutex' }],
        ]
      : [['', {}]];
  for (const [variant, opts] of variants) {
    const named = variant === '' ? '' : ` (accept: ${variant})`;
    it(`close({ drain }) serves the clients waiting to be accepted: a request sent gets its reply, then EOF; none sent, EOF; none is reset${named}`, async () => {
      const held = holdings(model);
      const q = await queuedBehindBlock(start, mark, `queue${variant}`, { asking: 4, silent: 2 }, opts);
      held.started(q.s);
      const c = closing(q.s, { drain: STALL_MS });
      // The drain has begun (close() starts it at once): the blocked thread may go on now.
      q.release();
      expect(await refused(q.s.port)).toBe(true);
      const all = [q.busy, ...q.asking, ...q.silent];
      expect(await eventually(() => all.every((k) => k.closed), STALL_MS)).toBe(true);
      expect(replies(q.busy.got).map((r) => [r.status, r.body.toString()])).toEqual([[200, 'released\n']]);
      for (const k of q.asking)
        expect(replies(k.got).map((r) => [r.status, r.body.toString()])).toEqual([[200, 'quick\n']]);
      for (const k of q.silent) expect(k.got.length).toBe(0);
      expect(all.map((k) => k.error)).toEqual(all.map(() => undefined));
      expect(await c.done).toBe(true);
      await held.gone();
    }, 30_000);
  }

  const noLimit =
    model === 'iterative' ? 'iterative holds one connection at a time, so a limit is never reached' : undefined;
  it.skipIf(noLimit)(
    titled(
      'close({ drain }) holds maxConnections for the clients waiting to be accepted: those past it are closed unread',
      noLimit,
    ),
    async () => {
      const held = holdings(model);
      // The blocked client holds one of the two while it is being served.
      const q = await queuedBehindBlock(start, mark, 'limit', { asking: 3, silent: 0 }, { maxConnections: 2 });
      held.started(q.s);
      const c = closing(q.s, { drain: STALL_MS });
      q.release();
      const all = [q.busy, ...q.asking];
      expect(await eventually(() => all.every((k) => k.closed), STALL_MS)).toBe(true);
      // Whether the blocked client's connection still counts when the waiting ones are
      // admitted depends on the model's order of events (its reply is sent, it closes): one
      // or two of them fit; the others are refused, closed unread.
      const answered = q.asking.filter((k) => k.got.length > 0);
      for (const k of answered)
        expect(replies(k.got).map((r) => [r.status, r.body.toString()])).toEqual([[200, 'quick\n']]);
      expect(answered.length).toBeGreaterThanOrEqual(1);
      expect(answered.length).toBeLessThanOrEqual(2);
      const shed = q.asking.length - answered.length;
      // Counted whenever they were refused: as they were dealt (a reactor that runs no handler
      // admits them at once), or as the drain handed them over. The server is new: from 0.
      expect(await eventually(() => q.s.stats().refused === shed, STALL_MS)).toBe(true);
      expect(await c.done).toBe(true);
      await held.gone();
    },
    30_000,
  );

  it('close() checks its options: TypeError / RangeError, and a bad call closes nothing', async () => {
    const held = holdings(model);
    const s = await start('http');
    held.started(s);
    const close = s.close.bind(s) as (o?: unknown) => Promise<void>;
    await expect(close(5)).rejects.toThrow(TypeError);
    await expect(close(null)).rejects.toThrow(TypeError);
    await expect(close({ drain: '5' })).rejects.toThrow(TypeError);
    await expect(close({ grace: 5 })).rejects.toThrow(TypeError);
    await expect(close({ drain: -1 })).rejects.toThrow(RangeError);
    await expect(close({ drain: Number.NaN })).rejects.toThrow(RangeError);
    const c = new Client(s.port);
    await c.send('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await eventually(() => c.got.includes('\r\n\r\n'), STALL_MS)).toBe(true);
    // drain: 0 is today's close: the idle connection closed at once.
    await s.close({ drain: 0 });
    expect(await eventually(() => c.closed, STALL_MS)).toBe(true);
    await held.gone();
  }, 30_000);
}
