/**
 * The machinery under `Ring` (io_uring(7)): one raw ring from native/uring.cc, a table of the
 * promise operations in flight keyed by user data, a queue for operations that found the
 * submission queue (or the completion budget) full, the buffers each operation must keep
 * alive until its completion, and the two ways completions reach JavaScript — an eventfd
 * registered with the ring and watched inside Node's loop (`attach`), or `drain()` / `wait()`
 * called by a loop that owns its thread.
 *
 * User data: the kernel's u64 is used as a 32-bit int. Promise operations take negative values
 * (-2 and below), -1 marks rawio's own cancel requests, and the batch API (`prepRead` …) takes
 * the non-negative ones, 0 … 2^31 - 1, which it returns through `reap` / `onCompletion`.
 */
import { EBADF, ECANCELED, EINTR, EINVAL, EPERM, ETIME } from './errno.js';
import { ErrnoError, errnoError } from './errors.js';
import { abortSignal, int, typeError } from './validate.js';
import { native, type NativeRing, type NativeWatch } from './native.js';
import { openWatch } from './watch.js';
import { credentialGeneration, credentials, installCredentialGuard } from './credential-guard.js';
import * as u from './uring.js';
import { prepCancel, SUBMIT_NOW } from './uring-prep.js';
import { EVENTFD_ONE } from './eventfd-one.js';
import { BusyRings } from './ring-exit.js';
import { pin } from './pin.js';

/** User data of rawio's internal requests (cancels): their completions are dropped. */
export const INTERNAL = -1;
/** The largest user data the batch API takes. */
export const MAX_USER_DATA = 0x7fffffff;

/**
 * Receives one completion of the batch API: the user data its `prep*` call was given, the
 * result (`>= 0`, or `-errno`, as the kernel posted it) and the CQE flags
 * (IORING_CQE_F_MORE while a multishot request stays armed).
 */
export type CompletionHandler = (userData: number, res: number, flags: number) => void;

/** Options of `new Ring()`. */
export interface RingOptions {
  /** Submission queue entries (rounded up to a power of two by the kernel); default 256. */
  entries?: number;
  /** Completion queue entries; default twice `entries`, the kernel's own default. */
  cqEntries?: number;
  /** IORING_SETUP_SQPOLL: a kernel thread polls the submission queue. */
  sqpoll?: boolean;
  /** Reap completions inside Node's loop through a watched eventfd; default true. */
  attach?: boolean;
  /**
   * IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN (6.1): completions are processed
   * only when this thread enters the kernel (submit / reap / wait), never by interrupting it —
   * fio's setup. Needs `attach: false`: the eventfd then fires only from those calls.
   */
  deferTaskrun?: boolean;
  /**
   * IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG (5.19): completions are posted
   * when this thread next enters the kernel anyway, instead of interrupting it (no IPI).
   * Implied by `deferTaskrun`; unlike it, works attached.
   */
  coopTaskrun?: boolean;
  /** Receives the batch API's completions when they are reaped by `drain()` or the attached watch. */
  onCompletion?: CompletionHandler;
  /**
   * IORING_SETUP_SUBMIT_ALL (5.18): an SQE that fails at submission fails alone rather than
   * ending the batch there. Default true where the kernel has it; false to leave it off.
   */
  submitAll?: boolean;
  /**
   * Register the ring's fd with the kernel (IORING_REGISTER_RING_FDS, 5.18) and enter by that
   * index (IORING_ENTER_REGISTERED_RING): no fdget/fdput per io_uring_enter(2). The
   * registration belongs to the thread that creates the ring, which must then be the only one
   * to submit and reap. Default false; throws the kernel's errno where it is missing.
   */
  registerRingFd?: boolean;
  /**
   * Every batch `prep*` call also submits its entry (one io_uring_enter(2) per entry, made in
   * the same call into the addon for reads and writes), as fio's `iodepth_batch_submit=1`
   * does: each entry is in flight as soon as it is prepared, and a loop never calls
   * `submit()` between preps. Default false: entries wait for `submit()` and go in one
   * enter. An enter that fails leaves its entry prepared; the next `submit()` (or
   * `submitAndReap`) takes it and returns the error if it persists. Promise operations are
   * submitted as always, at the end of the synchronous stretch.
   */
  submitEach?: boolean;
}

/** Options every promise operation of a `Ring` takes. */
export interface OpOptions {
  /**
   * Cancels the operation in the kernel (IORING_OP_ASYNC_CANCEL); the promise rejects with an
   * AbortError, unless the kernel completed the operation before the cancel reached it: then
   * it settles with that result (the bytes received, the fd accepted are the caller's). An
   * abort before the submit (in the same synchronous stretch) keeps the operation from running.
   */
  signal?: AbortSignal;
}

type Prep = (userData: number) => boolean;

interface Pending {
  resolve(res: number): void;
  reject(e: Error): void;
  syscall: string;
  refs: unknown;
  okErrno: number;
  queued: boolean;
  aborted: boolean;
  /** Aborted while its entry waited in the SQ: the entry became a NOP, and the operation never ran. */
  dropped?: boolean;
  signal?: AbortSignal;
  onAbort?: () => void;
  /** Two-completion ops (SEND_ZC): receives the first (IORING_CQE_F_MORE) result. */
  more?: (res: number) => void;
}

/**
 * The references of several batch operations in flight under one user data, and how many
 * of their completions are still to come. One operation's reference is held as it is,
 * without a record: the batch API's hot path allocates nothing per operation.
 */
class SharedRefs {
  constructor(
    public count: number,
    readonly refs: unknown[],
  ) {}
}
/** What `batchRefs` holds for an operation that keeps nothing alive. */
const NO_REFS = {};

/** Rings with operations in flight, closed at 'exit' before Node frees their buffers. */
const busy = new BusyRings<RingCore>((r) => (r as unknown as { closeRing(): void }).closeRing());

export function abortError(signal?: AbortSignal): Error {
  const e = new Error('The operation was aborted', { cause: signal?.reason });
  e.name = 'AbortError';
  (e as Error & { code: string }).code = 'ABORT_ERR';
  return e;
}

/** A struct __kernel_timespec of `ms` milliseconds, for IORING_OP_TIMEOUT. */
export function timespec(ms: number): Uint8Array {
  const ts = new Uint8Array(16);
  const dv = new DataView(ts.buffer);
  dv.setBigInt64(0, BigInt(Math.floor(ms / 1000)), true);
  dv.setBigInt64(8, BigInt((ms % 1000) * 1e6), true);
  return ts;
}

export class RingCore {
  /** The ring's own fd. */
  readonly fd: number;
  /** Submission queue entries, as the kernel set them up (`entries` rounded up to a power of two). */
  readonly sqEntries: number;
  /** Completion queue entries, as the kernel set them up. */
  readonly cqEntries: number;
  /** The IORING_FEAT_* bits the kernel returned. */
  readonly featureBits: number;
  /** The IORING_SETUP_* bits the ring was set up with. */
  readonly setupFlags: number;
  /**
   * Receives the batch API's completions reaped by `drain()`, `wait()` or the attached
   * watch (those reaped by `reap()` are returned in its array instead). Settable at any time.
   */
  onCompletion?: CompletionHandler;
  /** The native ring (native/uring.cc). @internal */
  protected readonly raw: NativeRing;
  /** The native ring's slot among its thread's rings, for the calls that skip an unwrap. @internal */
  protected readonly slot: number;
  /** `slot` as the batch read/write prep passes it: with SUBMIT_NOW on a `submitEach` ring. @internal */
  protected readonly rwSlot: number;
  /** The option `submitEach`. @internal */
  protected readonly submitEach: boolean;
  /** [0]: operations in flight, kept by the native ring (`raw.inflight()` without a call). */
  private readonly state: Float64Array;
  /** Set once the ring is closed. @internal */
  protected closed = false;
  private readonly pending = new Map<number, Pending>();
  private queue: { ud: number; prep: Prep }[] = [];
  /**
   * The references of batch operations in flight by user data. A user data whose operations
   * all completed keeps its entry, as undefined, until there are many such (`releaseRefs`): a
   * loop that reuses its user data then never deletes from the map nor makes it rehash.
   */
  private readonly batchRefs = new Map<number, unknown>();
  /** The user data in `batchRefs` with references held. */
  private held = 0;
  /** Whether this ring is in `busy`, and whether a check that drops it once idle is queued. */
  private inBusy = false;
  private idleCheck = false;
  private readonly scratch = new Int32Array(3 * 256);
  /** The next completion of `scratch` to hand out, and how many it holds: below after a callback threw. */
  private scratchAt = 0;
  private scratchN = 0;
  /** Completions drain() has handed out, ever: close() retries a drain only while it moves on. */
  private handedOut = 0;
  /** The attached drain that finishes a batch a callback threw in. */
  private resume: ReturnType<typeof setImmediate> | undefined;
  private readonly efdBuf = new Uint8Array(8);
  private efd = -1; // registered on first use: the kernel signals it on every completion
  private nextUd = 0;
  /** The most promise operations in flight at once; 0: no limit (see tryPrep). */
  private readonly budget: number;
  private submitScheduled = false;
  private watch?: NativeWatch;
  private refed = true;
  private readonly creds: string;
  private credGen: number;

  constructor(opts: RingOptions, entries: number, cqEntries: number) {
    installCredentialGuard();
    this.credGen = credentialGeneration();
    this.creds = credentials();
    const probe = u.ringProbe();
    if (!probe.supported)
      throw new ErrnoError(probe.errno ?? -EINVAL, 'io_uring_setup', undefined, u.refusalReason(probe));
    if (opts.deferTaskrun === true && opts.attach !== false)
      throw Object.assign(new TypeError('The option deferTaskrun needs attach: false'), {
        code: 'ERR_INVALID_ARG_VALUE',
      });
    this.raw = new native.Ring();
    // TASKRUN_FLAG: the kernel says (IORING_SQ_TASKRUN) when completions wait for an enter to
    // run them, and the native reap then enters once more instead of leaving them behind.
    const taskrun =
      opts.deferTaskrun === true
        ? u.IORING_SETUP_SINGLE_ISSUER | u.IORING_SETUP_DEFER_TASKRUN | u.IORING_SETUP_TASKRUN_FLAG
        : opts.coopTaskrun === true
          ? u.IORING_SETUP_COOP_TASKRUN | u.IORING_SETUP_TASKRUN_FLAG
          : 0;
    const base = (opts.sqpoll === true ? u.IORING_SETUP_SQPOLL : 0) | taskrun;
    // IORING_SETUP_SUBMIT_ALL (5.18): a bad SQE fails alone instead of stopping the batch.
    let flags = base | (opts.submitAll === false ? 0 : u.IORING_SETUP_SUBMIT_ALL);
    let r = this.raw.setup(entries, flags, cqEntries);
    if (r === -EINVAL && flags !== base) r = this.raw.setup(entries, (flags = base), cqEntries);
    if (r < 0) throw new ErrnoError(r, 'io_uring_setup', undefined, u.refusalReason({ ...probe, code: undefined }));
    if (opts.registerRingFd === true) {
      const idx = this.raw.registerRingFd();
      if (idx < 0) {
        this.raw.close();
        throw new ErrnoError(idx, 'io_uring_register', undefined, 'IORING_REGISTER_RING_FDS');
      }
    }
    let slot: number;
    [this.fd, this.sqEntries, this.cqEntries, this.featureBits, slot] = this.raw.info();
    this.slot = slot;
    this.submitEach = opts.submitEach === true;
    this.rwSlot = this.submitEach ? slot + SUBMIT_NOW : slot;
    this.state = this.raw.state();
    pin(new Uint8Array(this.state.buffer)); // the native ring writes into it: its memory must stay where it is
    this.budget = (this.featureBits & u.IORING_FEAT_NODROP) !== 0 ? 0 : this.cqEntries;
    this.setupFlags = flags;
    this.onCompletion = opts.onCompletion;
    if (opts.attach !== false) {
      try {
        this.registerEventFd();
      } catch (e) {
        this.raw.close();
        throw e;
      }
      this.watch = openWatch(this.efd, () => this.drainAttached());
      this.watch.start(1);
      this.watch.unref();
    }
  }

  /**
   * The eventfd registered with the ring (IORING_REGISTER_EVENTFD): readable when completions
   * arrive. A ring made with `attach: false` registers it on the first read of this property
   * (so that a loop that reaps with `wait()` does not pay for a signal per completion), and
   * then makes it readable once, for completions that arrived before it was registered.
   * -1 once the ring is closed.
   */
  get eventFd(): number {
    if (this.efd < 0 && !this.closed) {
      this.registerEventFd();
      native.write(this.efd, EVENTFD_ONE, 0, 8);
    }
    return this.efd;
  }

  private registerEventFd(): void {
    const efd = native.eventfd(0, false);
    const r = efd < 0 ? efd : this.raw.register(u.IORING_REGISTER_EVENTFD, efd);
    if (r < 0) {
      if (efd >= 0) native.close(efd);
      throw new ErrnoError(r, efd < 0 ? 'eventfd' : 'io_uring_register');
    }
    this.efd = efd;
  }

  /** Operations submitted (or prepared) whose final completion has not been reaped. */
  get inflight(): number {
    return this.closed ? 0 : this.state[0]!;
  }

  // ---- submission

  /** Queues a promise operation: prepared now when there is room, else when room frees. @internal */
  protected op(
    syscall: string,
    prep: Prep,
    refs: unknown,
    opts?: OpOptions,
    okErrno = 0,
    more?: (res: number) => void,
  ): Promise<number> {
    // A number here is a misplaced argument (a position where the options go): refuse it.
    if (opts !== undefined && (opts === null || typeof opts !== 'object')) {
      throw typeError('opts', 'of type object (the options come after every positional argument)', opts);
    }
    const signal = opts?.signal;
    abortSignal('opts.signal', signal);
    if (this.closed) return Promise.reject(errnoError(-EBADF, syscall));
    if (signal?.aborted) return Promise.reject(abortError(signal));
    if (this.credGen !== credentialGeneration() && !this.sameCredentials())
      return Promise.reject(this.credentialError(syscall));
    const ud = this.allocUserData();
    return new Promise<number>((resolve, reject) => {
      const p: Pending = { resolve, reject, syscall, refs, okErrno, queued: false, aborted: false, signal, more };
      this.pending.set(ud, p);
      if (signal !== undefined) {
        p.onAbort = () => this.abort(ud);
        signal.addEventListener('abort', p.onAbort, { once: true });
      }
      if (this.queue.length > 0 || !this.tryPrep(ud, prep)) {
        p.queued = true;
        this.queue.push({ ud, prep });
      }
      this.scheduleSubmit();
    });
  }

  private allocUserData(): number {
    for (;;) {
      this.nextUd = (this.nextUd + 1) % 0x7ffffffe;
      const ud = -2 - this.nextUd;
      if (!this.pending.has(ud)) return ud;
    }
  }

  // Without IORING_FEAT_NODROP (before 5.5) a completion that finds the CQ full is lost, so
  // the promise operations in flight are kept within the CQ's size there. With it the kernel
  // keeps such completions on its overflow list, which the native reap flushes, and no budget
  // applies: one would hold back operations that those in flight wait for (a send to the peer
  // of a recv that fills the budget), and the program would deadlock. rawio's own cancels are
  // exempt either way: they are how a budget held by operations that wait ever drains.
  private tryPrep(ud: number, prep: Prep): boolean {
    if (this.budget !== 0 && ud !== INTERNAL && this.state[0]! >= this.budget) return false;
    if (prep(ud)) return true;
    this.raw.submit(0); // the SQ is full of prepared entries: hand them to the kernel, retry
    return prep(ud);
  }

  private scheduleSubmit(): void {
    if (this.submitScheduled) return;
    this.submitScheduled = true;
    queueMicrotask(() => {
      this.submitScheduled = false;
      if (this.closed) return;
      try {
        this.flush();
      } catch (e) {
        this.failPending(e as Error); // the credentials changed after these were queued
      }
    });
  }

  /**
   * Moves queued operations into the SQ while there is room, then submits; with `waitNr`,
   * the same io_uring_enter also waits for that many completions (io_uring_submit_and_wait).
   * @internal
   */
  protected flush(waitNr = 0): number {
    this.checkCredentials('io_uring_enter');
    if (this.queue.length > 0) this.prepQueued();
    // Never wait for more completions than there are operations to post them. One call into
    // the addon: by slot (no unwrap), and the count in flight read from `state`.
    const r = native.Ring.submitIn(this.slot, waitNr === 0 ? 0 : Math.min(waitNr, this.state[0]!));
    this.updateRef();
    return r;
  }

  /**
   * A batch prep's end on a `submitEach` ring: `ok` (its entry was prepared) submits it, unless
   * the addon already did (`entered`, the read/write path), when only what a submit does here
   * besides the enter is left: the queued promise operations and the ring's reference.
   * The enter's result is the next `submit()`'s to report (see RingOptions.submitEach).
   * @internal
   */
  protected submitPrepared(ok: boolean, entered = false): boolean {
    if (!ok || !this.submitEach) return ok;
    if (!entered || this.queue.length > 0) this.flush();
    else this.updateRef();
    return ok;
  }

  /** Moves queued operations into the SQ while there is room. */
  private prepQueued(): void {
    while (this.queue.length > 0) {
      const q = this.queue[0]!;
      if (!this.tryPrep(q.ud, q.prep)) break;
      this.queue.shift();
      const p = this.pending.get(q.ud);
      if (p !== undefined) p.queued = false;
    }
  }

  /** Throws EPERM when the process's credentials changed since this ring was set up. */
  protected checkCredentials(syscall: string): void {
    if (this.credGen !== credentialGeneration() && !this.sameCredentials()) throw this.credentialError(syscall);
  }
  /** The batch API's guard: EBADF once the ring is closed (as its promises reject), then {@link checkCredentials}. */
  protected checkUsable(syscall: string): void {
    if (this.closed) throw errnoError(-EBADF, syscall);
    this.checkCredentials(syscall);
  }
  private sameCredentials(): boolean {
    if (credentials() !== this.creds) return false;
    this.credGen = credentialGeneration(); // same ids again (e.g. seteuid back): no need to re-read until the next change
    return true;
  }
  private credentialError(syscall: string): ErrnoError {
    return new ErrnoError(
      -EPERM,
      syscall,
      undefined,
      `the process changed its credentials (uid:euid:gid:egid:groups ${this.creds} -> ${credentials()}) ` +
        'after this io_uring was set up; its requests would still run with the old ones ' +
        '(the pitfall behind CVE-2024-22017), so rawio refuses to submit: create a new Ring after setuid/setgid',
    );
  }

  // Rejects every promise operation when nothing can be submitted any more. The entries stay
  // in the table, holding their buffers, until close() has cancelled their prepared SQEs (a
  // second settle of a promise is a no-op).
  private failPending(e: Error): void {
    this.queue = [];
    for (const p of this.pending.values()) p.reject(e);
  }

  private abort(ud: number): void {
    const p = this.pending.get(ud);
    if (p === undefined || p.aborted) return;
    p.aborted = true;
    if (p.queued) {
      this.queue = this.queue.filter((q) => q.ud !== ud);
      this.settle(ud, -ECANCELED, 0);
      return;
    }
    // Prepared but not submitted yet (aborted in the same synchronous stretch): it never runs.
    if (this.raw.unprep(ud)) {
      p.dropped = true;
      this.scheduleSubmit(); // the NOP posts the completion that settles it
      return;
    }
    const cancel: Prep = () => prepCancel(this.raw, { target: ud, userData: INTERNAL });
    // A cancel that finds even the SQ full goes first in the queue, never behind operations
    // that wait for the CQ budget its target holds.
    if (!this.tryPrep(INTERNAL, cancel)) this.queue.unshift({ ud: INTERNAL, prep: cancel });
    this.scheduleSubmit();
  }

  // ---- batch API support

  /** Keeps `refs` alive until the batch operation with this user data completes. @internal */
  protected holdBatch(ud: number, refs: unknown): void {
    const e = this.batchRefs.get(ud);
    if (e === undefined) {
      this.batchRefs.set(ud, refs ?? NO_REFS);
      this.held++;
    } else if (e instanceof SharedRefs) {
      e.count++;
      e.refs.push(refs);
    } else this.batchRefs.set(ud, new SharedRefs(2, [e, refs]));
    if (!this.inBusy) this.markBusy();
  }

  /** The last reference of user data `ud` is released. */
  private releaseRefs(ud: number): void {
    this.batchRefs.set(ud, undefined);
    this.held--;
    // Entries kept for reuse stay a bounded share of the map: a loop that spends its user data
    // once each (a counter) drops them in bulk, every so many completions.
    if (this.batchRefs.size > 256 && this.batchRefs.size > 4 * this.held) {
      for (const [k, v] of this.batchRefs) if (v === undefined) this.batchRefs.delete(k);
    }
  }

  // ---- completion

  private settle(ud: number, res: number, flags: number): boolean {
    if (ud === INTERNAL) return false;
    if (ud >= 0) {
      if (this.held !== 0 && (flags & u.IORING_CQE_F_MORE) === 0) {
        // One completion frees one reference; with a user data reused by several operations
        // in flight, all of their buffers stay held until the last completes.
        const e = this.batchRefs.get(ud);
        if (e !== undefined && (!(e instanceof SharedRefs) || --e.count === 0)) this.releaseRefs(ud);
      }
      return true;
    }
    const p = this.pending.get(ud);
    if (p === undefined) return false;
    if ((flags & u.IORING_CQE_F_MORE) !== 0) {
      // SEND_ZC's result: the operation (and its buffer) lives on until the notification
      p.more?.(res);
      return false;
    }
    this.pending.delete(ud);
    if (p.onAbort !== undefined) p.signal?.removeEventListener('abort', p.onAbort);
    // An operation the kernel completed before the cancel reached it settles with its result,
    // aborted or not: the bytes it received, the fd it accepted or opened, exist, and an
    // AbortError would lose them (or leak the fd). Only a failure (-ECANCELED …) is the abort's.
    if (p.dropped === true) p.reject(abortError(p.signal));
    else if ((flags & u.IORING_CQE_F_NOTIF) !== 0)
      p.resolve(res >>> 0); // usage bits, not an errno
    else if (res >= 0 || (p.okErrno !== 0 && res === -p.okErrno)) p.resolve(res < 0 ? 0 : res);
    else if (p.aborted) p.reject(abortError(p.signal));
    else p.reject(errnoError(res, p.syscall));
    return false;
  }

  /**
   * Reaps what the CQ holds now: settles promise operations and hands batch completions to
   * `onCompletion`. Returns how many completions were reaped. For loops that watch
   * `eventFd` in their own poller. What `onCompletion` throws goes to the caller; the rest
   * of the completions reaped with the one that threw come first on the next drain.
   */
  drain(): number {
    if (this.closed) return 0;
    if (this.efd >= 0) native.read(this.efd, this.efdBuf, 0, 8); // reset the eventfd; EAGAIN is fine
    const out = this.scratch;
    const cap = out.length / 3;
    let total = 0;
    for (;;) {
      // What onCompletion throws leaves the rest of its batch here, reaped from the CQ
      // already: handed out first, before the CQ is read again (into the same array).
      const resumed = this.scratchAt < this.scratchN;
      if (resumed) {
        total += this.scratchN - this.scratchAt;
      } else {
        const n = native.Ring.reapIn(this.slot, out, 0, false);
        if (n <= 0) break;
        total += n;
        this.scratchN = n;
        this.scratchAt = 0;
      }
      const n = this.scratchN;
      while (this.scratchAt < n) {
        const i = this.scratchAt++;
        const ud = out[3 * i]!;
        const res = out[3 * i + 1]!;
        const flags = out[3 * i + 2]!;
        this.handedOut++;
        if (this.settle(ud, res, flags)) this.onCompletion?.(ud, res, flags);
        if (this.closed) return total;
      }
      if (!resumed && n < cap) break;
    }
    if (this.queue.length > 0) this.flush();
    else this.updateRef();
    return total;
  }

  /**
   * Batch reaping: fills `out` with (userData, res, flags) triples of batch operations,
   * waiting for at least `minComplete` completions (at most what the kernel has in flight:
   * reap does not submit, and entries still in the SQ post nothing); returns the count or -errno. Promise
   * operations reaped on the way are settled, not returned. (An attached ring also reaps from
   * Node's loop and hands batch completions to `onCompletion`: use one or the other.)
   */
  reap(out: Int32Array, minComplete = 0): number {
    if (!(out instanceof Int32Array)) throw typeError('out', 'an instance of Int32Array', out);
    int('minComplete', minComplete, 0, 0x7fffffff);
    if (this.closed) return -EBADF;
    // Never block for more completions than there are operations to post them.
    return this.reapInto(out, Math.min(minComplete, this.state[0]!), false);
  }

  /**
   * `submit()` and `reap(out, minComplete)` in one call into the addon: what is prepared (and
   * queued promise operations) is submitted, the same io_uring_enter waits for
   * `minComplete` completions (at most what is in flight then), and they are copied out.
   * @internal
   */
  protected submitReap(out: Int32Array, minComplete: number): number {
    if (this.closed) return -EBADF;
    this.checkCredentials('io_uring_enter');
    if (this.queue.length > 0) this.prepQueued();
    return this.reapInto(out, minComplete, true);
  }

  /** The native reap (after a submit with `submit`), with promise completions settled and left out. */
  private reapInto(out: Int32Array, minComplete: number, submit: boolean): number {
    let n = native.Ring.reapIn(this.slot, out, minComplete, submit);
    if (n <= 0) {
      if (submit) this.updateRef();
      return n;
    }
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const ud = out[3 * i]!;
      const res = out[3 * i + 1]!;
      const flags = out[3 * i + 2]!;
      if (!this.settle(ud, res, flags)) continue;
      out[3 * kept] = ud;
      out[3 * kept + 1] = res;
      out[3 * kept + 2] = flags;
      kept++;
    }
    n = kept;
    if (this.queue.length > 0) this.flush();
    else this.updateRef();
    return n;
  }

  /**
   * Submits what is prepared and blocks in io_uring_enter(GETEVENTS) until `minComplete`
   * completions have arrived (at most what is in flight), then drains. For `run()` loops.
   */
  wait(minComplete = 1): number {
    int('minComplete', minComplete, 0, 0x7fffffff);
    if (this.closed) return -EBADF;
    let total = 0;
    for (;;) {
      const r = this.flush(minComplete - total); // one io_uring_enter: submit and wait
      if (r < 0 && r !== -ETIME && r !== -EINTR) return total > 0 ? total : r;
      total += this.drain();
      // A timeout's completion ends the kernel's wait early (it wakes every waiter): wait on
      // for the rest, while anything is in flight to post it.
      if (total >= minComplete || this.closed || this.state[0] === 0 || this.undrained) return total;
    }
  }

  /**
   * Completions reaped from the CQ that a callback's throw kept from being handed out; the
   * next `drain()` hands them out first. @internal
   */
  get undrained(): boolean {
    return this.scratchAt < this.scratchN;
  }

  /**
   * drain() for a watch in Node's loop: when a callback threw (Node reports it as an uncaught
   * exception), the rest of its batch is handed out on a turn of its own, since the eventfd
   * that woke this one has been read. `before` and `after` run around each drain (the
   * Proactor holds its submits for the batch's end). @internal
   */
  drainAttached(before?: () => void, after?: () => void): void {
    this.resume = undefined;
    before?.();
    try {
      this.drain();
    } finally {
      after?.();
      if (!this.closed && this.undrained && this.resume === undefined) {
        this.resume = setImmediate(() => this.drainAttached(before, after));
      }
    }
  }

  /** Drops the pending turn of drainAttached (a loop that stops reaping from Node's). @internal */
  stopResume(): void {
    if (this.resume !== undefined) clearImmediate(this.resume);
    this.resume = undefined;
  }

  private markBusy(): void {
    busy.add(this);
    this.inBusy = true;
  }
  private dropIfIdle(): void {
    this.idleCheck = false;
    if (this.inBusy && this.held === 0 && (this.closed || (this.state[0] === 0 && this.queue.length === 0))) {
      busy.delete(this);
      this.inBusy = false;
    }
  }

  private updateRef(): void {
    const active = this.state[0]! > 0 || this.queue.length > 0;
    if (active) {
      if (!this.inBusy) this.markBusy();
    } else if (this.held === 0 && this.inBusy && !this.idleCheck) {
      // Dropped from `busy` once idle at the end of this synchronous stretch, not at once: a
      // batch loop at queue depth 1 goes idle and busy again on every read, and would
      // otherwise delete from and add to the set (and make it shrink and grow) each time.
      this.idleCheck = true;
      queueMicrotask(() => this.dropIfIdle());
    }
    if (this.watch === undefined) return;
    if (active && this.refed) this.watch.ref();
    else this.watch.unref();
  }

  /**
   * Lets the process exit while operations are in flight on this attached ring, as
   * `unref()` on a Node handle does (their promises then may never settle). Returns the ring.
   */
  unref(): this {
    this.refed = false;
    if (!this.closed) this.updateRef();
    return this;
  }
  /** Undoes `unref()`: operations in flight keep the process alive again (the default). */
  ref(): this {
    this.refed = true;
    if (!this.closed) this.updateRef();
    return this;
  }
  /** Whether operations in flight keep the process alive. */
  hasRef(): boolean {
    return this.refed;
  }

  // ---- teardown

  // Before 5.19 (IORING_OP_SOCKET's kernel) there is no IORING_ASYNC_CANCEL_ANY: cancel each
  // operation by its user data, so that the wait in cancelAndWait() ends.
  private cancelEach(): void {
    const batch = [...this.batchRefs].filter(([, refs]) => refs !== undefined).map(([ud]) => ud);
    for (const ud of [...this.pending.keys(), ...batch]) {
      while (!prepCancel(this.raw, { target: ud, userData: INTERNAL })) this.raw.submit(0);
    }
    this.raw.submit(0);
  }

  /**
   * Cancels everything in flight, waits for the kernel to post every completion (it may
   * still be writing into those buffers), and only then releases the buffers, unmaps the
   * ring and rejects the operations still pending with ECANCELED. The completions already
   * posted go to `onCompletion` first, each once: one that throws does not stop the others
   * or the close, and the first error is thrown once the ring is closed.
   * @internal
   */
  protected closeRing(): void {
    if (this.closed) return;
    let thrown: { error: unknown } | undefined;
    for (;;) {
      // A callback's throw leaves the rest of its batch for the next drain, which hands it
      // out first. A throw that handed nothing out (the submit drain() ends with refused)
      // would only repeat: the ring closes without it.
      const handed = this.handedOut;
      try {
        this.drain();
        break;
      } catch (error) {
        thrown ??= { error };
      }
      if (this.closed || this.handedOut === handed) break; // closed by a callback, or no progress
    }
    if (!this.closed) this.finishClose();
    if (thrown !== undefined) throw thrown.error;
  }

  private finishClose(): void {
    this.closed = true;
    this.queue = [];
    if (!u.ringProbe().opcodes.includes('SOCKET')) this.cancelEach();
    this.raw.cancelAndWait();
    this.stopResume();
    this.watch?.close();
    this.watch = undefined;
    this.raw.close();
    if (this.efd >= 0) native.close(this.efd);
    this.efd = -1; // `eventFd` never names the closed number, which the next fd opened takes
    const left = [...this.pending.keys()];
    for (const ud of left) {
      const p = this.pending.get(ud)!;
      p.aborted = false;
      this.settle(ud, -ECANCELED, 0);
    }
    this.batchRefs.clear();
    this.held = 0;
    busy.delete(this);
    this.inBusy = false;
  }
}
