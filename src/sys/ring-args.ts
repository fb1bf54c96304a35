/**
 * The argument conventions of the Ring's calls (positions, batch user data, timeouts) and of
 * its read and write calls in particular: `sys.pread`'s order
 * (offset, length, position, then the options), the earlier (position, length, opts)
 * order still recognised, and the explanation an O_DIRECT EINVAL gets (the kernel's own
 * answer to a misaligned buffer, position or length is a bare EINVAL).
 */
import { readFileSync } from 'node:fs';
import { constants } from './constants.js';
import { directIoError } from './direct.js';
import { EINVAL } from './errno.js';
import { MAX_USER_DATA, timespec as kernelTimespec } from './ring-core.js';
import * as v from './validate.js';

/** (offset, length, position, opts), each still to check. */
export type RwArgs<O> = [unknown, unknown, unknown, O | undefined];

/**
 * The arguments after the buffer, as `sys.pread` takes them: (offset, length, position,
 * opts). The earlier form (position, length, opts) is told apart by its missing or
 * object-valued third number; a number where the options go is a TypeError (RingCore.op).
 */
export function rwArgs<O>(a: unknown, b: unknown, c: unknown, d: unknown): RwArgs<O> {
  if (d === undefined && (c === undefined || (typeof c === 'object' && c !== null))) {
    return [0, b, a, c as O | undefined];
  }
  return [a, b, c, d as O | undefined];
}

/**
 * O_DIRECT answers a misaligned buffer, position or length with a bare EINVAL: on an fd
 * opened O_DIRECT (its status flags, read from /proc/self/fdinfo only on this error path)
 * the rejection names the alignment needed, as `sys.directRead`'s does.
 */
export function explainDirect(
  done: Promise<number>,
  name: string,
  fd: number,
  buf: Uint8Array,
  off: number,
  len: number,
  pos: number,
): Promise<number> {
  return done.catch((e: unknown) => {
    if ((e as { code?: string }).code === 'EINVAL' && isDirect(fd))
      throw directIoError(-EINVAL, name, fd, buf, off, len, pos);
    throw e;
  });
}

function isDirect(fd: number): boolean {
  try {
    const flags = /^flags:\s*([0-7]+)/m.exec(readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))?.[1];
    return flags !== undefined && (parseInt(flags, 8) & constants.O_DIRECT) !== 0;
  } catch {
    return false;
  }
}

/** A file position: -1 is the current one. */
export function position(p: unknown): number {
  return v.int('position', p, -1);
}

/** A batch user data: 0 … 2^31 - 1 (the rest is the promise API's). */
export function userData(ud: unknown): number {
  return v.int('userData', ud, 0, MAX_USER_DATA);
}

/** The struct __kernel_timespec of a timeout of `ms` milliseconds. */
export function timespec(ms: number): Uint8Array {
  return kernelTimespec(v.int('ms', ms, 0, 0x7fffffff));
}
