/**
 * Argument checks shared by the three Poller backends, done before the native call: masks
 * are 32-bit (a JS `|` with EPOLLET gives a negative int32; `>>> 0` makes it the kernel's
 * unsigned value), `out` an Int32Array of at least one pair, the timeout -1 or more.
 */
import { check } from '../../sys/errors.js';
import * as v from '../../sys/validate.js';

export function mask(m: unknown): number {
  if (typeof m !== 'number') throw v.typeError('mask', 'of type number', m);
  if (!Number.isInteger(m) || m < -0x80000000 || m > 0xffffffff) {
    throw v.rangeError('mask', 'a 32-bit integer', m);
  }
  return m >>> 0;
}

export function waitArgs(out: unknown, timeoutMs: unknown): void {
  if (!(out instanceof Int32Array)) throw v.typeError('out', 'an instance of Int32Array', out);
  if (out.length < 2) throw v.rangeError('out.length', '>= 2 (one (fd, revents) pair)', out.length);
  v.int('timeoutMs', timeoutMs, -1, 0x7fffffff);
}

/**
 * What a closed poller answers, the same for every backend: registration calls throw an
 * EBADF ErrnoError and `wait` returns -EBADF, as epoll_ctl(2) and epoll_wait(2) do on a
 * closed epoll fd.
 */
export { EBADF } from '../../sys/errno.js';

/** Throws the ErrnoError of a failed registration call. */
export function ctl(ret: number, syscall: string): void {
  check(ret, syscall);
}
