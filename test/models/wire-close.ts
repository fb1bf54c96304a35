/**
 * What Server.close() does with the connections it finds, the same on every model (called by
 * wire.ts; the rule is README's "Closing a server"):
 *   - it stops accepting at once: a connect after close() was called is refused, also while
 *     close() still waits;
 *   - it closes every connection at once: an idle keep-alive one, one that sent half a
 *     request, one whose reply is being sent (the client gets what the kernel had taken, not
 *     the rest) and one whose request is still in its handler (no reply is sent);
 *   - it waits for a handler still running to settle, at most the idle timeout, then ends
 *     the threads or processes still running one; it resolves once every one is gone.
 * And the close after a closing reply (README's "On close") is a lingering one: a client
 * still sending a body the server refused gets the whole reply and EOF, never a reset.
 * The handler that waits is test/fixtures/user/hold.mjs: it settles when the test says so
 * (a file appears), or never. Deadlines here are stall guards, never what is measured.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, expect, it } from 'vitest';
import { Ring, type ModelName, type ServeOptions, type Server } from '../helpers/rawio.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { processState } from '../helpers/procs.js';
import { eventually } from '../helpers/wait.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const MiB = 1 << 20;
const HOLD = new URL('../fixtures/user/hold.mjs', import.meta.url).href;
const STALL_MS = 20_000;
const threads = () => readdirSync('/proc/self/task').length;

/** A raw client: what it has received, whether the server closed it, how its connect ended. */
export class Client {
  readonly sock: net.Socket;
  got = Buffer.alloc(0);
  closed = false;
  /** The code of the first error the socket saw (ECONNRESET: reset by the server; or its connect's). */
  error: string | undefined;
  /** 'connected', or the error code of a connect that failed. */
  readonly connected: Promise<string>;

  constructor(port: number) {
    this.sock = net.connect(port, '127.0.0.1');
    this.connected = new Promise((resolve) => {
      this.sock.once('connect', () => resolve('connected'));
      this.sock.once('error', (e: NodeJS.ErrnoException) => resolve(e.code ?? 'error'));
    });
    this.sock.on('data', (d: Buffer) => (this.got = Buffer.concat([this.got, d])));
    this.sock.on('close', () => (this.closed = true));
    // ECONNRESET once the server closed: expected where a test does not look at `error`.
    this.sock.on('error', (e: NodeJS.ErrnoException) => (this.error ??= e.code ?? 'error'));
  }

  async send(data: string): Promise<void> {
    expect(await this.connected).toBe('connected');
    this.sock.write(data);
  }
}

/** What a server holds beyond what was there before it started, checked once it is closed. */
export function holdings(model: ModelName) {
  const fds = openFds();
  const tasks = threads();
  let pids: number[] = [];
  return {
    /** Call once the server listens: its worker processes, if it has some. */
    started: (s: Server) => (pids = s.workerPids()),
    /** Everything it opened is closed, its threads and processes gone. */
    async gone(): Promise<void> {
      expect(await eventually(() => threads() <= tasks, STALL_MS)).toBe(true);
      await eventually(() => leakedSince(fds).length === 0);
      expect(leakedSince(fds)).toEqual([]);
      if (model === 'multi-process') expect(pids.map(processState)).toEqual(pids.map(() => undefined));
    },
  };
}

/**
 * A client whose request is in the HOLD fixture's handler: it connects, sends `GET /hold`
 * with the marks (`mark`: created once the handler runs; `release`: the file it waits for;
 * `done`: created when it ends) and returns once `mark` exists.
 */
export async function heldInHandler(
  port: number,
  marks: { mark: string; release?: string; done?: string },
): Promise<Client> {
  const busy = new Client(port);
  const query = Object.entries(marks)
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  await busy.send(`GET /hold?${query} HTTP/1.1\r\nHost: x\r\n\r\n`);
  expect(await eventually(() => existsSync(marks.mark), STALL_MS)).toBe(true);
  return busy;
}

/** close() (with `options`), and whether it has resolved yet. */
export function closing(
  s: Server,
  options?: Parameters<Server['close']>[0],
): { done: Promise<boolean>; resolved: () => boolean } {
  let resolved = false;
  const closed = s.close(options).then(() => (resolved = true));
  const stall = new Promise<boolean>((r) => setTimeout(() => r(false), STALL_MS).unref());
  return { done: Promise.race([closed, stall]), resolved: () => resolved };
}

export function defineCloseTests(model: ModelName, start: Start, root: () => string): void {
  const marks = mkdtempSync(join(tmpdir(), 'rawio-close-'));
  afterAll(() => rmSync(marks, { recursive: true, force: true }));
  const mark = (name: string) => join(marks, `${model}-${name}`);

  it('close() closes a request in its handler at once, refuses new connects, and waits for the handler to settle', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: STALL_MS });
    held.started(s);
    const [release, done] = [mark('release'), mark('done')];
    const busy = await heldInHandler(s.port, { mark: mark('in'), release, done });
    const c = closing(s);
    expect(await eventually(() => busy.closed, STALL_MS)).toBe(true);
    expect(busy.got.length).toBe(0); // its reply, when the handler settles, is dropped
    expect(await new Client(s.port).connected).toBe('ECONNREFUSED');
    // The handler cannot settle before the release: close() is still waiting for it.
    expect(c.resolved()).toBe(false);
    writeFileSync(release, '');
    expect(await c.done).toBe(true);
    expect(existsSync(done)).toBe(true); // it ran to its end before its thread or process went
    await held.gone();
  }, 30_000);

  it('close() ends a handler that never settles after the idle timeout, and resolves', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: 300 });
    held.started(s);
    const busy = await heldInHandler(s.port, { mark: mark('never') });
    const c = closing(s);
    expect(await c.done).toBe(true);
    expect(await eventually(() => busy.closed, STALL_MS)).toBe(true);
    expect(busy.got.length).toBe(0);
    await held.gone();
  }, 30_000);

  it('close() closes an idle keep-alive connection and one with half a request at once', async () => {
    const held = holdings(model);
    const s = await start('http', { handler: HOLD, idleTimeout: STALL_MS, headerTimeout: STALL_MS });
    held.started(s);
    const idle = new Client(s.port);
    await idle.send('GET /quick HTTP/1.1\r\nHost: x\r\n\r\n');
    expect(await eventually(() => idle.got.includes('quick\n'), STALL_MS)).toBe(true);
    const reply = idle.got.length;
    const half = new Client(s.port);
    await half.send('GET /quick HTTP/1.1\r\nHo');
    const c = closing(s);
    expect(await c.done).toBe(true);
    expect(await eventually(() => idle.closed && half.closed, STALL_MS)).toBe(true);
    expect(idle.got.length).toBe(reply);
    expect(half.got.length).toBe(0);
    await held.gone();
  }, 30_000);

  it('close() cuts a file body being sent to a client that does not read, and resolves without waiting for it (sendfile, uring, direct)', async () => {
    const size = 16 * MiB;
    writeFileSync(join(root(), 'close-big.bin'), Buffer.alloc(size, 98));
    // Each way a body leaves: sendfile(2) returns to the thread, while io_uring's sends (and
    // direct's O_DIRECT reopen of the file) are the kernel's until their completions.
    const methods = Ring.supported() ? (['sendfile', 'uring', 'direct'] as const) : (['sendfile'] as const);
    for (const transfer of methods) {
      const held = holdings(model);
      const s = await start('static', { idleTimeout: STALL_MS, transfer });
      held.started(s);
      // The client reads the first bytes that come, the head's, and then no more. Not paused
      // from the start: stats() counts a head before it is written, and a close() that came
      // between the two (under load) could cut the connection before the head left.
      const slow = new Client(s.port);
      slow.sock.once('data', () => slow.sock.pause());
      await slow.send('GET /close-big.bin HTTP/1.1\r\nHost: x\r\n\r\n');
      expect(await eventually(() => slow.got.length >= 15, STALL_MS)).toBe(true);
      const c = closing(s);
      expect(await c.done, transfer).toBe(true); // while the client still reads nothing
      slow.sock.resume();
      expect(await eventually(() => slow.closed, STALL_MS), transfer).toBe(true);
      expect(slow.got.toString('latin1', 0, 15)).toBe('HTTP/1.1 200 OK');
      expect(slow.got.length).toBeLessThan(size);
      await held.gone();
    }
  }, 30_000);

  it('a closing reply lingers: a client still sending a body over maxRequest gets the whole 413 and EOF, and no write of it fails', async () => {
    const held = holdings(model);
    const s = await start('http', { maxRequest: 64 * 1024, idleTimeout: STALL_MS });
    held.started(s);
    const size = 4 * MiB;
    // Half-open allowed: the client goes on writing after the server's EOF, as an uploader does.
    const sock = net.connect({ port: s.port, host: '127.0.0.1', allowHalfOpen: true });
    let got = Buffer.alloc(0);
    let ended = false;
    const errors: string[] = [];
    sock.on('data', (d: Buffer) => (got = Buffer.concat([got, d])));
    sock.on('end', () => (ended = true));
    sock.on('error', (e: NodeJS.ErrnoException) => errors.push(e.code ?? e.message));
    const closed = new Promise<boolean>((r) => sock.once('close', () => r(true)));
    const stall = new Promise<boolean>((r) => setTimeout(() => r(false), STALL_MS).unref());
    await new Promise((r) => sock.once('connect', r));
    sock.write(`POST /upload HTTP/1.1\r\nHost: x\r\nContent-Length: ${size}\r\n\r\n`);
    const chunk = Buffer.alloc(64 * 1024, 97);
    const replied = () => got.includes('\r\n\r\n') || sock.destroyed;
    for (let sent = 0; sent < size && !sock.destroyed; sent += chunk.length) {
      const room = sock.write(chunk, (e) => e && errors.push((e as NodeJS.ErrnoException).code ?? e.message));
      if (!room) await new Promise((r) => (sock.once('drain', r), sock.once('close', r)));
      // A quarter of the body in, the rest goes after the reply has come: the server has
      // answered and is closing while the client still sends, whatever the scheduling.
      if (sent === size / 4) expect(await eventually(replied, STALL_MS)).toBe(true);
    }
    sock.end();
    expect(await Promise.race([closed, stall])).toBe(true);
    expect(errors).toEqual([]);
    expect(ended).toBe(true); // the server's EOF, after the reply
    const text = got.toString('latin1');
    expect(text).toMatch(/^HTTP\/1\.1 413 /);
    const head = text.indexOf('\r\n\r\n');
    const length = Number(/\r\ncontent-length: *(\d+)/i.exec(text)?.[1]);
    expect(head).toBeGreaterThan(0);
    expect(got.length).toBe(head + 4 + length); // the whole reply, nothing after it
    await s.close();
    await held.gone();
  }, 30_000);

  it('close() while clients keep connecting fails no thread of the server and leaves nothing behind', async () => {
    // A thread that accepts may be in accept(2), epoll_ctl or an io_uring accept on the
    // listening socket as close() begins: what close() closes under it must not fail it (a
    // thread failure is reported as a process warning, 'rawio … thread N failed').
    const failures: string[] = [];
    const onWarning = (w: Error) => {
      if (/^rawio .* failed/.test(w.message)) failures.push(w.message.split('\n')[0]!);
    };
    process.on('warning', onWarning);
    try {
      const held = holdings(model);
      for (let cycle = 0; cycle < 6; cycle++) {
        const s = await start('echo', { idleTimeout: STALL_MS });
        if (cycle === 0) held.started(s);
        let storming = true;
        const storm = async () => {
          while (storming) {
            await new Promise<void>((resolve) => {
              const c = net.connect(s.port, '127.0.0.1');
              c.once('error', () => resolve());
              c.once('connect', () => (c.destroy(), resolve()));
            });
          }
        };
        const storms = Array.from({ length: 6 }, storm);
        expect(await eventually(() => s.stats().accepted.some((n) => n > 0), STALL_MS)).toBe(true);
        expect(await closing(s).done).toBe(true);
        storming = false;
        await Promise.all(storms);
        expect(s.stats().connections).toBe(0);
      }
      await held.gone();
      // Warnings are emitted on a later tick than the thread's failure.
      await new Promise((r) => setTimeout(r, 50));
      expect(failures).toEqual([]);
    } finally {
      process.off('warning', onWarning);
    }
  }, 60_000);
}
