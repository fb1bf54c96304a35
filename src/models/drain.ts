/**
 * The graceful close's shared parts (Server.close's `drain`): checking the option, and the
 * wait for a model's connections to close. What each connection does is ConnCore.drain's;
 * each model tells its threads or processes to drain in its own way, and serve.ts bounds the
 * wait with the deadline, after which close() does what it does without `drain`.
 */
import { native } from '../sys/native.js';
import type { Stats } from './stats.js';

/** How often the caller's thread looks at the connection count while a drain goes on. */
const POLL_MS = 10;
/** The longest drain a timer can wait for; Infinity means no deadline. */
export const MAX_DRAIN_MS = 0x7fffffff;

/** Server.close()'s options. */
export interface CloseOptions {
  /**
   * Close gracefully, for at most this many ms: stop accepting, let every connection answer
   * the requests it has read, then close it; at the deadline close the rest as without it.
   * 0 (the default): close every connection at once. `Infinity`: no deadline.
   */
  drain?: number;
}

/**
 * The drain ms of close()'s options (0: none). Coded as every argument check: not an object
 * or `drain` not a number, TypeError (ERR_INVALID_ARG_TYPE); another key, TypeError
 * (ERR_INVALID_ARG_VALUE); below 0, NaN or past a timer's reach, RangeError (ERR_OUT_OF_RANGE).
 */
export function drainMs(options: unknown): number {
  if (options === undefined) return 0;
  if (options === null || typeof options !== 'object' || Array.isArray(options)) {
    throw coded(
      new TypeError(`close() options must be an object; got ${options === null ? 'null' : typeof options}`),
      'ERR_INVALID_ARG_TYPE',
    );
  }
  for (const key of Object.keys(options)) {
    if (key !== 'drain') throw coded(new TypeError(`unknown close() option '${key}'`), 'ERR_INVALID_ARG_VALUE');
  }
  const ms = (options as CloseOptions).drain;
  if (ms === undefined) return 0;
  if (typeof ms !== 'number')
    throw coded(
      new TypeError(`close() option 'drain' must be a number of ms; got ${typeof ms}`),
      'ERR_INVALID_ARG_TYPE',
    );
  if (Number.isNaN(ms) || ms < 0 || (ms > MAX_DRAIN_MS && ms !== Infinity)) {
    throw coded(
      new RangeError(`close() option 'drain' must be between 0 and ${MAX_DRAIN_MS} ms, or Infinity; got ${ms}`),
      'ERR_OUT_OF_RANGE',
    );
  }
  return ms;
}

function coded<E extends Error>(e: E, code: string): E {
  return Object.assign(e, { code });
}

/**
 * Resolves once `stats` counts no open connection (across every thread that shares it) and
 * no accepted fd on its way to the thread that serves it (Stats.handing: the ones a drain
 * took from the listen queue, or a main reactor dealt), or once `cut` settles (the
 * deadline, or a close() without drain): the looking stops then.
 */
export function whenNoConnections(stats: Stats, cut: Promise<void>): Promise<void> {
  let over = false;
  void cut.then(() => (over = true));
  return new Promise((resolve) => {
    const look = () => {
      if (over || (stats.snapshot().connections <= 0 && stats.inHandoff <= 0)) resolve();
      else setTimeout(look, POLL_MS);
    };
    look();
  });
}

/**
 * A graceful close's first step on a listening socket, before the caller shuts it down: every
 * connection the kernel has queued on it now (handshake done, never accepted) is accepted
 * (accept4, non-blocking, until EAGAIN; an error such as EMFILE ends the pass early, and what
 * is left is reset by the shutdown as without drain). Each fd is non-blocking, and is the
 * caller's to hand to a serving thread, which serves it as a connection accepted before the
 * drain (its limits judged there, as for any accept). The listening socket is made
 * non-blocking first (a blocking one, the iterative model's, would wait here for a connect).
 */
export function takeQueued(listenFd: number): number[] {
  const fds: number[] = [];
  if (native.setBlocking(listenFd, false) < 0) return fds;
  for (;;) {
    const fd = native.accept(listenFd, false);
    if (fd < 0) return fds;
    fds.push(fd);
  }
}

/** What a DrainSignal is made of, to hand to threads: a flag and an eventfd that wakes a poll(2). */
export interface DrainSignalInit {
  flag: SharedArrayBuffer;
  /** Readable once the drain began (written once, never read): a blocking thread polls it beside its client. */
  fd: number;
}

/**
 * The blocking models' drain signal: one for the whole server, seen by every thread. A thread
 * asleep in poll(2) on its client has the eventfd in the same poll set, so it wakes when the
 * drain begins; a thread asleep elsewhere (a reply's write, a handler's settling) looks at the
 * flag at each of its ticks.
 */
export class DrainSignal {
  readonly #flag: Int32Array;
  readonly fd: number;

  /** A new signal (its eventfd is the caller's to close once every thread is gone). */
  static create(makeEventfd: () => number): DrainSignalInit {
    return { flag: new SharedArrayBuffer(4), fd: makeEventfd() };
  }

  constructor(init: DrainSignalInit) {
    this.#flag = new Int32Array(init.flag);
    this.fd = init.fd;
  }

  get on(): boolean {
    return Atomics.load(this.#flag, 0) === 1;
  }

  /** The caller's thread: the drain begins. `write` adds to the eventfd's counter. */
  begin(write: (fd: number) => void): void {
    if (Atomics.exchange(this.#flag, 0, 1) === 1) return;
    write(this.fd);
  }
}
