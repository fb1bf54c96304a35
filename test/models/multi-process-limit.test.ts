/**
 * maxConnections on multi-process, beyond the wire suite (which runs the reuseport strategy):
 * the workers' count on the board holds with every accept strategy, and a worker killed
 * while it holds connections frees its share, so its replacement serves.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type Server } from '../helpers/rawio.js';
import { RespConn } from '../helpers/resp-conn.js';
import { eventually } from '../helpers/wait.js';

const STALL_MS = 20_000;

let server: Server | undefined;
const conns: RespConn[] = [];
afterEach(async () => {
  for (const c of conns.splice(0)) c.sock.destroy();
  await server?.close();
  server = undefined;
});

describe('multi-process maxConnections', () => {
  it.each(['exclusive', 'mutex'] as const)(
    'holds the limit across the worker processes with accept %s',
    async (accept) => {
      server = await serve({ model: 'multi-process', protocol: 'resp', workers: 2, accept, maxConnections: 3 });
      const s = server;
      const burst = Array.from({ length: 12 }, () => new RespConn(s.port));
      conns.push(...burst);
      const served = (await Promise.all(burst.map((c) => c.ping()))).filter(Boolean).length;
      expect(served).toBe(3); // the served stay open: exactly the limit, none refused while a slot was free
      expect(await eventually(() => s.stats().refused === 9, STALL_MS)).toBe(true);
    },
    60_000,
  );

  it('frees the share of a worker killed while it holds the limit: its replacement serves', async () => {
    // exclusive: the listening socket is the master's, so connects made while the worker is
    // respawned wait in its backlog for the new one (with reuseport the kernel would refuse them).
    server = await serve({
      model: 'multi-process',
      protocol: 'resp',
      workers: 1,
      accept: 'exclusive',
      maxConnections: 2,
    });
    const s = server;
    const held = [new RespConn(s.port), new RespConn(s.port)];
    conns.push(...held);
    for (const c of held) expect(await c.ping()).toBe(true);
    const victim = s.workerPids()[0]!;
    process.kill(victim, 'SIGKILL');
    expect(await eventually(() => held.every((c) => c.closed), STALL_MS)).toBe(true);
    expect(await eventually(() => s.workerPids()[0]! > 0 && s.workerPids()[0] !== victim, STALL_MS)).toBe(true);
    // Without the dead worker's share freed, the new one would count 2 held and refuse both.
    const fresh = [new RespConn(s.port), new RespConn(s.port)];
    conns.push(...fresh);
    expect(await Promise.all(fresh.map((c) => c.ping()))).toEqual([true, true]);
    expect(s.stats().refused).toBe(0);
  }, 60_000);
});
