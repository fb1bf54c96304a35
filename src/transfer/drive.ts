/**
 * The loop every non-blocking transfer method shares: try the syscall first, wait for
 * writability only on EAGAIN, resume at the exact offset after a short transfer, stop at
 * an unexpected EOF (the file shrank). Like nginx's `sendfile_max_chunk`, a transfer that
 * never meets EAGAIN (a fast reader) still yields to the event loop every few MiB, so one
 * large file cannot starve every other connection.
 */
import { errnoError } from '../sys/errors.js';
import { EAGAIN } from '../sys/errno.js';
import { abortError } from '../sys/ring-core.js';
import type { TransferJob } from './job.js';

/** Bytes sent without a wait before yielding to the event loop. */
export const YIELD_BYTES = 16 << 20;

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/** What a method's core returns: the count at once, or a promise when it had to wait. */
export type Sent = number | Promise<number>;

/**
 * Runs a method's core and then `release` (its buffer, pipe or mapping back to a pool), once,
 * however the core ends: finished in the call, thrown, or through its promise.
 */
export function releasing(core: () => Sent, release: () => void): Sent {
  let r: Sent;
  try {
    r = core();
  } catch (e) {
    release();
    throw e;
  }
  if (typeof r === 'number') {
    release();
    return r;
  }
  return r.finally(release);
}

/**
 * Runs `step(sent)` until `job.length` bytes are sent. `step` sends from file position
 * `job.offset + sent` and returns bytes sent (> 0), 0 at EOF, or the socket call's `-errno`;
 * it throws itself for errors on the file side. While the kernel takes every byte, the loop
 * runs to the end in this call and returns the count itself, not a promise: a file the
 * socket buffer holds whole (most files of a static server) costs no promise, no await and
 * no microtask here. At the first EAGAIN, or after {@link YIELD_BYTES} without a wait, the
 * rest goes on in {@link driveOn}, which returns a promise. Errors are thrown, in this call
 * or through the promise.
 */
export function drive(job: TransferJob, syscall: string, step: (sent: number) => number): Sent {
  let sent = 0;
  while (sent < job.length) {
    const r = step(sent);
    if (r > 0) {
      sent += r;
      job.onSent?.(r);
      if (sent >= YIELD_BYTES) return driveOn(job, syscall, step, sent, false);
    } else if (r === -EAGAIN) {
      return driveOn(job, syscall, step, sent, true);
    } else if (r === 0) {
      break;
    } else {
      throw errnoError(r, syscall);
    }
  }
  return sent;
}

/**
 * The rest of {@link drive} once it must give the loop a turn: first a wait for
 * writability (`blocked`, after EAGAIN) or a yield (after {@link YIELD_BYTES}), then the
 * same loop, waiting on each EAGAIN.
 */
async function driveOn(
  job: TransferJob,
  syscall: string,
  step: (sent: number) => number,
  sent: number,
  blocked: boolean,
): Promise<number> {
  let sinceYield = 0;
  if (blocked) {
    await job.wait(job.sockFd);
  } else {
    await yieldToLoop();
    if (job.signal?.aborted) throw abortError(job.signal);
  }
  while (sent < job.length) {
    const r = step(sent);
    if (r > 0) {
      sent += r;
      sinceYield += r;
      job.onSent?.(r);
      if (sinceYield >= YIELD_BYTES) {
        sinceYield = 0;
        await yieldToLoop();
        if (job.signal?.aborted) throw abortError(job.signal);
      }
    } else if (r === -EAGAIN) {
      sinceYield = 0;
      await job.wait(job.sockFd);
    } else if (r === 0) {
      break;
    } else {
      throw errnoError(r, syscall);
    }
  }
  return sent;
}
