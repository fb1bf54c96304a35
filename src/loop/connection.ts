/**
 * A byte stream over a non-blocking fd (a TCP socket, a socketpair end, a pipe) driven by a
 * Reactor: the buffered-connection half of every reactor server (Redis's `connection.c`,
 * nginx's `ngx_event_pipe`). Each readiness reads at most one buffer (`readSize`), as Redis
 * reads one per client per event: a client that keeps its socket full (a deep pipeline, an
 * upload) is read again on the next wait, after every other ready connection has had its
 * turn, rather than drained for as long as it keeps sending. Level-triggered pollers report
 * the fd again by themselves; under edge-triggered epoll the fd is re-armed (EPOLL_CTL_MOD
 * queues a new event while data waits), and a short read still reads on to EAGAIN. `write` sends what the kernel takes and queues the rest (returning false:
 * backpressure); while the queue is non-empty the fd is watched for EPOLLOUT and the queue
 * is flushed with writev(2), a partial write resumed at the byte where it stopped; once
 * drained, EPOLLOUT is turned off again (a level-triggered EPOLLOUT left on would fire on
 * every wait). Peer close and errors (ECONNRESET, EPIPE) end in `onClose`, never in an
 * exception thrown out of the loop.
 */
import { constants } from '../sys/constants.js';
import { EAGAIN, EBADF, EPIPE } from '../sys/errno.js';
import { ErrnoError, check, errnoError, errnoName } from '../sys/errors.js';
import { zerocopyPending } from '../sys/msg-zerocopy.js';
import { native } from '../sys/native.js';
import { fdOf, nodeSocket, type SocketLike } from '../sys/node-fd.js';
import * as v from '../sys/validate.js';
import { POLLNVAL } from './poller.js';
import type { Reactor } from './reactor.js';
import { COPY_MAX, Tail, WriteBatch, writeParts } from './write-batch.js';

const EPOLLIN = constants.EPOLLIN as number;
const EPOLLOUT = constants.EPOLLOUT as number;
const EPOLLERR = constants.EPOLLERR as number;
const EPOLLHUP = constants.EPOLLHUP as number;
const EPOLLRDHUP = constants.EPOLLRDHUP as number;

/** Options of `new Connection()`: the callbacks (also settable later as properties) and limits. */
export interface ConnectionOptions {
  /** Called with each chunk read. The chunk is a view into a reused buffer, valid only during the call. */
  onData?: (chunk: Buffer) => void;
  /** Called once the connection is closed; `error` says why when it failed. */
  onClose?: (error?: Error) => void;
  /** Called when a read or write fails (before onClose). */
  onError?: (error: Error) => void;
  /** Called when the write queue has drained after a write returned false. */
  onDrain?: () => void;
  /** Called when the peer has finished sending (read returned 0). Default: `end()`. */
  onEnd?: () => void;
  /** Queued bytes past which the connection is dropped with ERR_RAWIO_QUEUE_FULL; default Infinity. */
  maxQueue?: number;
  /** The read buffer size; default 64 KiB. */
  readSize?: number;
  /**
   * ms `end()` lingers for (nginx's lingering close): once the queue has drained the write
   * side is shut down and what the peer still sends is read and discarded, never handed to
   * `onData`, until its EOF, an error, or this many ms, and only then is the fd closed.
   * Closing with unread bytes makes the kernel send a reset, which can destroy the last
   * reply in the peer's receive queue before it is read. Default 0: close at once.
   */
  linger?: number;
}

/**
 * Takes a connected net.Socket (or a flushed response's) away from Node: Node stops
 * reading, the bytes it had read are kept, the fd is duplicated for the Connection to own,
 * and the Node socket is destroyed, closing only its own fd.
 */
function takeSocket(target: SocketLike): { fd: number; buffered: Buffer[] } {
  const fd = fdOf(target, 'fd');
  const socket = nodeSocket(target, 'fd')!;
  if (socket.writableLength > 0) {
    const e = new Error(`the socket still has ${socket.writableLength} bytes queued in Node: wait for 'drain' first`);
    throw Object.assign(e, { code: 'ERR_RAWIO_SOCKET_BUSY' });
  }
  const buffered: Buffer[] = [];
  for (let chunk: unknown; (chunk = socket.read()) !== null;) {
    buffered.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
  }
  // read() may have asked libuv to read again; nothing is read before the destroy below
  // closes the handle (no loop turn in between), but stop it all the same.
  (socket as unknown as { _handle?: { readStop?: () => number } })._handle?.readStop?.();
  const own = check(native.dupCloexec(fd), 'fcntl');
  socket.destroy();
  return { fd: own, buffered };
}

/**
 * A buffered byte stream over a non-blocking fd (a TCP socket, a socketpair end, a pipe)
 * driven by a {@link Reactor}, which it registers the fd with at once. On each readiness it
 * reads until a short read (until EAGAIN under 'epoll-et') and hands each chunk to
 * `onData`; `write` sends what the kernel takes and queues the rest, flushed with
 * writev(2) when the fd turns writable. Peer close and I/O errors (ECONNRESET, EPIPE) end
 * in `onError` / `onClose`, never in an exception out of the loop. The Connection owns the
 * fd: it closes it on `end()`, `destroy()` or an error. Given a connected `net.Socket` (or
 * an `http.ServerResponse` whose head is flushed) instead of an fd, it takes the socket
 * over: Node stops reading it, the bytes Node had already read reach `onData` first, and
 * the Node socket is destroyed while the Connection keeps a duplicate of its fd.
 * @example
 * const c: Connection = new Connection(reactor, fd, {
 *   onData: (chunk) => {
 *     if (!c.write(chunk)) c.pause(); // queued: stop reading until it drains
 *   },
 *   onDrain: () => c.resume(),
 *   onClose: (err) => err && console.error(err.message),
 * });
 */
export class Connection {
  /** The fd, closed by the Connection when it closes. */
  readonly fd: number;
  /** The reactor the fd is watched by. */
  readonly reactor: Reactor;
  /** Called with each chunk read: a view into a reused buffer, valid only during the call. */
  onData: ((chunk: Buffer) => void) | undefined;
  /** Called once the connection is closed; `error` says why when it failed. */
  onClose: ((error?: Error) => void) | undefined;
  /** Called when a read or write fails (before `onClose`). */
  onError: ((error: Error) => void) | undefined;
  /** Called when the write queue has drained after a write returned false. */
  onDrain: (() => void) | undefined;
  /** Called when the peer has finished sending (read returned 0); when unset, `end()` is called. */
  onEnd: (() => void) | undefined;
  /**
   * Called on EPOLLERR without a socket error: MSG_ZEROCOPY completions wait on the error
   * queue (see `sys.send`), and the callback must read them. Unset, EPOLLERR fails the connection.
   */
  onErrorQueue: (() => void) | undefined = undefined;
  /** Queued bytes past which the connection is destroyed with ERR_RAWIO_QUEUE_FULL (Infinity: no limit). */
  readonly maxQueue: number;
  /** ms `end()` lingers for, reading and discarding, before it closes (ConnectionOptions.linger). */
  readonly linger: number;
  /**
   * Bytes read so far, as read(2) returned them (a taken net.Socket's buffered bytes
   * included): a transport count, as `bytesWritten` is and as Node's `socket.bytesRead` is.
   * What a lingering `end()` reads and discards counts too, though it never reaches
   * `onData`; the bytes handed to `onData` are the count as it stood when `end()` was called.
   */
  bytesRead = 0;
  /** Bytes written so far (by the kernel's count, queued bytes once they go out). */
  bytesWritten = 0;
  readonly #buf: Buffer;
  /** The write queue: #queue[#head …] waits, in order (a head index: shift() is O(n) on a long queue). */
  readonly #queue: Uint8Array[] = [];
  #head = 0;
  #queued = 0;
  /**
   * Where small writes are queued (write-batch.ts): a queued write of up to COPY_MAX bytes is
   * appended to the last part rather than made a part of its own, so that many small writes
   * cost their bytes, not an ArrayBuffer each (what maxQueue counts is then what they hold).
   */
  readonly #tail = new Tail();
  #reading = true;
  #ending = false;
  #closed = false;
  #eof = false;
  /** The fd is not open for reading (a pipe's write end): read(2) said EBADF. */
  #writeOnly = false;
  #needDrain = false;
  /** Ended and shut down for writing: reading and discarding until the peer's EOF (see `linger`). */
  #lingering = false;
  #lingerTimer = -1;
  /** Unwatched while paused after a hang-up (see #park). */
  #parked = false;
  /** Writes held by cork(), sent by uncork(); reused from one cork to the next. */
  #batch: WriteBatch | undefined;
  #corked = false;
  readonly #handler = (_fd: number, events: number): void => this.#onEvents(events);
  #waiters: { resolve: () => void; reject: (e: Error) => void }[] = [];

  constructor(reactor: Reactor, fd: SocketLike, opts?: ConnectionOptions) {
    // Every argument is checked before a net.Socket is taken over: a bad option must not
    // leave the caller's socket destroyed and its duplicate fd with no owner.
    if (reactor === null || typeof reactor !== 'object' || typeof reactor.watch !== 'function')
      throw v.typeError('reactor', 'an instance of Reactor', reactor);
    const o = v.object<ConnectionOptions>('opts', opts);
    this.onData = v.optionalFunc('opts.onData', o.onData);
    this.onClose = v.optionalFunc('opts.onClose', o.onClose);
    this.onError = v.optionalFunc('opts.onError', o.onError);
    this.onDrain = v.optionalFunc('opts.onDrain', o.onDrain);
    this.onEnd = v.optionalFunc('opts.onEnd', o.onEnd);
    this.maxQueue = o.maxQueue === undefined ? Infinity : v.int('maxQueue', o.maxQueue, 0);
    const readSize = o.readSize === undefined ? 65536 : v.int('readSize', o.readSize, 1, 1 << 30);
    this.linger = o.linger === undefined ? 0 : v.int('linger', o.linger, 0, 0x7fffffff);
    if (nodeSocket(fd, 'fd') === undefined) v.fd(fd);
    this.reactor = reactor;
    const taken = nodeSocket(fd, 'fd') === undefined ? undefined : takeSocket(fd);
    this.fd = taken ? taken.fd : (fd as number);
    this.#buf = Buffer.allocUnsafe(readSize);
    try {
      reactor.watch(this.fd, this.#mask(), this.#handler);
    } catch (e) {
      // The duplicate of a taken socket is ours alone: close it (a plain fd stays the caller's).
      if (taken) native.close(taken.fd);
      throw e;
    }
    // Bytes Node had read before the handover come first, once the caller holds `this`.
    if (taken && taken.buffered.length > 0) queueMicrotask(() => this.#replay(taken.buffered));
  }

  #replay(chunks: Buffer[]): void {
    for (const chunk of chunks) {
      if (this.#closed) return;
      this.bytesRead += chunk.length;
      this.onData?.(chunk);
    }
  }

  /** Bytes waiting in the write queue. */
  get queuedBytes(): number {
    return this.#queued;
  }

  /** Whether `end()` is lingering: shut down for writing, discarding what the peer sends until it closes. */
  get lingering(): boolean {
    return this.#lingering;
  }

  /** Whether the connection is closed (and its fd with it). */
  get closed(): boolean {
    return this.#closed;
  }

  /**
   * Sends `buf`: what the kernel does not take now is copied into the queue and sent when
   * the fd turns writable. Returns true when all of it went out, false when some was queued
   * (wait for `onDrain`) or the connection is closed or ending.
   */
  write(buf: Uint8Array): boolean {
    v.liveBytes(buf);
    if (this.#closed || this.#ending) return false;
    if (this.#corked) {
      this.#batch!.add(buf);
      return true;
    }
    return this.#send(buf);
  }

  /**
   * Holds the writes that follow until `uncork()`, which sends them with one write or
   * writev(2): a batch of pipelined replies costs one syscall instead of one each. Writes
   * of up to 1 KiB are copied into one output buffer (write-batch.ts), so many small
   * replies go out as one contiguous buffer, as Redis's reply buffer does; larger ones are
   * held by reference: do not change them before `uncork()`. A second `cork()` is a no-op.
   */
  cork(): void {
    if (this.#corked || this.#closed) return;
    this.#batch ??= new WriteBatch();
    this.#corked = true;
  }

  /** Sends what was written since `cork()`: one write or writev(2), the rest queued. Returns as `write` does. */
  uncork(): boolean {
    if (!this.#corked) return !this.#closed && this.#queued === 0;
    this.#corked = false;
    const batch = this.#batch!;
    // Whatever the kernel does not take is copied into the queue, so the batch's buffer
    // is free again once this returns.
    try {
      if (this.#closed || this.#ending || batch.bytes === 0) return !this.#closed && this.#queued === 0;
      return this.#sendParts(batch.finish());
    } finally {
      batch.release();
    }
  }

  #sendParts(parts: Uint8Array[]): boolean {
    if (parts.length === 1) return this.#send(parts[0]!);
    if (this.#queued > 0) {
      for (let i = 0; i < parts.length && !this.#closed; i++) this.#enqueue(parts[i]!); // past maxQueue: dropped
      return false;
    }
    const r = writeParts(this.fd, parts);
    if (r < 0) {
      this.#fail(r, 'writev');
      return false;
    }
    this.bytesWritten += r;
    let i = 0;
    let n = r;
    while (i < parts.length && n >= parts[i]!.length) n -= parts[i++]!.length;
    // What it did not take is queued, from the byte where it stopped.
    if (i === parts.length) return true;
    this.#enqueue(parts[i]!.subarray(n));
    for (i++; i < parts.length && !this.#closed; i++) this.#enqueue(parts[i]!);
    return false;
  }

  #send(buf: Uint8Array): boolean {
    let off = 0;
    if (this.#queued === 0) {
      const n = native.write(this.fd, buf, 0, buf.length);
      if (n < 0 && n !== -EAGAIN) {
        this.#fail(n, 'write');
        return false;
      }
      if (n > 0) {
        off = n;
        this.bytesWritten += n;
      }
      if (off === buf.length) return true;
    }
    this.#enqueue(buf.subarray(off));
    return false;
  }

  /** Stops reading (backpressure); the peer's data waits in the kernel. Ignored while lingering. */
  pause(): void {
    if (this.#lingering) return;
    this.#reading = false;
    this.#rewatch();
  }

  /**
   * Reads again after `pause()`; ignored once the peer has finished sending or `end()` was
   * called, and on an fd not open for reading (a pipe's write end).
   */
  resume(): void {
    if (this.#ending || this.#eof || this.#writeOnly) return;
    this.#reading = true;
    this.#rewatch();
  }

  /**
   * Flushes the queue, then shuts the write side down and closes the fd: at once, or, with
   * `linger` and a peer still sending, once it has finished (its EOF, an error, or `linger`
   * ms), what it sends meanwhile read and discarded.
   */
  end(): void {
    if (this.#closed) return;
    if (this.#corked) this.uncork();
    if (this.#closed) return;
    this.#ending = true;
    this.#reading = false;
    if (this.#queued === 0) this.#finish();
    else this.#rewatch();
  }

  /** Closes now, dropping the queue; `error` is reported to onError / onClose. */
  destroy(error?: Error): void {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#lingerTimer >= 0) this.reactor.clearTimer(this.#lingerTimer);
    if (this.#corked) {
      this.#corked = false;
      this.#batch!.release();
    }
    this.reactor.unwatch(this.fd);
    // MSG_ZEROCOPY sends not yet completed: their pages wait in the send queue, maybe for a
    // client that never reads, and the buffers are released with the connection. A plain
    // close would orphan the socket with that queue (kept for minutes, and sent from memory
    // that may hold other bytes by then): SO_LINGER 0 makes the close a reset, which frees it.
    if (zerocopyPending(this.fd)) native.setLingerZero(this.fd);
    native.close(this.fd);
    this.#queue.length = 0;
    this.#head = 0;
    this.#queued = 0;
    this.#tail.drop();
    const waiters = this.#waiters;
    this.#waiters = [];
    const why = error ?? new Error('connection closed');
    for (const w of waiters) w.reject(why);
    try {
      if (error !== undefined) this.onError?.(error);
    } finally {
      // onClose comes even when onError throws (which then goes on to the caller).
      this.onClose?.(error);
    }
  }

  /**
   * Resolves on the next EPOLLOUT (at once-ish if the fd is writable), for a sender that
   * writes directly (sendfile, splice) and waits on EAGAIN; rejects if the connection closes.
   */
  waitWritable(): Promise<void> {
    if (this.#closed) return Promise.reject(new Error('connection closed'));
    return new Promise((resolve, reject) => {
      this.#waiters.push({ resolve, reject });
      this.#rewatch();
    });
  }

  #mask(): number {
    const out = this.#queued > 0 || this.#waiters.length > 0;
    return (this.#reading ? EPOLLIN | EPOLLRDHUP : 0) | (out ? EPOLLOUT : 0);
  }

  #rewatch(): void {
    if (this.#closed) return;
    if (!this.#parked) return this.reactor.rewatch(this.fd, this.#mask());
    if (this.#mask() === 0) return;
    this.#parked = false;
    this.reactor.watch(this.fd, this.#mask(), this.#handler);
  }

  #onEvents(events: number): void {
    // The fd was closed behind the connection's back; the reactor has let it go already.
    if (events & POLLNVAL) return this.#fail(-EBADF, 'poll');
    if (this.#lingering) {
      this.#readAll();
      // A pending error ends the linger: the reply went out, nothing more is owed.
      if (events & EPOLLERR) this.destroy();
      return;
    }
    if (this.#reading) this.#readAll();
    if (this.#closed) return;
    if (events & EPOLLOUT) this.#writable();
    if (this.#closed) return;
    if (events & EPOLLERR) {
      const r = native.socketError(this.fd);
      if (r === 0 && this.onErrorQueue !== undefined) return this.onErrorQueue();
      // A pipe has no SO_ERROR; its only error is a closed reader.
      this.#fail(r < 0 && errnoName(r) !== 'ENOTSOCK' ? r : -EPIPE, 'write');
    } else if (events & EPOLLHUP && !this.#reading && this.#mask() === 0) this.#park();
  }

  /**
   * poll and epoll report a hang-up whatever the mask, so a paused connection whose peer is
   * gone would be woken on every level-triggered wait. Leave the poller until resume():
   * what the peer sent before it went is still in the kernel, to be read then.
   */
  #park(): void {
    this.reactor.unwatch(this.fd);
    this.#parked = true;
  }

  #edgeTriggered(): boolean {
    return this.reactor.backend === 'epoll-et';
  }

  #readAll(): void {
    const buf = this.#buf;
    while (this.#reading && !this.#closed) {
      const n = native.read(this.fd, buf, 0, buf.length);
      if (n > 0) {
        this.bytesRead += n;
        if (!this.#lingering) this.onData?.(buf.subarray(0, n)); // lingering: discarded
        // Level-triggered, a short read means the socket is drained for now and the poller
        // will report it again when more arrives: the read that would only say EAGAIN is
        // skipped (nginx does the same). Edge-triggered must read on until EAGAIN.
        if (n < buf.length && !this.#edgeTriggered()) return;
        // A full buffer: others' turn first (see the file comment). The poller reports this
        // fd again on its next wait; an edge-triggered one only once re-armed.
        if (n === buf.length) {
          const mask = this.#edgeTriggered() && !this.#closed ? this.reactor.maskOf(this.fd) : undefined;
          if (mask !== undefined && mask & EPOLLIN) this.reactor.poller.modify(this.fd, mask);
          return;
        }
      } else if (n === 0) {
        if (this.#lingering) return this.destroy(); // the peer has finished: close now
        this.#reading = false;
        this.#eof = true;
        if (this.onEnd) this.onEnd();
        else this.end();
        if (!this.#closed) this.#rewatch();
        return;
      } else {
        if (n === -EAGAIN) return;
        if (n === -EBADF && !this.#lingering) {
          // Not open for reading (a pipe's write end): a write-only connection from now on,
          // its errors those of its writes (a reader gone: EPIPE, from EPOLLERR or write).
          this.#writeOnly = true;
          this.#reading = false;
          return this.#rewatch();
        }
        // A reset while lingering ends it quietly: the reply was taken by the kernel already.
        if (this.#lingering) this.destroy();
        else this.#fail(n, 'read');
        return;
      }
    }
  }

  #writable(): void {
    if (this.#queued > 0 && !this.#flush()) return;
    if (this.#queued === 0) {
      const waiters = this.#waiters;
      this.#waiters = [];
      for (const w of waiters) w.resolve();
      if (this.#ending) return this.#finish();
      this.#rewatch();
      if (this.#needDrain) {
        this.#needDrain = false;
        this.onDrain?.();
      }
    }
  }

  /** writev's the queue until it drains or the kernel says EAGAIN; false when it failed. */
  #flush(): boolean {
    const q = this.#queue;
    // writev takes the first IOV_MAX parts a call: the loop offers the rest
    while (this.#head < q.length) {
      const h = this.#head;
      const one = h === q.length - 1;
      const n = one ? native.write(this.fd, q[h]!, 0, q[h]!.length) : native.writev(this.fd, q, h);
      if (n === -EAGAIN) break;
      if (n < 0) {
        this.#fail(n, one ? 'write' : 'writev');
        return false;
      }
      this.bytesWritten += n;
      this.#queued -= n;
      let i = h;
      let left = n;
      while (i < q.length && left >= q[i]!.length) left -= q[i++]!.length;
      if (left > 0) q[i] = q[i]!.subarray(left);
      this.#head = i;
      if (n === 0) break;
    }
    if (this.#head === q.length) {
      q.length = 0;
      this.#head = 0;
      this.#tail.drop(); // an idle connection holds no buffer
    } else if (this.#head >= 1024 && this.#head * 2 >= q.length) {
      // Sent parts are dropped in bulk: each part is moved once, not once per write.
      q.splice(0, this.#head);
      this.#head = 0;
    }
    return true;
  }

  #enqueue(rest: Uint8Array): void {
    const q = this.#queue;
    if (rest.length <= COPY_MAX) this.#tail.add(q, this.#head, q.length, rest, this.#queued);
    else q.push(new Uint8Array(rest));
    this.#needDrain = true;
    this.#queued += rest.length;
    if (this.#queued > this.maxQueue) {
      this.destroy(queueFullError(this.maxQueue));
      return;
    }
    if (this.#queued === rest.length) this.#rewatch();
  }

  #finish(): void {
    native.shutdown(this.fd, 1);
    if (this.linger === 0 || this.#eof || this.#writeOnly) return this.destroy();
    // Lingering close: the peer sees the reply and EOF; what it still sends is read and
    // dropped, so that close(2) finds no unread bytes and sends no reset (see `linger`).
    this.#lingering = true;
    this.#lingerTimer = this.reactor.setTimer(this.linger, () => {
      this.#lingerTimer = -1;
      this.destroy();
    });
    this.#reading = true;
    this.#rewatch();
  }

  #fail(ret: number, syscall: string): void {
    const e: ErrnoError = errnoError(ret, syscall);
    this.destroy(e);
  }
}

/** The error a connection is dropped with when its queued output passes `max` bytes (maxQueue). */
export function queueFullError(max: number): Error {
  const e = new Error(`write queue over ${max} bytes`) as Error & { code: string };
  e.code = 'ERR_RAWIO_QUEUE_FULL';
  return e;
}
