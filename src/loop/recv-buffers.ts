/**
 * The Proactor's provided buffers (io_uring_register(2) IORING_REGISTER_PBUF_RING, 5.19): one
 * slab of `count` buffers of `size` bytes that the kernel picks from for every multishot recv
 * (IORING_RECV_MULTISHOT, 6.0), naming the one it filled in each completion. A connection
 * then holds no receive buffer of its own while it waits, and its recv is armed once rather
 * than once per request — the way current io_uring servers receive. A buffer goes back to
 * the kernel as soon as its completion has been handled; the returns are published together,
 * once per batch, before the next submit.
 */
import type { NativeRing } from '../sys/native.js';
import { ringProbe } from '../sys/uring.js';

/** The buffer group id rawio registers. */
export const BGID = 0;

export class RecvBuffers {
  readonly slab: Uint8Array;
  private readonly returned: Int32Array;
  private n = 0;

  private constructor(
    private readonly raw: NativeRing,
    readonly count: number,
    readonly size: number,
  ) {
    this.slab = new Uint8Array(count * size); // a plain Uint8Array: its subarray views need no Buffer wrapper
    this.returned = new Int32Array(count);
  }

  /**
   * Registers the buffers, or returns undefined where the kernel has no buffer rings (5.19)
   * or no multishot recv (6.0, the release that also brought IORING_OP_SEND_ZC, which the
   * opcode probe can see: the recv flag itself cannot be probed).
   */
  static open(raw: NativeRing, count: number, size: number): RecvBuffers | undefined {
    if (count === 0 || !ringProbe().opcodes.includes('SEND_ZC')) return undefined;
    const b = new RecvBuffers(raw, count, size);
    return raw.registerBufRing(BGID, b.slab, count, size) === 0 ? b : undefined;
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
    this.raw.recycleBufs(this.returned, this.n);
    this.n = 0;
  }
}
