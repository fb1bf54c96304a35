/**
 * MSG_ZEROCOPY (4.14; the kernel's Documentation/networking/msg_zerocopy.rst): `send(fd,
 * buf, { zerocopy: true })` sets SO_ZEROCOPY on the socket once and sends with MSG_ZEROCOPY,
 * so the kernel pins the buffer's pages instead of copying them into socket memory. The send
 * returns as soon as the bytes are queued, but the kernel reads the pages until the peer has
 * acknowledged them: it reports that later, on the socket's error queue, as a range of send
 * ids. Every successful zero-copy send takes the next id of a per-socket u32 counter;
 * {@link ZerocopySocket} mirrors that counter and holds a reference to each send's buffer until
 * its id is reported, so a buffer cannot be collected (and its memory reused) while the kernel
 * may still transmit from it. The caller must not write into a buffer before then either: the
 * bytes on the wire would change.
 *
 * Each completion also says whether the kernel copied after all (SO_EE_CODE_ZEROCOPY_COPIED):
 * it does on loopback, where the receiver would otherwise hold the sender's pages, and for
 * devices without scatter-gather.
 */
import { native } from './native.js';
import { pin } from './pin.js';
import * as v from './validate.js';

/** send(2) flag: pin the pages instead of copying (4.14). */
export const MSG_ZEROCOPY = 0x4000000;
const MSG_NOSIGNAL = 0x4000;
const MSG_DONTWAIT = 0x40;

/** What {@link ZerocopySocket.reap} and {@link zerocopyCompletions} report. */
export interface ZerocopyCompletions {
  /** Zero-copy sends whose completion arrived in this call (their buffers are released). */
  completed: number;
  /** Of those, the sends the kernel copied after all (SO_EE_CODE_ZEROCOPY_COPIED). */
  copied: number;
  /** Zero-copy sends still waiting for their completion. */
  pending: number;
}

/** Zero-copy sends the kernel reported done, and of those the ones it copied after all. */
export interface ZerocopyCounts {
  /** Zero-copy sends whose completion (or notification) arrived. */
  sends: number;
  /** Of those, the ones the kernel copied after all (every one over loopback). */
  copied: number;
}

/** Options of {@link send}. */
export interface SendOptions {
  /** Where the slice of `buf` starts; default 0. */
  offset?: number;
  /** Bytes of `buf` from `offset`; default the rest of it. */
  length?: number;
  /** send(2) flags besides MSG_NOSIGNAL and MSG_DONTWAIT, which are always set. */
  flags?: number;
  /** MSG_ZEROCOPY (after SO_ZEROCOPY on first use): see {@link ZerocopySocket}. */
  zerocopy?: boolean;
}

/**
 * One socket's zero-copy sends: the id the kernel gives the next one, and the buffers of
 * those whose completion has not arrived. rawio's loops keep one per connection; `send()`
 * and `zerocopyCompletions()` keep one per fd.
 */
export class ZerocopySocket {
  /** SO_ZEROCOPY was accepted; false when the socket refused it (AF_UNIX: EOPNOTSUPP). */
  readonly enabled: boolean;
  /** Zero-copy sends whose completion arrived, and of those the ones the kernel copied. */
  readonly totals: {
    /** Zero-copy sends whose completion arrived. */
    completed: number;
    /** Of those, the ones the kernel copied after all. */
    copied: number;
  } = { completed: 0, copied: 0 };
  private nextId = 0;
  private gone = false; // released: the fd number may already belong to another socket
  private readonly held = new Map<number, Uint8Array>();
  private readonly out = new Int32Array(3 * 64);

  /**
   * Sets SO_ZEROCOPY on `fd`; a socket that refuses it gets plain sends.
   * @param fd The socket, which stays the caller's to close.
   */
  constructor(readonly fd: number) {
    this.enabled = native.setZerocopy(v.fd(fd), true) === 0;
  }

  /** Zero-copy sends still waiting for their completion. */
  get pending(): number {
    return this.held.size;
  }

  /**
   * send(2) of `buf[off, off + len)` with MSG_ZEROCOPY (plain when the socket refused
   * SO_ZEROCOPY): bytes sent (maybe fewer) or `-errno`. `-ENOBUFS` means too many sends
   * wait for completions (the socket's optmem): reap, or send this one plainly. A bad
   * argument is a TypeError / RangeError, as everywhere.
   */
  send(buf: Uint8Array, off: number, len: number, flags = 0): number {
    // The addon checks the buffer and the slice; flags would be coerced by the `|` below.
    const fl = v.int('flags', flags, 0, 0x7fffffff) | MSG_NOSIGNAL | MSG_DONTWAIT | (this.enabled ? MSG_ZEROCOPY : 0);
    const r = native.sendFlags(this.fd, buf, off, len, fl);
    // A send that queued bytes took an id; one that failed gave its id back.
    if (r > 0 && this.enabled) {
      pin(buf); // the kernel sends from its pages until the completion
      this.held.set(this.nextId, buf);
      this.nextId = (this.nextId + 1) >>> 0;
    }
    return r;
  }

  /** Reads the completions waiting on the error queue and releases their buffers. */
  reap(): ZerocopyCompletions {
    const res = { completed: 0, copied: 0, pending: 0 };
    for (; !this.gone;) {
      const n = this.held.size === 0 ? 0 : native.zerocopyCompletions(this.fd, this.out);
      if (n < 0) {
        this.release(); // the socket is gone (EBADF, ENOTSOCK): no completion will come
        break;
      }
      for (let i = 0; i < n; i++) {
        const first = this.out[3 * i]! >>> 0;
        const last = this.out[3 * i + 1]! >>> 0;
        const count = ((last - first) >>> 0) + 1; // the ids are u32 and wrap
        for (let k = 0; k < count; k++) this.held.delete((first + k) >>> 0);
        res.completed += count;
        if (this.out[3 * i + 2] === 1) res.copied += count;
      }
      if (n < this.out.length / 3) break;
    }
    this.totals.completed += res.completed;
    this.totals.copied += res.copied;
    res.pending = this.held.size;
    return res;
  }

  /** Forgets the held buffers (the socket is closed: no completion will come). */
  release(): void {
    this.gone = true;
    this.held.clear();
  }
}

const sockets = new Map<number, ZerocopySocket>();

/** The fd's zero-copy bookkeeping, made (and SO_ZEROCOPY set) on first use. @internal */
export function zerocopySocket(fd: number): ZerocopySocket {
  let s = sockets.get(fd);
  if (s === undefined) sockets.set(fd, (s = new ZerocopySocket(fd)));
  return s;
}

/**
 * send(2) of `buf` (or its `offset` / `length` slice), always with MSG_NOSIGNAL and
 * MSG_DONTWAIT: bytes sent (maybe fewer) or `-errno` (`-EAGAIN` when the socket is full).
 * With `{ zerocopy: true }` the send uses MSG_ZEROCOPY (see {@link ZerocopySocket}): rawio
 * keeps `buf` referenced until {@link zerocopyCompletions} reports it, and the caller must
 * not modify it before then. Closing the fd with {@link close} forgets its pending sends.
 * @example
 * const n = sys.send(fd, body, { zerocopy: true });
 * // later, when the socket has been written to:
 * const { completed, copied, pending } = sys.zerocopyCompletions(fd);
 */
export function send(fd: number, buf: Uint8Array, opts?: SendOptions): number {
  v.fd(fd);
  v.liveBytes(buf);
  const o = v.object<SendOptions>('opts', opts);
  const [off, len] = v.slice(buf, o.offset, o.length);
  const flags = o.flags === undefined ? 0 : v.int('flags', o.flags, 0, 0x7fffffff);
  if (o.zerocopy !== undefined && v.bool('zerocopy', o.zerocopy)) return zerocopySocket(fd).send(buf, off, len, flags);
  return native.sendFlags(fd, buf, off, len, flags | MSG_NOSIGNAL | MSG_DONTWAIT);
}

/**
 * Reads the zero-copy completions waiting on `fd`'s error queue (recvmsg(2) with
 * MSG_ERRQUEUE) and releases the buffers of the sends they cover. Never blocks; a socket
 * with no zero-copy sends reports zeros.
 */
export function zerocopyCompletions(fd: number): ZerocopyCompletions {
  const s = sockets.get(v.fd(fd));
  return s === undefined ? { completed: 0, copied: 0, pending: 0 } : s.reap();
}

/**
 * Whether `fd` has zero-copy sends whose completion has not come (after reading those that
 * have): the socket's send queue still holds their buffers' pages. @internal
 */
export function zerocopyPending(fd: number): boolean {
  const s = sockets.get(fd);
  if (s === undefined) return false;
  s.reap();
  return s.pending > 0;
}

/** Drops `fd`'s zero-copy bookkeeping: its fd number is about to be reused. @internal */
export function forgetZerocopy(fd: number): void {
  sockets.get(fd)?.release();
  sockets.delete(fd);
}
