/**
 * The Proactor (Schmidt et al., "Pattern-Oriented Software Architecture", vol. 2): the kernel
 * performs the I/O and reports completions; the loop dispatches each completion, by user
 * data, to the callback that started it. Built on a `Ring`'s batch API and shaped after
 * liburing's `io_uring-cp`: a request record per user data, resubmission on short reads and
 * writes and on -EAGAIN, and "wait once, then drain every completion that is there".
 *
 * Callbacks, not promises, on the hot path: `accept`, `recv`, `send`, `read`, `write`,
 * `timeout` each take `cb(res)` with `res >= 0` or `-errno`, and return an id for `cancel`;
 * `recvMultishot` stays armed and calls back per chunk, from buffers the kernel picks.
 * `run()` owns the thread: it blocks in io_uring_enter(GETEVENTS) and yields to libuv only
 * for one setImmediate turn before it blocks after a batch (so that chains of promise
 * continuations run to their end, as Reactor.run explains) and when Node's own loop has
 * I/O for the thread (watchNodeLoop); it resolves
 * after `stop()`, or when nothing is left in flight. `attach()` instead watches the ring's
 * eventfd from Node's own loop.
 */
import { EAGAIN, EBADF, ECANCELED, EFAULT, EINTR, EINVAL, ENOBUFS, EPIPE, ETIME } from '../sys/errno.js';
import { ErrnoError } from '../sys/errors.js';
import type { ZerocopyCounts } from '../sys/msg-zerocopy.js';
import { native, type NativeRing, type NativeWatch } from '../sys/native.js';
import { openWatch } from '../sys/watch.js';
import type { Ring } from '../sys/ring.js';
import { timespec } from '../sys/ring-core.js';
import { pin } from '../sys/pin.js';
import { openProactorRing } from '../sys/ring-native.js';
import * as u from '../sys/uring.js';
import * as sqe from '../sys/uring-prep.js';
import { MAX_SQE_LEN, MSG_NOSIGNAL, SOCK_FLAGS, SOCK_FLAGS_DIRECT } from '../sys/uring-prep.js';
import * as v from '../sys/validate.js';
import * as K from './proactor-req.js';
import { EMPTY, ReqTable, type CompletionCallback, type Req, type RecvCallback } from './proactor-req.js';
import { ringSetup, type ProactorOptions } from './proactor-options.js';
import { BGID, RecvBuffers, recvBufferMode, type BufMode } from './recv-buffers.js';
import * as batchClock from '../sys/batch-clock.js';

export type { CompletionCallback, RecvCallback } from './proactor-req.js';
export type { ProactorOptions } from './proactor-options.js';

const { IORING_CQE_F_MORE, IORING_CQE_F_BUFFER } = u;
/** poll(2)'s POLLIN, as the kernel's poll32_events takes it (the same on every Linux). */
const POLLIN = 0x1;
const noop: CompletionCallback = () => {};
/** What every use of a closed proactor throws (an operation, attach(), run(), registerFileSlots()). */
const closedError = () => new ErrnoError(-EBADF, 'io_uring_enter', undefined, 'the proactor is closed');

/** Resolves after Node has run every queued microtask and nextTick (one libuv check phase). */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * The Proactor pattern over a {@link Ring}: the kernel performs each operation and the
 * loop calls back with its result. Callbacks, not promises: `accept`, `recv`, `send`,
 * `read`, `write` and `timeout` each take `cb(res)` with `res >= 0` or `-errno` and return
 * an id for `cancel`. Short sends, reads and writes are resubmitted for the rest, and
 * -EAGAIN (but from accept) retried, before the callback runs. Bad arguments throw a
 * TypeError or RangeError at once; the constructor throws an ErrnoError when the kernel
 * refuses io_uring.
 * @example
 * const pr = new Proactor();
 * const lfd = sys.listenTcp('127.0.0.1', 8080);
 * pr.accept(lfd, (fd) => {
 *   if (fd < 0) return;
 *   const buf = Buffer.alloc(4096);
 *   const echo = (n: number): void => {
 *     if (n <= 0) return void sys.close(fd);
 *     pr.send(fd, buf, 0, n, (r) => (r < 0 ? sys.close(fd) : pr.recv(fd, buf, echo)));
 *   };
 *   pr.recv(fd, buf, echo);
 * }, { multishot: true });
 * await pr.run(); // or pr.attach() to reap from Node's own loop
 */
export class Proactor {
  /** The ring underneath (not attached: the proactor reaps it). */
  readonly ring: Ring;
  private readonly raw: NativeRing;
  /** The native ring's slot in its thread's table, which sends are prepared by (prepSendSlot). */
  private readonly slot: number;
  private readonly reqs = new ReqTable();
  private backlog: Req[] = []; // requests whose SQE did not fit the SQ yet
  private readonly bufCount: number;
  private readonly bufSize: number;
  private readonly bufMode: BufMode;
  private bufs: RecvBuffers | undefined; // provided buffers, once a multishot recv asked
  private bufsTried = false;
  private stopped = true;
  private running = false;
  /** The record of run()'s poll of this thread's libuv loop fd (see watchNodeLoop), kept across runs. */
  private nodeLoop: Req | undefined;
  /** That poll is in flight (not the caller's work). */
  private nodeArmed = false;
  /** The kernel refused the poll (no multishot poll before 5.13): run() waits without it. */
  private nodeRefused = false;
  /** The libuv loop fd turned readable: Node has I/O for this thread to handle. */
  private nodeIo = false;
  private reaping = false; // in the attached watch's batch, which submits once at its end
  private closed = false;
  private submitScheduled = false;
  /** run(): submit mid-batch once this many entries are prepared (0: at the batch's end). */
  private readonly submitEvery: number;
  private prepared = 0;
  private watch?: NativeWatch;
  private refed = true;
  private readonly submitLater = (): void => {
    this.submitScheduled = false;
    if (!this.closed) this.submit();
  };

  constructor(opts?: ProactorOptions) {
    const o = v.object<ProactorOptions>('opts', opts);
    const entries = o.entries === undefined ? 256 : v.int('entries', o.entries, 1, 32768);
    const rb = v.object<NonNullable<ProactorOptions['recvBuffers']>>('recvBuffers', o.recvBuffers);
    this.bufCount = rb.count === undefined ? 256 : v.int('recvBuffers.count', rb.count, 0, 32768);
    if ((this.bufCount & (this.bufCount - 1)) !== 0)
      throw v.rangeError('recvBuffers.count', 'a power of two', rb.count);
    this.bufSize = rb.size === undefined ? 16384 : v.int('recvBuffers.size', rb.size, 1, 1 << 24);
    this.bufMode = recvBufferMode(rb);
    this.submitEvery = o.submitEvery === undefined ? 0 : v.int('submitEvery', o.submitEvery, 0, 32768);
    const setup = ringSetup(o);
    const onCqe = (ud: number, res: number, flags: number) => this.dispatch(ud, res, flags);
    ({ ring: this.ring, raw: this.raw } = openProactorRing(entries, onCqe, setup));
    this.slot = this.raw.info()[4];
  }

  /**
   * For rawio's server models: every fd a completion carries (an accept's, a fixed-fd
   * install's) is owned by this thread from the moment it is reaped (src/sys/fd-owner.ts), so
   * a thread ended with such completions reaped but not yet handled closes their fds.
   * @internal
   */
  protected ownNewFds(): void {
    this.raw.ownNewFds();
  }

  // ---- operations: validated here, and a caller's buffer pinned (pin.ts), once;
  // resubmissions skip both

  /** accept4(2) on a listening socket; `multishot` (5.19) keeps it armed: `cb` runs once per connection. */
  accept(fd: number, cb: CompletionCallback, opts?: { multishot?: boolean }): number {
    const o = v.object<{ multishot?: boolean }>('opts', opts);
    const r = this.alloc(K.ACCEPT, v.fd(fd), cb, EMPTY);
    r.multishot = o.multishot === true;
    return this.start(r);
  }
  /** One recv(2) into `buf`: `cb(bytes)`, 0 at end of stream. */
  recv(fd: number, buf: Uint8Array, cb: CompletionCallback): number {
    const r = this.alloc(K.RECV, v.fd(fd), cb, v.liveBytes(buf));
    r.len = buf.length;
    pin(buf);
    return this.start(r);
  }
  /**
   * Receives until the end of the stream, an error or `cancel`: `cb(bytes, data)` per chunk,
   * then once `cb(0 | -errno, empty)`. One IORING_RECV_MULTISHOT request (6.0) armed once,
   * into buffers the kernel picks from `recvBuffers`; `data` is valid only during the call.
   * Without kernel support, a recv into a buffer of its own, re-armed after each chunk.
   * Closing `fd` does not end it (the armed request holds the file, and goes on receiving
   * from it): `cancel` it first.
   */
  recvMultishot(fd: number, cb: RecvCallback): number {
    v.func('cb', cb);
    const r = this.alloc(K.RECV_MULTI, v.fd(fd), noop, EMPTY);
    r.onData = cb;
    r.multishot = this.recvBuffers() !== undefined;
    if (!r.multishot) r.buf = this.recvBuffer();
    r.len = r.buf.length;
    return this.start(r);
  }
  /**
   * The buffer of a multishot recv without provided buffers: rawio's own, but `cb` gets views
   * of it while the kernel keeps receiving into it, so pinned as a caller's would be.
   */
  private recvBuffer(): Uint8Array {
    const buf = Buffer.allocUnsafe(this.bufSize);
    pin(buf);
    return buf;
  }
  /** Sends all of `buf[off, off + len)` (resubmitting after short sends): `cb(len)` or -errno. */
  send(fd: number, buf: Uint8Array, off: number, len: number, cb: CompletionCallback): number {
    return this.sendKind(K.SEND, fd, buf, off, len, cb, true);
  }
  private sendKind(kind: number, fd: number, buf: Uint8Array, off: number, len: number, cb: CompletionCallback, pinIt: boolean) {
    const f = v.fd(fd);
    const o = v.int('offset', off, 0, v.liveBytes(buf).length);
    const l = v.int('length', len, 0, buf.length - o);
    const r = this.alloc(kind, f, cb, buf);
    r.off = o;
    r.len = l;
    if (pinIt) pin(buf);
    return this.start(r);
  } // prettier-ignore
  /**
   * Sends all of `buf[off, off + len)` with IORING_OP_SEND_ZC (6.0), resubmitting after short
   * sends: `cb(len)` or -errno, only once every request's notification is in, that is once the
   * kernel no longer reads `buf` (held until then, and not to be modified).
   */
  sendZc(fd: number, buf: Uint8Array, off: number, len: number, cb: CompletionCallback): number {
    return this.sendKind(K.SEND_ZC, fd, buf, off, len, cb, true);
  }
  /** Zero-copy sends whose notification arrived, and of those the ones the kernel copied (6.2+). */
  readonly zerocopy: ZerocopyCounts = { sends: 0, copied: 0 };
  /**
   * Reads `buf[offset, offset + length)` at file `position` (-1: the current position), the
   * arguments of `sys.pread`, resubmitting short reads: `cb(bytes)`, fewer only at EOF.
   */
  read(fd: number, buf: Uint8Array, offset: number, length: number, position: number, cb: CompletionCallback): number;
  /** @deprecated `read(fd, buf, position, length, cb)`: use `read(fd, buf, 0, length, position, cb)`. */
  read(fd: number, buf: Uint8Array, position: number, length: number, cb: CompletionCallback): number;
  read(
    fd: number,
    buf: Uint8Array,
    a: number,
    b: number,
    c: number | CompletionCallback,
    d?: CompletionCallback,
  ): number {
    return this.rw(K.READ, fd, buf, ...proactorRwArgs(a, b, c, d), true);
  }
  /**
   * Writes all of `buf[offset, offset + length)` at file `position` (-1: the current
   * position), the arguments of `sys.pwrite`, resubmitting short writes: `cb(length)` or -errno.
   */
  write(fd: number, buf: Uint8Array, offset: number, length: number, position: number, cb: CompletionCallback): number;
  /** @deprecated `write(fd, buf, position, length, cb)`: use `write(fd, buf, 0, length, position, cb)`. */
  write(fd: number, buf: Uint8Array, position: number, length: number, cb: CompletionCallback): number;
  write(fd: number, buf: Uint8Array, a: number, b: number, c: number | CompletionCallback, d?: CompletionCallback): number {
    return this.rw(K.WRITE, fd, buf, ...proactorRwArgs(a, b, c, d), true);
  } // prettier-ignore
  private rw(kind: number, fd: number, buf: Uint8Array, off: unknown, len: unknown, pos: unknown, cb: unknown, pinIt: boolean): number {
    const f = v.fd(fd);
    const o = v.int('offset', off, 0, v.liveBytes(buf).length);
    const l = v.int('length', len, 0, buf.length - o);
    const p = v.int('position', pos, -1);
    const r = this.alloc(kind, f, cb as CompletionCallback, buf);
    r.off = o;
    r.len = l;
    r.pos = p;
    if (pinIt) pin(buf);
    return this.start(r);
  } // prettier-ignore
  /** `cb(0)` after `ms` milliseconds. */
  timeout(ms: number, cb: CompletionCallback): number {
    // The kernel reads it at submission: held till then, and never lent out (not pinned).
    const ts = timespec(v.int('ms', ms, 0, 0x7fffffff));
    return this.start(this.alloc(K.TIMEOUT, -1, cb, ts));
  }

  // ---- a subclass's own buffers: allocated by it and lent to no other code until the
  // callback, so no transfer can reach them, and they are not pinned

  /** `send` (`sendZc` with `zerocopy`) of such a buffer. @internal */
  protected sendOwn(fd: number, buf: Uint8Array, off: number, len: number, cb: CompletionCallback, zerocopy: boolean): number {
    return this.sendKind(zerocopy ? K.SEND_ZC : K.SEND, fd, buf, off, len, cb, false);
  } // prettier-ignore
  /** `read` into such a buffer. @internal */
  protected readOwn(fd: number, buf: Uint8Array, off: number, len: number, pos: number, cb: CompletionCallback): number {
    return this.rw(K.READ, fd, buf, off, len, pos, cb, false);
  } // prettier-ignore

  // ---- direct descriptors: handing connections from one ring to another without a syscall

  /** Registers a sparse table of `count` file slots (IORING_REGISTER_FILES of -1s, 5.19). */
  registerFileSlots(count: number): void {
    if (this.closed) throw closedError();
    const n = v.int('count', count, 1, 32768);
    const r = this.raw.register(u.IORING_REGISTER_FILES, new Array<number>(n).fill(-1));
    if (r < 0) throw new ErrnoError(r, 'io_uring_register', undefined, 'registering file slots');
  }
  /** Multishot accept into the registered file table: `cb(slot)` per connection, or -errno. */
  acceptDirect(fd: number, cb: CompletionCallback): number {
    const r = this.alloc(K.ACCEPT_DIRECT, v.fd(fd), cb, EMPTY);
    r.multishot = true;
    return this.start(r);
  }
  /**
   * Moves the file in `slot` into the ring `ringFd`, whose {@link inbox} `token` then runs
   * with the slot it landed in (IORING_MSG_SEND_FD, 6.0): `cb(that slot)` or -errno. Our slot stays
   * filled: close it with {@link closeSlot}.
   */
  sendFd(ringFd: number, slot: number, token: number, cb: CompletionCallback): number {
    const r = this.alloc(K.SEND_FD, v.fd(ringFd), cb, EMPTY);
    r.pos = v.int('slot', slot, 0, 32767);
    r.len = v.int('token', token, 0, 0x7fffffff);
    return this.start(r);
  }
  /** The file in `slot` becomes an fd of the process (IORING_OP_FIXED_FD_INSTALL, 6.8): `cb(fd)`. */
  installFd(slot: number, cb: CompletionCallback): number {
    return this.start(this.alloc(K.FD_INSTALL, v.int('slot', slot, 0, 32767), cb, EMPTY));
  }
  /** Empties `slot` of the registered table: `cb(0)` or -errno. */
  closeSlot(slot: number, cb: CompletionCallback = noop): number {
    return this.start(this.alloc(K.CLOSE_SLOT, v.int('slot', slot, 0, 32767), cb, EMPTY));
  }
  /**
   * Where other rings post to this one: `cb(res)` for each completion they send with the
   * returned token as user data (a slot, from {@link sendFd}). Stays until close().
   */
  inbox(cb: CompletionCallback): number {
    return this.alloc(K.INBOX, -1, cb, EMPTY).ud;
  }

  /**
   * Bytes of the transfer `id` (a send or write, resubmitted after short transfers) that the
   * kernel has not taken yet; 0 once it has finished, or for an id that was never started.
   */
  untaken(id: number): number {
    if (typeof id !== 'number') throw v.typeError('id', 'of type number', id);
    const r = this.reqs.byId(id);
    return r === undefined ? 0 : r.len - r.done;
  }

  /**
   * Cancels the operation `id` returned; its callback then runs with -ECANCELED (or its
   * result, when the kernel finished it first). When the submission queue is full and the
   * kernel refuses the submit that would make room, an ErrnoError (syscall io_uring_enter:
   * that submit's errno, or EAGAIN) is thrown and the operation runs on, to be cancelled again.
   */
  cancel(id: number): void {
    if (typeof id !== 'number') throw v.typeError('id', 'of type number', id);
    const r = this.reqs.byId(id);
    if (r === undefined || r.cancelled) return; // finished, or never started
    r.cancelled = true;
    if (r.queued) {
      this.backlog.splice(this.backlog.indexOf(r), 1);
      this.end(r, -ECANCELED);
      return;
    }
    if (!this.ring.prepCancel(r.ud)) {
      // The SQ is full: hand it to the kernel, then there is room. A submit the kernel
      // refused leaves it full, and the cancel would be lost without a word: it throws
      // instead, and the operation may be cancelled again.
      const n = this.submitRing();
      if (!this.ring.prepCancel(r.ud)) {
        r.cancelled = false;
        throw n < 0
          ? new ErrnoError(n, 'io_uring_enter', undefined, 'the cancel found the submission queue full')
          : new ErrnoError(-EAGAIN, 'io_uring_enter', undefined, 'the submission queue is still full: cancel again');
      }
    }
    this.kick();
  }

  private alloc(kind: number, fd: number, cb: CompletionCallback, buf: Uint8Array): Req {
    v.func('cb', cb);
    if (this.closed) throw closedError();
    const r = this.reqs.alloc(kind, fd, buf);
    r.cb = cb;
    return r;
  }

  private recvBuffers(): RecvBuffers | undefined {
    if (!this.bufsTried) {
      this.bufsTried = true;
      this.bufs = RecvBuffers.open(this.raw, this.bufCount, this.bufSize, this.bufMode);
    }
    return this.bufs;
  }

  private start(r: Req): number {
    this.issue(r);
    return r.id;
  }

  /** Prepares the SQE for what is left of `r`; a full SQ parks it in the backlog. */
  private issue(r: Req): void {
    if (lost(r)) return this.lose(r);
    if (this.backlog.length > 0 || !this.prep(r)) {
      r.queued = true;
      this.backlog.push(r);
    } else if (this.running && ++this.prepared === this.submitEvery) {
      // A long batch: let these go now (the first replies leave while the rest of the batch
      // is handled) rather than all at its end, when the peers have waited for the slowest.
      this.prepared = 0;
      this.bufs?.publish();
      this.submitRing();
    }
    this.kick();
  }

  private prep(r: Req): boolean {
    const raw = this.raw;
    const at = r.off + r.done;
    // An SQE's len holds 32 bits: a longer request goes in 4 GiB - 1 at a time (a send
    // resubmits the rest, a read or recv comes back short), never cut to its low 32 bits.
    const left = Math.min(r.len - r.done, MAX_SQE_LEN);
    switch (r.kind) {
      case K.RECV:
        return sqe.prepRecv(raw, { fd: r.fd, buf: r.buf, offset: at, length: left, userData: r.ud });
      case K.SEND:
        return sqe.prepSendSlot(this.slot, { fd: r.fd, buf: r.buf, offset: at, length: left, userData: r.ud });
      case K.SEND_ZC: {
        const e = { fd: r.fd, buf: r.buf, offset: at, length: left, msgFlags: MSG_NOSIGNAL, userData: r.ud };
        return sqe.prepSendZc(raw, e);
      }
      case K.READ:
      case K.WRITE: {
        const e = {
          fd: r.fd,
          buf: r.buf,
          offset: at,
          length: left,
          position: r.pos < 0 ? -1 : r.pos + r.done,
          userData: r.ud,
        };
        return r.kind === K.READ ? sqe.prepRead(raw, e) : sqe.prepWrite(raw, e);
      }
      case K.RECV_MULTI:
        if (!r.multishot) return sqe.prepRecv(raw, { fd: r.fd, buf: r.buf, offset: 0, length: r.len, userData: r.ud });
        return sqe.prepRecvMultishot(raw, {
          fd: r.fd,
          bufGroup: BGID,
          bundle: this.bufs?.mode === 'bundle',
          userData: r.ud,
        });
      case K.ACCEPT:
        return sqe.prepAccept(raw, { fd: r.fd, flags: SOCK_FLAGS, multishot: r.multishot, userData: r.ud });
      case K.TIMEOUT:
        return sqe.prepTimeout(raw, { timespec: r.buf, userData: r.ud });
      default:
        return this.prepDirect(r);
    }
  }

  private prepDirect(r: Req): boolean {
    const raw = this.raw;
    const userData = r.ud;
    switch (r.kind) {
      case K.ACCEPT_DIRECT:
        return sqe.prepAcceptDirect(raw, { fd: r.fd, flags: SOCK_FLAGS_DIRECT, multishot: true, userData });
      case K.SEND_FD:
        return sqe.prepMsgRingFd(raw, { ringFd: r.fd, slot: r.pos, targetData: r.len, userData });
      case K.FD_INSTALL:
        return sqe.prepFixedFdInstall(raw, { slot: r.fd, userData });
      case K.NODE_LOOP:
        return sqe.prepPollAdd(raw, { fd: r.fd, events: POLLIN, multishot: true, userData });
      default:
        return sqe.prepCloseDirect(raw, { slot: r.fd, userData });
    }
  }

  // ---- completion

  private dispatch(ud: number, res: number, flags: number): void {
    const r = this.reqs.byUserData(ud);
    if (r === undefined) return; // not the current use of this slot
    const kind = r.kind;
    if (kind === K.RECV_MULTI) return this.received(r, res, flags);
    if (kind === K.ACCEPT || kind === K.ACCEPT_DIRECT) return this.accepted(r, res, flags);
    if (kind === K.INBOX) return r.cb(res); // stays: more will come
    if (kind === K.NODE_LOOP) return this.nodePolled(r, res, flags);
    if (kind === K.SEND_ZC) return this.sentZc(r, res, flags);
    if (res === -EAGAIN && !r.cancelled) return this.issue(r);
    if (res > 0 && kind >= K.SEND && kind <= K.WRITE) {
      r.done += res;
      if (r.done < r.len && !r.cancelled) return this.issue(r); // short transfer: the rest
      return this.end(r, r.done);
    }
    if (kind === K.TIMEOUT && res === -ETIME) res = 0;
    this.end(r, r.done > 0 && res >= 0 ? r.done : res);
  }

  // SEND_ZC: the result (with IORING_CQE_F_MORE when a notification follows) drives the
  // resubmission as for a send; the callback waits for the last notification.
  private sentZc(r: Req, res: number, flags: number): void {
    if ((flags & u.IORING_CQE_F_NOTIF) !== 0) {
      r.notifs--;
      this.zerocopy.sends++;
      if ((res & u.IORING_NOTIF_USAGE_ZC_COPIED) !== 0) this.zerocopy.copied++;
    } else {
      if ((flags & IORING_CQE_F_MORE) !== 0) r.notifs++;
      if (res === -EAGAIN && !r.cancelled) return this.issue(r);
      if (res > 0) r.done += res;
      if (res > 0 && r.done < r.len && !r.cancelled) return this.issue(r); // short send: the rest
      r.final = res < 0 ? res : r.done > 0 || r.len === 0 ? r.done : -EPIPE;
      r.sendOver = true;
    }
    if (r.sendOver && r.notifs === 0) this.end(r, r.final);
  }

  private accepted(r: Req, res: number, flags: number): void {
    const cb = r.cb;
    if ((flags & IORING_CQE_F_MORE) === 0) {
      // A connection without IORING_CQE_F_MORE: the kernel disarmed a multishot accept (a
      // full CQ) that nobody ended. Re-armed; if it was cancelled meanwhile, the cancel
      // found nothing in the kernel, so its end comes here, after the connection.
      const disarmed = r.multishot && res >= 0;
      const cancelled = r.cancelled;
      if (disarmed && !cancelled) this.issue(r);
      else this.reqs.release(r);
      cb(res);
      if (disarmed && cancelled) cb(-ECANCELED);
      return;
    }
    cb(res);
  }

  private received(r: Req, res: number, flags: number): void {
    const ud = r.ud;
    if (res > 0) {
      if ((flags & IORING_CQE_F_BUFFER) !== 0) this.bufs!.deliver(flags, res, r.onData);
      else r.onData(res, r.buf.subarray(0, res));
      // Still armed, or disarmed by the kernel (a full CQ; the single-shot fallback): re-arm;
      // if the callback cancelled it meanwhile, nothing is left in the kernel to cancel, so
      // it ends here (a proactor the callback closed has ended it already).
      if ((flags & IORING_CQE_F_MORE) !== 0 || r.ud !== ud || this.closed) return;
      if (r.cancelled) return this.end(r, -ECANCELED);
      this.issue(r);
      return;
    }
    if ((flags & IORING_CQE_F_MORE) !== 0) return;
    if (!r.cancelled && (res === -ENOBUFS || res === -EAGAIN)) return this.issue(r); // buffers are back by the submit
    if (res === -EINVAL && r.multishot && !r.cancelled) {
      // 5.19 has buffer rings but not IORING_RECV_MULTISHOT: fall back, for good
      this.bufs = undefined;
      r.multishot = false;
      r.buf = this.recvBuffer();
      r.len = r.buf.length;
      return this.issue(r);
    }
    const cb = r.onData;
    this.reqs.release(r);
    cb(res, EMPTY);
  }

  /**
   * Ends `r`, whose caller's buffer no longer holds what is left of it (see {@link lost}),
   * with -EFAULT, the kernel's word for memory that is not there: preparing the rest would
   * throw from inside a completion's dispatch. A SEND_ZC still waiting for notifications
   * ends when the last one comes, as it does after an error.
   */
  private lose(r: Req): void {
    if (r.kind !== K.SEND_ZC) return this.end(r, -EFAULT);
    r.final = -EFAULT;
    r.sendOver = true;
    if (r.notifs === 0) this.end(r, r.final);
  }

  private end(r: Req, res: number): void {
    if (r.kind === K.RECV_MULTI) {
      const cb = r.onData;
      this.reqs.release(r);
      return cb(res, EMPTY);
    }
    const cb = r.cb;
    this.reqs.release(r); // first: the callback may start the next operation in this very record
    cb(res);
  }

  private flushBacklog(): void {
    while (this.backlog.length > 0) {
      const r = this.backlog[0]!;
      if (lost(r)) {
        this.backlog.shift();
        r.queued = false;
        this.lose(r);
        continue;
      }
      if (!this.prep(r)) {
        if (this.submitRing() <= 0) break;
        continue;
      }
      r.queued = false;
      this.backlog.shift();
    }
  }

  /** Hands freed receive buffers back, moves the backlog into the SQ and submits. */
  private submit(): void {
    this.bufs?.publish();
    this.flushBacklog();
    this.submitRing();
  }

  /** Every submit goes through here, after beforeSubmit(). */
  private submitRing(minComplete = 0): number {
    this.beforeSubmit();
    return this.ring.submit(minComplete);
  }

  /** Runs before each submit: a subclass publishes what a batch counted before its replies leave. @internal */
  protected beforeSubmit(): void {}

  private kick(): void {
    if (this.running || this.reaping || this.submitScheduled) return; // run() and the watch submit after each batch
    this.submitScheduled = true;
    queueMicrotask(this.submitLater);
  }

  // ---- running

  /** Owns the thread until stop() (or until nothing is in flight); see the file comment. */
  async run(): Promise<void> {
    if (this.closed) throw closedError();
    if (this.running || this.watch !== undefined) throw new Error('proactor is already running');
    this.running = true;
    this.stopped = false;
    this.nodeIo = false;
    this.watchNodeLoop();
    batchClock.enter();
    try {
      let worked = true;
      while (!this.stopped) {
        if (this.nodeIo) {
          // Node's loop has I/O for this thread (see watchNodeLoop): one libuv turn.
          this.nodeIo = false;
          await drainMicrotasks();
          continue;
        }
        this.bufs?.publish();
        this.flushBacklog();
        if (this.idle()) {
          await Promise.resolve();
          if (this.idle()) break;
          continue;
        }
        if (worked) {
          // About to block after a batch that did work: reap what is there without waiting,
          // and when nothing is, let every promise continuation run first (a chain of awaits
          // in a callback — a file body, a streamed reply — would otherwise stop at its
          // first link until the next completion), as Reactor.run does.
          worked = this.enter(0) > 0;
          await Promise.resolve();
          if (!worked) await drainMicrotasks();
          continue;
        }
        this.enter(1); // submit, block for one completion, then drain all that are there
        worked = true;
        await Promise.resolve();
      }
    } finally {
      this.running = false;
      batchClock.leave();
      this.unwatchNodeLoop();
    }
  }

  /** Nothing of the caller's in flight or waiting for the SQ (run()'s own poll aside). */
  private idle(): boolean {
    // Completions a callback's throw left undispatched (see Ring.drain) count as work too.
    return this.ring.inflight - (this.nodeArmed ? 1 : 0) === 0 && this.backlog.length === 0 && !this.ring.undrained;
  }

  /**
   * run() blocks the thread in io_uring_enter, and Node's loop only turns when the proactor
   * lets it. So that Node's own I/O for this thread is not left waiting for the next
   * completion — the thread being stopped (worker.terminate(), process.exit()), a message
   * posted to it — run() keeps a multishot poll (5.13) on libuv's loop fd (its epoll fd,
   * readable while libuv has I/O to handle), and gives libuv one turn when it fires, as
   * Reactor.run does. The poll is not counted as work in flight; run() cancels and reaps it
   * before it returns.
   */
  private watchNodeLoop(): void {
    if (this.nodeArmed || this.nodeRefused) return;
    if (this.nodeLoop === undefined) {
      const fd = native.loopFd();
      if (fd < 0) return;
      this.nodeLoop = this.alloc(K.NODE_LOOP, fd, noop, EMPTY);
    }
    this.nodeLoop.cancelled = false;
    this.nodeArmed = true;
    this.issue(this.nodeLoop);
  }

  private unwatchNodeLoop(): void {
    this.nodeIo = false;
    const r = this.nodeLoop;
    if (r === undefined || !this.nodeArmed || this.closed) return;
    if (r.queued) {
      // Never reached the kernel (the SQ was full).
      r.queued = false;
      this.backlog.splice(this.backlog.indexOf(r), 1);
      this.nodeArmed = false;
      return;
    }
    try {
      this.cancel(r.id);
    } catch {
      return; // the kernel takes no submissions: nothing to wait for either
    }
    // The kernel cancels a poll at once: reap it here, so that run() leaves in flight only
    // what the caller started (completions of those that come with it are dispatched too).
    while (this.nodeArmed && this.ring.inflight > 0 && this.enter(1) >= 0);
  }

  // NODE_LOOP: a readiness sets nodeIo; a poll the kernel ended is re-armed while run() wants it.
  private nodePolled(r: Req, res: number, flags: number): void {
    if (res > 0 && this.running) this.nodeIo = true;
    if ((flags & IORING_CQE_F_MORE) !== 0) return;
    if (this.running && res > 0 && !r.cancelled) return this.issue(r); // ended after one: again
    this.nodeArmed = false;
    if (res < 0 && res !== -ECANCELED) this.nodeRefused = true;
  }

  /**
   * One io_uring_enter: submits what is prepared and waits for `minComplete` completions;
   * then reads the clock once for the whole batch and dispatches it. The count, or -errno.
   */
  private enter(minComplete: number): number {
    this.prepared = 0;
    const r = this.submitRing(minComplete);
    batchClock.tick();
    if (r < 0 && r !== -ETIME && r !== -EINTR) return r;
    return this.ring.drain();
  }

  private readonly beforeReap = (): void => {
    this.reaping = true;
  };
  /** After each attached drain, thrown through or not: submit what the callbacks prepared. */
  private readonly afterReap = (): void => {
    this.reaping = false;
    if (!this.closed) this.submit();
  };

  /** Reaps inside Node's loop: the ring's eventfd is watched by a uv_poll_t until stop(). */
  attach(): void {
    if (this.closed) throw closedError();
    if (this.running || this.watch !== undefined) throw new Error('proactor is already running');
    this.stopped = false;
    const reap = (): void => this.ring.drainAttached(this.beforeReap, this.afterReap);
    this.watch = openWatch(this.ring.eventFd, reap);
    this.watch.start(1);
    if (!this.refed) this.watch.unref();
    this.submit();
    // The rest of a batch a callback threw in under run(): handed out now.
    if (this.ring.undrained) setImmediate(() => this.watch !== undefined && reap());
  }

  /**
   * Lets the process exit while this proactor is attached and nothing else keeps Node's
   * loop alive, as `unref()` on a Node handle does. Returns the proactor.
   */
  unref(): this {
    this.refed = false;
    this.watch?.unref();
    return this;
  }
  /** Undoes `unref()`: an attached proactor keeps the process alive again (the default). */
  ref(): this {
    this.refed = true;
    this.watch?.ref();
    return this;
  }
  /** Whether the proactor keeps the process alive while attached. */
  hasRef(): boolean {
    return this.refed;
  }

  /** Ends `run()` after the current batch, or stops reaping from Node's loop. In-flight operations stay in flight. */
  stop(): void {
    this.stopped = true;
    this.ring.stopResume();
    this.watch?.close();
    this.watch = undefined;
  }

  /**
   * Stops, cancels what is in flight, waits for the kernel, then runs each callback with
   * -ECANCELED. A callback that throws does not stop it: every other callback still runs
   * once and the proactor is closed, and then close() throws what the first one threw.
   */
  close(): void {
    if (this.closed) return;
    this.stop();
    let thrown: { error: unknown } | undefined;
    for (;;) {
      // Completions already posted are dispatched first; a callback's throw leaves the rest
      // of them for the next drain, which the next try starts with.
      try {
        this.ring.close();
        break;
      } catch (error) {
        thrown ??= { error };
      }
    }
    this.closed = true;
    this.backlog = [];
    this.bufs = undefined; // the native ring released them with the ring
    const left = this.reqs.live();
    const ends = left.map((r) => (r.kind === K.RECV_MULTI ? r.onData : r.cb));
    for (const r of left) this.reqs.release(r);
    for (const cb of ends) {
      try {
        cb(-ECANCELED, EMPTY);
      } catch (error) {
        thrown ??= { error };
      }
    }
    if (thrown !== undefined) throw thrown.error;
  }
}

/**
 * Whether the caller's buffer of a transfer no longer holds `r`'s range: its ArrayBuffer
 * shrank under it while the transfer was in flight or waiting (a resizable ArrayBuffer
 * resized, a mapping unmapped), and the rest cannot be resubmitted.
 */
function lost(r: Req): boolean {
  return ((r.kind >= K.RECV && r.kind <= K.WRITE) || r.kind === K.SEND_ZC) && r.buf.length < r.off + r.len;
}

/**
 * (offset, length, position, cb) as `sys.pread` orders them; the earlier (position, length,
 * cb) form is told apart by a callback in third place. A number where the callback goes is
 * then a TypeError (alloc's check), never a silently misread position.
 */
function proactorRwArgs(a: unknown, b: unknown, c: unknown, d: unknown): [unknown, unknown, unknown, unknown] {
  return typeof c === 'function' && d === undefined ? [0, b, a, c] : [a, b, c, d];
}
