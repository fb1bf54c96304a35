/**
 * The parent's handle on bench/lib/tcp-sink.ts: starts the sink process, opens
 * connections to it, and resolves with the byte count the sink read once a connection is
 * closed. One connection at a time; it may also be another process's (`closed()`). Every
 * wait on the sink settles: once the sink process has ended (crashed, killed, stopped) a
 * wait rejects, naming the sink and how it ended, instead of waiting for ever. A read that
 * failed (a reset) rejects too, with the bytes read before it: a short count is never
 * passed off as the whole.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { errnoError, errnoName, sys } from '../../src/index.js';
import { describeEnd, ended, unlessEnded } from './child-exit.js';

interface Pending {
  resolve(bytes: number): void;
  reject(e: Error): void;
}

/** What the sink reports of a connection: the bytes it read, and the -errno of a read that failed (else 0). */
interface Count {
  bytes?: number;
  error?: number;
}

/** A connection whose read failed in the sink: `bytes` is what it read before the error (`cause`). */
export class SinkReadError extends Error {
  constructor(
    pid: number | undefined,
    readonly bytes: number,
    error: number,
  ) {
    super(`tcp-sink (pid ${pid}) read failed with ${errnoName(error)} after ${bytes} bytes: the count is short`, {
      cause: errnoError(error, 'read'),
    });
    this.name = 'SinkReadError';
  }
}

export class Sink {
  private pending: Pending | undefined;
  /** Why no count will come any more: set once the sink process has ended. */
  private gone: Error | undefined;
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (m: Count) => {
      if (m.bytes !== undefined) {
        const p = this.pending;
        this.pending = undefined;
        if (m.error) p?.reject(new SinkReadError(child.pid, m.bytes, m.error));
        else p?.resolve(m.bytes);
      }
    });
    // a channel error (a send to a sink gone meanwhile) would otherwise be thrown
    child.on('error', () => {});
    void ended(child).then((end) => {
      this.gone = new Error(`tcp-sink (pid ${child.pid}) ${describeEnd(end)}: it will report no more byte counts`);
      const p = this.pending;
      this.pending = undefined;
      p?.reject(this.gone);
    });
  }

  /** Starts the sink process, pinned to `cpus` when given; rejects if it ends before it listens. */
  static async start(cpus?: readonly number[]): Promise<Sink> {
    const args = cpus && cpus.length > 0 ? [cpus.join(',')] : [];
    const child = fork(fileURLToPath(new URL('./tcp-sink.js', import.meta.url)), args, { stdio: 'inherit' });
    const listening = new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('error', reject);
    });
    const port = await unlessEnded(child, 'tcp-sink', 'it listened', listening);
    return new Sink(child, port);
  }

  /** A non-blocking connection to the sink (the connect may still be in progress). */
  connect(): number {
    const fd = sys.connectTcp('127.0.0.1', this.port);
    sys.setNoDelay(fd, true);
    return fd;
  }

  /** Closes `fd` and resolves with what the sink read from it (rejecting as {@link closed} does). */
  finish(fd: number): Promise<number> {
    const done = this.closed();
    sys.close(fd);
    return done;
  }

  /**
   * One connection's round: connects, hands the fd to `write`, then closes it and resolves
   * with what the sink read ({@link finish}). A `write` that throws closes the fd too, and
   * its error is the round's: no socket is left open behind a failed round, and the count
   * the sink still reports for it (waited for, at most 5 s) is not taken by the next wait.
   */
  async send(write: (fd: number) => Promise<void>): Promise<number> {
    const fd = this.connect();
    try {
      await write(fd);
    } catch (e) {
      const leftover = this.closed().catch(() => undefined);
      sys.close(fd);
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([leftover, new Promise((r) => (timer = setTimeout(r, 5000)))]);
      clearTimeout(timer);
      throw e;
    }
    return this.finish(fd);
  }

  /**
   * Resolves with what the sink read from the next connection to end: for a connection some
   * other process opens (the C driver of copy-c). Call it before that process may close.
   * Rejects with a {@link SinkReadError} when the sink's read failed, and once the sink
   * process has ended (at once if it already has). One wait at a time: a count goes to the
   * latest, and a wait still pending when another begins rejects, saying so, rather than
   * waiting for ever (its caller may have given up on it). A wait given up on does not
   * become an unhandled rejection when the sink stops.
   */
  closed(): Promise<number> {
    this.pending?.reject(new Error('Sink.closed(): superseded by a later wait (a count goes to the latest only)'));
    this.pending = undefined;
    const p = this.gone
      ? Promise.reject(this.gone)
      : new Promise<number>((resolve, reject) => (this.pending = { resolve, reject }));
    p.catch(() => {});
    return p;
  }

  /** Ends the sink process (it exits when its channel closes); nothing to do once it is gone. */
  stop(): void {
    if (this.child.connected) this.child.disconnect();
  }
}
