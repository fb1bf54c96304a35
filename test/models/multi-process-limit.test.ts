/**
 * maxConnections and maxConnectionsPerClient on multi-process, beyond the wire suite (which
 * runs the reuseport strategy): the workers' counts on the board hold with every accept
 * strategy, and a worker killed while it holds connections frees its share of both, so
 * its replacement serves and the client can open its whole limit again.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type Server } from '../helpers/rawio.js';
import { RespConn } from '../helpers/resp-conn.js';
import { eventually } from '../helpers/wait.js';
import { Keyspace, KEYSPACE_NX } from '../../dist/src/sys/keyspace.js';
import {
  FIGURES,
  MUTEX_KEY,
  clientBoard,
  clientPrefix,
  connsKey,
  counterBoard,
  statsKey,
} from '../../dist/src/models/process-board.js';

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

  it.each(['exclusive', 'mutex'] as const)(
    'holds maxConnectionsPerClient across the worker processes with accept %s',
    async (accept) => {
      server = await serve({
        model: 'multi-process',
        protocol: 'resp',
        workers: 2,
        accept,
        maxConnectionsPerClient: 3,
      });
      const s = server;
      const burst = Array.from({ length: 12 }, () => new RespConn(s.port, '127.0.0.1'));
      conns.push(...burst);
      expect((await Promise.all(burst.map((c) => c.ping()))).filter(Boolean).length).toBe(3);
      const other = new RespConn(s.port, '127.0.0.2');
      conns.push(other);
      expect(await other.ping()).toBe(true);
      expect(await eventually(() => s.stats().refused === 9, STALL_MS)).toBe(true);
    },
    60_000,
  );

  it('frees the per-client slots of a worker killed while it holds them: after the respawn the client opens its whole limit again', async () => {
    // exclusive, as above: connects made during the respawn wait in the master's backlog.
    server = await serve({
      model: 'multi-process',
      protocol: 'resp',
      workers: 2,
      accept: 'exclusive',
      maxConnectionsPerClient: 4,
    });
    const s = server;
    const open = (n: number) => {
      const cs = Array.from({ length: n }, () => new RespConn(s.port, '127.0.0.1'));
      conns.push(...cs);
      return cs;
    };
    const held = open(4);
    for (const c of held) expect(await c.ping()).toBe(true);
    // Kill whichever worker holds connections of this client (the kernel spreads them).
    const pids = s.workerPids();
    const accepted = () => s.stats().accepted; // published by the workers every 50 ms
    expect(await eventually(() => accepted().reduce((x, y) => x + y, 0) === 4, STALL_MS)).toBe(true);
    const index = accepted().findIndex((n) => n > 0);
    const lost = accepted()[index]!;
    const victim = pids[index]!;
    process.kill(victim, 'SIGKILL');
    expect(await eventually(() => held.filter((c) => c.closed).length === lost, STALL_MS)).toBe(true);
    expect(await eventually(() => s.workerPids()[index]! > 0 && s.workerPids()[index] !== victim, STALL_MS)).toBe(true);
    // The dead worker's connections are gone with it; the survivor's still count.
    const alive = held.filter((c) => !c.closed);
    for (const c of alive) expect(await c.ping()).toBe(true);
    // Exactly the slots the dead worker held are free: the client fills its limit again, no more.
    const fresh = open(4 - alive.length);
    expect(await Promise.all(fresh.map((c) => c.ping()))).toEqual(fresh.map(() => true));
    const past = open(1)[0]!;
    expect(await past.shut()).toBe(true);
    expect(past.got).toBe('');
  }, 60_000);
});

describe('the multi-process board', () => {
  // What every worker writes at once, at the most workers serve() takes: its figures, its
  // count under maxConnections (one past a billion: the most digits a count has here), and
  // the accept mutex over them. A board too small leaves the last workers' figures out and,
  // full, refuses every connection and the accept mutex (-ENOMEM).
  const fill = (board: Keyspace, workers: number) => {
    const figures = new Uint8Array(FIGURES * 8).fill(0xff);
    const digits = new Uint8Array(24);
    for (let i = 0; i < workers; i++) {
      expect(board.set(statsKey(i), figures)).toBeGreaterThanOrEqual(0);
      expect(board.incr(connsKey(i), 1_000_000_001, digits)).toBeGreaterThan(0);
    }
    expect(board.set(MUTEX_KEY, new TextEncoder().encode(`${workers - 1}:${2 ** 50}`), KEYSPACE_NX)).toBe(1);
  };

  it.each([1, 2, 64, 1000, 4096])('holds every counter of %i workers', (workers) => {
    const board = Keyspace.create(undefined, { size: counterBoard(workers) });
    try {
      fill(board, workers);
    } finally {
      board.close();
    }
  });

  it("holds every counter of 4096 workers beside each worker's full share of client keys", () => {
    const workers = 4096;
    const { size, perWorker } = clientBoard(workers, 1);
    expect(perWorker).toBeGreaterThanOrEqual(1);
    const board = Keyspace.create(undefined, { size });
    try {
      const digits = new Uint8Array(24);
      for (let i = 0; i < workers; i++) {
        for (let c = 0; c < perWorker; c++) {
          const key = new Uint8Array([...clientPrefix(i), ...new Uint8Array(16).fill(0xff - (c & 0xff))]);
          expect(board.incr(key, 1_000_000, digits)).toBeGreaterThan(0);
        }
      }
      fill(board, workers);
    } finally {
      board.close();
    }
  });
});
