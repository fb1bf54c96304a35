/**
 * What a corked Connection holds until `uncork()`: the writes of one batch, in order, as
 * the parts of one write(2) or writev(2). A write of up to COPY_MAX bytes is copied into an
 * output buffer, so a pipelined batch of small replies (RESP's `+OK\r\n`, a short bulk)
 * leaves as one contiguous buffer rather than one iovec each; a larger write is kept by
 * reference, between the copied runs before and after it. Redis builds its reply buffer
 * the same way: small replies appended to one buffer, big ones kept as their own objects.
 *
 * The output buffer is lent per thread: one spare is kept and handed to the next batch, so
 * a thread that corks one connection at a time (every model) copies into the same memory
 * again and again. The parts are only valid until `release()`: the Connection writes them
 * and copies whatever the kernel did not take into its queue before releasing the batch.
 */

import { EAGAIN } from '../sys/errno.js';
import { native } from '../sys/native.js';

/** The most parts one writev(2) takes (native.writev sends the first IOV_MAX from its start index). */
export const IOV_MAX = 1024;

/**
 * Writes `parts[from..]` in order to a non-blocking socket: one write(2) for a last part,
 * writev(2) otherwise, offering the next IOV_MAX parts as long as the kernel takes all it
 * was offered, so that only bytes the kernel refused are left (and judged against
 * maxQueue), never parts it was not shown. Returns the bytes taken (0 when the socket is
 * full at once), or -errno when a call failed; the caller walks `parts` by that count.
 */
export function writeParts(fd: number, parts: readonly Uint8Array[], from = 0): number {
  let taken = 0;
  let i = from;
  while (i < parts.length) {
    const r = i === parts.length - 1 ? native.write(fd, parts[i]!, 0, parts[i]!.length) : native.writev(fd, parts, i);
    if (r === -EAGAIN) break;
    if (r < 0) return r;
    taken += r;
    const offered = Math.min(parts.length, i + IOV_MAX);
    let left = r;
    while (i < offered && left >= parts[i]!.length) left -= parts[i++]!.length;
    if (i < offered) break; // stopped inside what it was offered: the socket is full
  }
  return taken;
}

/** Writes of at most this many bytes are copied into the batch's buffer; larger ones are referenced. */
export const COPY_MAX = 1024;
const BUFFER_SIZE = 16 << 10;

/** The buffer the next batch borrows (undefined while a batch holds it). */
let spare: Uint8Array | undefined;

export class WriteBatch {
  /** The writes so far, in order: copied runs (views of #buf) and referenced buffers. */
  readonly parts: Uint8Array[] = [];
  /** Bytes held, copied or referenced. */
  bytes = 0;
  #buf: Uint8Array | undefined;
  /** The copied run not yet in `parts`: #buf[#start, #end). */
  #start = 0;
  #end = 0;
  /** The batch's first buffer: the one kept as the thread's spare on release. */
  #first: Uint8Array | undefined;

  /** Adds a write (an empty one is dropped). */
  add(b: Uint8Array): void {
    const n = b.length;
    if (n === 0) return;
    this.bytes += n;
    if (n > COPY_MAX) {
      this.#cut();
      this.parts.push(b);
      return;
    }
    let buf = this.#buf;
    if (buf === undefined || buf.length - this.#end < n) buf = this.#fresh();
    let o = this.#end;
    if (n > 64) buf.set(b, o);
    else for (let i = 0; i < n; i++) buf[o + i] = b[i]!;
    o += n;
    this.#end = o;
  }

  /** The parts in order, the copied run at the end included. */
  finish(): Uint8Array[] {
    this.#cut();
    return this.parts;
  }

  /** Gives the buffer back; the parts must no longer be used. */
  release(): void {
    if (spare === undefined) spare = this.#first;
    this.#buf = this.#first = undefined;
    this.parts.length = 0;
    this.bytes = 0;
    this.#start = this.#end = 0;
  }

  /** Ends the copied run: it becomes a part, and later copies go after it. */
  #cut(): void {
    if (this.#end > this.#start) this.parts.push(this.#buf!.subarray(this.#start, this.#end));
    this.#start = this.#end;
  }

  /** An empty buffer: the spare for the batch's first, a new one when that is full (it stays a part). */
  #fresh(): Uint8Array {
    this.#cut();
    let buf: Uint8Array;
    if (this.#first === undefined && spare !== undefined) {
      buf = spare;
      spare = undefined;
    } else buf = new Uint8Array(BUFFER_SIZE);
    this.#first ??= buf;
    this.#buf = buf;
    this.#start = this.#end = 0;
    return buf;
  }
}

/** The largest buffer a queue's small writes are gathered in (Tail). */
export const TAIL_MAX = 16 << 10;

/**
 * Where a write queue gathers its small writes: a buffer the queue's last part is a view of,
 * with room after it. A queued write of up to COPY_MAX bytes is appended there rather than
 * made a part of its own, so that many small writes cost their bytes, not a buffer object
 * (or an ArrayBuffer) each: a queue's byte count (maxQueue, maxOutput) then bounds what it
 * holds. The buffer is sized to the queue (up to TAIL_MAX), so one small write costs little.
 * Used by Connection's queue, a proactor connection's next send and the writes held behind
 * a zero-copy write; each drops its tail (`drop()`) once the queue empties or is handed to
 * the kernel, so bytes in flight are never written over.
 */
export class Tail {
  #buf: Uint8Array | undefined;
  /** #buf is filled up to here. */
  #end = 0;

  /**
   * Queues a copy of `data` (at most COPY_MAX bytes) after the parts `q[from, to)`, which
   * hold `queued` bytes: the last of them grows by it when it ends where this tail is filled
   * to and the tail has room, else a part in a fresh tail is put at `q[to]`. Returns the end
   * of the parts now.
   */
  add(q: Uint8Array[], from: number, to: number, data: Uint8Array, queued: number): number {
    const n = data.length;
    const buf = this.#buf;
    const end = this.#end;
    if (buf !== undefined && to > from && buf.length - end >= n) {
      const last = q[to - 1]!;
      if (last.buffer === buf.buffer && last.byteOffset + last.length === end) {
        copyInto(buf, end, data);
        this.#end = end + n;
        q[to - 1] = new Uint8Array(buf.buffer, last.byteOffset, last.length + n);
        return to;
      }
    }
    const fresh = new Uint8Array(Math.max(n, Math.min(TAIL_MAX, 2 * (queued + n))));
    copyInto(fresh, 0, data);
    this.#buf = fresh;
    this.#end = n;
    q[to] = fresh.subarray(0, n);
    return to + 1;
  }

  /** Whether `part` is a view of this tail's buffer (the queue's own bytes, lent to no caller). */
  holds(part: Uint8Array): boolean {
    return this.#buf !== undefined && part.buffer === this.#buf.buffer;
  }

  /** Forgets the buffer: the next small write starts a fresh one. */
  drop(): void {
    this.#buf = undefined;
    this.#end = 0;
  }
}

function copyInto(buf: Uint8Array, o: number, b: Uint8Array): void {
  const n = b.length;
  if (n > 64) buf.set(b, o);
  else for (let i = 0; i < n; i++) buf[o + i] = b[i]!;
}
