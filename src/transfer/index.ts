/**
 * `transferFile`: sends a file's bytes to a non-blocking socket by one of several methods
 * (docs/DESIGN.md, "Transfer methods"): `readwrite`, `mmap`, `sendfile`, `splice`, `uring`,
 * `direct` and `auto`, one file each, all imported and registered here when this module
 * loads — a loop that owns its thread (a Reactor in run() mode) never turns Node's loop, so
 * nothing may wait for a dynamic import. A method added later calls `registerTransferMethod`.
 */
import { fstat } from '../sys/file.js';
import * as v from '../sys/validate.js';
import type { TransferJob, TransferMethod } from './job.js';
import { mmapTransfer } from './mmap.js';
import { readwriteTransfer } from './readwrite.js';
import { sendfileTransfer } from './sendfile.js';
import { spliceTransfer } from './splice.js';
import { uringTransfer } from './uring.js';
import { directTransfer } from './direct.js';
import { autoTransfer } from './auto.js';
import { writableWaiter } from './wait.js';

export type { TransferJob, TransferMethod } from './job.js';
export { closePipePool, pooledPipes } from './pipes.js';
export { waitWritable, writableWaiter, type Waiter } from './wait.js';

/**
 * The built-in transfer methods: `readwrite` (pread + write), `mmap` (write from a
 * mapping), `sendfile`, `splice` (through a pipe), `uring` (io_uring reads and sends),
 * `direct` (O_DIRECT reads through io_uring) and `auto` (`sendfile` below `directio`
 * bytes, `direct` from there on where io_uring is allowed).
 */
export type TransferMethodName = (typeof transferMethodNames)[number];
/** The built-in methods' names: the one list {@link TransferMethodName} is derived from. */
export const transferMethodNames = ['readwrite', 'mmap', 'sendfile', 'splice', 'uring', 'direct', 'auto'] as const;

const builtIn: Record<TransferMethodName, TransferMethod> = {
  readwrite: readwriteTransfer,
  mmap: mmapTransfer,
  sendfile: sendfileTransfer,
  splice: spliceTransfer,
  uring: uringTransfer,
  direct: directTransfer,
  auto: autoTransfer,
};
/** Every method by name: the built-in ones and those added by {@link registerTransferMethod}. */
export const methods: Record<string, TransferMethod> = { ...builtIn };

/** Adds (or replaces) a transfer method. */
export function registerTransferMethod(name: string, fn: TransferMethod): void {
  v.str('name', name);
  v.func('fn', fn);
  methods[name] = fn;
}

/** Options of {@link transferFile}. */
export interface TransferOptions {
  /** File position to start at; default 0. */
  offset?: number;
  /** Bytes to send; default (and at most) what the file holds after `offset`. */
  length?: number;
  /** How to move the bytes (see {@link TransferMethodName}). */
  method: TransferMethodName;
  /** Bytes; `auto` uses direct IO above it. Default: never. */
  directio?: number;
  /** Pipe capacity for `splice` (F_SETPIPE_SZ); default the kernel's (64 KiB). */
  pipeSize?: number;
  /** pread buffer size for `readwrite`; default 128 KiB. */
  chunkSize?: number;
  /** Resolves when the socket is writable; default a libuv poll handle (UV_WRITABLE). */
  wait?: (fd: number) => Promise<void>;
}

function resolveMethod(name: string): TransferMethod {
  // Own properties only: 'toString' or 'constructor' must not resolve to Object.prototype's.
  const known = Object.hasOwn(methods, name) ? methods[name] : undefined;
  if (known) return known;
  throw v.typeError('method', `one of ${Object.keys(methods).join(', ')}`, name);
}

function checkOptions(o: TransferOptions): void {
  v.str('method', o.method);
  if (o.offset !== undefined) v.int('offset', o.offset);
  if (o.length !== undefined) v.int('length', o.length);
  if (o.directio !== undefined) v.int('directio', o.directio);
  if (o.pipeSize !== undefined) v.int('pipeSize', o.pipeSize, 1, 0x7fffffff);
  if (o.chunkSize !== undefined) v.int('chunkSize', o.chunkSize, 1, 0x7fffffff);
  if (o.wait !== undefined) v.func('wait', o.wait);
}

/**
 * Sends `[offset, offset + length)` of `fileFd` to the non-blocking socket `sockFd` and
 * resolves with the bytes sent: `length`, clamped to the end of the file (0 past it). On
 * EAGAIN it waits for writability and resumes at the exact offset. Rejects with the errno
 * error of a failed call (EPIPE, ECONNRESET …), and with a TypeError or RangeError for bad
 * arguments or an unknown method.
 * @example
 * const file = sys.open('big.iso', constants.O_RDONLY);
 * try {
 *   const n = await transferFile(sock, file, { method: 'sendfile', offset: 0, length: 1 << 20 });
 * } finally {
 *   sys.close(file);
 * }
 */
export async function transferFile(sockFd: number, fileFd: number, opts: TransferOptions): Promise<number> {
  v.fd(sockFd, 'sockFd');
  v.fd(fileFd, 'fileFd');
  if (opts === null || typeof opts !== 'object') throw v.typeError('opts', 'of type object', opts);
  checkOptions(opts);
  const method = resolveMethod(opts.method);
  const offset = opts.offset ?? 0;
  const size = fstat(fileFd).size;
  const avail = Math.max(0, size - offset);
  const length = Math.min(opts.length ?? avail, avail);
  const waiter = opts.wait ? undefined : writableWaiter();
  const job: TransferJob = {
    sockFd,
    fileFd,
    offset,
    length,
    wait: opts.wait ?? ((fd) => waiter!.wait(fd)),
    directio: opts.directio ?? Number.MAX_SAFE_INTEGER,
  };
  if (opts.pipeSize !== undefined) job.pipeSize = opts.pipeSize;
  if (opts.chunkSize !== undefined) job.chunkSize = opts.chunkSize;
  try {
    return length === 0 ? 0 : await method(job);
  } finally {
    waiter?.close();
  }
}
