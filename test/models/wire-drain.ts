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
 *   - the option is checked: TypeError / RangeError, and nothing is closed by a bad call.
 * Everything the server opened is closed afterwards (fds, threads, processes). The handler
 * is test/fixtures/user/hold.mjs (it settles when the test says so). Deadlines here are
 * stall guards, never what is measured.
 */
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import type { ModelName, ServeOptions, Server } from '../helpers/rawio.js';
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
