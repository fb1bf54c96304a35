/**
 * `sendBuffer`: `transferFile`'s twin for a large body already in memory. It sends the whole
 * slice to a non-blocking socket, resuming after short sends and waiting for writability on
 * EAGAIN, and with `zerocopy` uses MSG_ZEROCOPY (see src/sys/msg-zerocopy.ts): then it
 * resolves only once the kernel has reported every send done, so that the caller may reuse
 * the buffer the moment the promise settles. Completions arrive on the socket's error queue,
 * and a socket with completions waiting polls as EPOLLERR (libuv's poll handle reports it as
 * UV_EBADF): the default wait for them is `waitErrorQueue` (./wait.ts); a loop that watches
 * the socket itself (a Reactor) passes `completions` instead.
 */
import { EAGAIN, ENOBUFS, EPIPE } from '../sys/errno.js';
import { errnoError } from '../sys/errors.js';
import { send, zerocopySocket, type ZerocopySocket } from '../sys/msg-zerocopy.js';
import { abortError } from '../sys/ring-core.js';
import * as v from '../sys/validate.js';
import { YIELD_BYTES } from './drive.js';
import { abortable, waitErrorQueue, writableWaiter } from './wait.js';

/** Options of {@link sendBuffer}. */
export interface SendBufferOptions {
  /** Where the slice of `buf` starts; default 0. */
  offset?: number;
  /** Bytes of `buf` from `offset`; default the rest of it. */
  length?: number;
  /** MSG_ZEROCOPY; default false. A socket that refuses SO_ZEROCOPY (AF_UNIX) gets plain sends. */
  zerocopy?: boolean;
  /** Resolves when the socket is writable; default a libuv poll handle (UV_WRITABLE). */
  wait?: (fd: number) => Promise<void>;
  /**
   * Resolves when zero-copy completions may be waiting (the socket polled EPOLLERR); default
   * a libuv poll handle on `fd`. A Reactor-driven sender resolves it from its Connection's
   * `onErrorQueue`.
   */
  completions?: (fd: number) => Promise<void>;
  /**
   * Stops sending, also while waiting for writability: the promise rejects with an AbortError
   * once the kernel is done with the buffer (with `zerocopy`, when the sends it holds complete).
   */
  signal?: AbortSignal;
  /** Called with the bytes of each send the kernel takes, as it takes them (progress, or what is left to send). */
  onSent?: (bytes: number) => void;
}

/** What {@link sendBuffer} resolves with. */
export interface SendBufferResult {
  /** Bytes sent: the whole slice. */
  bytes: number;
  /** Sends the kernel reported done with MSG_ZEROCOPY (0 without `zerocopy`). */
  zerocopySends: number;
  /** Of those, the ones the kernel copied after all (always, on loopback). */
  copied: number;
}

const yieldToLoop = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * Sends all of `buf` (or its `offset` / `length` slice) to the non-blocking socket `fd`;
 * with `{ zerocopy: true }` the buffer must stay unmodified until the promise settles.
 * @example
 * const { bytes, copied } = await sendBuffer(sockFd, body, { zerocopy: true });
 */
export async function sendBuffer(fd: number, buf: Uint8Array, opts?: SendBufferOptions): Promise<SendBufferResult> {
  v.fd(fd);
  v.liveBytes(buf);
  const o = v.object<SendBufferOptions>('opts', opts);
  const [off, len] = v.slice(buf, o.offset, o.length);
  const zc = o.zerocopy === undefined ? false : v.bool('zerocopy', o.zerocopy);
  const given = o.wait === undefined ? undefined : (v.func('wait', o.wait) as (fd: number) => Promise<void>);
  const completions =
    o.completions === undefined
      ? waitErrorQueue
      : (v.func('completions', o.completions) as (fd: number) => Promise<void>);
  const signal = o.signal;
  if (signal !== undefined && !(signal instanceof AbortSignal)) throw v.typeError('signal', 'an AbortSignal', signal);
  const onSent = o.onSent === undefined ? undefined : (v.func('onSent', o.onSent) as (bytes: number) => void);
  // One poll handle across EAGAINs, closed when sending ends; the wait rejects as soon as
  // `signal` aborts, so a peer that never reads does not hold an aborted send.
  const waiter = given === undefined ? writableWaiter() : undefined;
  const plainWait = given ?? ((sock: number) => waiter!.wait(sock));
  const wait = signal === undefined ? plainWait : abortable(plainWait, signal);
  const zs = zc ? zerocopySocket(fd) : undefined;
  const before = { ...zs?.totals };
  const reap = () => zs?.reap();
  let sent = 0;
  let failure: unknown;
  try {
    let sinceYield = 0;
    while (sent < len) {
      if (signal?.aborted === true) throw abortError(signal);
      let r = zs !== undefined ? zs.send(buf, off + sent, len - sent) : plain(fd, buf, off + sent, len - sent);
      if (r === -ENOBUFS && zs !== undefined) {
        // Too many sends wait for completions (the socket's optmem): wait for some, or copy
        // this one when none is pending. The socket may well be writable meanwhile.
        reap();
        if (zs.pending > 0) {
          await completions(fd);
          continue;
        }
        r = plain(fd, buf, off + sent, len - sent);
      }
      if (r > 0) {
        sent += r;
        onSent?.(r);
        sinceYield += r;
        if (sinceYield >= YIELD_BYTES) {
          sinceYield = 0;
          reap();
          await yieldToLoop();
        }
      } else if (r === -EAGAIN) {
        sinceYield = 0;
        reap();
        await writable(fd, wait, zs);
      } else throw errnoError(r === 0 ? -EPIPE : r, 'send');
    }
  } catch (e) {
    failure = e;
  } finally {
    waiter?.close();
  }
  if (zs !== undefined) await settle(zs, completions);
  if (failure !== undefined) throw failure;
  const completed = (zs?.totals.completed ?? 0) - (before.completed ?? 0);
  return { bytes: sent, zerocopySends: completed, copied: (zs?.totals.copied ?? 0) - (before.copied ?? 0) };
}

// A socket with completions on its error queue polls as EPOLLERR, which libuv's poll handle
// reports as EBADF: that wait ends in a reap, not an error.
async function writable(fd: number, wait: (fd: number) => Promise<void>, zs: ZerocopySocket | undefined) {
  try {
    await wait(fd);
  } catch (e) {
    if (zs === undefined || zs.reap().completed === 0 || (e as { code?: string }).code !== 'EBADF') throw e;
  }
}

function plain(fd: number, buf: Uint8Array, at: number, len: number): number {
  return send(fd, buf, { offset: at, length: len });
}

// Waits until every zero-copy send on the socket has been reported (or the socket is gone).
// The reap and the wait's start happen in one synchronous stretch, so no report falls between.
async function settle(zs: ZerocopySocket, completions: (fd: number) => Promise<void>): Promise<void> {
  for (zs.reap(); zs.pending > 0; zs.reap()) await completions(zs.fd);
}
