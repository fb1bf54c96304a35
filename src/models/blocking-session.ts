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
import { ConnCore, sweepEvery, type ConnIO, type ConnLimits } from './conn-core.js';
import { constants } from '../sys/constants.js';
import { EINTR } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { transferFile } from '../transfer/index.js';
import type { Stats } from './stats.js';
import type { MmapTransferOptions } from '../transfer/mmap-options.js';
import { nodeTurn, runsUserCode } from './user-fence.js';

const POLLIN = constants.POLLIN as number;

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
  /** The `mmap` transfer's options (MAP_POPULATE, madvise, reused mappings). */
  mmap: MmapTransferOptions;
  limits: ConnLimits;
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

/**
 * A ConnIO over a blocking socket: every write completes before it returns (nothing is
 * ever queued), so the output budget holds by construction; reading is paused by the core
 * through a flag the read loop honours.
 */
class BlockingIO implements ConnIO {
  readonly queued = 0;
  readonly readsWhenIdle = true;
  progress = 0;
  closed = false;
  paused = false;
  #resumed: (() => void) | undefined;

  constructor(
    readonly fd: number,
    readonly opts: BlockingOptions,
  ) {}

  write(data: Uint8Array): void {
    if (this.closed) return;
    if (!writeAll(this.fd, data)) return this.destroy();
    this.progress += data.length;
  }

  drain(): Promise<void> {
    return this.closed ? Promise.reject(new Error('connection closed')) : Promise.resolve();
  }

  async sendFile(file: NonNullable<Reply['file']>): Promise<number> {
    // A blocking socket never reports EAGAIN, so transferFile never needs to wait.
    const n = await transferFile(this.fd, file.fd, {
      offset: file.offset,
      length: file.length,
      method: this.opts.transfer as 'auto',
      directio: this.opts.directio,
      mmap: this.opts.mmap,
    });
    this.progress += n;
    return n;
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    this.#resumed?.();
  }

  /** Resolves when reading may go on (resumed or closed). */
  whenReadable(): Promise<void> {
    if (!this.paused || this.closed) return Promise.resolve();
    return new Promise((r) => (this.#resumed = r));
  }

  end(): void {
    // Every byte is already written: the loop sees `closed` and the slot closes the fd.
    if (!this.closed) native.shutdown(this.fd, 1);
    this.destroy();
  }

  destroy(): void {
    this.closed = true;
    this.#resumed?.();
  }
}

/**
 * Waits until `fd` is readable or `ms` pass: poll(2) through a one-fd PollSet, so the
 * read that follows never blocks past the header and idle timeouts.
 */
function readable(set: InstanceType<typeof native.PollSet>, out: Int32Array, ms: number): boolean {
  return set.wait(out, ms) > 0;
}

/** Waits until the core has answered all it read, or the server stops (a reply that never settles must not hold close()). */
async function settled(core: ConnCore, slot: FdSlot): Promise<void> {
  let done = false;
  const idle = core.whenIdle().then(() => (done = true));
  while (!done && !slot.stopping) await Promise.race([idle, new Promise((r) => setTimeout(r, 50))]);
}

/** Serves one blocking connection until the peer closes, a reply says close, a timeout, or stop. */
export async function serveBlocking(fd: number, slot: FdSlot, opts: BlockingOptions): Promise<void> {
  const io = new BlockingIO(fd, opts);
  const core = new ConnCore(io, opts.protocol, opts.stats, opts.limits);
  const buf = Buffer.allocUnsafe(65536);
  const set = new native.PollSet();
  set.add(fd, POLLIN);
  const out = new Int32Array(2);
  const tick = sweepEvery(opts.limits);
  // User code's timers and stray errors need Node's loop to turn (user-fence.ts).
  const turns = runsUserCode(opts.protocol.options);
  try {
    while (!slot.stopping && !io.closed) {
      await io.whenReadable();
      // Every turn, not only when poll times out: a client trickling bytes never lets it.
      if (io.closed || core.expire(performance.now())) break;
      if (turns) await nodeTurn();
      if (!readable(set, out, tick)) continue;
      const n = native.read(fd, buf, 0, buf.length);
      if (n === -EINTR) continue;
      if (n <= 0) {
        core.end();
        await settled(core, slot); // a reply still being made goes out before the connection closes
        break;
      }
      core.push(buf.subarray(0, n));
      // Let file bodies and promise replies finish before the thread blocks in poll again.
      await settled(core, slot);
    }
  } finally {
    io.closed = true;
    core.closed();
    opts.stats.closed();
  }
}
