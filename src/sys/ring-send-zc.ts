/**
 * IORING_OP_SEND_ZC (6.0), the io_uring form of MSG_ZEROCOPY, for `Ring`. One request posts
 * two completions: first the send's result with IORING_CQE_F_MORE set (the bytes queued,
 * maybe fewer than asked, or -errno), then a notification (IORING_CQE_F_NOTIF) once the
 * kernel no longer reads the buffer's pages. Only then may the buffer be reused or collected,
 * so the ring holds it until the notification, and the promise resolves only then too. With
 * IORING_SEND_ZC_REPORT_USAGE (6.2) the notification's res carries
 * IORING_NOTIF_USAGE_ZC_COPIED when the kernel copied after all (loopback always does).
 *
 * A short send is resubmitted for the rest as soon as its first completion arrives, without
 * waiting for its notification: each request pins only its own slice, so several may be in
 * flight over one buffer, and the whole call settles when the last notification is in.
 */
import { EPIPE } from './errno.js';
import { errnoError } from './errors.js';
import { abortError } from './ring-core.js';
import * as u from './uring.js';

/** What `Ring.sendZc` resolves with, once the kernel is done with the buffer. */
export interface SendZcResult {
  /** Bytes sent: the whole slice. */
  bytes: number;
  /** SEND_ZC requests it took (more than one after short sends). */
  sends: number;
  /** Of those, the ones the kernel copied after all (IORING_NOTIF_USAGE_ZC_COPIED, 6.2+). */
  copied: number;
}

/**
 * Submits one SEND_ZC of `length` bytes from `offset` of the caller's buffer; `more`
 * receives the first completion's result, and the promise settles at the final one (with
 * the notification's usage bits, or the lone completion's result when no notification
 * follows).
 */
export type SubmitSendZc = (offset: number, length: number, more: (res: number) => void) => Promise<number>;

/** Sends `buf[offset, offset + length)` whole, one SEND_ZC per short send. */
export async function sendZcAll(
  submit: SubmitSendZc,
  offset: number,
  length: number,
  signal?: AbortSignal,
): Promise<SendZcResult> {
  const notes: Promise<number>[] = [];
  let bytes = 0;
  let failure: unknown;
  try {
    do {
      if (signal?.aborted === true) throw abortError(signal);
      const n = await sendOnce(submit, offset + bytes, length - bytes, notes);
      if (n < 0) throw errnoError(n, 'send_zc');
      if (n === 0 && length > 0) throw errnoError(-EPIPE, 'send_zc'); // nothing queued: never loop on it
      bytes += n;
    } while (bytes < length);
  } catch (e) {
    failure = e;
  }
  // Every request's notification, whatever happened: until then the kernel reads the buffer.
  const usage = await Promise.allSettled(notes);
  if (failure !== undefined) throw failure;
  const copied = usage.filter(
    (r) => r.status === 'fulfilled' && (r.value & u.IORING_NOTIF_USAGE_ZC_COPIED) !== 0,
  ).length;
  return { bytes, sends: notes.length, copied };
}

// The first completion's result; the request's final settlement joins `notes`.
function sendOnce(submit: SubmitSendZc, offset: number, length: number, notes: Promise<number>[]): Promise<number> {
  return new Promise<number>((resolve, reject) => {
    const done = submit(offset, length, resolve);
    notes.push(done);
    done.then(resolve, reject); // a lone completion (no notification) decides it; else a no-op
  });
}
