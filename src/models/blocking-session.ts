/**
 * Serving one connection the way the first two models of the classic literature do: read,
 * frame, handle, write all of every reply, repeat until the peer closes, the thread asleep
 * in the kernel whenever the client is not ready. Used by `iterative` (one client at a
 * time) and `thread-per-connection` (a thread each).
 *
 * The socket itself is non-blocking and the thread sleeps in poll(2) instead, in ticks of
 * at most a quarter of the shorter timeout, before each read and whenever the kernel takes
 * no more of a write or a file body: a thread asleep in read(2) or write(2) could not keep
 * the contract's timeouts, and a client that stops reading its replies would hold it (and,
 * under `iterative`, every other client) for ever. At each tick the header and idle clocks
 * are checked, as a reactor's sweep checks them; the bytes of a write the kernel refused are
 * the connection's queued output, bounded by `maxQueue` as a reactor Connection bounds its
 * queue.
 *
 * Stopping a thread asleep in poll(2) or accept(2) takes shutdown(2) on its fd from another
 * thread. The fd slot below makes that safe: the serving thread publishes the fd it waits
 * on, and closes it only under the same lock the stopper takes, so the stopper can never
 * shut down a number the kernel has already given to someone else.
 */
import { queueFullError } from '../loop/connection.js';
import { WriteBatch } from '../loop/write-batch.js';
import type { Protocol, Reply } from '../protocols/protocol.js';
import { ConnCore, LINGER_MS, sweepEvery, type ConnIO, type ConnLimits } from './conn-core.js';
import { inputWaiting, tailsSettled } from './conn-contract.js';
import { constants } from '../sys/constants.js';
import { EAGAIN, EINTR } from '../sys/errno.js';
import { ownFd } from '../sys/fd-owner.js';
import { native } from '../sys/native.js';
import { FileBodySender, type FileBodyOptions } from './file-body.js';
import type { Stats } from './stats.js';
import type { DrainSignal } from './drain.js';
import { nodeTurn, runsUserCode } from './user-fence.js';

const POLLIN = constants.POLLIN as number;
const POLLOUT = constants.POLLOUT as number;
/** The longest sleep of a thread waiting for a reply or a file body before it looks at the clocks and at stop(). */
const SETTLE_TICK_MS = 50;

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
    ownFd(fd); // closed by release(), or by the addon if this thread ends first (src/sys/fd-owner.ts)
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

export interface BlockingOptions extends FileBodyOptions {
  protocol: Protocol;
  stats: Stats;
  limits: ConnLimits;
  /** Bytes of a reply the kernel refused past which the connection is dropped (ServeOptions.maxQueue). */
  maxQueue: number;
  /**
   * The server's graceful close (drain.ts): seen at every tick, and its eventfd wakes the
   * read's poll; absent: never drained (a connection served outside a model).
   */
  drain?: DrainSignal;
}

/**
 * A ConnIO over a non-blocking socket written as a blocking one: a write returns once all
 * of it is written (the thread sleeping in poll(2) while the kernel takes nothing), so
 * nothing is ever queued across writes and the output budget holds by construction; reading
 * is paused by the core through a flag the read loop honours.
 *
 * Between cork() and uncork() (the core, around the replies to one read's requests) writes
 * are held in a WriteBatch (small ones copied into one buffer, larger ones by reference:
 * reply data is immutable, protocol.ts) and counted as `queued`; uncork() writes them all
 * with writev(2), the same blocking way, so a pipelined batch costs one syscall, not one per
 * reply. Whatever must follow them (a file body, the shutdown of a closing reply) writes
 * them first.
 */
class BlockingIO implements ConnIO {
  readonly readsWhenIdle = true;
  /** Bytes held by a cork, or of the write under way, that the kernel has not taken yet. */
  queued = 0;
  progress = 0;
  closed = false;
  /** Ended after its last reply with the client still sending: serveBlocking lingers before the fd closes. */
  lingering = false;
  /** The client has finished sending (read returned 0): an end needs no linger. */
  eof = false;
  paused = false;
  /** The core driving this: its timeouts are checked while a write waits for the client. */
  core: ConnCore | undefined;
  #resumed: (() => void) | undefined;
  #ending = false;
  /** The file body in flight, aborted when the connection closes (see destroy()). */
  readonly #file: FileBodySender;
  readonly #outSet = new native.PollSet();
  /** The socket with no event asked for: poll(2) then reports only POLLERR and POLLHUP. */
  readonly #errSet = new native.PollSet();
  readonly #out = new Int32Array(2);
  readonly #tick: number;
  /** The writes held since cork(); reused from one cork to the next. */
  #batch: WriteBatch | undefined;
  #corked = false;
  /** uncork() is writing the held bytes (the thread may be asleep in poll(2) within it). */
  #flushing = false;
  /** end() came while the held bytes were being written: it runs once they are. */
  #endAfterFlush = false;

  constructor(
    readonly fd: number,
    readonly slot: FdSlot,
    readonly opts: BlockingOptions,
  ) {
    this.#outSet.add(fd, POLLOUT);
    this.#errSet.add(fd, 0);
    this.#tick = sweepEvery(opts.limits);
    this.#file = new FileBodySender(opts, (bytes) => {
      this.progress += bytes; // the client's progress, for the idle timeout
    });
  }

  inputWaiting(): boolean {
    return !this.closed && inputWaiting(this.fd);
  }

  write(data: Uint8Array): void {
    if (this.closed) return;
    if (this.#corked) {
      this.#batch!.add(data); // an empty write is dropped
      this.queued += data.length;
      return;
    }
    let off = 0;
    while (off < data.length) {
      const n = native.write(this.fd, data, off, data.length - off);
      if (n > 0) {
        off += n;
        this.progress += n;
        continue;
      }
      if (n < 0 && n !== -EAGAIN) return this.destroy();
      // What the kernel refused is this connection's queued output, as a reactor
      // Connection queues it: past maxQueue the connection is dropped.
      this.queued = data.length - off;
      if (this.queued > this.opts.maxQueue) {
        this.queued = 0;
        return this.destroy(queueFullError(this.opts.maxQueue));
      }
      if (!this.#waitWritable()) break;
    }
    this.queued = 0;
  }

  /** Holds the writes that follow until uncork(). A second cork() is a no-op. */
  cork(): void {
    if (this.#corked || this.closed) return;
    this.#batch ??= new WriteBatch();
    this.#corked = true;
  }

  /**
   * Writes what was held since cork(), all of it, as write() writes one buffer: writev(2)
   * (a lone last part: write(2)), the thread asleep in poll(2) while the kernel takes nothing.
   */
  uncork(): void {
    if (!this.#corked) return;
    this.#corked = false;
    const batch = this.#batch!;
    this.#flushing = true;
    try {
      if (!this.closed && batch.bytes > 0) this.#writeParts(batch.finish(), batch.bytes);
    } finally {
      this.#flushing = false;
      this.queued = 0;
      batch.release();
    }
    if (this.#endAfterFlush) {
      this.#endAfterFlush = false;
      this.end();
    }
  }

  /** Writes `parts` (`bytes` in all) in order, to the last byte, unless the connection closes. */
  #writeParts(parts: Uint8Array[], bytes: number): void {
    let i = 0;
    let left = bytes;
    while (i < parts.length) {
      // writev takes the first IOV_MAX parts from i: a longer list takes more than one call.
      const last = i === parts.length - 1;
      const n = last ? native.write(this.fd, parts[i]!, 0, parts[i]!.length) : native.writev(this.fd, parts, i);
      if (n > 0) {
        this.progress += n;
        left -= n;
        this.queued = left;
        // Drop the parts written whole; the one the kernel stopped inside goes on from there.
        let r = n;
        while (i < parts.length && r >= parts[i]!.length) r -= parts[i++]!.length;
        if (r > 0) parts[i] = parts[i]!.subarray(r);
        continue;
      }
      if (n < 0 && n !== -EAGAIN) return this.destroy();
      // Refused: what is left is queued output, bounded by maxQueue as write()'s is.
      this.queued = left;
      if (left > this.opts.maxQueue) {
        this.queued = 0;
        return this.destroy(queueFullError(this.opts.maxQueue));
      }
      if (!this.#waitWritable()) return;
    }
  }

  /**
   * Sleeps in poll(2) until the socket takes bytes again, a tick at a time, checking the
   * timeouts and stop() at every tick; false when the connection closed meanwhile.
   */
  #waitWritable(): boolean {
    for (;;) {
      if (this.slot.stopping) this.destroy();
      else {
        if (this.opts.drain?.on === true) this.core?.drain(); // the reply being written is the last (ConnCore.drain)
        this.core?.expire(performance.now());
      }
      if (this.closed) return false;
      const r = this.#outSet.wait(this.#out, this.#tick);
      // Writable, or failed (POLLERR, POLLHUP): the next write says which.
      if (r > 0) return true;
      if (r < 0) {
        this.destroy();
        return false;
      }
    }
  }

  /**
   * The client reset the connection (or it failed): POLLERR or POLLHUP, which a half-close
   * does not raise. Looked at while a reply is being made, when nothing is read or written
   * that would tell.
   */
  peerGone(): boolean {
    return !this.closed && this.#errSet.wait(this.#out, 0) > 0;
  }

  drain(): Promise<void> {
    return this.closed ? Promise.reject(new Error('connection closed')) : Promise.resolve();
  }

  sendFile(file: NonNullable<Reply['file']>): Promise<number> {
    // The bytes held by a cork (this reply's head among them) go before the body.
    this.uncork();
    if (this.closed) return Promise.reject(new Error('connection closed'));
    return this.#file.send(this.fd, file, this.#fileWait);
  }

  /** transferFile's wait on EAGAIN: the same ticks as a write's. */
  readonly #fileWait = (): Promise<void> =>
    this.#waitWritable() ? Promise.resolve() : Promise.reject(new Error('connection closed'));

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
    // Every byte is written once the held ones are: the loop sees `closed`, lingers (see
    // linger()) unless the client has finished sending, and the slot closes the fd.
    if (this.closed) return;
    if (this.#flushing) {
      // From within uncork(), while it waits for the client (a drain seen at a tick): after it.
      this.#endAfterFlush = true;
      return;
    }
    this.uncork();
    if (this.closed) return;
    this.#ending = true;
    native.shutdown(this.fd, 1);
    this.lingering = !this.eof;
    this.destroy();
  }

  destroy(_error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    // Held bytes are dropped (uncork() releases the batch it is writing).
    if (this.#corked) {
      this.#corked = false;
      this.#batch!.release();
    }
    this.queued = 0;
    // A file body sent through io_uring (the uring and direct methods) is a send the kernel
    // holds, with the socket, until the client takes its bytes: closing the fd would leave
    // the connection open. Shut it down so that send fails now, and abort the transfer so
    // nothing more is sent to this fd number, which the kernel may soon give to another client.
    if (!this.#ending) native.shutdown(this.fd, 2);
    this.release();
    this.#resumed?.();
  }

  /** The connection is done: a file body still in flight stops. */
  release(): void {
    this.#file.abort();
  }
}

/**
 * Waits until `fd` is readable or `ms` pass: poll(2) through a one-fd PollSet, where the
 * thread sleeps a tick at most, so the header and idle timeouts are checked between.
 */
function readable(set: InstanceType<typeof native.PollSet>, out: Int32Array, ms: number): boolean {
  return set.wait(out, ms) > 0;
}

/**
 * The lingering close after the last reply (LINGER_MS, conn-contract.ts): the write side is
 * shut down already; what the client still sends is read and discarded until its EOF, an
 * error, the bound, or stop() (whose shutdown(2) ends the read with EOF), so that close(2)
 * finds no unread bytes and sends no reset that could destroy the reply before the client reads it.
 */
async function linger(fd: number, slot: FdSlot, buf: Buffer, tick: number, turns: boolean): Promise<void> {
  const set = new native.PollSet();
  set.add(fd, POLLIN);
  const out = new Int32Array(2);
  const deadline = performance.now() + LINGER_MS;
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0 || slot.stopping) return;
    if (turns) await nodeTurn();
    if (!readable(set, out, Math.min(tick, Math.ceil(left)))) continue;
    const n = native.read(fd, buf, 0, buf.length);
    if (n === -EINTR || n === -EAGAIN) continue;
    if (n <= 0) return; // EOF: the client has finished; or an error
  }
}

/**
 * Waits until the core has answered all it read, or the server stops (a reply that never
 * settles must not hold close()), or the client resets. Every tick it checks the timeouts:
 * a file body on its way through io_uring waits for the client in the kernel, not in a
 * write of this thread.
 */
async function settled(core: ConnCore, io: BlockingIO, slot: FdSlot): Promise<void> {
  let done = false;
  const idle = core.whenIdle().then(() => (done = true));
  while (!done && !io.closed && !slot.stopping) {
    // A drain while a reply is being made: it is the last, then the connection ends (lingering).
    if (io.opts.drain?.on === true) core.drain();
    let timer: ReturnType<typeof setTimeout> | undefined;
    await Promise.race([idle, new Promise<void>((r) => (timer = setTimeout(r, SETTLE_TICK_MS)))]);
    clearTimeout(timer);
    if (done) break;
    // A client that reset while its reply is made (a streamed body waiting for its next
    // chunk): closed now, so that the core ends the body's producer, and the thread is free.
    if (io.peerGone()) io.destroy();
    else core.expire(performance.now());
  }
}

/**
 * Serves one blocking connection until the peer closes, a reply says close, a timeout, or
 * stop; then gives back its slots of the connection limits (`ticket`: what Stats.admit gave it).
 */
export async function serveBlocking(fd: number, slot: FdSlot, opts: BlockingOptions, ticket: number): Promise<void> {
  const io = new BlockingIO(fd, slot, opts);
  const core = new ConnCore(io, opts.protocol, opts.stats, opts.limits);
  io.core = core;
  const buf = Buffer.allocUnsafe(65536);
  const set = new native.PollSet();
  set.add(fd, POLLIN);
  const out = new Int32Array(2);
  const tick = sweepEvery(opts.limits);
  // User code's timers and stray errors need Node's loop to turn (user-fence.ts).
  const turns = runsUserCode(opts.protocol.options);
  // The drain signal's eventfd wakes the wait for the client's next bytes; once seen, it leaves
  // the set (it stays readable) and the core decides what is still read.
  const { drain } = opts;
  let drainWatched = drain !== undefined && !drain.on;
  if (drainWatched) set.add(drain!.fd, POLLIN);
  try {
    while (!slot.stopping && !io.closed) {
      if (drain?.on === true) {
        if (drainWatched) set.remove(drain.fd);
        drainWatched = false;
        core.drain(); // idle: closed now; otherwise once answered
        if (io.closed) break;
      }
      await io.whenReadable();
      if (io.closed) break;
      if (turns) await nodeTurn();
      // The timeouts are judged every turn (not only when poll times out: a client trickling
      // bytes never lets it), but after what is there has been read: bytes that arrived while
      // this thread was kept from running are the client's progress, not its slowness.
      if (!readable(set, out, tick)) {
        if (core.expire(performance.now())) break;
        continue;
      }
      const n = native.read(fd, buf, 0, buf.length);
      if (n === -EINTR || n === -EAGAIN) {
        if (core.expire(performance.now())) break;
        continue;
      }
      if (n <= 0) {
        io.eof = true;
        core.end();
        await settled(core, io, slot); // a reply still being made goes out before the connection closes
        break;
      }
      core.push(buf.subarray(0, n));
      // Let file bodies and promise replies finish before the thread blocks in poll again.
      await settled(core, io, slot);
      if (core.expire(performance.now())) break;
    }
    if (io.lingering) await linger(fd, slot, buf, tick, turns);
  } finally {
    io.closed = true;
    io.release();
    core.closed();
    // A file body still under way (its connection closed under it) ends now, while this
    // thread still turns Node's loop, not after the next client wakes it from accept(2) or
    // its cache; until then its file stays open and the socket fd, closed by our caller
    // once we return, must not be a number the kernel can give to another client.
    await tailsSettled();
    opts.stats.closed(ticket);
  }
}
