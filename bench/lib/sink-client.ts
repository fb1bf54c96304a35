/**
 * The parent's handle on bench/lib/tcp-sink.ts: starts the sink process, opens
 * connections to it, and resolves with the byte count the sink read once a connection is
 * closed. One connection at a time; it may also be another process's (`closed()`). Every
 * wait on the sink settles: once the sink process has ended (crashed, killed, stopped) a
 * wait rejects, naming the sink and how it ended, instead of waiting for ever.
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sys } from '../../src/index.js';
import { describeEnd, ended, unlessEnded } from './child-exit.js';

interface Pending {
  resolve(bytes: number): void;
  reject(e: Error): void;
}

export class Sink {
  private pending: Pending | undefined;
  /** Why no count will come any more: set once the sink process has ended. */
  private gone: Error | undefined;
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (m: { bytes?: number }) => {
      if (m.bytes !== undefined) {
        const p = this.pending;
        this.pending = undefined;
        p?.resolve(m.bytes);
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

  /** Closes `fd` and resolves with what the sink read from it. */
  finish(fd: number): Promise<number> {
    const done = this.closed();
    sys.close(fd);
    return done;
  }

  /**
   * Resolves with what the sink read from the next connection to end: for a connection some
   * other process opens (the C driver of copy-c). Call it before that process may close.
   * Rejects once the sink process has ended (at once if it already has). A wait given up on
   * (its caller failed first) does not become an unhandled rejection when the sink stops.
   */
  closed(): Promise<number> {
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
