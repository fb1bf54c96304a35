/**
 * A small per-thread pool of pipes for `splice`: creating a pipe and sizing it
 * (pipe2 + F_SETPIPE_SZ) costs two syscalls and a page allocation per transfer otherwise.
 * A pipe goes back to the pool only when empty: a pipe still holding bytes (a transfer that
 * failed mid-way) would leak them into the next transfer, so it is closed instead.
 */
import { EPERM } from '../sys/errno.js';
import { check } from '../sys/errors.js';
import { native } from '../sys/native.js';
import { ownFd } from '../sys/fd-owner.js';

export interface Pipe {
  r: number;
  w: number;
  /** Capacity in bytes (F_GETPIPE_SZ). */
  size: number;
  /** The size asked for (0: the kernel's default), the pool's key. */
  asked: number;
}

const POOL_MAX = 4;
const pool: Pipe[] = [];

/**
 * A non-blocking pipe of `asked` bytes (0: the kernel default), from the pool if one fits.
 * Where the kernel refuses the size (EPERM: over /proc/sys/fs/pipe-max-size, or this user's
 * pipes over /proc/sys/fs/pipe-user-pages-soft, many transfers at once), a pipe of its
 * default size: it moves the same bytes, in smaller rounds, and is pooled as one.
 */
export function acquirePipe(asked = 0): Pipe {
  for (let i = pool.length - 1; i >= 0; i--) {
    const p = pool[i]!;
    if (p.asked !== asked) continue;
    pool[i] = pool[pool.length - 1]!;
    pool.pop();
    return p;
  }
  let r = native.pipe(asked, false);
  if (r === -EPERM && asked > 0) {
    asked = 0;
    r = native.pipe(0, false);
  }
  if (typeof r === 'number') check(r, 'pipe2');
  const [rd, wr] = r as [number, number];
  // The pool is this thread's: its pipes go with the thread, also one that is terminated.
  ownFd(rd);
  ownFd(wr);
  const size = native.pipeSize(wr);
  if (size < 0) {
    native.close(rd);
    native.close(wr);
    check(size, 'fcntl');
  }
  return { r: rd, w: wr, size, asked };
}

/** Returns a pipe to the pool if `empty` and there is room; closes it otherwise. */
export function releasePipe(p: Pipe, empty: boolean): void {
  if (empty && pool.length < POOL_MAX) {
    pool.push(p);
    return;
  }
  native.close(p.r);
  native.close(p.w);
}

/** Closes every pooled pipe (before an fd-leak check, or at shutdown). */
export function closePipePool(): void {
  for (const p of pool.splice(0)) {
    native.close(p.r);
    native.close(p.w);
  }
}

/** How many pipes the pool holds now. */
export function pooledPipes(): number {
  return pool.length;
}
