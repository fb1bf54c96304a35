/**
 * Mappings: mmap(2) read-only views of a file, munmap(2), and the two ways to make a view
 * cheap to read — MAP_POPULATE (the kernel fills the page tables at mmap time, so reading the
 * view takes no page fault per 4 KiB page) and madvise(2)'s readahead hints. Only hints
 * that never drop or change data are offered (MADV_NORMAL, RANDOM, SEQUENTIAL, WILLNEED).
 */
import { EINVAL } from './errno.js';
import { check } from './errors.js';
import { native } from './native.js';
import { addonMemory, lentToKernel } from './pin.js';
import * as v from './validate.js';

/** The madvise(2) hints {@link madvise} and `mmap({ advice })` take, in the kernel's words. */
export const mmapAdviceNames = ['normal', 'random', 'sequential', 'willneed'] as const;

/** One of {@link mmapAdviceNames}: MADV_NORMAL, MADV_RANDOM, MADV_SEQUENTIAL or MADV_WILLNEED. */
export type MmapAdvice = (typeof mmapAdviceNames)[number];

const adviceValue: Record<MmapAdvice, number> = {
  normal: native.constants.MADV_NORMAL!,
  random: native.constants.MADV_RANDOM!,
  sequential: native.constants.MADV_SEQUENTIAL!,
  willneed: native.constants.MADV_WILLNEED!,
};

/** Options of {@link mmap}. */
export interface MmapOptions {
  /** MAP_POPULATE: fault the whole view in at mmap time (reads the file if it is not cached). */
  populate?: boolean;
  /** madvise(2) the view at once; see {@link madvise}. */
  advice?: MmapAdvice;
}

/** Checks an advice name: a TypeError for a non-string, a RangeError for an unknown name. */
export function checkAdvice(name: string, a: unknown): MmapAdvice {
  v.str(name, a);
  if (!(mmapAdviceNames as readonly string[]).includes(a as string))
    throw v.rangeError(name, `one of ${mmapAdviceNames.join(', ')}`, a);
  return a as MmapAdvice;
}

/** Checks {@link MmapOptions} (undefined is {}); TypeError / RangeError for bad fields. */
export function checkMmapOptions(name: string, o: unknown): MmapOptions {
  const opts = v.object<MmapOptions>(name, o);
  for (const k of Object.keys(opts))
    if (k !== 'populate' && k !== 'advice') throw v.typeError(`${name}.${k}`, 'not set (an unknown option)', k);
  if (opts.populate !== undefined) v.bool(`${name}.populate`, opts.populate);
  if (opts.advice !== undefined) checkAdvice(`${name}.advice`, opts.advice);
  return opts;
}

/**
 * A read-only Buffer over `[offset, offset + length)` of the file (MAP_SHARED, PROT_READ).
 * `offset` need not be page-aligned. For a regular file the view is clamped to the end of
 * the file, for a block device to the device's end (past either the kernel would raise
 * SIGBUS), so it may be shorter than asked, or empty; a view over 4 GiB - 1 (Node's Buffer limit) is EOVERFLOW. `populate` prefaults
 * it (MAP_POPULATE); `advice` madvises it at once. A file truncated while mapped still
 * raises SIGBUS when JS reads the lost pages (a write(2) from them fails with EFAULT
 * instead): map what you own. Writing to the Buffer faults; do not.
 */
export function mmap(fd: number, offset: number, length: number, opts?: MmapOptions): Buffer {
  v.fd(fd);
  v.int('offset', offset);
  v.int('length', length);
  const o = checkMmapOptions('opts', opts);
  const r = native.mmap(fd, offset, length, o.populate === true ? native.constants.MAP_POPULATE! : 0);
  if (typeof r === 'number') check(r, 'mmap');
  const buf = addonMemory(r as Buffer);
  if (o.advice !== undefined && buf.length > 0) {
    const a = native.madvise(buf, adviceValue[o.advice]);
    if (a < 0) {
      native.munmap(buf);
      check(a, 'madvise');
    }
  }
  return buf;
}

/**
 * madvise(2) over the whole mapping behind `buf` (a Buffer returned by {@link mmap}):
 * `sequential` doubles readahead and drops pages behind the reader sooner, `willneed`
 * starts reading the whole view now, `random` turns readahead off, `normal` undoes them.
 * A Buffer that is not a whole live mapping is a TypeError; an unknown advice a RangeError.
 */
export function madvise(buf: Buffer, advice: MmapAdvice): void {
  v.bytes(buf);
  const a = checkAdvice('advice', advice);
  const r = buf.byteLength === 0 ? -EINVAL : native.madvise(buf, adviceValue[a]);
  if (r === -EINVAL) throw v.typeError('buffer', 'a whole, live Buffer returned by mmap()', buf);
  check(r, 'madvise');
}

/**
 * Unmaps a Buffer returned by {@link mmap}. The Buffer is detached first (its length becomes
 * 0, reads yield `undefined`), so later use can never touch the unmapped pages. A Buffer
 * ever given to io_uring or a MSG_ZEROCOPY send has its file's pages dropped at once but its
 * addresses kept reserved, inaccessible, until the ArrayBuffer is garbage-collected: such a
 * send still in flight fails with EFAULT rather than sending whatever would be mapped there
 * next. Any other mapping is unmapped outright (one munmap(2), nothing left behind). A
 * second munmap is a no-op; a Buffer that is not a whole mapping is a TypeError.
 */
export function munmap(buf: Buffer): void {
  v.bytes(buf);
  if (buf.byteLength === 0) return;
  const r = native.munmap(buf, lentToKernel(buf));
  if (r === -EINVAL) throw v.typeError('buffer', 'a whole Buffer returned by mmap()', buf);
  if (r < 0) check(r, 'munmap');
}
