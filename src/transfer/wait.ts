/**
 * The default writability waiter: a libuv poll handle (`native.Watch`, UV_WRITABLE) on the
 * socket, started once per EAGAIN and stopped as soon as it fires, so a transfer lives
 * inside Node's own event loop. A Reactor-driven server passes its Connection's
 * `waitWritable` instead (one fd must not be watched by two pollers of the same loop).
 */
import { EBADF, ENOTSOCK, EPIPE } from '../sys/errno.js';
import { errnoError, type ErrnoError } from '../sys/errors.js';
import { native, type NativeWatch } from '../sys/native.js';
import { openWatch } from '../sys/watch.js';
import { abortError } from '../sys/ring-core.js';
import * as v from '../sys/validate.js';

const UV_WRITABLE = 2;
const UV_DISCONNECT = 4;
/** The longest wait for a zero-copy completion report that may have been missed. */
const MAX_PAUSE_MS = 8;

/**
 * The error for a poll handle that failed with `status`. libuv reports EPOLLERR as UV_EBADF,
 * and a socket polls EPOLLERR when it has a pending error: a peer that reset, or a
 * socketpair peer that closed with bytes unread. That error is the socket's (SO_ERROR:
 * ECONNRESET, EPIPE …), named as a write's, as the syscall that would meet it; a pipe whose
 * reader closed is EPIPE. A socket with no pending error polls EPOLLERR only for its error
 * queue (MSG_ZEROCOPY completions): that stays EBADF, which `sendBuffer` answers by reaping.
 */
function pollError(fd: number, status: number): ErrnoError {
  if (status !== -EBADF) return errnoError(status, 'uv_poll');
  const r = native.socketError(fd);
  if (r === -ENOTSOCK) return errnoError(-EPIPE, 'write');
  return r < 0 ? errnoError(r, 'write') : errnoError(status, 'uv_poll');
}

/** What {@link writableWaiter} returns: one poll handle reused across waits. */
export interface Waiter {
  /**
   * Resolves when `fd` turns writable; rejects with an ErrnoError when libuv's poll fails:
   * the socket's pending error (ECONNRESET, EPIPE …, syscall 'write') when it polls EPOLLERR.
   * One wait at a time; a new fd replaces the handle of the previous one.
   */
  wait(fd: number): Promise<void>;
  /** Releases the poll handle (a pending wait then never settles). */
  close(): void;
}

/** A waiter that keeps one poll handle for its fd across EAGAINs; `close()` releases it. */
export function writableWaiter(): Waiter {
  let watch: NativeWatch | undefined;
  let watchedFd = -1;
  let pending: { resolve: () => void; reject: (e: Error) => void } | undefined;
  const onEvent = (status: number) => {
    watch?.stop();
    const p = pending;
    pending = undefined;
    if (status < 0) p?.reject(pollError(watchedFd, status));
    else p?.resolve();
  };
  return {
    wait(fd: number): Promise<void> {
      v.fd(fd);
      if (watch && watchedFd !== fd) {
        watch.close();
        watch = undefined;
      }
      if (!watch) {
        watch = openWatch(fd, onEvent);
        watchedFd = fd;
      }
      const w = watch;
      return new Promise<void>((resolve, reject) => {
        pending = { resolve, reject };
        const r = w.start(UV_WRITABLE);
        if (r < 0) {
          pending = undefined;
          reject(errnoError(r, 'uv_poll_start'));
        }
      });
    },
    close(): void {
      watch?.close();
      watch = undefined;
    },
  };
}

/** `wait`, rejecting with an AbortError as soon as `signal` aborts. */
export function abortable(wait: (fd: number) => Promise<void>, signal: AbortSignal): (fd: number) => Promise<void> {
  return (fd) =>
    new Promise<void>((resolve, reject) => {
      if (signal.aborted) return reject(abortError(signal));
      const onAbort = () => reject(abortError(signal));
      signal.addEventListener('abort', onAbort, { once: true });
      wait(fd).then(
        () => {
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        (e: unknown) => {
          signal.removeEventListener('abort', onAbort);
          reject(e as Error);
        },
      );
    });
}

/** Resolves once `fd` is writable (a one-shot poll handle). */
export async function waitWritable(fd: number): Promise<void> {
  const w = writableWaiter();
  try {
    await w.wait(fd);
  } finally {
    w.close();
  }
}

/**
 * Resolves when MSG_ZEROCOPY completions may wait on `fd`'s error queue (`sendBuffer`'s
 * default): a poll handle for UV_DISCONNECT alone, since epoll reports EPOLLERR whatever the
 * mask and libuv passes it on as UV_EBADF, beside a timer of a few milliseconds for a report
 * that came before the handle. A hang-up (the peer closed its side) would fire at once and
 * forever: the handle stops, and the timer ends the wait.
 */
export function waitErrorQueue(fd: number): Promise<void> {
  return new Promise<void>((resolve) => {
    const watch = openWatch(fd, (status) => {
      if (status < 0) done();
      else watch.stop();
    });
    const timer = setTimeout(done, MAX_PAUSE_MS);
    function done(): void {
      clearTimeout(timer);
      watch.close();
      resolve();
    }
    if (watch.start(UV_DISCONNECT) < 0) done();
  });
}
