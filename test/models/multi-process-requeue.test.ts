/**
 * multi-process with `accept: 'reuseport'`: the master opens each worker slot's SO_REUSEPORT
 * socket and keeps it, so the connections the kernel queued on a worker's socket outlive
 * that worker. One worker of two is stopped (SIGSTOP), clients connect, and those the
 * kernel hashed onto the stopped worker's socket are the ones that get no echo; then the
 * worker is killed (SIGKILL): its respawn takes the socket over and answers every one of
 * them, none reset. A slot the master gives up (the crash-loop rule) has its socket closed:
 * what waited there is reset, and new connects are served by the other worker, never left
 * waiting. And close() leaves the master's fd table as it found it. Everything asserted is a
 * count or an outcome; waits are bounded polls, and a stopped worker is always continued.
 */
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { serve, type Server, type WorkerCrashError } from '../helpers/rawio.js';
import { processState } from '../helpers/procs.js';
import { leakedSince, openFds } from '../helpers/fds.js';
import { eventually } from '../helpers/wait.js';

const CONNECTIONS = 32;
const stopped = new Set<number>();
// A test run that dies between SIGSTOP and SIGKILL must not leave a frozen worker behind.
process.once('exit', () => stopped.forEach((pid) => signal(pid, 'SIGCONT')));

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // gone already
  }
  if (sig !== 'SIGSTOP') stopped.delete(pid);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A client that sends one 4-byte message; `outcome` says how it has ended so far. */
interface Client {
  socket: Socket;
  /** 'waiting' (connected or connecting, no echo yet), 'answered', or the error code it ended with. */
  outcome: string;
}

function clients(port: number, n: number): Client[] {
  return Array.from({ length: n }, () => {
    const socket = connect({ port, host: '127.0.0.1' });
    const c: Client = { socket, outcome: 'waiting' };
    let got = 0;
    socket.on('connect', () => socket.write('ping'));
    socket.on('data', (d: Buffer) => {
      got += d.length;
      if (got === 4) c.outcome = 'answered';
    });
    socket.on('error', (e: NodeJS.ErrnoException) => {
      if (c.outcome === 'waiting') c.outcome = e.code ?? e.message;
    });
    socket.on('close', () => {
      if (c.outcome === 'waiting') c.outcome = 'closed unanswered';
    });
    return c;
  });
}

const count = (cs: Client[], outcome: string) => cs.filter((c) => c.outcome === outcome).length;

/** The answered count once it has stopped rising for a second (bounded). */
async function settled(cs: Client[]): Promise<number> {
  let last = -1;
  for (let i = 0, quiet = 0; i < 2000 && quiet < 100 && count(cs, 'answered') < cs.length; i++) {
    const now = count(cs, 'answered');
    quiet = now === last && now > 0 ? quiet + 1 : 0;
    last = now;
    await sleep(10);
  }
  return count(cs, 'answered');
}

describe('multi-process reuseport: a worker that dies with connections queued on its socket', () => {
  let server: Server | undefined;
  let sockets: Socket[] = [];
  afterEach(async () => {
    stopped.forEach((pid) => signal(pid, 'SIGCONT'));
    sockets.forEach((s) => s.destroy());
    sockets = [];
    await server?.close();
    server = undefined;
  });

  async function start(): Promise<Server> {
    server = await serve({ model: 'multi-process', protocol: 'echo', workers: 2, accept: 'reuseport' });
    expect(server.workerPids().every((p) => p > 0)).toBe(true);
    return server;
  }

  /**
   * Stops worker `index`, connects the clients and waits until the other has answered all
   * it will: those left waiting (at least one: 32 all hashed onto the healthy socket has
   * odds of 2^-32) are queued on the stopped worker's socket.
   */
  async function queueOnStopped(s: Server, index: number) {
    const victim = s.workerPids()[index]!;
    stopped.add(victim);
    process.kill(victim, 'SIGSTOP');
    expect(await eventually(() => processState(victim) === 'T')).toBe(true);
    const cs = clients(s.port, CONNECTIONS);
    sockets.push(...cs.map((c) => c.socket));
    const answered = await settled(cs);
    expect(answered).toBeGreaterThan(0);
    expect(answered).toBeLessThan(CONNECTIONS);
    const queued = cs.filter((c) => c.outcome === 'waiting');
    expect(queued.length).toBe(CONNECTIONS - answered);
    // Their handshakes are done: the kernel queued them on the stopped worker's listening socket.
    expect(queued.every((c) => c.socket.readyState === 'open')).toBe(true);
    return { victim, cs, queued };
  }

  it('its respawn inherits the socket and answers every connection queued there, none reset', async () => {
    const s = await start();
    const { victim, cs, queued } = await queueOnStopped(s, 0);
    signal(victim, 'SIGKILL');
    // Respawned after the back-off: a new process in slot 0.
    expect(await eventually(() => ![0, victim].includes(s.workerPids()[0]!))).toBe(true);
    const ended = () => cs.every((c) => c.outcome !== 'waiting');
    expect(await eventually(ended)).toBe(true);
    expect(queued.map((c) => c.outcome)).toEqual(queued.map(() => 'answered'));
    // The respawn in slot 0 accepted them (a dead worker's counts are kept: it accepted none).
    const sum = () => s.stats().accepted.reduce((a, b) => a + b, 0);
    expect(await eventually(() => sum() === CONNECTIONS)).toBe(true);
    expect(s.stats().accepted[0]).toBe(queued.length);
  }, 60_000);

  it('a slot given up is closed: what waited there is reset, new connects go to the other worker', async () => {
    const s = await start();
    const errors: WorkerCrashError[] = [];
    s.on('error', (e) => errors.push(e as WorkerCrashError));
    // Five crashes of worker 0 are respawned (50 ms back-off, doubling); the sixth within
    // 30 s makes the master give up.
    for (let crash = 1; crash <= 5; crash++) {
      const pid = s.workerPids()[0]!;
      signal(pid, 'SIGKILL');
      expect(await eventually(() => ![0, pid].includes(s.workerPids()[0]!))).toBe(true);
    }
    const { victim, cs, queued } = await queueOnStopped(s, 0);
    signal(victim, 'SIGKILL');
    expect(await eventually(() => errors.length > 0)).toBe(true);
    expect(errors[0]).toMatchObject({ code: 'ERR_RAWIO_WORKER_CRASHED', signal: 'SIGKILL' });
    expect(s.workerPids()[0]).toBe(0);
    // The queued connections were reset with the slot's socket, not left waiting.
    expect(await eventually(() => cs.every((c) => c.outcome !== 'waiting'))).toBe(true);
    expect(queued.map((c) => c.outcome)).toEqual(queued.map(() => 'ECONNRESET'));
    // New connects: worker 1's socket is the only one left, and serves every one.
    const later = clients(s.port, CONNECTIONS);
    sockets.push(...later.map((c) => c.socket));
    expect(await eventually(() => later.every((c) => c.outcome !== 'waiting'))).toBe(true);
    expect(count(later, 'answered')).toBe(CONNECTIONS);
    expect(s.workerPids()[0]).toBe(0); // and no respawn came meanwhile
  }, 90_000);

  it("close() refuses at once what waits on a stopped worker's socket, and leaves the master's fds as they were", async () => {
    const before = openFds();
    const s = await start();
    const { victim, queued } = await queueOnStopped(s, 1);
    const closing = s.close();
    server = undefined;
    // Shut down by the master at once, while the worker is still stopped: reset, not left waiting.
    expect(await eventually(() => queued.every((c) => c.outcome !== 'waiting'))).toBe(true);
    expect(queued.map((c) => c.outcome)).toEqual(queued.map(() => 'ECONNRESET'));
    expect(processState(victim)).toBe('T');
    signal(victim, 'SIGCONT'); // it sees the stop and exits
    await closing;
    sockets.forEach((c) => c.destroy());
    sockets = [];
    expect(await eventually(() => leakedSince(before).length === 0)).toBe(true);
  }, 60_000);
});
