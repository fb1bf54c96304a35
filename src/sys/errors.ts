/**
 * rawio's error model. Hot-path calls return a number: `>= 0` is the result, `< 0` is
 * `-errno` (liburing's convention; never an exception for EAGAIN). Where an error must be
 * thrown, it is shaped like Node's own `SystemError`: `code` ('EAGAIN'), negative `errno`,
 * `syscall`, optional `path`, and the message `"EAGAIN: resource temporarily unavailable, read"`.
 */
import { getSystemErrorMap } from 'node:util';

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

  constructor(errno: number, syscall: string, path?: string, detail?: string) {
    const neg = -Math.abs(errno);
    const [code, text] = errorMap.get(neg) ?? [`E${-neg}`, 'unknown error'];
    let message = `${code}: ${text}, ${syscall}`;
    if (path !== undefined) message += ` '${path}'`;
    if (detail !== undefined) message += ` (${detail})`;
    super(message);
    this.name = 'Error';
    this.code = code;
    this.errno = neg;
    this.syscall = syscall;
    if (path !== undefined) this.path = path;
  }
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
  if (ret < 0) throw new ErrnoError(ret, syscall, path);
  return ret;
}

/** The errno name for a `-errno` result (`-11` → `'EAGAIN'`). */
export function errnoName(ret: number): string {
  return errorMap.get(-Math.abs(ret))?.[0] ?? `E${Math.abs(ret)}`;
}
