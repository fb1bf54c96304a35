/**
 * `sendfile`: sendfile(2) from the file straight into the socket, the page cache pages
 * handed to TCP without passing through user space: no copy into a JS buffer and back.
 */
import { native } from '../sys/native.js';
import { drive } from './drive.js';
import type { TransferJob } from './job.js';

export function sendfileTransfer(job: TransferJob): Promise<number> {
  const { sockFd, fileFd, offset, length } = job;
  return drive(job, 'sendfile', (sent) => native.sendfile(sockFd, fileFd, offset + sent, length - sent));
}
