/**
 * `uring`: file → socket through io_uring — reads into user buffers and sends, both as ring
 * operations, with the next chunk's read in flight while the current one is sent (double
 * buffering). Two copies, like `readwrite`, but the syscalls are the ring's and the read
 * overlaps the send. Also home to the per-thread ring the `uring` and `direct` methods share.
 */
import { EBADF } from '../sys/errno.js';
import { ErrnoError } from '../sys/errors.js';
import { ownFd } from '../sys/fd-owner.js';
import { TransferRing } from '../sys/ring-native.js';
import type { TransferJob } from './job.js';

export const URING_CHUNK = 128 << 10;
let shared: TransferRing | undefined;
/** Set by endTransferRing(): this thread is stopping, and no ring is made on it again. */
let ended = false;

function endedError(): ErrnoError {
  return new ErrnoError(-EBADF, 'io_uring_setup', undefined, "this thread's transfer ring was ended: it is stopping");
}

/**
 * The ring transfers use on this thread, attached to Node's loop (idle, it keeps nothing alive).
 * Throws an EBADF ErrnoError once endTransferRing() ran on this thread: a ring made then
 * would belong to nobody, and its fds would outlive the thread.
 */
export function transferRing(): TransferRing {
  if (ended) throw endedError();
  if (shared === undefined) {
    shared = new TransferRing({ entries: 64 });
    // The ring itself (its fd, its mappings) is the addon's object, released when the thread
    // ends; its eventfd is opened from JavaScript, so this thread owns it (src/sys/fd-owner.ts).
    ownFd(shared.eventFd);
  }
  return shared;
}

/**
 * Installs the ring transfers use on this thread. A loop that owns its thread (a Reactor in
 * run() mode never turns Node's loop) passes a ring created with `{ attach: false }` whose
 * eventfd it watches itself, calling `ring.drain()` when it fires; otherwise the default
 * ring's completions would wait for a libuv turn that never comes. Throws EBADF (and leaves
 * `ring` to its caller) once endTransferRing() ran on this thread.
 */
export function setTransferRing(ring: TransferRing | undefined): void {
  if (ended && ring !== undefined) throw endedError();
  shared = ring;
}

/**
 * Closes the ring transferRing() made (or setTransferRing() installed) on this thread, if
 * any. The thread goes on: its next transfer makes a new ring. A thread that exits calls
 * endTransferRing() instead.
 */
export function closeTransferRing(): void {
  shared?.close();
  shared = undefined;
}

/**
 * closeTransferRing() for a thread that is stopping, for good: the ring's fds belong to the
 * process, not the thread, and would outlive it. From then on transferRing() throws EBADF,
 * so a transfer still under way (a reply whose handler settled late) fails, and its
 * connection closes, instead of making a ring that nobody would close.
 */
export function endTransferRing(): void {
  closeTransferRing();
  ended = true;
}

function isEagain(e: unknown): boolean {
  return (e as { code?: string }).code === 'EAGAIN';
}

/** Sends all of `buf[0, len)` with the ring, waiting for writability on EAGAIN. */
export async function sendAll(ring: TransferRing, job: TransferJob, buf: Uint8Array, len: number): Promise<void> {
  let off = 0;
  while (off < len) {
    try {
      // io_uring waits for socket space in the kernel, not through job.wait: the signal
      // cancels that wait (IORING_OP_ASYNC_CANCEL) and the send rejects with an AbortError.
      const opts =
        job.signal === undefined
          ? { offset: off, length: len - off }
          : { offset: off, length: len - off, signal: job.signal };
      const n = await ring.sendOwn(job.sockFd, buf, opts);
      off += n;
      job.onSent?.(n);
    } catch (e) {
      if (!isEagain(e)) throw e;
      await job.wait(job.sockFd);
    }
  }
}

/** Reads `[pos, pos + len)` of `fd` fully (short reads continued); fewer bytes only at EOF. */
export async function readFull(
  ring: TransferRing,
  fd: number,
  buf: Uint8Array,
  pos: number,
  len: number,
): Promise<number> {
  let got = 0;
  while (got < len) {
    const n = await ring.readOwn(fd, buf, got, len - got, pos + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * Sends `job` through `ring` (default: this thread's; rejects with EBADF on a thread whose
 * ring was ended). `direct` falling back hands its own ring on, so that the transfer keeps
 * the one ring it started with.
 */
export async function uringTransfer(job: TransferJob, ring: TransferRing = transferRing()): Promise<number> {
  const bufs = [Buffer.allocUnsafe(URING_CHUNK), Buffer.allocUnsafe(URING_CHUNK)];
  const end = job.offset + job.length;
  const readAt = (i: number, pos: number) =>
    readFull(ring, job.fileFd, bufs[i % 2]!, pos, Math.min(URING_CHUNK, end - pos));
  let sent = 0;
  let next = readAt(0, job.offset);
  try {
    for (let i = 0; sent < job.length; i++) {
      const n = await next;
      if (n === 0) break; // the file shrank
      const pos = job.offset + sent + n;
      next = pos < end ? readAt(i + 1, pos) : Promise.resolve(0); // overlaps the send below
      await sendAll(ring, job, bufs[i % 2]!, n);
      sent += n;
    }
  } catch (e) {
    // A send failed (or was aborted) with the next read in flight: it settles later, perhaps
    // rejected (ECANCELED when the ring closes), and nobody awaits it, so it must not become
    // an unhandled rejection. Its buffer stays with the ring's operation until then.
    next.catch(() => 0);
    throw e;
  }
  await next.catch(() => 0); // never leave a read running into a buffer we drop
  return sent;
}

export { uringTransfer as transfer };
