/**
 * `mmap`: mmap(2) the file and write(2) from the mapping — one copy fewer than read +
 * write (the kernel copies page cache → socket buffer directly), but not zero-copy. Per
 * transfer, a mapping costs the mmap, a page fault per 4 KiB page (unless `populate` asks
 * for MAP_POPULATE) and the munmap's TLB shootdown; `reuse` keeps whole-file views in a
 * per-thread cache (mmap-cache.ts) so a file sent again pays none of that. Per-transfer
 * mappings are made in windows so a large file does not hold its whole span of address
 * space. Nothing reads the view from JS: a file truncated under it makes write(2) fail with
 * EFAULT (the kernel's copy faults) rather than raise SIGBUS, and the transfer ends short.
 */
import { mmap, munmap, type MmapOptions } from '../sys/mmap.js';
import { native } from '../sys/native.js';
import { drive } from './drive.js';
import type { TransferJob } from './job.js';
import { acquireMapping, releaseMapping } from './mmap-cache.js';
export type { MmapTransferOptions } from './mmap-options.js';

/** Bytes mapped at a time. */
export const MMAP_WINDOW = 8 << 20;

/** Writes `[offset, offset + length)` from a whole-file view: stops early if the view is shorter. */
function sendFromView(job: TransferJob, view: Buffer): Promise<number> {
  return drive(job, 'write', (sent) => {
    const at = job.offset + sent;
    if (at >= view.length) return 0;
    return native.write(job.sockFd, view, at, Math.min(view.length - at, job.length - sent));
  });
}

async function perTransfer(job: TransferJob, opts: MmapOptions): Promise<number> {
  const { sockFd, fileFd, offset, length } = job;
  let map: Buffer | undefined;
  let mapStart = 0; // `sent` at the mapping's first byte
  try {
    return await drive(job, 'write', (sent) => {
      if (!map || sent >= mapStart + map.length) {
        if (map) munmap(map);
        map = undefined;
        const m = mmap(fileFd, offset + sent, Math.min(MMAP_WINDOW, length - sent), opts);
        if (m.length === 0) return 0;
        map = m;
        mapStart = sent;
      }
      const at = sent - mapStart;
      return native.write(sockFd, map, at, map.length - at);
    });
  } finally {
    if (map) munmap(map);
  }
}

export async function mmapTransfer(job: TransferJob): Promise<number> {
  const o = job.mmap ?? {};
  const opts: MmapOptions = { populate: o.populate === true };
  if (o.advice !== undefined) opts.advice = o.advice;
  const cached = o.reuse === true ? acquireMapping(job.fileFd, opts) : undefined;
  if (!cached) return perTransfer(job, opts);
  try {
    return await sendFromView(job, cached.buf);
  } finally {
    releaseMapping(cached);
  }
}
