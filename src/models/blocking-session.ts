/**
 * Serving one connection with blocking I/O, the way the first two models of the classic
 * literature do: read (the thread sleeps in the kernel until bytes come), frame, handle,
 * write all of every reply, repeat until the peer closes. Used by `iterative` (one client
 * at a time) and `thread-per-connection` (a thread each).
 *
 * Stopping a thread blocked in read(2) or accept(2) takes shutdown(2) on its fd from
 * another thread. The fd slot below makes that safe: the serving thread publishes the fd
 * it blocks on, and closes it only under the same lock the stopper takes, so the stopper
 * can never shut down a number the kernel has already given to someone else.
 */
import type { Protocol, Reply } from '../protocols/protocol.js';
import { EINTR } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { transferFile } from '../transfer/index.js';
import type { Stats } from './stats.js';

/** [lock, fd, stopping] in a SharedArrayBuffer: the handshake between a blocking thread and close(). */
export class FdSlot {
  readonly ints: Int32Array;

  /** A new slot's memory, to share with the serving thread. */
  static create(): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(12);
    new Int32Array(sab)[1] = -1;
    return sab;
  }

  constructor(sab: SharedArrayBuffer) {
    this.ints = new Int32Array(sab);
  }

  get sab(): SharedArrayBuffer {
    return this.ints.buffer as SharedArrayBuffer;
  }

  get stopping(): boolean {
    return Atomics.load(this.ints, 2) === 1;
  }

  #lock(): void {
    while (Atomics.compareExchange(this.ints, 0, 0, 1) !== 0);
  }

  #unlock(): void {
    Atomics.store(this.ints, 0, 0);
  }

  /** The serving thread: `fd` is the one it now blocks on. */
  publish(fd: number): void {
    this.#lock();
    Atomics.store(this.ints, 1, fd);
    this.#unlock();
  }

  /** The serving thread: done with the published fd; closes it. */
  release(fd: number): void {
    this.#lock();
    Atomics.store(this.ints, 1, -1);
    native.close(fd);
    this.#unlock();
  }

  /** Another thread: asks the serving thread to stop and wakes it from a blocking call. */
  stop(): void {
    Atomics.store(this.ints, 2, 1);
    this.#lock();
    const fd = Atomics.load(this.ints, 1);
    if (fd >= 0) native.shutdown(fd, 2);
    this.#unlock();
  }
}

export interface BlockingOptions {
  protocol: Protocol;
  stats: Stats;
  transfer: string;
  directio: number;
}

/** Writes all of `buf` to a blocking fd; false when the peer is gone. */
function writeAll(fd: number, buf: Uint8Array): boolean {
  let off = 0;
  while (off < buf.length) {
    const n = native.write(fd, buf, off, buf.length - off);
    if (n < 0 && n !== -EINTR) return false;
    if (n > 0) off += n;
  }
  return true;
}

async function sendReply(fd: number, reply: Reply, opts: BlockingOptions): Promise<boolean> {
  opts.stats.sent(reply.data.length);
  if (!writeAll(fd, reply.data)) return false;
  if (!reply.file) return true;
  try {
    // A blocking socket never reports EAGAIN, so transferFile never needs to wait.
    const n = await transferFile(fd, reply.file.fd, {
      offset: reply.file.offset,
      length: reply.file.length,
      method: opts.transfer as 'auto',
      directio: opts.directio,
    });
    opts.stats.sent(n);
    return true;
  } catch {
    return false;
  } finally {
    native.close(reply.file.fd);
  }
}

/** Serves one blocking connection until the peer closes, a reply says close, or stop. */
export async function serveBlocking(fd: number, slot: FdSlot, opts: BlockingOptions): Promise<void> {
  const codec = opts.protocol.createCodec();
  const buf = Buffer.allocUnsafe(65536);
  try {
    while (!slot.stopping) {
      const n = native.read(fd, buf, 0, buf.length);
      if (n === -EINTR) continue;
      if (n <= 0) return;
      const { frames, error } = codec.push(buf.subarray(0, n));
      for (const frame of frames) {
        opts.stats.requests();
        const reply = opts.protocol.handle(frame);
        if (!(await sendReply(fd, reply, opts)) || reply.close) return;
      }
      if (error) {
        await sendReply(fd, error, opts);
        return;
      }
    }
  } finally {
    opts.stats.closed();
  }
}
