/**
 * `auto`: the rule of nginx's `directio` directive (the bench's claim 5):
 * a transfer smaller than `job.directio` bytes goes through `sendfile` and the page cache,
 * where small hot files stay; a larger one goes through `direct` (O_DIRECT reads via
 * io_uring), so a big file streamed once does not evict them. Where the kernel refuses
 * io_uring, everything goes through `sendfile`.
 */
import { Ring } from '../sys/ring.js';
import { directTransfer } from './direct.js';
import type { TransferJob } from './job.js';
import type { Sent } from './drive.js';
import { sendfileStart, sendfileTransfer } from './sendfile.js';

/** Which method `auto` picks for a job. */
export function autoChoice(job: TransferJob): 'sendfile' | 'direct' {
  return job.length >= job.directio && Ring.supported() ? 'direct' : 'sendfile';
}

/** The method's core: `sendfile`'s count itself when the kernel took every byte at once. */
export function autoStart(job: TransferJob): Sent {
  return autoChoice(job) === 'direct' ? directTransfer(job) : sendfileStart(job);
}

export function autoTransfer(job: TransferJob): Promise<number> {
  return autoChoice(job) === 'direct' ? directTransfer(job) : sendfileTransfer(job);
}

export { autoTransfer as transfer };
