/**
 * Reused mappings for the `mmap` transfer (`mmap: { reuse: true }`): a small per-thread
 * cache of whole-file mmap(2) views keyed by the file's identity and version — device,
 * inode, size and st_mtim — so a file sent again is written from the same mapping, without
 * a new mmap, a page fault per 4 KiB page, and a munmap (with its TLB shootdown) each time.
 * A file that changed (a new size or st_mtim) gets a new mapping; the old one is dropped as
 * soon as no transfer is writing from it. Bounded by entries and mapped bytes, least
 * recently used out first.
 *
 * Why a file that shrinks under a cached mapping is safe: nothing in rawio reads the view
 * from JS. The bytes leave by write(2) from the view, so a page past the new EOF faults in
 * the kernel's copy, which returns EFAULT (or a short write) instead of raising SIGBUS, and
 * the transfer ends short like any other method's. A mapping is made from an fd this thread
 * opened; a later transfer of the same file through another fd reads the same page cache.
 */
import { errnoError } from '../sys/errors.js';
import { mmap, munmap, type MmapOptions } from '../sys/mmap.js';
import { native } from '../sys/native.js';
import { lentStat } from './stat.js';

/** Files above this size are mapped per transfer, in windows: a cached view would pin too much address space. */
export const MMAP_CACHE_MAX_FILE = 64 << 20;
/** Mappings held per thread. */
export const MMAP_CACHE_ENTRIES = 64;
/** Bytes of address space held per thread by cached mappings. */
export const MMAP_CACHE_BYTES = 256 << 20;

/** A cached view; hold it between {@link acquireMapping} and {@link releaseMapping}. */
export interface CachedMapping {
  readonly buf: Buffer;
  /** `devMajor:devMinor:ino`: the file, whatever its version. */
  readonly file: string;
  /** The version mapped: st_size and st_mtim. */
  readonly size: number;
  readonly mtimeSec: number;
  readonly mtimeNsec: number;
  users: number;
  /** Evicted or stale: unmapped when the last user releases it. */
  dropped: boolean;
}

// Each file's current version, in use order: the first is the least recent. A version that
// changed is dropped from here at once (and unmapped by its last user).
const byFile = new Map<string, CachedMapping>();
let mappedBytes = 0;
const statOut = new Float64Array(9);

function drop(e: CachedMapping): void {
  if (byFile.get(e.file) === e) {
    byFile.delete(e.file);
    mappedBytes -= e.buf.length;
  }
  e.dropped = true;
  if (e.users === 0) munmap(e.buf);
}

function evict(): void {
  for (const e of byFile.values()) {
    if (byFile.size <= MMAP_CACHE_ENTRIES && mappedBytes <= MMAP_CACHE_BYTES) return;
    drop(e);
  }
}

/**
 * The cached whole-file view of `fd` (made now with `opts` when missing), marked in use; or
 * undefined when the file is empty, not regular, or over {@link MMAP_CACHE_MAX_FILE}.
 * Throws the ErrnoError of a failed fstat or mmap. Within a transferFile call the file's
 * fstat is the one transferFile made (stat.ts); otherwise it is made here.
 */
export function acquireMapping(fd: number, opts: MmapOptions): CachedMapping | undefined {
  let st = lentStat(fd);
  if (st === undefined) {
    const r = native.fstat(fd, statOut);
    if (r < 0) throw errnoError(r, 'fstat');
    st = statOut;
  }
  const size = st[0]!;
  if ((st[2]! & 0o170000) !== 0o100000 || size === 0 || size > MMAP_CACHE_MAX_FILE) return undefined;
  const file = `${st[4]}:${st[5]}:${st[6]}`;
  const mtimeSec = st[7]!;
  const mtimeNsec = st[8]!;
  let e = byFile.get(file);
  if (e !== undefined && (e.size !== size || e.mtimeSec !== mtimeSec || e.mtimeNsec !== mtimeNsec)) {
    drop(e); // the file changed: its old version is never sent again
    e = undefined;
  }
  if (e !== undefined) {
    byFile.delete(file); // re-insert: now the most recent
    byFile.set(file, e);
  } else {
    const buf = mmap(fd, 0, size, opts);
    e = { buf, file, size, mtimeSec, mtimeNsec, users: 0, dropped: false };
    byFile.set(file, e);
    mappedBytes += buf.length;
    evict();
  }
  e.users++;
  return e;
}

/** Ends one transfer's use of `e`; a dropped mapping is unmapped by its last user. */
export function releaseMapping(e: CachedMapping): void {
  e.users--;
  if (e.dropped && e.users === 0) munmap(e.buf);
}

/**
 * Drops every cached mapping of this thread (those in use are unmapped when their transfer
 * ends). Servers call it when a thread stops; call it after sending files with `reuse` to
 * give the address space back.
 */
export function closeMmapCache(): void {
  for (const e of [...byFile.values()]) drop(e);
}

/** What {@link mmapCacheStats} returns. */
export interface MmapCacheStats {
  /** Mappings cached on this thread. */
  mappings: number;
  /** Bytes of address space they span. */
  bytes: number;
}

/** The number of mappings cached on this thread and the bytes they span. */
export function mmapCacheStats(): MmapCacheStats {
  return { mappings: byFile.size, bytes: mappedBytes };
}
