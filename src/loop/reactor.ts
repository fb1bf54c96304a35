/**
 * The Reactor: Redis `ae`'s event loop over any Poller. An fd-indexed handler table,
 * one reused `Int32Array` that the poller fills with (fd, revents) pairs, dispatch in the
 * order the kernel reported, then the due timers (a min-heap). Two ways to run it:
 *
 * - `run()` owns the thread: it blocks in the poller's wait until `stop()`. Between
 *   dispatch batches it awaits an already-resolved promise, so that promise continuations
 *   created by handlers run; a plain synchronous loop would starve every promise until
 *   `run()` returned. One resolved-promise await only lets the first link of a chain run
 *   (later links queue behind the loop's own continuation, which then blocks in wait), so
 *   before it would block after a batch that did work, the loop drains the microtask queue
 *   completely with one `setImmediate` turn (~3 µs), unless a 0-timeout wait finds more
 *   events (under load it rarely pays it). Otherwise libuv runs only when its own loop fd,
 *   which the wait watches too, says Node has I/O for this thread (a socket, a posted
 *   message, the thread being stopped: see #watchNodeLoop); Node's timers make no fd ready,
 *   so they are no way to reach a running reactor (use an fd it watches: an eventfd, a
 *   pipe). Hence `run()` returns a `Promise<void>`, not `void`, resolved after `stop()`.
 * - `attach()` lives inside Node's loop. An epoll backend's own fd is watched by a
 *   `uv_poll_t` (native `Watch`); when it turns readable, the reactor waits with a 0 timeout
 *   and dispatches. select and poll have no fd of their own, so each watched fd gets its own
 *   `Watch` (readable/writable/disconnect per the mask), used only as a wake-up: the wake
 *   still runs the select/poll wait and dispatch, so the backend under test is the one that
 *   reports readiness. Reactor timers are driven by one Node `setTimeout` for the earliest.
 */
import { constants } from '../sys/constants.js';
import { errnoError } from '../sys/errors.js';
import { type NativeWatch, native } from '../sys/native.js';
import { openWatch } from '../sys/watch.js';
import * as v from '../sys/validate.js';
import * as batchClock from '../sys/batch-clock.js';
import { POLLNVAL, type Poller, type PollerName, createPoller } from './poller.js';
import { TimerHeap } from './timers.js';

/** Resolves after Node has run every queued microtask and nextTick (one libuv check phase). */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/**
 * Called with a watched fd and the events the poller reported for it (EPOLLIN, EPOLLHUP …).
 * `POLLNVAL` in `events` means the fd was closed behind the reactor's back (poll and
 * select backends); the reactor has already stopped watching it.
 */
export type Handler = (fd: number, events: number) => void;

/** Options of `new Reactor()`. */
export interface ReactorOptions {
  /** The multiplexer; default 'epoll'. */
  backend?: PollerName;
  /** The most events one wait reports; default 1024. */
  maxEvents?: number;
}

const EPOLLIN = constants.EPOLLIN as number;
const EPOLLOUT = constants.EPOLLOUT as number;
const EPOLLRDHUP = constants.EPOLLRDHUP as number;
const EPOLLPRI = constants.EPOLLPRI as number;
const EPOLLONESHOT = constants.EPOLLONESHOT as number;
// libuv's uv_poll_event bits.
const UV_READABLE = 1;
const UV_WRITABLE = 2;
const UV_DISCONNECT = 4;

/**
 * An event loop over a {@link Poller} (Redis's `ae`): fd handlers dispatched in the order
 * the kernel reports them, and timers. `run()` owns the thread until `stop()`; `attach()`
 * lives inside Node's own loop instead. Handlers run synchronously; what a handler or
 * timer throws stops `run()` (its promise rejects) or, attached, reaches Node as an
 * uncaught exception; the rest of that batch is dispatched on the next turn (the next
 * `run()` or `attach()`; attached, a turn of its own), never dropped. The reactor never closes the fds it watches.
 * @example
 * const reactor = new Reactor({ backend: 'epoll' });
 * const lfd = sys.listenTcp('127.0.0.1', 8080);
 * reactor.watch(lfd, constants.EPOLLIN, () => {
 *   for (let fd = sys.accept(lfd); fd >= 0; fd = sys.accept(lfd)) {
 *     const c: Connection = new Connection(reactor, fd, { onData: (chunk) => c.write(chunk) });
 *   }
 * });
 * reactor.attach(); // or `await reactor.run()` to give it the thread
 */
export class Reactor {
  #closed = false;
  /** The multiplexer the reactor waits in. */
  readonly poller: Poller;
  readonly #fired: Int32Array;
  readonly #handlers: (Handler | undefined)[] = [];
  readonly #masks: number[] = [];
  /**
   * The turn in which each fd was last watched. An event in that turn's batch is older than
   * the watch: it belongs to whatever the fd number named before (an fd a handler closed and
   * whose number the kernel then gave to a new one), so it is not dispatched.
   */
  readonly #watchedIn: number[] = [];
  #turnNo = 0;
  /** The pairs of the last wait in #fired, and the next one to dispatch (below #firedN after a throw). */
  #firedN = 0;
  #firedAt = 0;
  readonly #timers = new TimerHeap();
  #mode: 'idle' | 'run' | 'attach' = 'idle';
  #stopping = false;
  // run mode
  /** This thread's libuv loop fd, watched during run(); -1 when not. */
  #loopFd = -1;
  /** The libuv loop fd turned readable: Node has I/O for this thread to handle. */
  #nodeIo = false;
  // attach mode
  /** Whether an attached reactor keeps Node's loop (the process) alive: `ref()` / `unref()`. */
  #refed = true;
  #loopWatch: NativeWatch | undefined;
  readonly #fdWatches = new Map<number, NativeWatch>();
  #nodeTimer: ReturnType<typeof setTimeout> | undefined;
  #nodeTimerDue = Infinity;
  /** The turn that dispatches the rest of a batch a handler threw in (attached). */
  #resume: ReturnType<typeof setImmediate> | undefined;

  constructor(opts?: ReactorOptions) {
    const o = v.object<ReactorOptions>('opts', opts);
    const maxEvents = o.maxEvents === undefined ? 1024 : v.int('maxEvents', o.maxEvents, 1, 65536);
    this.poller = createPoller(o.backend ?? 'epoll');
    this.#fired = new Int32Array(2 * maxEvents);
  }

  /** The poller's name ('epoll', 'epoll-et', 'poll' or 'select'). */
  get backend(): PollerName {
    return this.poller.name;
  }

  /** Whether run() or attach() is active. */
  get running(): boolean {
    return this.#mode !== 'idle';
  }

  /** Watches `fd` for `mask` (EPOLLIN, EPOLLOUT …) and calls `handler(fd, revents)`. */
  watch(fd: number, mask: number, handler: Handler): void {
    v.fd(fd);
    v.func('handler', handler);
    this.poller.add(fd, mask);
    this.#handlers[fd] = handler;
    this.#masks[fd] = mask;
    this.#watchedIn[fd] = this.#turnNo;
    if (this.#mode !== 'attach' || this.poller.fd >= 0) return;
    try {
      this.#watchFd(fd, mask);
    } catch (e) {
      // Node's loop cannot poll it (a regular file: EPERM): the fd is not watched at all.
      this.unwatch(fd);
      throw e;
    }
  }

  /**
   * Changes the interest of a watched fd (no syscall when it is unchanged, except with
   * EPOLLONESHOT: the same mask again re-arms an fd its event disarmed).
   */
  rewatch(fd: number, mask: number): void {
    // ENOENT, named as the backend's own modify names it.
    if (this.#handlers[v.fd(fd)] === undefined) throw errnoError(-2, this.#ctlSyscall());
    if (this.#masks[fd] === mask && (mask & EPOLLONESHOT) === 0) return;
    this.poller.modify(fd, mask);
    this.#masks[fd] = mask;
    if (this.#mode === 'attach' && this.poller.fd < 0) this.#watchFd(fd, mask);
  }

  /** Stops watching `fd` (call it before closing the fd). Unknown fds are ignored. */
  unwatch(fd: number): void {
    if (this.#handlers[v.fd(fd)] === undefined) return;
    this.#handlers[fd] = undefined;
    this.#masks[fd] = 0;
    this.#fdWatches.get(fd)?.close();
    this.#fdWatches.delete(fd);
    try {
      this.poller.remove(fd);
    } catch (e) {
      // Already closed: epoll dropped it with the fd; poll and select just forget it.
      if ((e as { code?: string }).code !== 'EBADF') throw e;
    }
  }

  /** The mask `fd` is watched for, or undefined when it is not watched. */
  maskOf(fd: number): number | undefined {
    return this.#handlers[v.fd(fd)] === undefined ? undefined : this.#masks[fd];
  }

  /** Calls `fn` after `ms` (every `ms` with `{ repeat: true }`); returns the timer id. */
  setTimer(ms: number, fn: () => void, opts?: { repeat?: boolean }): number {
    v.int('ms', ms, 0, 0x7fffffff);
    v.func('fn', fn);
    const o = v.object<{ repeat?: boolean }>('opts', opts);
    const repeat = o.repeat === undefined ? false : v.bool('repeat', o.repeat);
    const id = this.#timers.add(performance.now(), ms, fn, repeat);
    if (this.#mode === 'attach') this.#armNodeTimer();
    return id;
  }

  /** Cancels a timer by the id `setTimer` returned; unknown or finished ids are ignored. */
  clearTimer(id: number): void {
    if (typeof id !== 'number') throw v.typeError('id', 'of type number', id);
    this.#timers.cancel(id);
  }

  /**
   * Runs the loop on this thread until `stop()`; resolves then. Rejects with the ErrnoError
   * of a failing wait, or with what a handler or timer threw (the loop stops first).
   */
  async run(): Promise<void> {
    this.#checkOpen();
    if (this.#mode !== 'idle') throw new Error(`reactor is already ${this.#mode === 'run' ? 'running' : 'attached'}`);
    this.#mode = 'run';
    this.#stopping = false;
    this.#watchNodeLoop();
    batchClock.enter();
    try {
      // Return to the caller first, and let what it queued run before the first blocking
      // wait (as if a batch had just been handled).
      await null;
      let worked = true;
      while (!this.#stopping) {
        if (this.#nodeIo) {
          // Node's loop has I/O for this thread (see #watchNodeLoop): one libuv turn.
          this.#nodeIo = false;
          await drainMicrotasks();
          continue;
        }
        let timeout = this.#timers.timeout(performance.now());
        if (worked && timeout !== 0) {
          // Could block after doing work: poll first, and when nothing is ready drain every
          // promise continuation (see the file comment) before blocking.
          worked = this.#turn(0) > 0;
          await null;
          if (worked || this.#stopping) continue;
          await drainMicrotasks();
          if (this.#stopping) break;
          timeout = this.#timers.timeout(performance.now());
        }
        worked = this.#turn(timeout) > 0;
        // Let the first continuations of this batch run before the next wait.
        await null;
      }
    } finally {
      batchClock.leave();
      this.#unwatchNodeLoop();
      this.#mode = 'idle';
      this.#stopping = false;
    }
  }

  /**
   * run() blocks the thread in the poller's wait, and Node's loop only turns when the
   * reactor lets it. So that Node's own I/O for this thread is not left waiting for the next
   * timer — a worker thread being stopped (worker.terminate(), process.exit()), a message
   * posted to it, a socket or stdout write of Node's — the wait also watches libuv's loop fd
   * (its epoll fd, readable while libuv has I/O to handle), and the loop then gives libuv
   * one turn. Node's timers make no fd readable: they still run only on those turns.
   */
  #watchNodeLoop(): void {
    const fd = native.loopFd();
    if (fd < 0 || this.#handlers[fd] !== undefined) return;
    try {
      this.poller.add(fd, EPOLLIN);
      this.#loopFd = fd;
    } catch {
      // A poller that cannot watch it (select past FD_SETSIZE): the loop turns as before.
    }
  }

  #unwatchNodeLoop(): void {
    const fd = this.#loopFd;
    this.#loopFd = -1;
    this.#nodeIo = false;
    if (fd < 0 || this.#closed) return;
    try {
      this.poller.remove(fd);
    } catch {
      // The poller was closed meanwhile: nothing is watched any more.
    }
  }

  /** Runs the loop inside Node's event loop until `stop()`. */
  attach(): void {
    this.#checkOpen();
    if (this.#mode !== 'idle') throw new Error(`reactor is already ${this.#mode === 'run' ? 'running' : 'attached'}`);
    this.#mode = 'attach';
    this.#stopping = false;
    if (this.poller.fd >= 0) {
      this.#loopWatch = openWatch(this.poller.fd, () => this.#attachedTurn());
      this.#loopWatch.start(UV_READABLE);
      if (!this.#refed) this.#loopWatch.unref();
    } else {
      try {
        for (const [fd, mask] of this.#masks.entries()) if (this.#handlers[fd] !== undefined) this.#watchFd(fd, mask);
      } catch (e) {
        // Node's loop cannot poll one of them (a regular file: EPERM): not attached at all.
        this.#detach();
        throw e;
      }
    }
    this.#armNodeTimer();
    this.#resumeBatch();
  }

  /**
   * Lets the process exit while this reactor is attached and nothing else keeps Node's loop
   * alive, as `unref()` on a Node handle does (the watched fds and timers stop counting).
   * Returns the reactor. No effect on `run()`, which owns its thread.
   */
  unref(): this {
    this.#refed = false;
    this.#applyRef();
    return this;
  }
  /** Undoes `unref()`: an attached reactor keeps the process alive again (the default). */
  ref(): this {
    this.#refed = true;
    this.#applyRef();
    return this;
  }
  /** Whether the reactor keeps the process alive while attached (`ref()`, the default). */
  hasRef(): boolean {
    return this.#refed;
  }
  #applyRef(): void {
    const set = (h: { ref(): void; unref(): void } | undefined) => (this.#refed ? h?.ref() : h?.unref());
    set(this.#loopWatch);
    for (const w of this.#fdWatches.values()) set(w);
    set(this.#nodeTimer);
    set(this.#resume);
  }

  /** Whether stop() came during this pass: run() is stopping, or attach() has detached. */
  readonly #stopped = (): boolean => this.#stopping || this.#mode === 'idle';

  /**
   * Ends run() (after the current batch) or detaches from Node's loop. From a handler, the
   * rest of its I/O batch is still dispatched (under EPOLLET it would not be reported again)
   * but no timer runs; from a timer, no further timer of that pass runs. Timers left due
   * stay set, and fire once the reactor runs or is attached again.
   */
  stop(): void {
    this.#stopping = true;
    if (this.#mode === 'attach') this.#detach();
  }

  /**
   * Stops the loop and closes the poller. Watched fds stay open: they are the caller's.
   * Called from a handler or a timer, nothing more is dispatched: the rest of the batch and
   * the timers due with it are dropped (their handlers would find the poller closed).
   */
  close(): void {
    this.stop();
    this.#closed = true;
    this.#firedN = this.#firedAt = 0;
    this.#timers.clear();
    this.poller.close();
  }

  /** A closed reactor cannot be run or attached again: its timers would wait on a closed poller. */
  #checkOpen(): void {
    if (!this.#closed) return;
    const e = new Error('reactor is closed') as Error & { code: string };
    e.code = 'ERR_RAWIO_CLOSED';
    throw e;
  }

  /** `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  /** One wait + dispatch + due timers; returns the number of events and timers handled. */
  #turn(timeoutMs: number): number {
    let n: number;
    if (this.#firedAt < this.#firedN) {
      // A handler threw in the middle of the last batch: the rest of it comes first, with no
      // wait (under EPOLLET the kernel would not report those events again).
      n = this.#firedN - this.#firedAt;
    } else {
      this.#turnNo++;
      n = this.poller.wait(this.#fired, timeoutMs);
      batchClock.tick();
      if (n < 0) throw errnoError(n, this.poller.name.startsWith('epoll') ? 'epoll_wait' : this.poller.name);
      this.#firedN = n;
      this.#firedAt = 0;
    }
    const fired = this.#fired;
    // The whole batch is dispatched even after stop(), and what a handler throws leaves the
    // rest for the next turn: under EPOLLET an event dropped here would not be reported again.
    while (this.#firedAt < this.#firedN) {
      const i = this.#firedAt++;
      const fd = fired[2 * i]!;
      const events = fired[2 * i + 1]!;
      if (fd === this.#loopFd) {
        this.#nodeIo = true;
        continue;
      }
      // A handler earlier in the batch may have unwatched this fd (skip it), or closed it and
      // watched a new fd that got its number: the event is the old file's (skip it too; the
      // new fd's own readiness comes with the next wait, under EPOLLET as well, since an add
      // reports an fd that is ready already).
      const handler = this.#handlers[fd];
      if (handler === undefined || this.#watchedIn[fd] === this.#turnNo) continue;
      // Closed behind the reactor's back: unwatched before the handler hears of it, so the
      // loop goes on and a handler that ignores the news cannot make it spin.
      if (events & POLLNVAL) this.unwatch(fd);
      handler(fd, events);
    }
    if (this.#stopping || this.#mode === 'idle' || this.#timers.size === 0) return n;
    // stop() from a timer ends the pass as from a handler: the timers still due stay set,
    // for when the reactor runs again (close() has cleared them).
    return n + this.#timers.runDue(performance.now(), this.#stopped);
  }

  /** The syscall the backend's registration errors name: epoll_ctl, poll or select. */
  #ctlSyscall(): string {
    return this.poller.name.startsWith('epoll') ? 'epoll_ctl' : this.poller.name;
  }

  #attachedTurn(): void {
    if (this.#mode !== 'attach') return;
    try {
      this.#turn(0);
    } finally {
      if (this.#mode === 'attach') {
        this.#armNodeTimer();
        this.#resumeBatch();
      }
    }
  }

  /** Attached, a handler threw mid-batch: the rest is dispatched on a turn of its own. */
  #resumeBatch(): void {
    if (this.#firedAt >= this.#firedN || this.#resume !== undefined) return;
    this.#resume = setImmediate(() => {
      this.#resume = undefined;
      this.#attachedTurn();
    });
    if (!this.#refed) this.#resume.unref();
  }

  #watchFd(fd: number, mask: number): void {
    let w = this.#fdWatches.get(fd);
    if (w === undefined) {
      w = openWatch(fd, () => this.#attachedTurn());
      if (!this.#refed) w.unref();
      this.#fdWatches.set(fd, w);
    }
    const ev =
      (mask & (EPOLLIN | EPOLLPRI) ? UV_READABLE : 0) |
      (mask & EPOLLOUT ? UV_WRITABLE : 0) |
      (mask & EPOLLRDHUP ? UV_DISCONNECT : 0);
    if (ev === 0) w.stop();
    else w.start(ev);
  }

  /** Keeps one Node timer set for the earliest reactor timer. */
  #armNodeTimer(): void {
    const due = this.#timers.nextDue() ?? Infinity;
    if (due === this.#nodeTimerDue) return;
    if (this.#nodeTimer !== undefined) clearTimeout(this.#nodeTimer);
    this.#nodeTimer = undefined;
    this.#nodeTimerDue = due;
    if (due === Infinity) return;
    this.#nodeTimer = setTimeout(
      () => {
        this.#nodeTimer = undefined;
        this.#nodeTimerDue = Infinity;
        this.#attachedTurn();
      },
      Math.max(0, Math.ceil(due - performance.now())),
    );
    if (!this.#refed) this.#nodeTimer.unref();
  }

  #detach(): void {
    this.#loopWatch?.close();
    this.#loopWatch = undefined;
    for (const w of this.#fdWatches.values()) w.close();
    this.#fdWatches.clear();
    if (this.#nodeTimer !== undefined) clearTimeout(this.#nodeTimer);
    this.#nodeTimer = undefined;
    this.#nodeTimerDue = Infinity;
    if (this.#resume !== undefined) clearImmediate(this.#resume);
    this.#resume = undefined;
    this.#mode = 'idle';
    this.#stopping = false;
  }
}
