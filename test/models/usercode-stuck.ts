/**
 * A thread ended by close() while user code blocks it, on every model (called from
 * usercode-suite.ts): a protocol module's handler that never returns (it waits on a futex
 * nobody wakes, without using the CPU) keeps its thread from ever reading close()'s stop, so
 * close() terminates it after the idle timeout. Every fd that thread owned — the sockets of
 * its connections, its poller or ring, its eventfds and pipes, the file of a body being sent —
 * must be closed all the same, and a ring's mappings unmapped: the process is back to the
 * fds, io_uring mappings and threads it had before serve(). On multi-process the servers
 * are processes, which the kernel cleans up: the same checks hold for the test's process.
 */
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Ring, serve, type ModelName, type TransferMethodName } from '../helpers/rawio.js';
import { exchange } from '../helpers/clients.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { eventually } from '../helpers/wait.js';

const STUCK = new URL('../fixtures/user/stuck.mjs', import.meta.url);
const STALL_MS = 20_000;
const BIG = 16 << 20;

const threads = () => readdirSync('/proc/self/task').length;
/** Lines of this process's memory map that are io_uring rings (SQ/CQ rings, SQEs) or files in `dir`. */
const heldMaps = (dir: string) =>
  readFileSync('/proc/self/maps', 'latin1')
    .split('\n')
    .filter((l) => l.includes('io_uring') || l.includes(dir));

const echo = (port: number, word: string) =>
  exchange(port, { send: Buffer.from(`ECHO ${word}\n`), complete: (g) => g.includes('\n') }, STALL_MS);

/** A client that keeps its connection open: what it got, and whether the server closed it. */
function client(port: number, send: string, read = true) {
  const sock = net.connect(port, '127.0.0.1', () => sock.write(send));
  const state = { sock, got: 0, closed: false };
  if (!read) sock.pause();
  sock.on('data', (d: Buffer) => (state.got += d.length));
  sock.on('close', () => (state.closed = true));
  sock.on('error', () => undefined); // a reset once the server closed: expected
  return state;
}

export function defineStuckThreadTests(model: ModelName): void {
  describe(`${model} × a thread that user code blocks for ever`, () => {
    let dir: string;
    let big: string;
    beforeAll(() => {
      dir = mkdtempSync(join(tmpdir(), 'rawio-stuck-'));
      big = join(dir, 'big.bin');
      writeFileSync(big, Buffer.alloc(BIG, 97));
    });
    afterAll(() => rmSync(dir, { recursive: true, force: true }));

    // The default, and the methods that hold more while a body is in flight: a pipe of the
    // thread's pool (splice), a mapping of the file (mmap), the thread's transfer ring and an
    // O_DIRECT reopen of the file (direct).
    const transfers: TransferMethodName[] = Ring.supported()
      ? ['auto', 'splice', 'mmap', 'direct']
      : ['auto', 'splice', 'mmap'];
    for (const transfer of transfers) {
      const start = () =>
        serve({ model, protocol: { module: STUCK, options: {} }, workers: 1, pool: 1, idleTimeout: 300, transfer });

      it(`close() terminates it and closes every fd it owned (transfer ${transfer})`, async () => {
        // A first server and its close: whatever Node opens once, on first use, is open from
        // here on, and the count below is what this process holds between servers.
        const before = threads();
        const warm = await start();
        expect((await echo(warm.port, 'warm')).toString()).toBe('warm\n');
        await warm.close();
        expect(await eventually(() => threads() <= before, STALL_MS)).toBe(true);
        const fds = openFds();
        const maps = heldMaps(dir).length;
        const tasks = threads();

        const s = await start();
        // A body of a file being sent to a client that reads nothing (iterative serves one
        // connection at a time: the idle timeout closes it before the next is served).
        const slow = client(s.port, `FILE ${big}\n`, false);
        expect(await eventually(() => s.stats().bytesOut > 0, STALL_MS)).toBe(true);
        // An idle keep-alive connection, then the one whose handler blocks its thread.
        const idle = client(s.port, 'ECHO idle\n');
        expect(await eventually(() => idle.got > 0, STALL_MS)).toBe(true);
        const mark = join(dir, `${model}-in-handler`);
        const stuck = client(s.port, `STUCK ${mark}\n`);
        expect(await eventually(() => existsSync(mark), STALL_MS)).toBe(true);
        rmSync(mark);
        // One more client while the thread is blocked: its connection may wait in the backlog,
        // in a reactor's inbox (an acceptor thread took it) or in a ring's completion queue.
        const late = client(s.port, 'ECHO late\n');
        expect(await eventually(() => late.sock.readyState === 'open', STALL_MS)).toBe(true);

        await s.close();
        expect(await eventually(() => threads() <= tasks, STALL_MS)).toBe(true);
        // Every connection is closed for its client: the server's socket is gone.
        const clients = [slow, idle, stuck, late];
        for (const c of clients) c.sock.resume();
        const closedByServer = await eventually(() => clients.every((c) => c.closed), STALL_MS);
        for (const c of clients) c.sock.destroy();
        await eventually(() => leakedSince(fds).length === 0 && heldMaps(dir).length <= maps);
        expect(leakedSince(fds)).toEqual([]);
        expect(heldMaps(dir).length).toBeLessThanOrEqual(maps);
        expect(closedByServer).toBe(true);
        expect(stuck.got).toBe(0);
      }, 60_000);
    }
  });
}
