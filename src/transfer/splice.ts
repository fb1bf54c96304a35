/**
 * `splice`: file → pipe → socket with splice(2), the page cache pages moved by reference
 * through a pipe (the pipe is the kernel's buffer of page references, which is why splice
 * needs one). The pipe's capacity (`pipeSize`, F_SETPIPE_SZ) bounds the bytes moved per
 * round trip. The pipe is filled only when empty, so the bytes in it always follow the
 * bytes already sent; after an error it may hold bytes and is closed, not pooled.
 */
import { ErrnoError, errnoError } from '../sys/errors.js';
import { native } from '../sys/native.js';
import { drive, releasing, type Sent } from './drive.js';
import type { TransferJob } from './job.js';
import { acquirePipe, releasePipe, type Pipe } from './pipes.js';
import { readwriteStart } from './readwrite.js';

const { SPLICE_F_MOVE, SPLICE_F_NONBLOCK, SPLICE_F_MORE } = native.constants as Record<string, number>;

/** The method's core: the count itself when the kernel took every byte at once (see `drive`). */
export function spliceStart(job: TransferJob): Sent {
  const { sockFd, fileFd, offset, length } = job;
  let pipe: Pipe;
  try {
    pipe = acquirePipe(job.pipeSize ?? 0);
  } catch (e) {
    // Out of fds for the pipe: the body still goes out, through a buffer instead.
    if (e instanceof ErrnoError && (e.code === 'EMFILE' || e.code === 'ENFILE')) return readwriteStart(job);
    throw e;
  }
  let inPipe = 0;
  return releasing(
    () =>
      drive(job, 'splice', (sent) => {
        if (inPipe === 0) {
          // The pipe is empty, so this cannot meet EAGAIN; the file side may block on disk.
          const n = native.splice(
            fileFd,
            offset + sent,
            pipe.w,
            -1,
            Math.min(pipe.size, length - sent),
            SPLICE_F_MOVE!,
          );
          if (n < 0) throw errnoError(n, 'splice');
          if (n === 0) return 0;
          inPipe = n;
        }
        const more = length - sent > inPipe ? SPLICE_F_MORE! : 0;
        const w = native.splice(pipe.r, -1, sockFd, -1, inPipe, SPLICE_F_MOVE! | SPLICE_F_NONBLOCK! | more);
        if (w > 0) inPipe -= w;
        return w;
      }),
    () => releasePipe(pipe, inPipe === 0),
  );
}

export async function spliceTransfer(job: TransferJob): Promise<number> {
  return spliceStart(job);
}
