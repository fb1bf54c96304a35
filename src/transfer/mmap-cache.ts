/**
 * Reused mappings for the `mmap` transfer (`mmap: { reuse: true }`): a small per-thread
 * cache of whole-file mmap(2) views keyed by the file's identity and version — device,
 * inode, size and st_mtim — so a file sent again is written from the same mapping, without
 * a new mmap, a page fault per 4 KiB page, and a munmap (with its TLB shootdown) each time.
 * A file that changed gets a new key; its old mapping is dropped as soon as no transfer is
 * writing from it. Bounded by entries and mapped bytes, least recently used out first.
 *
 * Why a file that shrinks under a cached mapping is safe: nothing in rawio reads the view
 * from JS. The bytes leave by write(2) from the view, so a page past the new EOF faults in
 * the kernel's copy, which returns EFAULT (or a short write) instead of raising SIGBUS, and
 * the transfer ends short like any other method's. A mapping is made from an fd this thread
 * opened; a later transfer of the same file through another fd reads the same page cache.
 */
import { fstat } from '../sys/file.js';
import { mmap, munmap, type MmapOptions } from '../sys/mmap.js';

/** Files above this size are mapped per transfer, in windows: a cached view would pin too much address space. */
export const MMAP_CACHE_MAX_FILE = 64 << 20;
/** Mappings held per thread. */
export const MMAP_CACHE_ENTRIES = 64;
/** Bytes of address space held per thread by cached mappings. */
export const MMAP_CACHE_BYTES = 256 << 20;

/** A cached view; hold it between {@link acquireMapping} and {@link releaseMapping}. */
export interface CachedMapping {
  readonly buf: Buffer;
  readonly key: string;
  readonly file: string;
  users: number;
  /** Evicted or stale: unmapped when the last user releases it. */
  dropped: boolean;
}

const byKey = new Map<string, CachedMapping>(); // in use order: the first is the least recent
const byFile = new Map<string, CachedMapping>(); // dev:ino → its current version
let mappedBytes = 0;

function drop(e: CachedMapping): void {
  if (byKey.get(e.key) === e) {
    byKey.delete(e.key);
    mappedBytes -= e.buf.length;
  }
  if (byFile.get(e.file) === e) byFile.delete(e.file);
  e.dropped = true;
  if (e.users === 0) munmap(e.buf);
}

function evict(): void {
  for (const e of byKey.values()) {
    if (byKey.size <= MMAP_CACHE_ENTRIES && mappedBytes <= MMAP_CACHE_BYTES) return;
    drop(e);
  }
}

/**
 * The cached whole-file view of `fd` (made now with `opts` when missing), marked in use; or
 * undefined when the file is empty, not regular, or over {@link MMAP_CACHE_MAX_FILE}.
 * Throws the ErrnoError of a failed fstat or mmap.
 */
export function acquireMapping(fd: number, opts: MmapOptions): CachedMapping | undefined {
  const st = fstat(fd);
  if ((st.mode & 0o170000) !== 0o100000 || st.size === 0 || st.size > MMAP_CACHE_MAX_FILE) return undefined;
  const file = `${st.devMajor}:${st.devMinor}:${st.ino}`;
  const key = `${file}:${st.size}:${st.mtimeSec}.${st.mtimeNsec}`;
  let e = byKey.get(key);
  if (e) {
    byKey.delete(key); // re-insert: now the most recent
    byKey.set(key, e);
  } else {
    const old = byFile.get(file);
    if (old) drop(old); // the file changed: its old version is never sent again
    const buf = mmap(fd, 0, st.size, opts);
    e = { buf, key, file, users: 0, dropped: false };
    byKey.set(key, e);
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
  for (const e of [...byKey.values()]) drop(e);
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
  return { mappings: byKey.size, bytes: mappedBytes };
}
