/**
 * The fstat(2) transferFile makes of the file it sends, lent to the method it runs for the
 * synchronous span of that call: the `mmap` method's cache of mappings (mmap-cache.ts) keys
 * a mapping by the file's device, inode, size and mtime, which that same fstat already
 * answered, so a reused mapping costs no second fstat. Outside that span (a method that
 * resumes after a wait, a call from elsewhere) nothing is lent and the cache asks the
 * kernel itself.
 */
import { errnoError } from '../sys/errors.js';
import { native } from '../sys/native.js';

/** [size, blksize, mode, blocks, devMajor, devMinor, ino, mtimeSec, mtimeNsec] of `lentFd`. */
const lent = new Float64Array(9);
let lentFd = -1;

/** fstat(2) of `fd` into the lent array, lent from now on; throws the ErrnoError of a failure. */
export function statAndLend(fd: number): Float64Array {
  lentFd = -1;
  const r = native.fstat(fd, lent);
  if (r < 0) throw errnoError(r, 'fstat');
  lentFd = fd;
  return lent;
}

/** Ends the loan: the next {@link lentStat} answers undefined until another {@link statAndLend}. */
export function endLoan(): void {
  lentFd = -1;
}

/** The lent fstat of `fd`, or undefined when none is lent for it. */
export function lentStat(fd: number): Float64Array | undefined {
  return lentFd === fd ? lent : undefined;
}
