/**
 * `sendfile`: sendfile(2) from the file straight into the socket, the page cache pages
 * handed to TCP without passing through user space: no copy into a JS buffer and back.
 */
import { native } from '../sys/native.js';
import { drive, type Sent } from './drive.js';
import type { TransferJob } from './job.js';

/** The method's core: the count itself when the kernel took every byte at once (see `drive`). */
export function sendfileStart(job: TransferJob): Sent {
  const { sockFd, fileFd, offset, length } = job;
  return drive(job, 'sendfile', (sent) => native.sendfile(sockFd, fileFd, offset + sent, length - sent));
}

export async function sendfileTransfer(job: TransferJob): Promise<number> {
  return sendfileStart(job);
}
