/**
 * A stalled worker under each accept strategy of the multi-process model: one of two
 * workers is stopped with SIGSTOP, then new connections arrive. With `reuseport` the
 * kernel has already queued some of them on the stopped worker's own socket: those wait,
 * unanswered, until SIGCONT, and it is the stopped worker that accepts them after. With
 * `exclusive` (EPOLLEXCLUSIVE wakes only a process waiting in epoll_wait) and `mutex` (the
 * accept mutex is a lease a stopped holder loses) the healthy worker answers every one
 * while the other is stopped. Everything asserted is a count; the waits are bounded, and a
 * stopped worker is always continued and the server closed, whatever an assertion says.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type Server } from '../helpers/rawio.js';
import { processState } from '../helpers/procs.js';

const CONNECTIONS = 32;
const stopped = new Set<number>();
// A test run that dies between SIGSTOP and SIGCONT must not leave a frozen worker behind.
process.once('exit', () => stopped.forEach((pid) => cont(pid)));

function cont(pid: number): void {
  try {
    process.kill(pid, 'SIGCONT');
  } catch {
    // gone already
  }
  stopped.delete(pid);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `done` every 10 ms, at most `tries` times; true once it holds. */
async function until(done: () => boolean, tries = 2000): Promise<boolean> {
  for (let i = 0; i < tries; i++) {
    if (done()) return true;
    await sleep(10);
  }
  return done();
}

/** Clients that each send one 4-byte message and count the echo. */
function clients(port: number, n: number): { sockets: Socket[]; answered: () => number } {
  let answered = 0;
  const sockets = Array.from({ length: n }, () => {
    const s = connect({ port, host: '127.0.0.1' });
    let got = 0;
    s.on('connect', () => s.write('ping'));
    s.on('data', (d: Buffer) => {
      got += d.length;
      if (got === 4) answered++;
    });
    s.on('error', () => {});
    return s;
  });
  return { sockets, answered: () => answered };
}

/** The answered count once it has stopped rising for `quietTicks` polls (bounded). */
async function settled(answered: () => number, quietTicks = 100): Promise<number> {
  let last = -1;
  let quiet = 0;
  for (let i = 0; i < 2000 && quiet < quietTicks && answered() < CONNECTIONS; i++) {
    const now = answered();
    quiet = now === last && now > 0 ? quiet + 1 : 0;
    last = now;
    await sleep(10);
  }
  return answered();
}

const accepted = (s: Server) => s.stats().accepted;

describe('multi-process with a stopped worker', () => {
  let server: Server | undefined;
  let sockets: Socket[] = [];
  afterEach(async () => {
    stopped.forEach((pid) => cont(pid));
    sockets.forEach((s) => s.destroy());
    sockets = [];
    await server?.close();
    server = undefined;
  });

  async function start(accept: 'reuseport' | 'exclusive' | 'mutex'): Promise<Server> {
    server = await serve({ model: 'multi-process', protocol: 'echo', workers: 2, accept });
    const pids = server.workerPids();
    expect(pids).toHaveLength(2);
    expect(pids.every((p) => p > 0)).toBe(true);
    return server;
  }

  /** Stops worker `index`, then opens the clients. */
  async function stopAndConnect(s: Server, index: number) {
    const victim = s.workerPids()[index]!;
    stopped.add(victim);
    process.kill(victim, 'SIGSTOP');
    expect(await until(() => processState(victim) === 'T')).toBe(true);
    const c = clients(s.port, CONNECTIONS);
    sockets.push(...c.sockets);
    return { victim, answered: c.answered };
  }

  it('reuseport: the connections queued to the stopped worker wait for SIGCONT, then it answers them', async () => {
    const s = await start('reuseport');
    const { victim, answered } = await stopAndConnect(s, 0);
    const whileStopped = await settled(answered);
    // The kernel hashes each connection to one worker's socket: 32 all on the healthy one
    // has odds of 2^-32, so some wait, and the healthy worker answers the rest.
    expect(whileStopped).toBeGreaterThan(0);
    expect(whileStopped).toBeLessThan(CONNECTIONS);
    cont(victim);
    expect(await until(() => answered() === CONNECTIONS)).toBe(true);
    // Those answered while it was stopped were the healthy worker's; the ones that waited
    // were accepted by the stopped worker once continued.
    expect(await until(() => accepted(s).reduce((a, b) => a + b, 0) === CONNECTIONS)).toBe(true);
    const [late, healthy] = accepted(s) as [number, number];
    expect(healthy).toBeGreaterThanOrEqual(whileStopped);
    expect(late).toBeGreaterThan(0);
    expect(late).toBeLessThanOrEqual(CONNECTIONS - whileStopped);
  });

  // Each worker is stopped in turn: whichever holds the accept mutex (or sits first on the
  // listening socket's wait queue) is stopped in one of the rounds.
  it.each(['exclusive', 'mutex'] as const)(
    '%s: the healthy worker answers every new connection while the other is stopped',
    async (accept) => {
      const s = await start(accept);
      const want = [0, 0];
      for (const index of [0, 1, 0, 1]) {
        const { victim, answered } = await stopAndConnect(s, index);
        expect(await until(() => answered() === CONNECTIONS)).toBe(true);
        expect(processState(victim)).toBe('T'); // all of them while it was still stopped
        want[1 - index]! += CONNECTIONS;
        expect(await until(() => accepted(s)[1 - index] === want[1 - index])).toBe(true);
        cont(victim);
        expect(await until(() => processState(victim) !== 'T')).toBe(true);
        await sleep(100); // the continued worker publishes its count (every 50 ms)
        expect(accepted(s)).toEqual(want);
      }
    },
  );
});
