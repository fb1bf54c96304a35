/**
 * rawio's error model. Hot-path calls return a number: `>= 0` is the result, `< 0` is
 * `-errno` (liburing's convention; never an exception for EAGAIN). Where an error must be
 * thrown, it is shaped like Node's own `SystemError`: `code` ('EAGAIN'), negative `errno`,
 * `syscall`, optional `path`, and the message `"EAGAIN: resource temporarily unavailable, read"`.
 */
import { getSystemErrorMap } from 'node:util';
import * as v from './validate.js';

const errorMap = getSystemErrorMap();

/** An error from a failing system call, shaped like Node's `SystemError`. */
export class ErrnoError extends Error {
  /** The errno name, e.g. `'EAGAIN'`. */
  readonly code: string;
  /** The negative errno, as Node reports it (`-11` for EAGAIN). */
  readonly errno: number;
  /** The system call that failed, e.g. `'epoll_ctl'`. */
  readonly syscall: string;
  /** The path the call was given, where there was one. */
  readonly path?: string;

  /**
   * `errno` is the error number, negative (as rawio's calls return it) or positive, 1 to
   * 4095 either way (a TypeError / RangeError otherwise: a result that is not an error).
   */
  constructor(errno: number, syscall: string, path?: string, detail?: string) {
    const neg = -Math.abs(errnoArg(errno));
    const [code, text] = errorMap.get(neg) ?? [`E${-neg}`, 'unknown error'];
    // Coerced, never checked: this constructor runs inside the loops, where a throw would be lost.
    const call = String(syscall);
    let message = `${code}: ${text}, ${call}`;
    if (path !== undefined) message += ` '${String(path)}'`;
    if (detail !== undefined) message += ` (${detail})`;
    super(message);
    this.name = 'Error';
    this.code = code;
    this.errno = neg;
    this.syscall = call;
    if (path !== undefined) this.path = String(path);
  }
}

/** An error number, negative or positive: an integer of 1 to MAX_ERRNO (4095) in magnitude. */
function errnoArg(errno: unknown): number {
  if (typeof errno !== 'number') throw v.typeError('errno', 'of type number', errno);
  if (!Number.isInteger(errno) || errno === 0 || errno < -4095 || errno > 4095)
    throw v.rangeError('errno', 'a non-zero integer >= -4095 and <= 4095', errno);
  return errno;
}

/**
 * Builds the error for a `-errno` result.
 * @example
 * const r = sys.read(fd, buf);
 * if (r < 0 && r !== -constants.EAGAIN) throw errnoError(r, 'read');
 */
export function errnoError(ret: number, syscall: string, path?: string): ErrnoError {
  return new ErrnoError(ret, syscall, path);
}

/**
 * Returns `ret` when it is a result (`>= 0`), throws its errno error when it is `-errno`.
 * @example
 * const fd = check(native.accept(listenFd), 'accept');
 */
export function check(ret: number, syscall: string, path?: string): number {
  if (Number.isInteger(ret) && ret >= 0) return ret;
  // A -errno; anything else (a string, NaN, a fraction) fails ErrnoError's own checks.
  throw new ErrnoError(ret, syscall, path);
}

/** The errno name for a `-errno` result (`-11` → `'EAGAIN'`). */
export function errnoName(ret: number): string {
  const n = errnoArg(ret);
  return errorMap.get(-Math.abs(n))?.[0] ?? `E${Math.abs(n)}`;
}
