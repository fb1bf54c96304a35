/**
 * The parent's handle on bench/lib/tcp-sink.ts: starts the sink process, opens
 * connections to it, and resolves with the byte count the sink read once a connection is
 * closed. One connection at a time.
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

  static async start(): Promise<Sink> {
    const child = fork(fileURLToPath(new URL('./tcp-sink.js', import.meta.url)), [], { stdio: 'inherit' });
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
    const done = new Promise<number>((resolve) => (this.pending = resolve));
    sys.close(fd);
    return done;
  }

  stop(): void {
    this.child.disconnect();
  }
}
