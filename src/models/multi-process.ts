/**
 * The `multi-process` model (nginx's): N worker processes, each one single reactor, and
 * this process as the master. How the processes share the port is the `accept` strategy:
 *   reuseport  one SO_REUSEPORT socket per worker slot, opened by the master and inherited
 *              by that slot's worker; the kernel spreads connections across them by hash.
 *              The master keeps them open (nginx does the same), so the connections queued
 *              on a dead worker's socket wait there for its respawn, which inherits it;
 *   exclusive  one listening socket, inherited by all; each worker's epoll watches it with
 *              EPOLLEXCLUSIVE, so one connection wakes one worker, not all (the thundering herd);
 *   mutex      one listening socket; only the worker holding the accept mutex watches it.
 * A worker that dies is replaced, after a back-off, and its counts are kept; a worker that
 * keeps crashing makes the master give up (serve() rejects, or the Server emits 'error').
 * Workers run rawio's own entry with the parent's Node options less those that would run
 * the user's script again (worker-argv.ts), or with `execArgv` when serve() is given one.
 * Counters reach the master through a small shared keyspace (the board) that every worker
 * writes its figures into.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { native } from '../sys/native.js';
import { Keyspace } from '../sys/keyspace.js';
import { check } from '../sys/errors.js';
import { listenTcp, localPort, pipe } from '../sys/socket.js';
import { reactorServing } from './reactor-group.js';
import {
  FIGURES,
  MUTEX_KEY,
  clientBoard,
  counterBoard,
  clientPrefix,
  connsKey,
  encodeSettings,
  statsKey,
  type ProcessWorkerSettings,
} from './process-board.js';
import { MAX_CLIENTS } from './client-table.js';
import type { StatsSnapshot } from './stats.js';
import type { ModelStarter, ResolvedServeOptions } from './types.js';
import { openServer } from './open-server.js';
import { readFailure, startFailure, type WorkerStartError } from './worker-failure.js';
import { workerNodeOptions } from './worker-argv.js';

const entry = fileURLToPath(new URL('./process-entry.js', import.meta.url));

/**
 * Respawning: a worker that dies is replaced after a back-off that doubles with each crash
 * in the window (BACKOFF_MS, 2×, 4× … up to BACKOFF_MAX_MS), as systemd's and supervisord's
 * restart limits do; more than MAX_CRASHES crashes within CRASH_WINDOW_MS (all workers
 * together: a worker that cannot run usually means none can) and the master gives up.
 */
const BACKOFF_MS = 50;
const BACKOFF_MAX_MS = 2000;
const MAX_CRASHES = 5;
const CRASH_WINDOW_MS = 30_000;
/** What close() gives a worker beyond the idle timeout to see the stop and exit before it is killed. */
const KILL_MARGIN_MS = 2000;

interface Worker {
  child: ChildProcess;
  control: number;
  exited: Promise<void>;
}

/** Why the master stopped respawning: the last worker's exit. */
export interface WorkerCrashError extends Error {
  /** Always 'ERR_RAWIO_WORKER_CRASHED'. */
  code: 'ERR_RAWIO_WORKER_CRASHED';
  /** The worker's exit code, or null when a signal ended it or no process was made (spawn failed in the master). */
  exitCode: number | null;
  /** The signal that ended it, or null. */
  signal: NodeJS.Signals | null;
}

function crashError(
  index: number,
  crashes: number,
  code: number | null,
  signal: NodeJS.Signals | null,
  cause: WorkerStartError | undefined,
) {
  // Neither a code nor a signal: no process was made (spawn failed in the master).
  const how =
    signal !== null ? `exited on ${signal}` : code !== null ? `exited with code ${code}` : 'could not be started';
  const why = cause ? `: ${cause.message}` : '';
  const e = new Error(
    `multi-process: worker ${index} ${how}; ${crashes} crashes within ${CRASH_WINDOW_MS / 1000} s, not respawning${why}`,
    cause ? { cause } : undefined,
  ) as WorkerCrashError;
  return Object.assign(e, { code: 'ERR_RAWIO_WORKER_CRASHED' as const, exitCode: code, signal });
}

/** What the master writes on a worker's control pipe to have it drain (hanging up stops it). */
const DRAIN_BYTE = new Uint8Array([1]);
/**
 * How long a drain waits for a worker to say it took its listen queue ("taken") before the
 * master shuts its socket down anyway (a worker stopped, or stuck in synchronous user code):
 * connects to that socket queue meanwhile, and what is queued is reset then.
 */
export const TAKE_QUEUE_MS = 1000;

class Master {
  readonly #opts: ResolvedServeOptions;
  readonly #settings: Omit<ProcessWorkerSettings, 'index'>;
  /** The listening socket every worker inherits (`exclusive`, `mutex`); -1 under `reuseport`. */
  readonly #listenFd: number;
  /**
   * Under `reuseport`, each slot's own listening socket (-1 once closed): worker i and its
   * respawns inherit slot i's. The master holds them for as long as the slot may be served,
   * so that what the kernel queued on one outlives its worker; a slot given up, or every
   * slot on close, is closed here, its queue with it.
   */
  readonly #slots: number[];
  readonly #board: Keyspace;
  /**
   * The directory serve() was called in, where every worker runs, a respawned one too: a
   * program that changes directory later (process.chdir) does not move a replaced worker
   * away from the others (relative paths in its handler, its `--require` options).
   */
  readonly #cwd = process.cwd();
  /** The environment at serve(), every worker's, for the same reason (as a Worker thread's is a copy made at its start). */
  readonly #env = { ...process.env, NODE_OPTIONS: workerNodeOptions(process.env.NODE_OPTIONS) };
  readonly workers: (Worker | undefined)[] = [];
  /** Figures of workers that died, kept so the counts add up. */
  readonly #base: Float64Array[];
  readonly #figures = new Float64Array(FIGURES);
  readonly #bytes = new Uint8Array(this.#figures.buffer);
  #closing = false;
  /** When recent crashes happened (performance.now()), for the back-off and the limit. */
  #crashes: number[] = [];
  readonly #respawns = new Set<ReturnType<typeof setTimeout>>();
  /** Slots whose worker has said ready at least once; start() resolves when all have. */
  readonly #readyOnce = new Set<number>();
  #starting: { resolve: () => void; reject: (e: Error) => void } | undefined;
  /**
   * During a drain's first step: called with a worker's index when it says "taken" (its
   * listen queue accepted), or with `took` false when it exits before.
   */
  #onTaken: ((index: number, took?: boolean) => void) | undefined;
  /** Ends a drain's first step now (close() during it): every socket shut down. */
  #takeDone: (() => void) | undefined;
  /** Told when the master gives up after start() resolved. */
  onError: ((e: WorkerCrashError) => void) | undefined;

  constructor(
    opts: ResolvedServeOptions,
    settings: Omit<ProcessWorkerSettings, 'index'>,
    listenFd: number,
    slots: number[],
    board: Keyspace,
  ) {
    this.#opts = opts;
    this.#settings = settings;
    this.#listenFd = listenFd;
    this.#slots = slots;
    this.#board = board;
    this.#base = Array.from({ length: opts.workers }, () => new Float64Array(FIGURES));
  }

  /** Starts every worker; resolves once each has said ready, rejects if the master gives up first. */
  start(): Promise<void> {
    const ready = new Promise<void>((resolve, reject) => (this.#starting = { resolve, reject }));
    for (let i = 0; i < this.#opts.workers && !this.#closing; i++) this.#spawn(i);
    return ready;
  }

  #spawn(index: number): void {
    const who = (pid?: number) => `multi-process worker ${index}${pid === undefined ? '' : ` (pid ${pid})`}`;
    let child: ChildProcess;
    let control = -1;
    try {
      const [controlRead, controlWrite] = pipe();
      control = controlWrite;
      // stdin carries the worker's settings (process-entry.ts): the environment would refuse
      // more than 128 KiB in one variable (E2BIG), which a module's options may pass.
      const stdio: (number | 'inherit' | 'ignore' | 'pipe')[] = ['pipe', 'inherit', 'inherit', controlRead];
      stdio.push(this.#settings.accept === 'reuseport' ? this.#slots[index]! : this.#listenFd, 'pipe');
      try {
        child = spawn(process.execPath, [...this.#opts.execArgv, entry], {
          cwd: this.#cwd,
          stdio,
          env: { ...this.#env, RAWIO_WORKER: String(index) },
        });
      } finally {
        native.close(controlRead);
      }
      // A worker that dies before it has read them (EPIPE) ends as any other: by its exit.
      child.stdin?.on('error', () => undefined);
      child.stdin?.end(encodeSettings(this.#settingsFor(index)));
    } catch (e) {
      // No process was made (pipe(2) or fork out of fds or memory, thrown here): that is a
      // crash of this worker, retried after the back-off as one (from a respawn timer, a
      // throw would be the caller's uncaught exception, and the slot would stay empty).
      if (control >= 0) native.close(control);
      this.#onExit(index, null, null, startFailure(e, who()));
      return;
    }
    // The report pipe carries one byte 1 (ready), then during a drain one byte 2 (taken: its
    // listen queue accepted) or, from a worker that failed to start, its error as a JSON
    // record (worker-failure.ts). A spawn that failed has no pipes.
    const report = (child.stdio as unknown as (NodeJS.ReadableStream | null)[] | undefined)?.[5];
    const failure: Buffer[] = [];
    report?.on('data', (b: Buffer) => {
      if (failure.length > 0 || !b.every((x) => x === 1 || x === 2)) return void failure.push(b);
      for (const x of b) {
        if (x === 1) this.#onReady(index);
        else this.#onTaken?.(index);
      }
    });
    const failed = () =>
      failure.length > 0 ? readFailure(Buffer.concat(failure).toString(), who(child.pid)) : undefined;
    // A spawn that fails (EAGAIN, EMFILE, ENOMEM) ends with 'error' when no process ever
    // existed, and 'close' may follow it: either is this worker's one exit, and counts as a
    // crash. 'close', not 'exit': it comes once the report pipe is drained too, so a
    // start-up failure is read before the exit.
    let ended = false;
    const exited = new Promise<void>((resolve) => {
      const end = (code: number | null, signal: NodeJS.Signals | null, failure?: WorkerStartError) => {
        if (ended) return;
        ended = true;
        this.#onExit(index, code, signal, failure);
        resolve();
      };
      child.once('close', (code, signal) => end(code, signal, failed()));
      child.once('error', (e) => child.pid === undefined && end(null, null, startFailure(e, who())));
    });
    this.workers[index] = { child, control, exited };
  }

  #onReady(index: number): void {
    this.#readyOnce.add(index);
    if (this.#starting && this.#readyOnce.size === this.#opts.workers) {
      this.#starting.resolve();
      this.#starting = undefined;
    }
  }

  #settingsFor(index: number): ProcessWorkerSettings {
    const cpus = this.#opts.cpus;
    const thread = { ...this.#settings.thread, cpus: cpus.length > 0 ? [cpus[index % cpus.length]!] : undefined };
    return { ...this.#settings, index, thread };
  }

  #onExit(index: number, code: number | null, signal: NodeJS.Signals | null, failure?: WorkerStartError): void {
    const w = this.workers[index];
    if (w && w.control >= 0) native.close(w.control);
    const base = this.#base[index]!;
    const last = this.#read(index);
    for (let k = 0; k < FIGURES; k++) base[k]! += k === 1 ? 0 : last[k]!;
    this.#board.del(statsKey(index));
    // Its connections died with it: their share of maxConnections is free again, and their
    // clients' shares of maxConnectionsPerClient (before a respawn, which writes them anew).
    this.#board.del(connsKey(index));
    if (this.#settings.maxConnectionsPerClient > 0) this.#board.delPrefix(clientPrefix(index));
    // A holder of the accept mutex that dies would hold it forever: release it for it.
    const holder = new Uint8Array(16);
    const n = this.#board.get(MUTEX_KEY, holder);
    const who = n > 0 ? new TextDecoder().decode(holder.subarray(0, n)).split(':')[0] : undefined;
    if (who === String(index)) this.#board.del(MUTEX_KEY);
    this.workers[index] = undefined;
    // No respawn will take this slot's socket over (given up, or closing): what waits in
    // its queue is reset now rather than waiting for ever, and new connects go to the others.
    if (this.#closing) {
      this.#onTaken?.(index, false); // a drain waits for it no longer
      return this.#closeSlot(index);
    }
    // A worker that cannot start while serve() waits would fail the same way again (most
    // often a protocol module that throws in a worker): serve() rejects with its error.
    if (failure && this.#starting && !this.#readyOnce.has(index)) {
      this.#closing = true;
      this.#starting.reject(failure);
      this.#starting = undefined;
      return this.#closeSlot(index);
    }
    this.#respawn(index, code, signal, failure);
  }

  #respawn(index: number, code: number | null, signal: NodeJS.Signals | null, failure?: WorkerStartError): void {
    const now = performance.now();
    this.#crashes = this.#crashes.filter((t) => now - t < CRASH_WINDOW_MS);
    this.#crashes.push(now);
    if (this.#crashes.length > MAX_CRASHES) {
      return this.#giveUp(crashError(index, this.#crashes.length, code, signal, failure));
    }
    const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MS * 2 ** (this.#crashes.length - 1));
    const timer = setTimeout(() => {
      this.#respawns.delete(timer);
      if (!this.#closing) this.#spawn(index);
    }, delay);
    this.#respawns.add(timer);
  }

  #giveUp(e: WorkerCrashError): void {
    this.#closing = true; // no more respawns; the workers still alive keep serving until close()
    for (const t of this.#respawns) clearTimeout(t);
    this.#respawns.clear();
    // The slots left without a worker are served by no one now: their sockets are closed (a
    // connect queued there sees a reset; new ones go to the sockets still served). Those of
    // the workers still alive are closed as each one exits.
    for (let i = 0; i < this.#slots.length; i++) if (!this.workers[i]) this.#closeSlot(i);
    if (this.#starting) this.#starting.reject(e);
    else if (this.onError) this.onError(e);
    else process.emitWarning(e.message);
    this.#starting = undefined;
  }

  /** Closes slot `index`'s socket (reuseport), if still open: the last copy once its worker is gone. */
  #closeSlot(index: number): void {
    const fd = this.#slots[index];
    if (fd === undefined || fd < 0) return;
    this.#slots[index] = -1;
    native.close(fd);
  }

  /**
   * Stops new connects at once: shuts the listening socket(s) down (refused from now on; a
   * connect still queued, never accepted, is reset), then closes the master's copy of each
   * slot's socket (the workers close theirs as they exit).
   */
  #stopListening(): void {
    if (this.#settings.accept !== 'reuseport') {
      native.shutdown(this.#listenFd, 2);
      return;
    }
    for (let i = 0; i < this.#slots.length; i++) this.#shutSlot(i);
  }

  /** Under `reuseport`: shuts slot `index`'s socket down (connects to it refused, its queue reset) and closes the master's copy. */
  #shutSlot(index: number): void {
    const fd = this.#slots[index]!;
    if (fd < 0) return;
    native.shutdown(fd, 2);
    this.#closeSlot(index);
  }

  #read(index: number): Float64Array {
    const out = new Float64Array(FIGURES);
    if (this.#board.get(statsKey(index), this.#bytes) === FIGURES * 8) out.set(this.#figures);
    return out;
  }

  stats(): StatsSnapshot {
    const snap: StatsSnapshot = {
      connections: 0,
      accepted: [],
      refused: 0,
      requests: 0,
      bytesOut: 0,
      shortBodies: 0,
      errors: 0,
      zerocopy: { sends: 0, copied: 0 },
      sends: 0, // its workers write with write(2)
    };
    for (let i = 0; i < this.#opts.workers; i++) {
      const f = this.workers[i] ? this.#read(i) : new Float64Array(FIGURES);
      const base = this.#base[i]!;
      snap.accepted.push(f[0]! + base[0]!);
      snap.connections += f[1]!;
      snap.requests += f[2]! + base[2]!;
      snap.bytesOut += f[3]! + base[3]!;
      snap.shortBodies += f[4]! + base[4]!;
      snap.errors += f[5]! + base[5]!;
      snap.zerocopy.sends += f[6]! + base[6]!;
      snap.zerocopy.copied += f[7]! + base[7]!;
      snap.refused += f[8]! + base[8]!;
    }
    return snap;
  }

  pids(): number[] {
    return Array.from({ length: this.#opts.workers }, (_, i) => this.workers[i]?.child.pid ?? 0);
  }

  /**
   * A graceful close: no more respawns, connects refused at once, and each worker told to
   * drain with a byte on its control pipe (process-entry.ts): it stops accepting, lets its
   * connections answer what they read and close, then exits. Resolves once every worker has
   * exited; close() follows, and stops (or kills) any still running.
   */
  async drain(): Promise<void> {
    this.#closing = true;
    for (const t of this.#respawns) clearTimeout(t);
    this.#respawns.clear();
    const exits = this.workers.map((w) => w?.exited);
    await this.#takeQueues();
    await Promise.all(exits);
  }

  /**
   * A drain's first step: each live worker is told to drain (its byte), takes what waits in
   * its listen queue and says "taken"; its socket is shut down then (connects to it refused,
   * nothing it took reset). Under `reuseport` each slot's socket is shut as its own worker
   * says so, a slot without a live worker at once; the shared socket (`exclusive`, `mutex`)
   * as the first worker says so (its pass emptied the one queue). A worker that has not said
   * so within TAKE_QUEUE_MS (stopped, or stuck in synchronous user code) has its socket shut
   * then, its queue reset. Resolves once every socket is shut down.
   */
  #takeQueues(): Promise<void> {
    const reuseport = this.#settings.accept === 'reuseport';
    const live = this.workers.map((w) => w !== undefined && w.control >= 0);
    const waiting = new Set<number>();
    for (let i = 0; i < live.length; i++) {
      if (live[i]) waiting.add(i);
      else if (reuseport) this.#shutSlot(i);
    }
    if (waiting.size === 0) {
      this.#stopListening();
      return Promise.resolve();
    }
    return new Promise<void>((resolve) => {
      const done = () => {
        clearTimeout(late);
        this.#onTaken = undefined;
        this.#takeDone = undefined;
        this.#stopListening();
        resolve();
      };
      const late = setTimeout(done, TAKE_QUEUE_MS);
      this.#takeDone = done;
      this.#onTaken = (index, took = true) => {
        if (!waiting.delete(index)) return;
        // The shared queue is empty once one worker took it; a worker that died took nothing.
        if (!reuseport && took) return done();
        if (reuseport) this.#shutSlot(index);
        if (waiting.size === 0) done();
      };
      for (const i of waiting) native.write(this.workers[i]!.control, DRAIN_BYTE, 0, 1);
    });
  }

  async close(): Promise<void> {
    this.#closing = true;
    for (const t of this.#respawns) clearTimeout(t);
    this.#respawns.clear();
    const exits = this.workers.map((w) => w?.exited);
    // New connects are refused from now on, not left in the backlog while the workers stop.
    this.#takeDone?.();
    this.#stopListening();
    // Closing the control pipe's write end is the stop signal (the worker sees it hang up).
    for (const w of this.workers) {
      if (w && w.control >= 0) {
        native.close(w.control);
        w.control = -1;
      }
    }
    // A worker sees the stop and exits at most the idle timeout later (process-entry.ts), unless
    // user code blocks it so that it never sees the stop (a handler stuck in synchronous code):
    // such a worker is killed once it has had the idle timeout and a margin more, as the thread
    // models terminate() their threads, so that close() resolves. The kernel closes its fds.
    const late = setTimeout(() => {
      for (const w of this.workers)
        if (w && w.child.exitCode === null && w.child.signalCode === null) w.child.kill('SIGKILL');
    }, this.#opts.idleTimeout + KILL_MARGIN_MS);
    await Promise.all(exits);
    clearTimeout(late);
  }
}

/** A socket bound to `host:port` without SO_REUSEPORT, not listening: EADDRINUSE for a port in use. */
function bindOnly(host: string, port: number): number {
  const r = native.listenTcp(host, port, 0, false, false, true);
  return typeof r === 'number' ? r : check(r[0], r[1]);
}

/**
 * Under `reuseport`, one listening SO_REUSEPORT socket per worker slot on `host:port` (the
 * first picks the port when it is 0), all opened before any worker starts: a connect made
 * while the workers start is queued on one of them and served once its worker is ready,
 * never refused or reset for want of a listener. On a failure, those opened are closed.
 */
function openSlots(host: string, port: number, backlog: number, workers: number): number[] {
  const slots: number[] = [];
  try {
    for (let i = 0; i < workers; i++) {
      const p = i === 0 ? port : localPort(slots[0]!);
      slots.push(listenTcp(host, p, { backlog, reusePort: true }));
    }
  } catch (e) {
    for (const fd of slots) native.close(fd);
    throw e;
  }
  return slots;
}

export const start: ModelStarter = async (opts) => {
  if (opts.accept === 'exclusive' && opts.backend !== 'epoll') {
    throw new RangeError(`accept 'exclusive' needs the epoll backend (EPOLLEXCLUSIVE); got '${opts.backend}'`);
  }
  const reuseport = opts.accept === 'reuseport';
  // SO_REUSEPORT lets every socket of this user that sets it bind the same port, so the
  // reuseport sockets below would join a server already there (another multi-process one)
  // and take a share of its clients. A socket without it binds first: a port in use rejects
  // with EADDRINUSE here as on every other model. It never listens, so no connect is queued
  // to it (to be reset as it closes).
  if (reuseport && opts.port !== 0) native.close(bindOnly(opts.host, opts.port));
  let slots: number[] = [];
  // With reuseport the master opens every slot's socket itself (openSlots) and keeps them
  // for as long as it serves; there is no shared listening socket (-1).
  const { protocol, listenFd } = openServer(
    opts,
    false,
    reuseport ? () => ((slots = openSlots(opts.host, opts.port, opts.backlog, opts.workers)), -1) : {},
  );
  const port = localPort(reuseport ? slots[0]! : listenFd);
  const perClient = Number.isFinite(opts.maxConnectionsPerClient);
  const clients = clientBoard(opts.workers, Math.min(MAX_CLIENTS, opts.maxConnections));
  let board: Keyspace;
  try {
    board = Keyspace.create(undefined, { size: perClient ? clients.size : counterBoard(opts.workers) });
  } catch (e) {
    // Out of memory or fds: nothing is left open.
    for (const fd of reuseport ? slots : [listenFd]) native.close(fd);
    protocol.close();
    throw e;
  }
  const settings: Omit<ProcessWorkerSettings, 'index'> = {
    master: process.pid,
    accept: opts.accept,
    board: board.name,
    workers: opts.workers,
    maxConnections: Number.isFinite(opts.maxConnections) ? opts.maxConnections : 0,
    maxConnectionsPerClient: perClient ? opts.maxConnectionsPerClient : 0,
    clientsPerWorker: clients.perWorker,
    thread: reactorServing(opts, protocol),
  };
  const master = new Master(opts, settings, listenFd, slots, board);
  // The slots' sockets are closed by the master (close() and drain() shut and close them).
  const cleanup = () => {
    if (!reuseport) native.close(listenFd);
    board.close();
    protocol.close();
  };
  try {
    await master.start();
  } catch (e) {
    await master.close();
    cleanup();
    throw e;
  }
  let closing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  return {
    port,
    stats: () => master.stats(),
    workerPids: () => master.pids(),
    drain: () => (draining ??= master.drain()),
    close: () => (closing ??= master.close().then(cleanup)),
    onError: (fn) => (master.onError = fn),
  };
};
