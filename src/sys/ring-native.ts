/**
 * The internal factory through which rawio's own loop, the Proactor, gets its `Ring` together
 * with the native ring under it (native/uring.cc). The Proactor validates at its public entry
 * points and holds its buffers in its own request records, so it prepares entries on the
 * native ring directly, through the helpers of `uring-prep.ts`: no argument checks, no buffer
 * holding, no per-entry credential check (the Ring's submit still checks). Not exported from
 * the package. Also the Ring subclass of the file transfers, which read and send their own
 * buffers unpinned.
 */
import { EINVAL } from './errno.js';
import { ErrnoError } from './errors.js';
import type { NativeRing } from './native.js';
import { Ring, type CompletionHandler, type RingOptions, type SocketOptions } from './ring.js';

/**
 * The ring of the file transfers (`uring`, `direct`: src/transfer/uring.ts): a Ring that also
 * reads and sends the transfer's own file chunks, which rawio allocates and lends to no other
 * code, without pinning them (pin.ts). @internal
 */
export class TransferRing extends Ring {
  /** `read` into a buffer of rawio's own, not pinned. */
  override readOwn(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return super.readOwn(fd, buf, offset, length, position);
  }
  /** `send` of a buffer of rawio's own, not pinned. */
  override sendOwn(fd: number, buf: Uint8Array, opts?: SocketOptions): Promise<number> {
    return super.sendOwn(fd, buf, opts);
  }
}

/** A Ring that lets its creator reach the native ring. */
class LoopRing extends Ring {
  get native(): NativeRing {
    return this.raw;
  }
}

/**
 * The proactor's ring. DEFER_TASKRUN (6.1): the kernel posts completions only when this
 * thread enters it to reap them — run() does so once per batch — rather than interrupting
 * JavaScript with task work; the ring then serves this thread alone (SINGLE_ISSUER), which
 * a proactor does anyway. COOP_TASKRUN (5.19) is the nearest on older kernels. No eventfd is
 * registered unless attach() asks for one: run() reaps through io_uring_enter(GETEVENTS).
 * Returns the Ring and the native ring under it. @internal
 */
export function openProactorRing(
  entries: number,
  onCompletion: CompletionHandler,
  setup: Pick<RingOptions, 'cqEntries' | 'submitAll' | 'registerRingFd'> = {},
): { ring: Ring; raw: NativeRing } {
  const tries: RingOptions[] = [{ deferTaskrun: true }, { coopTaskrun: true }, {}];
  for (let i = 0; ; i++) {
    try {
      const ring = new LoopRing({ entries, attach: false, onCompletion, ...setup, ...tries[i] });
      return { ring, raw: ring.native };
    } catch (e) {
      // EINVAL: a kernel that lacks the flag; anything else (ENOMEM, EPERM …) is not about it
      if (i === tries.length - 1 || !(e instanceof ErrnoError) || e.errno !== -EINVAL) throw e;
    }
  }
}
