/**
 * `readwrite`: the traditional path, pread(2) into a user buffer then write(2) to the
 * socket — two copies and two syscalls per chunk, the baseline the zero-copy methods are
 * measured against. Buffers are reused from a small per-thread pool; each transfer holds
 * its own, because a transfer parked on EAGAIN still owns the bytes it has not written. A
 * transfer's buffer is no larger than it needs (`chunkSize`, or the whole body when that is
 * smaller), and the pool keeps buffers of at most POOL_BUFFER_MAX: a large `chunkSize` costs
 * its transfers, not the thread's memory for good.
 *
 * A buffer starts on a page boundary. The kernel's copies in and out of it run far slower
 * when the buffer sits a few bytes past a page start, as a heap or mmap'd allocation often
 * does (Buffer.allocUnsafe of 128 KiB lands 16 bytes into a page): each store then aliases
 * the next load of the page-aligned page-cache source in the CPU's 4 KiB store-to-load
 * check. Measured here, pread of 1 MiB into a buffer 16 bytes into a page cost 472 µs of
 * CPU against 70 µs page-aligned, and pread + write 761 µs against 293 µs
 * (docs/PERFORMANCE.md, "transferFile: the fixed cost per call").
 */
import { errnoError } from '../sys/errors.js';
import { alignedBuffer } from '../sys/file.js';
import { native } from '../sys/native.js';
import { drive, releasing, type Sent } from './drive.js';
import type { TransferJob } from './job.js';

export const DEFAULT_CHUNK = 128 << 10;
/** The largest buffer the pool keeps. */
export const POOL_BUFFER_MAX = 1 << 20;
const pool: Buffer[] = [];
const POOL_MAX = 4;

const PAGE = 4096;

/** A new page-aligned buffer of `size` bytes; a heap one where the runtime refuses external memory. */
function allocate(size: number): Buffer {
  try {
    return alignedBuffer(size, PAGE);
  } catch {
    return Buffer.allocUnsafe(size); // out of memory for posix_memalign, or no external buffers here
  }
}

/** The smallest pooled buffer of at least `size` bytes, else a new one of `size`. */
function take(size: number): Buffer {
  let best = -1;
  for (let i = 0; i < pool.length; i++)
    if (pool[i]!.length >= size && (best < 0 || pool[i]!.length < pool[best]!.length)) best = i;
  if (best < 0) return allocate(size);
  const buf = pool[best]!;
  pool[best] = pool[pool.length - 1]!;
  pool.pop();
  return buf;
}

/** Pools `buf` if it is small enough; a full pool gives up its smallest buffer for a larger one. */
function give(buf: Buffer): void {
  if (buf.length > POOL_BUFFER_MAX) return;
  if (pool.length < POOL_MAX) {
    pool.push(buf);
    return;
  }
  let min = 0;
  for (let i = 1; i < pool.length; i++) if (pool[i]!.length < pool[min]!.length) min = i;
  if (pool[min]!.length < buf.length) pool[min] = buf;
}

/** How many buffers the pool holds, their bytes, and how many start on a page boundary (for tests). */
export function readwritePoolStats(): { buffers: number; bytes: number; pageAligned: number } {
  return {
    buffers: pool.length,
    bytes: pool.reduce((n, b) => n + b.length, 0),
    pageAligned: pool.filter((b) => native.addrAlign(b, 0) >= PAGE).length,
  };
}

/** The method's core: the count itself when the kernel took every byte at once (see `drive`). */
export function readwriteStart(job: TransferJob): Sent {
  const { sockFd, fileFd, offset, length } = job;
  const chunk = Math.min(job.chunkSize ?? DEFAULT_CHUNK, length);
  const buf = take(chunk);
  let have = 0; // bytes in buf
  let done = 0; // of which written
  return releasing(
    () =>
      drive(job, 'write', (sent) => {
        if (done === have) {
          const n = native.pread(fileFd, buf, 0, Math.min(chunk, length - sent), offset + sent);
          if (n < 0) throw errnoError(n, 'pread');
          if (n === 0) return 0;
          have = n;
          done = 0;
        }
        const w = native.write(sockFd, buf, done, have - done);
        if (w > 0) done += w;
        return w;
      }),
    () => give(buf),
  );
}

export async function readwriteTransfer(job: TransferJob): Promise<number> {
  return readwriteStart(job);
}
