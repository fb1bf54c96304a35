/**
 * `mmap`: mmap(2) the file and write(2) from the mapping — one copy fewer than read +
 * write (the kernel copies page cache → socket buffer directly), but not zero-copy, and a
 * mapping costs page-table work and TLB shootdowns at munmap. The file is mapped in
 * windows so a large file does not hold its whole span of address space. A file truncated
 * under a live mapping raises SIGBUS: serve files nobody truncates while they are sent.
 */
import { mmap, munmap } from '../sys/file.js';
import { native } from '../sys/native.js';
import { drive } from './drive.js';
import type { TransferJob } from './job.js';

/** Bytes mapped at a time. */
export const MMAP_WINDOW = 8 << 20;

export async function mmapTransfer(job: TransferJob): Promise<number> {
  const { sockFd, fileFd, offset, length } = job;
  let map: Buffer | undefined;
  let mapStart = 0; // `sent` at the mapping's first byte
  try {
    return await drive(job, 'write', (sent) => {
      if (!map || sent >= mapStart + map.length) {
        if (map) munmap(map);
        map = undefined;
        const m = mmap(fileFd, offset + sent, Math.min(MMAP_WINDOW, length - sent));
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
