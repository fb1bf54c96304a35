/**
 * The contract between `transferFile` and its methods (the file → socket strategies). A method is one async function of a `TransferJob`; each lives in
 * its own file and is registered by name in `index.ts` (or registers itself with
 * `registerTransferMethod`), so new methods (`uring`, `direct`, `auto`) slot in beside the
 * others without touching them.
 */
import type { MmapTransferOptions } from './mmap-options.js';

/** One transfer: what a method sends, from where to where, and how it waits. */
export interface TransferJob {
  /** The socket to write to; non-blocking. */
  sockFd: number;
  /** The file to read from. */
  fileFd: number;
  /** File position of the first byte to send. */
  offset: number;
  /** Exact bytes to send, already clamped to the file size. */
  length: number;
  /** Resolves when `sockFd` is writable; called once per EAGAIN, never before trying. */
  wait: (fd: number) => Promise<void>;
  /** Bytes: above this size `auto` uses direct IO (Number.MAX_SAFE_INTEGER: never). */
  directio: number;
  /** Pipe capacity for `splice` (F_SETPIPE_SZ); undefined keeps the kernel's default. */
  pipeSize?: number;
  /** Buffer size for `readwrite` (bytes per pread). */
  chunkSize?: number;
  /** Options of the `mmap` method (MAP_POPULATE, madvise, a reused mapping). */
  mmap?: MmapTransferOptions;
  /** Aborts the transfer: `wait` then rejects with an AbortError, and `drive` stops at its next yield. */
  signal?: AbortSignal;
  /** Called with the bytes of each send the kernel took, as it takes them (a method calls it once per send). */
  onSent?: (bytes: number) => void;
}

/** Sends `job.length` bytes (fewer only if the file shrank meanwhile); resolves with the count. */
export type TransferMethod = (job: TransferJob) => Promise<number>;
