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
import { native, type NativeWatch } from '../sys/native.js';
import { Ring } from '../sys/ring.js';
import { IORING_CQE_F_MORE } from '../sys/uring.js';
import * as v from '../sys/validate.js';

const { EAGAIN, ECANCELED } = os.errno;

/** Receives an operation's result: `>= 0` (bytes, an fd, 0) or `-errno` (-ECANCELED after `cancel`). */
export type CompletionCallback = (res: number) => void;

/** Options of `new Proactor()`. */
export interface ProactorOptions {
  /** Submission queue entries of the ring; default 256. */
  entries?: number;
}

type Kind = 'accept' | 'recv' | 'send' | 'read' | 'write' | 'timeout';

interface Req {
  kind: Kind;
  cb: CompletionCallback;
  fd: number;
  buf?: Uint8Array;
  off: number; // start of the request in buf
  len: number; // bytes asked for
  pos: number; // file position, -1 for streams
  done: number; // bytes transferred so far (short-transfer resubmission)
  ms: number;
  multishot: boolean;
  cancelled: boolean;
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
  private readonly reqs = new Map<number, Req>();
  private backlog: number[] = []; // ids whose SQE did not fit the SQ yet
  private nextId = 0;
  private stopped = true;
  private running = false;
  private submitScheduled = false;
  private watch?: NativeWatch;

  constructor(opts?: ProactorOptions) {
    const o = v.object<ProactorOptions>('opts', opts);
    const entries = o.entries === undefined ? 256 : v.int('entries', o.entries, 1, 32768);
    this.ring = new Ring({ entries, attach: false, onCompletion: (ud, res, flags) => this.dispatch(ud, res, flags) });
  }

  // ---- operations

  /** accept4(2) on a listening socket; `multishot` (5.19) keeps it armed: `cb` runs once per connection. */
  accept(fd: number, cb: CompletionCallback, opts?: { multishot?: boolean }): number {
    return this.start({ ...this.base('accept', fd, cb), multishot: opts?.multishot === true });
  }
  /** One recv(2) into `buf`: `cb(bytes)`, 0 at end of stream. */
  recv(fd: number, buf: Uint8Array, cb: CompletionCallback): number {
    return this.start({ ...this.base('recv', fd, cb), buf: v.bytes(buf), len: buf.length, pos: -1 });
  }
  /** Sends all of `buf[off, off + len)` (resubmitting after short sends): `cb(len)` or -errno. */
  send(fd: number, buf: Uint8Array, off: number, len: number, cb: CompletionCallback): number {
    const [o, l] = v.slice(v.bytes(buf), off, len);
    return this.start({ ...this.base('send', fd, cb), buf, off: o, len: l, pos: -1 });
  }
  /** Reads `len` bytes at `pos` into `buf[0, len)` (short reads resubmitted): `cb(bytes)`, fewer only at EOF. */
  read(fd: number, buf: Uint8Array, pos: number, len: number, cb: CompletionCallback): number {
    const [, l] = v.slice(v.bytes(buf), 0, len);
    return this.start({ ...this.base('read', fd, cb), buf, len: l, pos: v.int('pos', pos, -1) });
  }
  /** Writes all of `buf[0, len)` at `pos` (short writes resubmitted): `cb(len)` or -errno. */
  write(fd: number, buf: Uint8Array, pos: number, len: number, cb: CompletionCallback): number {
    const [, l] = v.slice(v.bytes(buf), 0, len);
    return this.start({ ...this.base('write', fd, cb), buf, len: l, pos: v.int('pos', pos, -1) });
  }
  /** `cb(0)` after `ms` milliseconds. */
  timeout(ms: number, cb: CompletionCallback): number {
    return this.start({ ...this.base('timeout', -1, cb), ms: v.int('ms', ms, 0, 0x7fffffff) });
  }
  /** Cancels the operation `id` returned; its callback then runs with -ECANCELED. */
  cancel(id: number): void {
    const r = this.reqs.get(id);
    if (r === undefined) return;
    r.cancelled = true;
    const queued = this.backlog.indexOf(id);
    if (queued >= 0) {
      this.backlog.splice(queued, 1);
      this.finish(id, r, -ECANCELED);
      return;
    }
    if (!this.ring.prepCancel(id)) {
      this.ring.submit(); // the SQ is full: hand it to the kernel, then there is room
      this.ring.prepCancel(id);
    }
    this.kick();
  }

  private base(kind: Kind, fd: number, cb: CompletionCallback): Req {
    v.func('cb', cb);
    const f = kind === 'timeout' ? -1 : v.fd(fd);
    return { kind, cb, fd: f, off: 0, len: 0, pos: -1, done: 0, ms: 0, multishot: false, cancelled: false };
  }

  private start(r: Req): number {
    const id = this.allocId();
    this.reqs.set(id, r);
    this.issue(id, r);
    return id;
  }

  private allocId(): number {
    for (;;) {
      this.nextId = (this.nextId + 1) & 0x7fffffff;
      if (!this.reqs.has(this.nextId)) return this.nextId;
    }
  }

  /** Prepares the SQE for what is left of request `id`; a full SQ parks it in the backlog. */
  private issue(id: number, r: Req): void {
    if (this.backlog.length > 0 || !this.prep(id, r)) this.backlog.push(id);
    this.kick();
  }

  private prep(id: number, r: Req): boolean {
    const ring = this.ring;
    const at = r.off + r.done;
    const pos = r.pos < 0 ? -1 : r.pos + r.done;
    switch (r.kind) {
      case 'accept':
        return ring.prepAccept(r.fd, id, { multishot: r.multishot });
      case 'recv':
        return ring.prepRecv(r.fd, r.buf!, at, r.len - r.done, id);
      case 'send':
        return ring.prepSend(r.fd, r.buf!, at, r.len - r.done, id);
      case 'read':
        return ring.prepRead(r.fd, r.buf!.subarray(at), pos, r.len - r.done, id);
      case 'write':
        return ring.prepWrite(r.fd, r.buf!.subarray(at), pos, r.len - r.done, id);
      case 'timeout':
        return ring.prepTimeout(r.ms, id);
    }
  }

  // ---- completion

  private dispatch(id: number, res: number, flags: number): void {
    const r = this.reqs.get(id);
    if (r === undefined) return;
    const more = (flags & IORING_CQE_F_MORE) !== 0;
    if (r.kind === 'accept') {
      if (!more && r.multishot && !r.cancelled && res >= 0)
        this.issue(id, r); // the kernel disarmed it: re-arm
      else if (!more) this.reqs.delete(id);
      r.cb(res);
      return;
    }
    if (res === -EAGAIN && !r.cancelled) return this.issue(id, r);
    if (res > 0 && (r.kind === 'send' || r.kind === 'read' || r.kind === 'write')) {
      r.done += res;
      if (r.done < r.len && !r.cancelled) return this.issue(id, r); // short transfer: the rest
      return this.finish(id, r, r.done);
    }
    if (r.kind === 'timeout' && res === -os.errno.ETIME) res = 0;
    this.finish(id, r, r.done > 0 && res >= 0 ? r.done : res);
  }

  private finish(id: number, r: Req, res: number): void {
    this.reqs.delete(id);
    r.cb(res);
  }

  private flushBacklog(): void {
    while (this.backlog.length > 0) {
      const id = this.backlog[0]!;
      const r = this.reqs.get(id);
      if (r !== undefined && !this.prep(id, r)) {
        if (this.ring.submit() <= 0) break;
        continue;
      }
      this.backlog.shift();
    }
  }

  private kick(): void {
    if (this.running || this.submitScheduled) return; // run() submits before it waits
    this.submitScheduled = true;
    queueMicrotask(() => {
      this.submitScheduled = false;
      this.flushBacklog();
      this.ring.submit();
    });
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
      this.ring.drain();
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
    this.stop();
    this.ring.close();
    const left = [...this.reqs];
    this.reqs.clear();
    this.backlog = [];
    for (const [, r] of left) r.cb(-ECANCELED);
  }
}
