/**
 * `direct`: file → socket with O_DIRECT reads through io_uring (the bench's claim 5: for
 * large files the page cache hurts; direct IO + async IO keeps small hot files cached). The
 * file is reopened with O_DIRECT through /proc/self/fd; the aligned middle is read into
 * aligned buffers, DEPTH reads in flight, and each chunk is sent as soon as it arrives, in
 * order; the unaligned head and tail are read buffered. Where O_DIRECT is refused (tmpfs),
 * the transfer falls back to `uring`.
 */
import { alignedBuffer } from '../sys/file.js';
import { native } from '../sys/native.js';
import { ownFd } from '../sys/fd-owner.js';
import { close } from '../sys/socket.js';
import type { TransferRing } from '../sys/ring-native.js';
import type { TransferJob } from './job.js';
import { readFull, sendAll, transferRing, uringTransfer } from './uring.js';

export const DIRECT_CHUNK = 256 << 10;
export const DIRECT_DEPTH = 4;
const ALIGN = 4096; // a multiple of every logical block size (512 or 4096)
const O_DIRECT = native.constants.O_DIRECT!;

/** Bytes this thread has read with O_DIRECT (for tests and the benchmark to see the path taken). */
export const directStats = { bytes: 0 };

async function buffered(ring: TransferRing, job: TransferJob, pos: number, len: number): Promise<number> {
  if (len === 0) return 0;
  const buf = Buffer.allocUnsafe(len);
  const n = await readFull(ring, job.fileFd, buf, pos, len);
  await sendAll(ring, job, buf, n);
  return n;
}

async function middle(ring: TransferRing, job: TransferJob, dfd: number, from: number, to: number): Promise<number> {
  const bufs = Array.from({ length: DIRECT_DEPTH }, () => alignedBuffer(DIRECT_CHUNK, ALIGN));
  const reads: Promise<number>[] = [];
  let issued = from;
  const issue = (slot: number) => {
    const len = Math.min(DIRECT_CHUNK, to - issued);
    reads[slot] = readFull(ring, dfd, bufs[slot]!, issued, len);
    issued += len;
  };
  for (let s = 0; s < DIRECT_DEPTH && issued < to; s++) issue(s);
  let sent = 0;
  try {
    for (let i = 0; from + sent < to; i = (i + 1) % DIRECT_DEPTH) {
      const n = await reads[i]!;
      if (n === 0) break;
      directStats.bytes += n;
      await sendAll(ring, job, bufs[i]!, n);
      sent += n;
      if (n < DIRECT_CHUNK && from + sent < to) break; // the file shrank under us
      if (issued < to) issue(i);
    }
  } finally {
    await Promise.allSettled(reads); // the kernel must be done with the buffers first
  }
  return sent;
}

export async function directTransfer(job: TransferJob): Promise<number> {
  const start = job.offset;
  const end = job.offset + job.length;
  const a0 = Math.ceil(start / ALIGN) * ALIGN;
  const a1 = Math.floor(end / ALIGN) * ALIGN;
  if (a1 - a0 < DIRECT_CHUNK) return uringTransfer(job); // too small to be worth a second open
  const ring = transferRing();
  let dfd: number;
  try {
    dfd = await ring.openat(-100, `/proc/self/fd/${job.fileFd}`, native.constants.O_RDONLY! | O_DIRECT);
    ownFd(dfd); // closed below, or with this thread if it is terminated mid-body
  } catch {
    return uringTransfer(job, ring); // no O_DIRECT here (tmpfs, some FUSE mounts), or the ring closed
  }
  try {
    let sent = await buffered(ring, job, start, a0 - start);
    if (sent < a0 - start) return sent;
    const mid = await middle(ring, job, dfd, a0, a1);
    sent += mid;
    if (mid < a1 - a0) return sent;
    return sent + (await buffered(ring, job, a1, end - a1));
  } finally {
    // close(2) here, not on the ring: a thread that stops closes its ring with this body
    // still in flight, and a close queued on a closed ring would never run.
    close(dfd);
  }
}

export { directTransfer as transfer };
