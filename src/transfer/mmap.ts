/**
 * `mmap`: mmap(2) the file and write(2) from the mapping — one copy fewer than read +
 * write (the kernel copies page cache → socket buffer directly), but not zero-copy. Per
 * transfer, a mapping costs the mmap, a page fault per 4 KiB page (unless `populate` asks
 * for MAP_POPULATE) and the munmap's TLB shootdown; `reuse` keeps whole-file views in a
 * per-thread cache (mmap-cache.ts) so a file sent again pays none of that. Per-transfer
 * mappings are made in windows so a large file does not hold its whole span of address
 * space.
 *
 * A per-transfer mapping never reaches JS: it is held natively in a slot of this thread's
 * table (`native.mmapSend`, file.cc), which maps a window, writes from it and unmaps it
 * once the transfer's last byte is written — one addon call for a file the socket buffer
 * takes whole, with no Buffer, finalizer or detach to pay for. A transfer that meets
 * EAGAIN keeps its slot, and so its window, until it resumes at the exact offset; when the
 * transfer ends the slot goes back to the free list, unmapped first if it still holds a
 * window (an error, an abort, a file that ended early). Only the kernel reads the mapping: a file truncated under it makes write(2)
 * fail with EFAULT (the kernel's copy faults) rather than raise SIGBUS, and the transfer
 * ends short or rejects with EFAULT.
 */
import { errnoError } from '../sys/errors.js';
import { checkAdvice, type MmapAdvice } from '../sys/mmap.js';
import { native } from '../sys/native.js';
import { drive, releasing, type Sent } from './drive.js';
import type { TransferJob } from './job.js';
import { acquireMapping, releaseMapping } from './mmap-cache.js';
export type { MmapTransferOptions } from './mmap-options.js';

/** Bytes mapped at a time. */
export const MMAP_WINDOW = 8 << 20;

const MAP_POPULATE = native.constants.MAP_POPULATE!;
const ADVICE: Record<string, number> = {
  normal: native.constants.MADV_NORMAL!,
  random: native.constants.MADV_RANDOM!,
  sequential: native.constants.MADV_SEQUENTIAL!,
  willneed: native.constants.MADV_WILLNEED!,
};
/** mmapSend's file-side failures: -(errno | kind << 16). */
const FILE_SIDE = 1 << 16;

/** Free slot numbers of this thread's native window table; the next new one after them. */
const freeSlots: number[] = [];
let nextSlot = 0;

/** Writes `[offset, offset + length)` from a whole-file view: stops early if the view is shorter. */
function sendFromView(job: TransferJob, view: Buffer): Sent {
  return drive(job, 'write', (sent) => {
    const at = job.offset + sent;
    if (at >= view.length) return 0;
    return native.write(job.sockFd, view, at, Math.min(view.length - at, job.length - sent));
  });
}

function perTransfer(job: TransferJob, flags: number, advice: number): Sent {
  const { sockFd, fileFd, offset, length } = job;
  const slot = freeSlots.length > 0 ? freeSlots.pop()! : nextSlot++;
  // A finished transfer's last step already unmapped (and at EOF nothing was mapped): only
  // a transfer that stopped short may still hold a window.
  const release = (sent: number) => {
    if (sent !== length) native.mmapDrop(slot);
    freeSlots.push(slot);
  };
  let r: Sent;
  try {
    r = drive(job, 'write', (sent) => {
      const w = native.mmapSend(slot, sockFd, fileFd, offset + sent, length - sent, MMAP_WINDOW, flags, advice);
      if (w > -FILE_SIDE) return w;
      throw errnoError(-(-w & (FILE_SIDE - 1)), -w >= 2 * FILE_SIDE ? 'madvise' : 'mmap');
    });
  } catch (e) {
    release(-1);
    throw e;
  }
  if (typeof r === 'number') {
    release(r);
    return r;
  }
  return r.then(
    (n) => {
      release(n);
      return n;
    },
    (e: unknown) => {
      release(-1);
      throw e;
    },
  );
}

/** The madvise(2) value of an advice name, -1 for none (a job made by hand may carry anything: checked). */
function adviceValue(a: MmapAdvice | undefined): number {
  if (a === undefined) return -1;
  return Object.hasOwn(ADVICE, a) ? ADVICE[a]! : ADVICE[checkAdvice('mmap.advice', a)]!;
}

/** The method's core: the count itself when the kernel took every byte at once (see `drive`). */
export function mmapStart(job: TransferJob): Sent {
  const o = job.mmap;
  if (o === undefined) return perTransfer(job, 0, -1);
  const flags = o.populate === true ? MAP_POPULATE : 0;
  if (o.reuse !== true) return perTransfer(job, flags, adviceValue(o.advice));
  const opts = o.advice === undefined ? { populate: flags !== 0 } : { populate: flags !== 0, advice: o.advice };
  const cached = acquireMapping(job.fileFd, opts);
  if (!cached) return perTransfer(job, flags, adviceValue(o.advice));
  return releasing(
    () => sendFromView(job, cached.buf),
    () => releaseMapping(cached),
  );
}

export async function mmapTransfer(job: TransferJob): Promise<number> {
  return mmapStart(job);
}
