/**
 * The parent's handle on bench/lib/tcp-sink.ts: starts the sink process, opens
 * connections to it, and resolves with the byte count the sink read once a connection is
 * closed. One connection at a time; it may also be another process's (`closed()`).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { sys } from '../../src/index.js';

export class Sink {
  private pending: ((bytes: number) => void) | undefined;
  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {
    child.on('message', (m: { bytes?: number }) => {
      if (m.bytes !== undefined) {
        const p = this.pending;
        this.pending = undefined;
        p?.(m.bytes);
      }
    });
  }

  /** Starts the sink process, pinned to `cpus` when given. */
  static async start(cpus?: readonly number[]): Promise<Sink> {
    const args = cpus && cpus.length > 0 ? [cpus.join(',')] : [];
    const child = fork(fileURLToPath(new URL('./tcp-sink.js', import.meta.url)), args, { stdio: 'inherit' });
    const port = await new Promise<number>((resolve, reject) => {
      child.once('message', (m: { port: number }) => resolve(m.port));
      child.once('error', reject);
      child.once('exit', (code) => reject(new Error(`sink exited with ${code}`)));
    });
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
   */
  closed(): Promise<number> {
    return new Promise<number>((resolve) => (this.pending = resolve));
  }

  stop(): void {
    this.child.disconnect();
  }
}
