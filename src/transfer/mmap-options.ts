/**
 * The `mmap` transfer method's options — one type and one checker, shared by `transferFile`
 * and `serve()` (which checks them before any thread starts), with no import of the methods.
 */
import { checkAdvice, type MmapAdvice } from '../sys/mmap.js';
import * as v from '../sys/validate.js';

/** The `mmap` method's options (`transferFile`'s `mmap`, serve's `mmap`). */
export interface MmapTransferOptions {
  /** MAP_POPULATE: fault each mapping in at mmap time instead of a page at a time. */
  populate?: boolean;
  /** madvise(2) each mapping: 'sequential', 'willneed', 'random' or 'normal'. */
  advice?: MmapAdvice;
  /** Keep whole-file mappings (files up to 64 MiB) in a per-thread cache and send from them again. */
  reuse?: boolean;
}

const KEYS = ['populate', 'advice', 'reuse'];

/** Checks the `mmap` method's options: TypeError for a wrong type or unknown key, RangeError for an unknown advice. */
export function checkMmapTransfer(name: string, o: unknown): MmapTransferOptions {
  const opts = v.object<MmapTransferOptions>(name, o);
  for (const k of Object.keys(opts))
    if (!KEYS.includes(k)) throw v.typeError(`${name}.${k}`, 'not set (an unknown option)', k);
  if (opts.populate !== undefined) v.bool(`${name}.populate`, opts.populate);
  if (opts.reuse !== undefined) v.bool(`${name}.reuse`, opts.reuse);
  if (opts.advice !== undefined) checkAdvice(`${name}.advice`, opts.advice);
  return opts;
}
