/**
 * `readwrite`: the traditional path, pread(2) into a user buffer then write(2) to the
 * socket — two copies and two syscalls per chunk, the baseline the zero-copy methods are
 * measured against. Buffers are reused from a small per-thread pool; each transfer holds
 * its own, because a transfer parked on EAGAIN still owns the bytes it has not written.
 */
import { errnoError } from '../sys/errors.js';
import { native } from '../sys/native.js';
import { drive } from './drive.js';
import type { TransferJob } from './job.js';

export const DEFAULT_CHUNK = 128 << 10;
const pool: Buffer[] = [];
const POOL_MAX = 4;

function take(size: number): Buffer {
  const i = pool.findIndex((b) => b.length === size);
  return i >= 0 ? pool.splice(i, 1)[0]! : Buffer.allocUnsafe(size);
}

export async function readwriteTransfer(job: TransferJob): Promise<number> {
  const { sockFd, fileFd, offset, length } = job;
  const buf = take(job.chunkSize ?? DEFAULT_CHUNK);
  let have = 0; // bytes in buf
  let done = 0; // of which written
  try {
    return await drive(job, 'write', (sent) => {
      if (done === have) {
        const n = native.pread(fileFd, buf, 0, Math.min(buf.length, length - sent), offset + sent);
        if (n < 0) throw errnoError(n, 'pread');
        if (n === 0) return 0;
        have = n;
        done = 0;
      }
      const w = native.write(sockFd, buf, done, have - done);
      if (w > 0) done += w;
      return w;
    });
  } finally {
    if (pool.length < POOL_MAX) pool.push(buf);
  }
}
