/**
 * The Proactor (Schmidt et al., "Pattern-Oriented Software Architecture", vol. 2): the kernel
 * performs the I/O and reports completions; the loop dispatches each completion, by user
 * data, to the callback that started it. Built on a `Ring`'s batch API and shaped after
 * liburing's `io_uring-cp`: a request record per user data, resubmission on short reads and
 * writes and on -EAGAIN, and "wait once, then drain every completion that is there".
 *
 * Callbacks, not promises, on the hot path: `accept`, `recv`, `send`, `read`, `write`,
 * `timeout` each take `cb(res)` with `res >= 0` or `-errno`, and return an id for `cancel`.
 * `run()` owns the thread: it blocks in io_uring_enter(GETEVENTS) and never yields to libuv,
 * but awaits a resolved promise between batches so promise continuations run; it resolves
 * after `stop()`, or when nothing is left in flight. `attach()` instead watches the ring's
 * eventfd from Node's own loop.
 */
import { constants as os } from 'node:os';
import { ErrnoError } from '../sys/errors.js';
import { native, type NativeRing, type NativeWatch } from '../sys/native.js';
import { Ring, type CompletionHandler, type RingOptions } from '../sys/ring.js';
import { nativeRing, timespec } from '../sys/ring-core.js';
import { IORING_ACCEPT_MULTISHOT, IORING_CQE_F_MORE, OP } from '../sys/uring.js';
import * as v from '../sys/validate.js';

const { EAGAIN, EBADF, ECANCELED, EINVAL, ETIME } = os.errno;
const SOCK_FLAGS = 0o4000 | 0o2000000; // SOCK_NONBLOCK | SOCK_CLOEXEC
const MSG_NOSIGNAL = 0x4000;

/** Receives an operation's result: `>= 0` (bytes, an fd, 0) or `-errno` (-ECANCELED after `cancel`). */
export type CompletionCallback = (res: number) => void;

/** Options of `new Proactor()`. */
export interface ProactorOptions {
  /** Submission queue entries of the ring; default 256. */
  entries?: number;
}

// Request kinds as small ints: one record shape for all of them, and a switch V8 compiles to a
// jump table. SEND … WRITE are the kinds resubmitted after a short transfer.
const ACCEPT = 0;
const RECV = 1;
const SEND = 2;
const READ = 3;
const WRITE = 4;
const TIMEOUT = 5;

// Records live in a table and are reused. The kernel's user data is the slot plus the low bits
// of the record's generation (31 bits in all: the Ring's batch range), so that a completion or
// a cancel aimed at an earlier use of the slot never reaches the current one; the public id is
// slot + generation * SLOTS, which does not wrap before 2^53.
const SLOT_BITS = 20;
const SLOTS = 1 << SLOT_BITS;
const SLOT_MASK = SLOTS - 1;
const GEN_MASK = (1 << (31 - SLOT_BITS)) - 1;

const EMPTY = new Uint8Array(0);
const noop: CompletionCallback = () => {};

/**
 * One operation, from start to final completion. Every field is set in the constructor so
 * that all records share one hidden class: the loads in prep() and dispatch() stay
 * monomorphic. `buf` holds the buffer the kernel reads or writes until the final completion.
 */
class Req {
  kind = RECV;
  cb: CompletionCallback = noop;
  fd = -1;
  buf: Uint8Array = EMPTY;
  off = 0; // start of the request in buf
  len = 0; // bytes asked for
  pos = -1; // file position, -1 for streams
  done = 0; // bytes transferred so far (short-transfer resubmission)
  multishot = false;
  cancelled = false;
  queued = false; // in the backlog, not in the SQ
  gen = 0;
  id = 0; // public id; 0 while free
  ud = -1; // the kernel's user data; -1 while free

  constructor(readonly slot: number) {}
}

/**
 * The proactor's ring. DEFER_TASKRUN (6.1): the kernel posts completions only when this
 * thread enters it to reap them — run() does so once per batch — rather than interrupting
 * JavaScript with task work; the ring then serves this thread alone (SINGLE_ISSUER), which
 * a proactor does anyway. COOP_TASKRUN (5.19) is the nearest on older kernels. No eventfd is
 * registered unless attach() asks for one: run() reaps through io_uring_enter(GETEVENTS).
 */
function openRing(entries: number, onCompletion: CompletionHandler): Ring {
  const tries: RingOptions[] = [{ deferTaskrun: true }, { coopTaskrun: true }, {}];
  for (let i = 0; ; i++) {
    try {
      return new Ring({ entries, attach: false, onCompletion, ...tries[i] });
    } catch (e) {
      // EINVAL: a kernel that lacks the flag; anything else (ENOMEM, EPERM …) is not about it
      if (i === tries.length - 1 || !(e instanceof ErrnoError) || e.errno !== -EINVAL) throw e;
    }
  }
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
  private readonly slots: Req[] = [];
  private readonly free: number[] = [];
  private backlog: Req[] = []; // requests whose SQE did not fit the SQ yet
  private stopped = true;
  private running = false;
  private reaping = false; // in the attached watch's batch, which submits once at its end
  private closed = false;
  private submitScheduled = false;
  private watch?: NativeWatch;
  private readonly submitLater = (): void => {
    this.submitScheduled = false;
    if (this.closed) return;
    this.flushBacklog();
    this.ring.submit();
  };

  constructor(opts?: ProactorOptions) {
    const o = v.object<ProactorOptions>('opts', opts);
    const entries = o.entries === undefined ? 256 : v.int('entries', o.entries, 1, 32768);
    this.ring = openRing(entries, (ud, res, flags) => this.dispatch(ud, res, flags));
    this.raw = nativeRing(this.ring);
  }

  // ---- operations: validated here, once; resubmissions skip the checks

  /** accept4(2) on a listening socket; `multishot` (5.19) keeps it armed: `cb` runs once per connection. */
  accept(fd: number, cb: CompletionCallback, opts?: { multishot?: boolean }): number {
    const r = this.alloc(ACCEPT, v.fd(fd), cb, EMPTY);
    r.multishot = opts?.multishot === true;
    return this.start(r);
  }
  /** One recv(2) into `buf`: `cb(bytes)`, 0 at end of stream. */
  recv(fd: number, buf: Uint8Array, cb: CompletionCallback): number {
    const r = this.alloc(RECV, v.fd(fd), cb, v.bytes(buf));
    r.len = buf.length;
    return this.start(r);
  }
  /** Sends all of `buf[off, off + len)` (resubmitting after short sends): `cb(len)` or -errno. */
  send(fd: number, buf: Uint8Array, off: number, len: number, cb: CompletionCallback): number {
    const f = v.fd(fd);
    const o = v.int('offset', off, 0, v.bytes(buf).length);
    const l = v.int('length', len, 0, buf.length - o);
    const r = this.alloc(SEND, f, cb, buf);
    r.off = o;
    r.len = l;
    return this.start(r);
  }
  /** Reads `len` bytes at `pos` into `buf[0, len)` (short reads resubmitted): `cb(bytes)`, fewer only at EOF. */
  read(fd: number, buf: Uint8Array, pos: number, len: number, cb: CompletionCallback): number {
    return this.rw(READ, fd, buf, pos, len, cb);
  }
  /** Writes all of `buf[0, len)` at `pos` (short writes resubmitted): `cb(len)` or -errno. */
  write(fd: number, buf: Uint8Array, pos: number, len: number, cb: CompletionCallback): number {
    return this.rw(WRITE, fd, buf, pos, len, cb);
  }
  private rw(kind: number, fd: number, buf: Uint8Array, pos: number, len: number, cb: CompletionCallback): number {
    const f = v.fd(fd);
    const l = v.int('length', len, 0, v.bytes(buf).length);
    const p = v.int('pos', pos, -1);
    const r = this.alloc(kind, f, cb, buf);
    r.len = l;
    r.pos = p;
    return this.start(r);
  }
  /** `cb(0)` after `ms` milliseconds. */
  timeout(ms: number, cb: CompletionCallback): number {
    const ts = timespec(v.int('ms', ms, 0, 0x7fffffff)); // the kernel reads it at submission: held till then
    return this.start(this.alloc(TIMEOUT, -1, cb, ts));
  }
  /** Cancels the operation `id` returned; its callback then runs with -ECANCELED. */
  cancel(id: number): void {
    const r = typeof id === 'number' && id > 0 ? this.slots[id % SLOTS] : undefined;
    if (r === undefined || r.id !== id || r.cancelled) return; // finished, or never started
    r.cancelled = true;
    if (r.queued) {
      this.backlog.splice(this.backlog.indexOf(r), 1);
      this.finish(r, -ECANCELED);
      return;
    }
    if (!this.ring.prepCancel(r.ud)) {
      this.ring.submit(); // the SQ is full: hand it to the kernel, then there is room
      this.ring.prepCancel(r.ud);
    }
    this.kick();
  }

  /** A free record (or a new one), reset for this operation. */
  private alloc(kind: number, fd: number, cb: CompletionCallback, buf: Uint8Array): Req {
    v.func('cb', cb);
    if (this.closed) throw new ErrnoError(-EBADF, 'io_uring_enter', undefined, 'the proactor is closed');
    const slot = this.free.pop();
    let r: Req;
    if (slot !== undefined) r = this.slots[slot]!;
    else {
      if (this.slots.length === SLOTS) throw new RangeError(`more than ${SLOTS} proactor operations in flight`);
      r = new Req(this.slots.length);
      this.slots.push(r);
    }
    r.gen++;
    r.id = r.gen * SLOTS + r.slot;
    r.ud = r.slot | ((r.gen & GEN_MASK) << SLOT_BITS);
    r.kind = kind;
    r.fd = fd;
    r.cb = cb;
    r.buf = buf;
    r.off = 0;
    r.len = 0;
    r.pos = -1;
    r.done = 0;
    r.multishot = false;
    r.cancelled = false;
    return r;
  }

  /** Returns the record to the free list, dropping its buffer and callback. */
  private release(r: Req): void {
    r.cb = noop;
    r.buf = EMPTY;
    r.id = 0;
    r.ud = -1;
    r.queued = false;
    this.free.push(r.slot);
  }

  private start(r: Req): number {
    this.issue(r);
    return r.id;
  }

  /** Prepares the SQE for what is left of `r`; a full SQ parks it in the backlog. */
  private issue(r: Req): void {
    if (this.backlog.length > 0 || !this.prep(r)) {
      r.queued = true;
      this.backlog.push(r);
    }
    this.kick();
  }

  private prep(r: Req): boolean {
    const raw = this.raw;
    const at = r.off + r.done;
    const left = r.len - r.done;
    switch (r.kind) {
      case RECV:
        return raw.prepRw(OP.RECV, r.fd, r.buf, at, left, 0, r.ud, 0, 0, 0);
      case SEND:
        return raw.prepRw(OP.SEND, r.fd, r.buf, at, left, 0, r.ud, 0, 0, MSG_NOSIGNAL);
      case READ:
      case WRITE: {
        const pos = r.pos < 0 ? -1 : r.pos + r.done;
        return raw.prepRw(r.kind === READ ? OP.READ : OP.WRITE, r.fd, r.buf, at, left, pos, r.ud, 0, 0, 0);
      }
      case ACCEPT: {
        const multi = r.multishot ? IORING_ACCEPT_MULTISHOT : 0;
        return raw.prep(OP.ACCEPT, r.fd, null, 0, 0, 0, null, r.ud, SOCK_FLAGS, 0, multi, 0, 0);
      }
      default:
        return raw.prep(OP.TIMEOUT, -1, r.buf, 0, 1, 0, null, r.ud, 0, 0, 0, 0, 0);
    }
  }

  // ---- completion

  private dispatch(ud: number, res: number, flags: number): void {
    const r = this.slots[ud & SLOT_MASK];
    if (r === undefined || r.ud !== ud) return; // not the current use of this slot
    const kind = r.kind;
    if (kind === ACCEPT) return this.accepted(r, res, flags);
    if (res === -EAGAIN && !r.cancelled) return this.issue(r);
    if (res > 0 && kind >= SEND && kind <= WRITE) {
      r.done += res;
      if (r.done < r.len && !r.cancelled) return this.issue(r); // short transfer: the rest
      return this.finish(r, r.done);
    }
    if (kind === TIMEOUT && res === -ETIME) res = 0;
    this.finish(r, r.done > 0 && res >= 0 ? r.done : res);
  }

  private accepted(r: Req, res: number, flags: number): void {
    const cb = r.cb;
    if ((flags & IORING_CQE_F_MORE) === 0) {
      if (r.multishot && !r.cancelled && res >= 0)
        this.issue(r); // the kernel disarmed it: re-arm
      else this.release(r);
    }
    cb(res);
  }

  private finish(r: Req, res: number): void {
    const cb = r.cb;
    this.release(r); // first: the callback may start the next operation in this very record
    cb(res);
  }

  private flushBacklog(): void {
    while (this.backlog.length > 0) {
      const r = this.backlog[0]!;
      if (!this.prep(r)) {
        if (this.ring.submit() <= 0) break;
        continue;
      }
      r.queued = false;
      this.backlog.shift();
    }
  }

  private kick(): void {
    if (this.running || this.reaping || this.submitScheduled) return; // run() and the watch submit after each batch
    this.submitScheduled = true;
    queueMicrotask(this.submitLater);
  }

  // ---- running

  /** Owns the thread until stop() (or until nothing is in flight); see the file comment. */
  async run(): Promise<void> {
    if (this.running || this.watch !== undefined) throw new Error('proactor is already running');
    this.running = true;
    this.stopped = false;
    try {
      while (!this.stopped) {
        this.flushBacklog();
        if (this.ring.inflight === 0 && this.backlog.length === 0) {
          await Promise.resolve();
          if (this.ring.inflight === 0 && this.backlog.length === 0) break;
          continue;
        }
        this.ring.wait(1); // submit, block for one completion, then drain all that are there
        await Promise.resolve();
      }
    } finally {
      this.running = false;
    }
  }

  /** Reaps inside Node's loop: the ring's eventfd is watched by a uv_poll_t until stop(). */
  attach(): void {
    if (this.running || this.watch !== undefined) throw new Error('proactor is already running');
    this.stopped = false;
    this.watch = new native.Watch(this.ring.eventFd, () => {
      this.reaping = true;
      try {
        this.ring.drain();
      } finally {
        this.reaping = false;
      }
      if (this.closed) return;
      this.flushBacklog();
      this.ring.submit();
    });
    this.watch.start(1);
    this.flushBacklog();
    this.ring.submit();
  }

  /** Ends `run()` after the current batch, or stops reaping from Node's loop. In-flight operations stay in flight. */
  stop(): void {
    this.stopped = true;
    this.watch?.close();
    this.watch = undefined;
  }

  /** Stops, cancels what is in flight, waits for the kernel, then runs each callback with -ECANCELED. */
  close(): void {
    if (this.closed) return;
    this.stop();
    this.ring.close(); // completions already posted are dispatched first
    this.closed = true;
    this.backlog = [];
    const left = this.slots.filter((r) => r.id !== 0);
    const cbs = left.map((r) => r.cb);
    for (const r of left) this.release(r);
    for (const cb of cbs) cb(-ECANCELED);
  }
}
