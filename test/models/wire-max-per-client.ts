/**
 * The per-client connection limit (`maxConnectionsPerClient`, README "Connection limits"),
 * the same on every model (called by wire.ts). Two clients are two loopback source
 * addresses, 127.0.0.1 (A) and 127.0.0.2 (B):
 *   - A opens its limit and one more: the extra is closed by the server at once, nothing
 *     read or answered (EOF without data), and counted in stats().refused; A's connections
 *     open are still served;
 *   - B is served meanwhile, up to its own limit, and refused past it alike;
 *   - A closing one frees a slot for A;
 *   - of a burst of A's connects at once, exactly the limit is served, across every thread
 *     and process (one count per address, taken under a lock).
 * `iterative` holds one connection at a time, so it never reaches a limit (at least 1): a
 * client's next connect waits in the backlog and is served once the first leaves.
 * Deadlines are stall guards; nothing measures time.
 */
import { expect, it } from 'vitest';
import type { ModelName, ServeOptions, Server } from '../helpers/rawio.js';
import { resp } from '../helpers/clients.js';
import { RespConn } from '../helpers/resp-conn.js';
import { eventually } from '../helpers/wait.js';
import { iterativeWaitsItsTurn } from './wire-max-connections.js';

type Start = (protocol: ServeOptions['protocol'], opts?: Partial<ServeOptions>) => Promise<Server>;

const STALL_MS = 20_000;
const A = '127.0.0.1';
const B = '127.0.0.2';

export function defineMaxPerClientTests(model: ModelName, start: Start): void {
  // thread-per-connection's `workers` caps its threads (connects past it wait in the
  // backlog): more threads than both clients hold, so the per-client limit binds.
  const threads: Partial<ServeOptions> = model === 'thread-per-connection' ? { workers: 8 } : {};

  if (model === 'iterative') {
    it('maxConnectionsPerClient never refuses on iterative: the same client next waits its turn and is served', async () => {
      await iterativeWaitsItsTurn(start, { maxConnectionsPerClient: 1 }, A);
    }, 60_000);
    return;
  }

  it('maxConnectionsPerClient: a client past its limit is closed unread and counted, another client is served, a close frees a slot', async () => {
    const s = await start('resp', { ...threads, maxConnectionsPerClient: 2 });
    const a = [new RespConn(s.port, A), new RespConn(s.port, A)];
    for (const c of a) expect(await c.ping()).toBe(true);
    expect(await eventually(() => s.stats().connections === 2, STALL_MS)).toBe(true);

    const pastA = new RespConn(s.port, A);
    pastA.sock.write(resp('PING')); // never read: the server closes it unread
    expect(await pastA.shut()).toBe(true);
    expect(pastA.got).toBe('');
    expect(await eventually(() => s.stats().refused === 1, STALL_MS)).toBe(true);

    // B is another client: served up to its own limit, refused past it alike.
    const b = [new RespConn(s.port, B), new RespConn(s.port, B)];
    for (const c of b) expect(await c.ping()).toBe(true);
    const pastB = new RespConn(s.port, B);
    expect(await pastB.shut()).toBe(true);
    expect(pastB.got).toBe('');
    expect(await eventually(() => s.stats().refused === 2, STALL_MS)).toBe(true);

    // A's connections within its limit are still served.
    for (const c of a) expect(await c.ping()).toBe(true);

    // One of A's closes: once the server has seen it, A's next connect is served.
    a[0]!.sock.destroy();
    expect(await eventually(() => s.stats().connections === 3, STALL_MS)).toBe(true);
    const next = new RespConn(s.port, A);
    expect(await next.ping()).toBe(true);
    expect(next.closed).toBe(false);
    const served = () => s.stats().accepted.reduce((x, y) => x + y, 0);
    expect(await eventually(() => served() === 5, STALL_MS)).toBe(true);
    expect(s.stats().refused).toBe(2);
    for (const c of [...a, ...b, next]) c.sock.destroy();
  }, 60_000);

  it("maxConnectionsPerClient: of a burst of one client's connects at once, exactly its limit is served, across every thread and process", async () => {
    const s = await start('resp', { ...threads, maxConnectionsPerClient: 3 });
    const burst = Array.from({ length: 12 }, () => new RespConn(s.port, A));
    const served = await Promise.all(burst.map((c) => c.ping()));
    const n = served.filter(Boolean).length;
    for (const [i, c] of burst.entries()) if (!served[i]) expect(c.got).toBe(''); // refused unread
    expect(n).toBe(3);
    expect(await eventually(() => s.stats().refused === 12 - n, STALL_MS)).toBe(true);
    // Another client is served all the while.
    const other = new RespConn(s.port, B);
    expect(await other.ping()).toBe(true);
    for (const c of [...burst, other]) c.sock.destroy();
    // Every slot comes back: once all have closed, A has its whole limit again.
    expect(await eventually(() => s.stats().connections === 0, STALL_MS)).toBe(true);
    const again = Array.from({ length: 3 }, () => new RespConn(s.port, A));
    expect(await Promise.all(again.map((c) => c.ping()))).toEqual([true, true, true]);
    for (const c of again) c.sock.destroy();
  }, 60_000);
}
