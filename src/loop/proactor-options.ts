/**
 * The options of `new Proactor()`: the ring's size and setup (CQ size, submit-all, a
 * registered ring fd) and the provided buffers its multishot recvs share (how many, how
 * large, bundled or filled incrementally), with the checks of the setup part.
 */
import * as v from '../sys/validate.js';

/** Options of `new Proactor()`. */
export interface ProactorOptions {
  /** Submission queue entries of the ring; default 256. */
  entries?: number;
  /**
   * The buffers `recvMultishot` receives into, shared by every connection and registered
   * with the kernel at the first call (IORING_REGISTER_PBUF_RING, 5.19): `count` (a power of
   * two, default 256; 0: none, each multishot recv then gets a buffer of its own and is
   * re-armed after every chunk, as on kernels before 6.0) of `size` bytes (default 16 KiB).
   */
  recvBuffers?: {
    /** How many buffers: a power of two, default 256; 0 for none. */
    count?: number;
    /** Bytes per buffer; default 16 KiB. */
    size?: number;
    /**
     * IORING_RECVSEND_BUNDLE (6.10): one completion may fill several buffers in a row, so a
     * burst of data costs one CQE; `recvMultishot` then calls back once per buffer. Default false.
     */
    bundle?: boolean;
    /**
     * IOU_PBUF_RING_INC (6.12): the kernel fills a buffer bit by bit, each recv taking only
     * what it needs, so small messages do not each use up a whole buffer. Default false;
     * not with `bundle`.
     */
    incremental?: boolean;
  };
  /**
   * In `run()`, a batch of completions that prepares this many entries submits them at once,
   * without waiting for the batch's end, so the first replies leave while the rest of the
   * batch is handled: one more io_uring_enter per this many entries. 0 (the default): submit
   * only when the batch is done. On a 2-core VM under heavy load, 16 cost about 10% more CPU
   * per HTTP hello request than 0 and did not raise req/s reliably: measure before setting it.
   */
  submitEvery?: number;
  /** IORING_SETUP_CQSIZE: completion queue entries; default twice `entries`. */
  cqEntries?: number;
  /** IORING_SETUP_SUBMIT_ALL (5.18); default true where the kernel has it (see RingOptions). */
  submitAll?: boolean;
  /** IORING_REGISTER_RING_FDS (5.18): enter by the registered index; default false (see RingOptions). */
  registerRingFd?: boolean;
}

/** The ring setup options of a ProactorOptions, checked. */
export function ringSetup(o: ProactorOptions): Pick<ProactorOptions, 'cqEntries' | 'submitAll' | 'registerRingFd'> {
  return {
    cqEntries: o.cqEntries === undefined ? undefined : v.int('cqEntries', o.cqEntries, 1, 65536),
    submitAll: o.submitAll === undefined ? undefined : v.bool('submitAll', o.submitAll),
    registerRingFd: o.registerRingFd === undefined ? undefined : v.bool('registerRingFd', o.registerRingFd),
  };
}
