/**
 * The server-wide connection limit (`maxConnections`, README "Connection limits"), the same
 * on every model (called by wire.ts):
 *   - with the limit's connections open and served, a connect past it is closed by the
 *     server at once, nothing read or answered (the client sees EOF or a reset, never a
 *     stall), and counted in stats().refused; the connections open are still served;
 *   - as soon as one of them has closed, the next connect is served;
 *   - connections that hold the limit while idle are still closed by the idle timeout, and
 *     the server serves again after.
 * `iterative` holds one connection at a time, so it never reaches a limit (at least 1): a
 * second client waits in the backlog and is served once the first leaves, nothing refused.
 * Deadlines are stall guards; nothing measures time.
 */
import { expect, it } from 'vitest';
import type { ModelName, ServeOptions, Server } from '../helpers/rawio.js';
import { resp } from '../helpers/clients.js';
import { RespConn } from '../helpers/resp-conn.js';
import { eventually } from '../helpers/wait.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const STALL_MS = 20_000;

/**
 * On `iterative` a connection limit of 1 (`limit`: the option that sets it) never refuses:
 * a second client (from `local`, if given) waits in the backlog and is served once the first
 * leaves, nothing counted refused.
 */
export async function iterativeWaitsItsTurn(start: Start, limit: Partial<ServeOptions>, local?: string): Promise<void> {
  const s = await start('resp', limit);
  const first = new RespConn(s.port, local);
  expect(await first.ping()).toBe(true);
  const second = new RespConn(s.port, local);
  second.sock.write(resp('PING'));
  first.sock.destroy();
  expect(await eventually(() => second.got === '+PONG\r\n', STALL_MS)).toBe(true);
  expect(s.stats().refused).toBe(0);
  second.sock.destroy();
}

export function defineMaxConnectionsTests(model: ModelName, start: Start): void {
  // thread-per-connection's `workers` caps its threads, connects past the cap waiting in the
  // backlog (README's model table): give it more threads than the limit, so the limit binds.
  const threads: Partial<ServeOptions> = model === 'thread-per-connection' ? { workers: 8 } : {};

  if (model === 'iterative') {
    it('maxConnections never refuses on iterative: the next client waits its turn and is served', async () => {
      await iterativeWaitsItsTurn(start, { maxConnections: 1 });
    }, 60_000);
    return;
  }

  it('maxConnections: a connect past the limit is closed at once, unanswered, counted in refused; the next after a close is served', async () => {
    const s = await start('resp', { ...threads, maxConnections: 3 });
    const held = [new RespConn(s.port), new RespConn(s.port), new RespConn(s.port)];
    for (const c of held) expect(await c.ping()).toBe(true);
    expect(await eventually(() => s.stats().connections === 3, STALL_MS)).toBe(true);

    const past = new RespConn(s.port);
    past.sock.write(resp('PING')); // never read: the server closes it unread
    expect(await past.shut()).toBe(true);
    expect(past.got).toBe('');
    expect(await eventually(() => s.stats().refused === 1, STALL_MS)).toBe(true);

    // A burst past the limit: every one closed, none served, and accepting goes on.
    const burst = Array.from({ length: 4 }, () => new RespConn(s.port));
    for (const c of burst) expect(await c.shut()).toBe(true);
    expect(burst.map((c) => c.got)).toEqual(['', '', '', '']);
    expect(await eventually(() => s.stats().refused === 5, STALL_MS)).toBe(true);

    // The connections within the limit are still served.
    for (const c of held) expect(await c.ping()).toBe(true);

    // One closes: once the server has seen it, the next connect is served.
    held[0]!.sock.destroy();
    expect(await eventually(() => s.stats().connections === 2, STALL_MS)).toBe(true);
    const next = new RespConn(s.port);
    expect(await next.ping()).toBe(true);
    expect(next.closed).toBe(false);
    // The refused are not counted as served (multi-process workers publish their counts every 50 ms).
    const served = () => s.stats().accepted.reduce((a, b) => a + b, 0);
    expect(await eventually(() => served() === 4, STALL_MS)).toBe(true);
    expect(s.stats().refused).toBe(5);
    for (const c of [...held, next]) c.sock.destroy();
  }, 60_000);

  it('maxConnections: of a burst of connects at once, no more than the limit are served, across every thread and process', async () => {
    const s = await start('resp', { ...threads, maxConnections: 4 });
    // 16 at once: with workers 2 they reach both threads (both processes) of the models
    // that spread connections, which must share one count.
    const burst = Array.from({ length: 16 }, () => new RespConn(s.port));
    const served = await Promise.all(burst.map((c) => c.ping()));
    const n = served.filter(Boolean).length;
    for (const [i, c] of burst.entries()) if (!served[i]) expect(c.got).toBe(''); // refused unread
    // Exactly the limit: threads share one compare-and-swap count, processes take their slots
    // on the board with one operation under its lock, so none is refused while one is free.
    expect(n).toBe(4);
    expect(await eventually(() => s.stats().refused === 16 - n, STALL_MS)).toBe(true);
    // Those served stay served.
    for (const [i, c] of burst.entries()) if (served[i]) expect(await c.ping()).toBe(true);
    for (const c of burst) c.sock.destroy();
  }, 60_000);

  it('maxConnections: idle connections holding the limit are closed by idleTimeout, then the server serves again', async () => {
    const s = await start('resp', { ...threads, maxConnections: 2, idleTimeout: 300 });
    // Each connection opened as it is pinged: the second, opened before the first's PING came
    // back, sat idle meanwhile, and a pause of this process past 300 ms had it closed unanswered.
    const idle: RespConn[] = [];
    for (let i = 0; i < 2; i++) {
      idle.push(new RespConn(s.port));
      expect(await idle[i]!.ping()).toBe(true);
    }
    for (const c of idle) expect(await c.shut()).toBe(true); // closed by the server, idle
    expect(await eventually(() => s.stats().connections === 0, STALL_MS)).toBe(true);
    const next = new RespConn(s.port);
    expect(await next.ping()).toBe(true);
    next.sock.destroy();
  }, 60_000);
}
