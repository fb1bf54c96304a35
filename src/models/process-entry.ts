/**
 * The script each process of the multi-process model runs (nginx's worker process): one
 * ReactorThread on the process's main thread, in run() mode. What it gets from the parent:
 *   fd 3  the read end of a control pipe: a byte on it means drain (a graceful close: stop
 *         accepting, exit once every connection has answered and closed), its hang-up
 *         means stop (so a worker also stops if the parent dies);
 *   fd 4  the listening socket: the one all workers share (strategies `exclusive` and
 *         `mutex`), or this worker slot's own SO_REUSEPORT socket (`reuseport`), which the
 *         master keeps open across this process's death for its respawn to take over;
 *   fd 5  a pipe on which it says "ready" (a byte 1) once it listens, and "taken" (a byte 2)
 *         once a drain's byte made it accept what waited in its listen queue (the master shuts
 *         the socket down then);
 *   fd 0  its settings, V8-serialized (process-board.ts encodeSettings), then EOF (a pipe:
 *         the environment holds at most 128 KiB in one variable, and a module's options may
 *         be more); RAWIO_WORKER (env) its index,
 *         which also tells user code it runs in a worker process.
 * The kernel kills it (PR_SET_PDEATHSIG) if the master dies, whatever it is doing.
 * It publishes its counters into the parent's board (a small shared keyspace) every 50 ms,
 * and with the `mutex` strategy takes the accept mutex from the same board.
 */
import { readFileSync } from 'node:fs';
import { constants as osConstants } from 'node:os';
import { constants } from '../sys/constants.js';
import { EAGAIN, EINTR } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { Keyspace, KEYSPACE_NX } from '../sys/keyspace.js';
import { setThreadName } from '../sys/process.js';
import { Channel } from './channel.js';
import { CHANNEL_BYTES } from './messages.js';
import { asyncSettled } from './conn-contract.js';
import { ReactorThread } from './reactor-thread.js';
import { Stats, type ConnectionGate } from './stats.js';
import type { ClientGate } from './client-table.js';
import { loadProtocolModules, setErrorCounter } from '../protocols/module.js';
import { writeFailure } from './worker-failure.js';
import { fenceUserCode, runsUserCode } from './user-fence.js';
import {
  CONTROL_FD,
  clientPrefix,
  decodeSettings,
  connsKey,
  FIGURES,
  LISTEN_FD,
  MUTEX_KEY,
  READY_FD,
  statsKey,
} from './process-board.js';

const EPOLLIN = constants.EPOLLIN as number;
const EPOLLEXCLUSIVE = constants.EPOLLEXCLUSIVE as number;
/** How often a process without the accept mutex tries to take it (nginx's accept_mutex_delay). */
const MUTEX_DELAY_MS = 2;
/** How long the accept mutex stays with a process that stops renewing it. */
const MUTEX_LEASE_MS = 100;
/** What a worker writes on its ready pipe once a drain made it take its listen queue. */
const TAKEN = new Uint8Array([2]);

let saidReady = false;
const settings = decodeSettings(readFileSync(0));
// A master that dies (SIGKILL, a crash) hangs up the control pipe, which stops a worker that
// reads it; one that never reads it again (user code stuck in synchronous code, a process
// stopped by SIGSTOP) would outlive the master and keep the port for ever: the kernel kills
// it instead (PR_SET_PDEATHSIG). A master that died before this line was reached is seen
// by the parent being another process already.
native.setParentDeathSignal(osConstants.signals.SIGKILL);
if (parentPid() !== settings.master) process.exit(1);

// User code's errors outside any request, and its process.exit(), must not end the worker
// (user-fence.ts); rawio's own exits below take the fence off first.
const unfence = runsUserCode(settings.thread?.protocolOptions) ? fenceUserCode() : () => undefined;
// The terminal's signals (Ctrl-C's SIGINT, a hang-up's SIGHUP) reach the whole process group:
// the master closes its workers itself, through the control pipe, so a worker leaves them to
// it rather than dying mid-request. SIGTERM to a worker alone still ends it (and is
// respawned), and a master that dies hangs up the pipe.
for (const sig of ['SIGINT', 'SIGHUP'] as const) process.on(sig, () => undefined);

/** getppid(2) as /proc shows it now (Node's process.ppid is the parent at start-up). */
function parentPid(): number {
  const stat = readFileSync('/proc/self/stat', 'latin1');
  return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
}

/**
 * A failure before "ready" goes to the parent as a JSON record on the ready pipe, so that
 * serve() rejects with this error rather than with an exit code (and stderr stays quiet).
 */
function reportFailure(e: unknown): never {
  const bytes = Buffer.from(writeFailure(e));
  for (let at = 0; at < bytes.length;) {
    const n = native.write(READY_FD, bytes, at, bytes.length - at);
    if (n <= 0) break; // the parent is gone: nobody to tell
    at += n;
  }
  unfence();
  process.exit(1);
}

async function main(): Promise<void> {
  const s = settings;
  await loadProtocolModules(s.thread.protocolOptions);
  setThreadName(`rawio-worker${s.index}`.slice(0, 15)); // what ps and top show for this process
  const listenFd = LISTEN_FD;
  const eventfd = native.eventfd(0, false);
  const stats = new Stats(1);
  const board = Keyspace.attach(s.board);
  const thread = new ReactorThread({
    ...s.thread,
    role: 'reactor',
    index: 0,
    listenFd,
    inbox: Channel.create(CHANNEL_BYTES >> 6, eventfd),
    pool: [],
    stats: stats.share(),
    listenMask: s.accept === 'exclusive' ? EPOLLIN | EPOLLEXCLUSIVE : EPOLLIN,
    listenPaused: s.accept === 'mutex',
    gate: s.maxConnections > 0 ? new BoardGate(board, s.index, s.workers, s.maxConnections) : undefined,
    clientGate:
      s.maxConnectionsPerClient > 0
        ? new BoardClientGate(board, s.index, s.workers, s.maxConnectionsPerClient, s.clientsPerWorker)
        : undefined,
  });
  const { reactor } = thread;
  // A byte on the control pipe: drain (a graceful close; exit once every connection has
  // closed); its hang-up (the master closed it, or died): stop now.
  const control = new Uint8Array(16);
  let draining = false;
  reactor.watch(CONTROL_FD, EPOLLIN, () => {
    const n = native.read(CONTROL_FD, control, 0, control.length);
    if (n === -EINTR || n === -EAGAIN) return;
    if (n <= 0) return reactor.stop();
    if (draining) return;
    draining = true;
    // What waits in the listen queue is taken first, as connections accepted before the
    // drain; then the master hears it ("taken") and shuts the socket down: connects are
    // refused from then on, and nothing this worker took is reset by it.
    thread.takeQueued();
    native.write(READY_FD, TAKEN, 0, 1);
    thread.drain(() => reactor.stop());
  });
  setErrorCounter(() => stats.error());
  const figures = new Float64Array(FIGURES);
  const bytes = new Uint8Array(figures.buffer);
  const key = statsKey(s.index);
  const publish = () => {
    const snap = stats.snapshot();
    figures[0] = snap.accepted[0]!;
    figures[1] = snap.connections;
    figures[2] = snap.requests;
    figures[3] = snap.bytesOut;
    figures[4] = snap.shortBodies;
    figures[5] = snap.errors;
    figures[6] = snap.zerocopy.sends;
    figures[7] = snap.zerocopy.copied;
    figures[8] = snap.refused;
    board.set(key, bytes);
  };
  reactor.setTimer(50, publish, { repeat: true });
  if (s.accept === 'mutex') useAcceptMutex(thread, board, s.index);
  native.write(READY_FD, new Uint8Array([1]), 0, 1);
  saidReady = true; // the pipe stays open for "taken"; the process's exit closes it
  return thread.run().finally(() => {
    // This process's copy of the listening socket (the master shut it down at close(); a
    // reuseport slot's socket stays open in the master until then).
    native.close(listenFd);
    publish();
    board.close();
    native.close(eventfd);
  });
}

/**
 * maxConnections across the worker processes, on the board: each worker counts its
 * connections in its own key (connsKey), and takes a slot with one incrIfSumBelow: its key
 * goes up by 1 only if every worker's key together is below the limit, the sum and the add
 * under the board's one lock. So the connections kept never exceed the limit, and a connect
 * is refused only when the limit is really reached: workers racing for the last slot get it
 * one of them, whatever the timing. A worker that dies loses its connections with it, and
 * the master deletes its key, so no slot stays taken by a dead process.
 */
class BoardGate implements ConnectionGate {
  readonly #board: Keyspace;
  readonly #own: Uint8Array;
  readonly #keys: Uint8Array[];
  readonly #max: number;
  readonly #digits = new Uint8Array(24);

  constructor(board: Keyspace, index: number, workers: number, max: number) {
    this.#board = board;
    this.#own = connsKey(index);
    this.#keys = Array.from({ length: workers }, (_, i) => connsKey(i));
    this.#max = max;
  }

  reserve(): boolean {
    // 0: at the limit. A board that cannot count (full: -ENOMEM) refuses too, rather than
    // serve past the limit.
    return this.#board.incrIfSumBelow(this.#own, this.#keys, this.#max, this.#digits) > 0;
  }

  release(): void {
    this.#board.incr(this.#own, -1, this.#digits);
  }
}

/**
 * maxConnectionsPerClient across the worker processes, on the board: each worker counts its
 * connections from an address in its own key (clientPrefix(index) and the address), and
 * takes a slot with one incrIfSumBelow over that address's key of every worker, as
 * BoardGate does for the server: exact whatever the timing. Only this worker writes its
 * keys, so the count it keeps here is the board's, and a key whose count falls to 0 is
 * deleted (the board holds only addresses with connections). A worker that dies loses its
 * connections with it, and the master deletes every key under its prefix before it is
 * respawned, so no client's slot stays taken by a dead process.
 */
class BoardClientGate implements ClientGate {
  readonly #board: Keyspace;
  readonly #index: number;
  /** Every worker's key for the address being admitted (the prefix, then the 16 bytes written per admit). */
  readonly #keys: Uint8Array[];
  readonly #max: number;
  readonly #perWorker: number;
  readonly #digits = new Uint8Array(24);
  /** This worker's addresses with connections: their key and count, by ticket - 1. */
  readonly #held: ({ key: Uint8Array; count: number; name: string } | undefined)[] = [];
  readonly #byName = new Map<string, number>();
  readonly #free: number[] = [];

  constructor(board: Keyspace, index: number, workers: number, max: number, perWorker: number) {
    this.#board = board;
    this.#index = index;
    this.#keys = Array.from({ length: workers }, (_, i) => {
      const prefix = clientPrefix(i);
      const key = new Uint8Array(prefix.length + 16);
      key.set(prefix);
      return key;
    });
    this.#max = max;
    this.#perWorker = perWorker;
  }

  reserve(client: Uint8Array): number {
    const name = Buffer.from(client.buffer, client.byteOffset, 16).toString('latin1');
    let slot = this.#byName.get(name);
    if (slot === undefined && this.#byName.size >= this.#perWorker) return 0; // this worker's share is full
    for (const key of this.#keys) key.set(client.subarray(0, 16), key.length - 16);
    const own = this.#keys[this.#index]!;
    // 0: the client is at its limit. A board that cannot count (-ENOMEM) refuses too.
    if (this.#board.incrIfSumBelow(own, this.#keys, this.#max, this.#digits) <= 0) return 0;
    if (slot === undefined) {
      slot = this.#free.pop() ?? this.#held.length;
      this.#held[slot] = { key: own.slice(), count: 0, name };
      this.#byName.set(name, slot);
    }
    this.#held[slot]!.count++;
    return slot + 1;
  }

  release(ticket: number): void {
    const h = this.#held[ticket - 1];
    if (h === undefined || h.count <= 0) return;
    h.count--;
    if (h.count > 0) {
      this.#board.incr(h.key, -1, this.#digits);
      return;
    }
    this.#board.del(h.key); // its last connection: the count was 1
    this.#held[ticket - 1] = undefined;
    this.#byName.delete(h.name);
    this.#free.push(ticket - 1);
  }
}

/**
 * nginx's accept mutex: only the process holding it watches the listening socket; after
 * accepting a batch it lets go, and the others try again every MUTEX_DELAY_MS. SET NX in
 * the shared board is the trylock (atomic under the board's lock); a holder that dies is
 * unlocked by the parent. The lock is a lease ("index:deadline" on CLOCK_MONOTONIC, which
 * every process reads alike): the holder renews it on each tick, and a holder that stops
 * renewing it (stopped by SIGSTOP, stuck in a long handler) loses it to the next process
 * that looks, so one stalled process cannot stop every other from accepting. Taking an
 * expired lease is a plain SET, not a compare-and-swap: two takers may both hold it for a
 * tick, until each sees whose name the board kept; a double accept costs nothing.
 */
function useAcceptMutex(thread: ReactorThread, board: Keyspace, index: number): void {
  const lease = new AcceptLease(board, index);
  let held = false;
  const release = () => {
    held = false;
    thread.pauseListen();
  };
  thread.reactor.setTimer(
    MUTEX_DELAY_MS,
    () => {
      if (held) {
        if (!lease.renew()) release(); // taken over while this process was not running
        return;
      }
      if (performance.now() < thread.acceptHeldOffUntil) return; // out of fds: a pause first
      if (lease.take()) {
        held = true;
        thread.resumeListen();
      }
    },
    { repeat: true },
  );
  thread.onAccepted = () => {
    if (!held) return;
    release();
    lease.release();
  };
}

/** The accept mutex's lease in the board: who holds it and until when. */
class AcceptLease {
  readonly #board: Keyspace;
  readonly #me: string;
  readonly #buf = new Uint8Array(64);
  #deadline = 0;

  constructor(board: Keyspace, index: number) {
    this.#board = board;
    this.#me = String(index);
  }

  /** Takes a free or expired lease; true when this process holds it now. */
  take(): boolean {
    const now = monotonicMs();
    if (this.#board.set(MUTEX_KEY, this.#value(now), KEYSPACE_NX) === 1) return true;
    const cur = this.#read();
    if (cur === null || cur.deadline > now) return false;
    this.#board.set(MUTEX_KEY, this.#value(now));
    return true;
  }

  /** Extends a held lease once half of it has passed; false when another process holds it. */
  renew(): boolean {
    const cur = this.#read();
    if (cur === null || cur.holder !== this.#me) return false;
    const now = monotonicMs();
    if (this.#deadline - now < MUTEX_LEASE_MS / 2) this.#board.set(MUTEX_KEY, this.#value(now));
    return true;
  }

  release(): void {
    if (this.#read()?.holder === this.#me) this.#board.del(MUTEX_KEY);
  }

  #value(now: number): Uint8Array {
    this.#deadline = now + MUTEX_LEASE_MS;
    return new TextEncoder().encode(`${this.#me}:${this.#deadline}`);
  }

  #read(): { holder: string; deadline: number } | null {
    const n = this.#board.get(MUTEX_KEY, this.#buf);
    if (n <= 0) return null;
    const [holder = '', deadline = '0'] = new TextDecoder().decode(this.#buf.subarray(0, n)).split(':');
    return { holder, deadline: Number(deadline) };
  }
}

const monotonicMs = () => Number(process.hrtime.bigint() / 1_000_000n);

await main().catch((e: unknown) => {
  unfence();
  if (!saidReady) reportFailure(e);
  throw e;
});
// Every connection is closed. User code still running (a handler that has not settled) has
// the idle timeout to settle, as close() gives the other models' threads, and then the
// process exits regardless. Once no reply is awaited it exits at once: timers a user module
// left running (a setInterval at its top level) are no request's, and do not hold it.
const exit = () => {
  unfence();
  process.exit(0);
};
setTimeout(exit, settings.thread.limits.idleTimeout).unref();
void asyncSettled().then(exit);
