/**
 * The Proactor's provided buffers (io_uring_register(2) IORING_REGISTER_PBUF_RING, 5.19): one
 * slab of `count` buffers of `size` bytes that the kernel picks from for every multishot recv
 * (IORING_RECV_MULTISHOT, 6.0), naming the one it filled in each completion. A connection
 * then holds no receive buffer of its own while it waits, and its recv is armed once rather
 * than once per request — the way current io_uring servers receive. A buffer goes back to
 * the kernel as soon as its completion has been handled; the returns are published together,
 * once per batch, before the next submit.
 *
 * Two ways to use them better, each optional. `bundle` (IORING_RECVSEND_BUNDLE, 6.10): one
 * completion may fill several buffers, the ones that followed the first in the ring; so this
 * class mirrors the ring's order (which bid sits at which position) to know which they were.
 * `incremental` (IOU_PBUF_RING_INC, 6.12): a completion uses only part of a buffer, and
 * IORING_CQE_F_BUF_MORE says the kernel keeps filling it from where it stopped; so this class
 * remembers each buffer's fill offset, and hands a buffer back only once the kernel is done.
 */
import type { NativeRing } from '../sys/native.js';
import { pin } from '../sys/pin.js';
import type { RecvCallback } from './proactor-req.js';
import { ringProbe } from '../sys/uring.js';
import * as v from '../sys/validate.js';

/** The buffer group id rawio registers. */
export const BGID = 0;
const IOU_PBUF_RING_INC = 2;
const IORING_CQE_F_BUF_MORE = 1 << 4;
const POS_MASK = 0xffff; // the native ring's tail is a u16

/** How the kernel fills the buffers: one per completion, several (bundle), or bit by bit (incremental). */
export type BufMode = 'plain' | 'bundle' | 'incremental';

/** The mode `recvBuffers` options ask for; bundle and incremental do not go together. */
export function recvBufferMode(rb: { bundle?: boolean; incremental?: boolean }): BufMode {
  const bundle = rb.bundle === undefined ? false : v.bool('recvBuffers.bundle', rb.bundle);
  const inc = rb.incremental === undefined ? false : v.bool('recvBuffers.incremental', rb.incremental);
  if (bundle && inc) throw v.rangeError('recvBuffers', 'bundle or incremental, not both', 'both');
  return bundle ? 'bundle' : inc ? 'incremental' : 'plain';
}

export class RecvBuffers {
  readonly slab: Uint8Array;
  private readonly returned: Int32Array;
  private n = 0;
  /** bundle: the bid at each ring position, and each bid's position. */
  private readonly bidAt: Int32Array;
  private readonly posOf: Int32Array;
  private tail: number;
  /** incremental: how far the kernel has filled each buffer. */
  private readonly filled: Int32Array;

  private constructor(
    private readonly raw: NativeRing,
    readonly count: number,
    readonly size: number,
    readonly mode: BufMode,
  ) {
    this.slab = new Uint8Array(count * size); // a plain Uint8Array: its subarray views need no Buffer wrapper
    this.returned = new Int32Array(count);
    const n = mode === 'plain' ? 0 : count;
    this.bidAt = new Int32Array(mode === 'bundle' ? n : 0).map((_, i) => i); // registered in order 0 … count-1
    this.posOf = new Int32Array(mode === 'bundle' ? n : 0).map((_, i) => i);
    this.tail = count;
    this.filled = new Int32Array(mode === 'incremental' ? n : 0);
  }

  /**
   * Hands a completion's bytes to `cb`, one call per buffer, and takes back the buffers the
   * kernel is done with. `flags` carries the first buffer's id in its upper 16 bits.
   */
  deliver(flags: number, res: number, cb: RecvCallback): void {
    const bid = flags >>> 16;
    if (this.mode === 'incremental') {
      const at = this.filled[bid]!;
      const more = (flags & IORING_CQE_F_BUF_MORE) !== 0;
      this.filled[bid] = more ? at + res : 0;
      try {
        cb(res, this.slab.subarray(bid * this.size + at, bid * this.size + at + res));
      } finally {
        if (!more) this.give(bid);
      }
      return;
    }
    if (this.mode === 'plain') {
      try {
        cb(res, this.view(bid, res));
      } finally {
        this.give(bid);
      }
      return;
    }
    // bundle: full buffers in ring order from the first one's position, the last maybe partial
    let pos = this.posOf[bid]!;
    const bids: number[] = [];
    for (let left = res; left > 0; left -= this.size) bids.push(this.bidAt[pos++ & (this.count - 1)]!);
    try {
      for (let i = 0, left = res; i < bids.length; i++, left -= this.size) {
        const len = Math.min(left, this.size);
        cb(len, this.view(bids[i]!, len));
      }
    } finally {
      for (const b of bids) this.give(b);
    }
  }

  /**
   * Registers the buffers, or returns undefined where the kernel has no buffer rings (5.19)
   * or no multishot recv (6.0, the release that also brought IORING_OP_SEND_ZC, which the
   * opcode probe can see: the recv flag itself cannot be probed). The slab is pinned
   * (pin.ts): the kernel writes into it until the ring closes, and every chunk a callback
   * gets is a view of it, whose ArrayBuffer the callback could otherwise transfer away.
   */
  static open(raw: NativeRing, count: number, size: number, mode: BufMode = 'plain'): RecvBuffers | undefined {
    if (count === 0 || !ringProbe().opcodes.includes('SEND_ZC')) return undefined;
    const b = new RecvBuffers(raw, count, size, mode);
    const flags = mode === 'incremental' ? IOU_PBUF_RING_INC : 0;
    pin(b.slab);
    return raw.registerBufRing(BGID, b.slab, count, size, flags) === 0 ? b : undefined;
  }

  /** The bytes the kernel put in buffer `bid`. */
  view(bid: number, len: number): Uint8Array {
    const at = bid * this.size;
    return this.slab.subarray(at, at + len);
  }

  /** Buffer `bid` is free again (handed back at the next publish()). */
  give(bid: number): void {
    this.returned[this.n++] = bid;
  }

  /** Hands the freed buffers back to the kernel: before each submit. */
  publish(): void {
    if (this.n === 0) return;
    if (this.mode === 'bundle') {
      // the native ring writes them at its tail in this order: mirror it
      for (let i = 0; i < this.n; i++) {
        const b = this.returned[i]!;
        this.bidAt[this.tail & (this.count - 1)] = b;
        this.posOf[b] = this.tail;
        this.tail = (this.tail + 1) & POS_MASK;
      }
    }
    this.raw.recycleBufs(this.returned, this.n);
    this.n = 0;
  }
}
