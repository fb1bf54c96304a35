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

/**
 * Runs `step(sent)` until `job.length` bytes are sent. `step` sends from file position
 * `job.offset + sent` and returns bytes sent (> 0), 0 at EOF, or the socket call's `-errno`;
 * it throws itself for errors on the file side.
 */
export async function drive(job: TransferJob, syscall: string, step: (sent: number) => number): Promise<number> {
  let sent = 0;
  let sinceYield = 0;
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
