/**
 * `transferFile`: sends a file's bytes to a non-blocking socket by one of several methods
 * (docs/ARCHITECTURE.md, "Transfer"): `readwrite`, `mmap`, `sendfile`, `splice`, `uring`,
 * `direct` and `auto`, one file each, all imported and registered here when this module
 * loads — a loop that owns its thread (a Reactor in run() mode) never turns Node's loop, so
 * nothing may wait for a dynamic import. A method added later calls `registerTransferMethod`.
 */
import type { Socket } from 'node:net';
import { fdOf, nodeSocket, type SocketLike } from '../sys/node-fd.js';
import { EPIPE } from '../sys/errno.js';
import { errnoError } from '../sys/errors.js';
import { abortError } from '../sys/ring-core.js';
import { Ring } from '../sys/ring.js';
import * as v from '../sys/validate.js';
import type { TransferJob, TransferMethod } from './job.js';
import type { Sent } from './drive.js';
import { mmapStart, mmapTransfer } from './mmap.js';
import { checkMmapTransfer, type MmapTransferOptions } from './mmap-options.js';
import { readwriteStart, readwriteTransfer } from './readwrite.js';
import { sendfileStart, sendfileTransfer } from './sendfile.js';
import { spliceStart, spliceTransfer } from './splice.js';
import { uringTransfer } from './uring.js';
import { directTransfer } from './direct.js';
import { autoStart, autoTransfer } from './auto.js';
import { endLoan, statAndLend } from './stat.js';
import { abortable, writableWaiter, type Waiter } from './wait.js';

export type { TransferJob, TransferMethod } from './job.js';
export type { SocketLike } from '../sys/node-fd.js';
export { closePipePool, pooledPipes } from './pipes.js';
export { closeMmapCache, mmapCacheStats, type MmapCacheStats } from './mmap-cache.js';
export { checkMmapTransfer, type MmapTransferOptions } from './mmap-options.js';
export { waitWritable, writableWaiter, type Waiter } from './wait.js';
export { sendBuffer, type SendBufferOptions, type SendBufferResult } from './buffer.js';

export { transferMethodNames, type TransferMethodName } from './names.js';
import type { TransferMethodName } from './names.js';

const builtIn: Record<TransferMethodName, TransferMethod> = {
  readwrite: readwriteTransfer,
  mmap: mmapTransfer,
  sendfile: sendfileTransfer,
  splice: spliceTransfer,
  uring: uringTransfer,
  direct: directTransfer,
  auto: autoTransfer,
};
/**
 * The cores of the built-in methods that finish in the call when the kernel takes every
 * byte at once (a count, not a promise: see `drive`). transferFile runs a method by its core
 * while `methods` still holds the built-in function; one replaced by
 * {@link registerTransferMethod} runs as given.
 */
const cores = new Map<TransferMethod, (job: TransferJob) => Sent>([
  [readwriteTransfer, readwriteStart],
  [mmapTransfer, mmapStart],
  [sendfileTransfer, sendfileStart],
  [spliceTransfer, spliceStart],
  [autoTransfer, autoStart],
]);
/** Every method by name: the built-in ones and those added by {@link registerTransferMethod}. */
export const methods: Record<string, TransferMethod> = { ...builtIn };

/**
 * Whether a transfer by `method` of `length` bytes may leave a send waiting in the kernel
 * with the socket: io_uring's `uring` and `direct`, `auto` at or past `directio` where the
 * kernel has io_uring, and any method added at run time (rawio cannot see into it). A
 * server closing a connection meanwhile must shut the socket down, since close(2) does not
 * reach a socket a ring send holds, and abort the transfer (its `signal`).
 */
export function sendsInKernel(method: string, length: number, directio: number): boolean {
  if (method === 'uring' || method === 'direct') return true;
  if (method === 'auto') return length >= directio && Ring.supported();
  return !Object.hasOwn(builtIn, method);
}

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
  /**
   * Pipe capacity for `splice` (F_SETPIPE_SZ); default the kernel's (64 KiB), also where the
   * kernel refuses the size (EPERM: over pipe-max-size, or the user's pipe-user-pages-soft).
   */
  pipeSize?: number;
  /** pread buffer size for `readwrite` (the buffer is at most the body); default 128 KiB. */
  chunkSize?: number;
  /**
   * For the `mmap` method: `populate` maps with MAP_POPULATE (no page fault per 4 KiB page),
   * `advice` madvises each mapping ('sequential', 'willneed', 'random', 'normal'), and
   * `reuse` sends files up to 64 MiB from a per-thread cache of whole-file mappings, keyed by
   * device, inode, size and mtime (see {@link closeMmapCache}). Default: none of them.
   */
  mmap?: MmapTransferOptions;
  /** Resolves when the socket is writable; default a libuv poll handle (UV_WRITABLE). */
  wait?: (fd: number) => Promise<void>;
  /**
   * Aborts the transfer: the promise rejects with an AbortError (`code` 'ABORT_ERR'), at
   * once when already aborted, else at the next wait for writability or chunk boundary.
   * Bytes already sent stay sent.
   */
  signal?: AbortSignal;
  /**
   * Called with the bytes of each send as the kernel takes them, while the transfer runs:
   * progress a caller can see (a server's idle timeout) even when the method never waits
   * for writability in JavaScript (`uring` and `direct` wait in the kernel).
   */
  onSent?: (bytes: number) => void;
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
  if (o.mmap !== undefined) checkMmapTransfer('mmap', o.mmap);
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw v.typeError('signal', 'an AbortSignal', o.signal);
  if (o.onSent !== undefined) v.func('onSent', o.onSent);
}

/**
 * Node's own queue for a net.Socket must be empty first (the file's bytes go out after
 * what Node has accepted, a response's head included): waits until it is written. An empty
 * write's callback says so (Node emits 'drain' only after a write that returned false, so a
 * small queued write, or a corked socket, would never end a wait for it). The wait ends early
 * when `signal` aborts (an AbortError) or the socket closes (its error, ECONNRESET …, else
 * EPIPE): a peer that never reads would otherwise hold it for good.
 */
async function nodeQueueDrained(socket: Socket, signal: AbortSignal | undefined): Promise<void> {
  if (signal?.aborted) throw abortError(signal);
  if (nodeQueueEmpty(socket)) return;
  await new Promise<void>((resolve, reject) => {
    const stop = () => {
      socket.off('close', onClose);
      signal?.removeEventListener('abort', onAbort);
    };
    const onWritten = (err?: Error | null) => {
      stop();
      if (err) reject(socketGone(socket));
      else resolve();
    };
    const onClose = () => {
      stop();
      reject(socketGone(socket));
    };
    const onAbort = () => {
      stop();
      reject(abortError(signal));
    };
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('close', onClose);
    socket.write(EMPTY, onWritten);
  });
  if (socket.destroyed) throw socketGone(socket);
}

/**
 * Whether Node's queue for `socket` is empty now (nothing to wait for); throws the socket's
 * error when it is closed or ended, since nothing can be sent on it then.
 */
function nodeQueueEmpty(socket: Socket): boolean {
  if (socket.destroyed || socket.writableEnded) throw socketGone(socket);
  return socket.writableLength === 0 && socket.writableCorked === 0;
}

const EMPTY = new Uint8Array(0);

/** The error of a net.Socket that closed before rawio could send: Node's own errno, else EPIPE. */
function socketGone(socket: Socket): Error {
  const e = socket.errored as { errno?: unknown } | null;
  const errno = typeof e?.errno === 'number' && e.errno < 0 ? e.errno : -EPIPE;
  return errnoError(errno, 'write');
}

const S_IFMT = 0o170000;
const KINDS: Record<number, string> = {
  0o010000: 'a pipe (FIFO)',
  0o020000: 'a character device',
  0o040000: 'a directory',
  0o060000: 'a block device',
  0o140000: 'a socket',
};

/**
 * The size of the regular file open as `fd`. transferFile sends a region at a file position,
 * sized by fstat(2): any other kind of file has no such region (a pipe's or a device's size is
 * 0, so every method would send nothing and resolve 0; a directory failed in each method's own
 * way), so it is refused here, for every method, before anything is sent.
 */
function regularFileSize(fd: number): number {
  const st = statAndLend(fd); // lent to the method for this call (stat.ts)
  const kind = st[2]! & S_IFMT;
  if (kind !== 0o100000)
    throw v.valueError('fileFd', `an open regular file, not ${KINDS[kind] ?? 'this kind of file'}`, fd);
  return st[0]!;
}

/**
 * Sends `[offset, offset + length)` of `fileFd` to a non-blocking socket and resolves with
 * the bytes sent: `length`, clamped to the end of the file (0 past it). The socket is an
 * fd, a connected `net.Socket` (its fd is taken from its handle; a TLS socket is refused)
 * or an `http.ServerResponse` whose head is flushed (what Node has queued goes out first).
 * On EAGAIN it waits for writability and resumes at the exact offset. Rejects with the
 * errno error of a failed call (EPIPE, ECONNRESET …), with an AbortError when `signal`
 * aborts, and with a TypeError or RangeError for bad arguments or an unknown method.
 * `fileFd` must be a regular file, whatever the method: a pipe, a device, a directory or a
 * socket rejects with a TypeError (`ERR_INVALID_ARG_VALUE`) naming its kind, before anything
 * is sent.
 * @example
 * const file = sys.open('big.iso', constants.O_RDONLY);
 * try {
 *   const n = await transferFile(socket, file, { method: 'sendfile', offset: 0, length: 1 << 20 });
 * } finally {
 *   sys.close(file);
 * }
 */
export function transferFile(sock: SocketLike, fileFd: number, opts: TransferOptions): Promise<number> {
  // Not an async function: a transfer the kernel takes whole settles with one resolved
  // promise, without the frame and awaits an async function would allocate for it. Every
  // throw below still becomes a rejection, as it would in an async function.
  try {
    const sockFd = fdOf(sock, 'sock');
    v.fd(fileFd, 'fileFd');
    if (opts === null || typeof opts !== 'object') throw v.typeError('opts', 'of type object', opts);
    checkOptions(opts);
    const signal = opts.signal;
    if (signal?.aborted) throw abortError(signal);
    const method = resolveMethod(opts.method);
    const size = regularFileSize(fileFd);
    const node = nodeSocket(sock, 'sock');
    if (node !== undefined && !nodeQueueEmpty(node)) {
      endLoan(); // stale after the wait: the method stats again
      return nodeQueueDrained(node, signal).then(() => settled(start(sockFd, fileFd, opts, method, size)));
    }
    return settled(start(sockFd, fileFd, opts, method, size));
  } catch (e) {
    return Promise.reject(e as Error);
  } finally {
    endLoan();
  }
}

/** A promise of the count: resolved already when the method finished in the call. */
function settled(r: Sent): Promise<number> {
  return typeof r === 'number' ? Promise.resolve(r) : r;
}

/** The transfer itself, once the arguments are checked and the socket may take bytes. */
function start(sockFd: number, fileFd: number, opts: TransferOptions, method: TransferMethod, size: number): Sent {
  const signal = opts.signal;
  const offset = opts.offset ?? 0;
  const avail = Math.max(0, size - offset);
  const length = Math.min(opts.length ?? avail, avail);
  if (length === 0) return 0;
  // The default waiter's poll handle is opened at the first EAGAIN, not for every transfer.
  let waiter: Waiter | undefined;
  const wait = opts.wait ?? ((fd: number) => (waiter ??= writableWaiter()).wait(fd));
  const job: TransferJob = {
    sockFd,
    fileFd,
    offset,
    length,
    wait: signal ? abortable(wait, signal) : wait,
    directio: opts.directio ?? Number.MAX_SAFE_INTEGER,
    pipeSize: opts.pipeSize,
    chunkSize: opts.chunkSize,
    mmap: opts.mmap === undefined ? undefined : { ...opts.mmap },
    signal,
    onSent: opts.onSent,
  };
  // A count, not a promise: the kernel took every byte in this call and nothing waited.
  const r = (cores.get(method) ?? method)(job);
  if (typeof r === 'number') return r;
  // A method added at run time may return any thenable (or, against its type, a plain value).
  const p = r instanceof Promise ? r : Promise.resolve(r);
  return p.then(
    (n) => {
      waiter?.close();
      return n;
    },
    (e: unknown) => {
      waiter?.close();
      throw e;
    },
  );
}
