/**
 * `Ring`: rawio's own io_uring (io_uring(7), io_uring_enter(2)), with two faces. The promise
 * API (`read`, `write`, `accept`, … each with an optional AbortSignal) is for programs; the
 * batch API (`prepRead` … `submit`, `reap`) is for loops and benchmarks that manage their
 * own user data, as liburing's examples do. Both keep every buffer they hand to the kernel
 * referenced until its completion is reaped.
 * @example
 * const ring = new Ring();
 * const n = await ring.read(fd, Buffer.alloc(4096), 0, 4096, 0); // as sys.pread: offset, length, position
 * ring.close();
 */
import { ENOENT, ETIME } from './errno.js';
import { errnoError } from './errors.js';
import type { OpOptions, RingOptions } from './ring-core.js';
import { explainDirect, position, rwArgs, timespec, userData, type RwArgs } from './ring-args.js';
import { pin, pinAll } from './pin.js';
import { RingBatch } from './ring-batch.js';
import { sendZcAll, type SendZcResult } from './ring-send-zc.js';
import * as u from './uring.js';
import * as sqe from './uring-prep.js';
import { MSG_NOSIGNAL, SOCK_FLAGS } from './uring-prep.js';
import * as v from './validate.js';

export type { SendZcResult } from './ring-send-zc.js';
export type { CompletionHandler, OpOptions, RingOptions } from './ring-core.js';
export type { RingProbe } from './uring.js';

const AT_FDCWD = -100;
const O_CLOEXEC = 0o2000000;
const STATX_MASK = 0x7ff | 0x2000; // STATX_BASIC_STATS | STATX_DIOALIGN (6.1)
const AT_EMPTY_PATH = 0x1000;

/** Options of the `Ring` operations on a file descriptor. */
export interface FileOptions extends OpOptions {
  /** `fd` is an index into the files registered with `registerFiles` (IOSQE_FIXED_FILE). */
  fixedFile?: boolean;
}
/** Options of {@link Ring.recv} and {@link Ring.send}. */
export interface SocketOptions extends FileOptions {
  /** Where the slice of `buf` starts; default 0. */
  offset?: number;
  /** Bytes of `buf` from `offset`; default the rest of it. */
  length?: number;
  /** recv(2) / send(2) flags; send adds MSG_NOSIGNAL. */
  flags?: number;
}

/** What `statx` resolves with (statx(2)). */
export interface RingStat {
  /** Size in bytes. */
  size: number;
  /** File type and permission bits (stx_mode). */
  mode: number;
  /** The preferred I/O block size. */
  blksize: number;
  /** Inode number. */
  ino: number;
  /** Hard links. */
  nlink: number;
  /** Owner's user id. */
  uid: number;
  /** Owner's group id. */
  gid: number;
  /** Last modification, in milliseconds since the epoch. */
  mtimeMs: number;
  /** STATX_DIOALIGN (6.1): O_DIRECT alignment for buffer addresses; 0 when unknown. */
  dioMemAlign: number;
  /** STATX_DIOALIGN (6.1): O_DIRECT alignment for file offsets and lengths; 0 when unknown. */
  dioOffsetAlign: number;
}

function cstring(s: string): Buffer {
  v.cstr('path', s);
  return Buffer.from(`${s}\0`);
}
function fdOrIndex(fd: unknown, o?: FileOptions): [number, number] {
  const opts = v.object<FileOptions>('opts', o);
  return [v.fd(fd), opts.fixedFile === true ? u.IOSQE_FIXED_FILE : 0];
}

/** The power of two io_uring_setup rounds a queue size up to. */
const pow2 = (n: number) => 2 ** Math.ceil(Math.log2(n));

/**
 * An io_uring (io_uring(7)) of rawio's own, with two faces.
 *
 * The promise API (`read`, `write`, `accept`, `recv`, `send`, `openat`, `statx`, `splice`,
 * `timeout` …) is for programs: each call returns a promise of the kernel's result (`>= 0`)
 * and rejects with an ErrnoError for `-errno`, with an AbortError when its `signal` aborts,
 * and with EBADF once the ring is closed. Bad arguments throw a TypeError or RangeError at
 * once. The operations started in one synchronous stretch are submitted together from a
 * microtask, and the ring (attached by default) reaps their completions from Node's own loop.
 *
 * The batch API (`prepRead` … `submit`, then `reap`, or `onCompletion`) is for loops and
 * benchmarks that manage their own user data (0 … 2^31 - 1): a `prep*` call returns false
 * when the submission queue is full and sends nothing before `submit()`. Both keep every
 * buffer they hand to the kernel referenced until its completion is reaped.
 *
 * The constructor throws an ErrnoError saying why when the kernel refuses io_uring
 * (ENOSYS, EPERM from seccomp or `kernel.io_uring_disabled`): check {@link Ring.supported}.
 * @example
 * // promise API
 * const ring = new Ring();
 * const fd = await ring.openat(constants.AT_FDCWD, '/etc/hostname', constants.O_RDONLY);
 * const buf = Buffer.alloc(4096);
 * const n = await ring.read(fd, buf, 0, buf.length, 0);
 * await ring.close(fd);
 * ring.close();
 * @example
 * // batch API: prepare, submit and wait in one io_uring_enter, then reap
 * const ring = new Ring({ attach: false });
 * ring.prepRead(fd, buf, 0, buf.length, 7);
 * ring.submit(1);
 * const cqes = new Int32Array(3 * 64);
 * const n = ring.reap(cqes); // 1: cqes[0] === 7, cqes[1] = bytes read or -errno
 * ring.close();
 */
export class Ring extends RingBatch {
  /** Whether this kernel lets the process set up an io_uring. */
  static supported(): boolean {
    return u.ringProbe().supported;
  }
  /** Support, opcodes, features and `kernel.io_uring_disabled` (fresh, not cached). */
  static probe(): u.RingProbe {
    return u.probeRing();
  }

  /** Throws an ErrnoError saying why when the kernel refuses io_uring. */
  constructor(opts?: RingOptions) {
    const o = v.object<RingOptions>('opts', opts);
    const entries = o.entries === undefined ? 256 : v.int('entries', o.entries, 1, 32768);
    const cq = o.cqEntries === undefined ? 0 : v.int('cqEntries', o.cqEntries, 1, 65536);
    // io_uring_setup rounds both up to a power of two and refuses (EINVAL, with no word of
    // why) a completion queue smaller than the submission queue: said here instead.
    if (cq !== 0 && pow2(cq) < pow2(entries))
      throw v.rangeError('cqEntries', `>= entries (${entries}, as the kernel rounds both up to a power of two)`, cq);
    if (o.attach !== undefined) v.bool('attach', o.attach);
    if (o.sqpoll !== undefined) v.bool('sqpoll', o.sqpoll);
    if (o.deferTaskrun !== undefined) v.bool('deferTaskrun', o.deferTaskrun);
    if (o.coopTaskrun !== undefined) v.bool('coopTaskrun', o.coopTaskrun);
    if (o.submitAll !== undefined) v.bool('submitAll', o.submitAll);
    if (o.submitEach !== undefined) v.bool('submitEach', o.submitEach);
    if (o.registerRingFd !== undefined) v.bool('registerRingFd', o.registerRingFd);
    super(o, entries, cq);
  }

  // ---- promise API

  /**
   * pread(2) into `buf[offset, offset + length)` (default: all of `buf`) at file `position`
   * (-1: the current file position): the arguments of `sys.pread`, then the options. An
   * EINVAL on an O_DIRECT fd rejects with the alignment it needed (as `sys.directRead`).
   */
  read(
    fd: number,
    buf: Uint8Array,
    offset: number | undefined,
    length: number | undefined,
    position: number,
    opts?: FileOptions,
  ): Promise<number>;
  /** @deprecated `read(fd, buf, position, length?, opts?)`: use `read(fd, buf, 0, length, position, opts)`. */
  read(fd: number, buf: Uint8Array, position: number, length?: number, opts?: FileOptions): Promise<number>;
  read(
    fd: number,
    buf: Uint8Array,
    a?: number,
    b?: number,
    c?: number | FileOptions,
    d?: FileOptions,
  ): Promise<number> {
    return this.rw(u.OP.READ, 'read', fd, buf, rwArgs<FileOptions>(a, b, c, d));
  }
  /**
   * pwrite(2) of `buf[offset, offset + length)` (default: all of `buf`) at file `position`
   * (-1: the current file position): the arguments of `sys.pwrite`, then the options.
   */
  write(
    fd: number,
    buf: Uint8Array,
    offset: number | undefined,
    length: number | undefined,
    position: number,
    opts?: FileOptions,
  ): Promise<number>;
  /** @deprecated `write(fd, buf, position, length?, opts?)`: use `write(fd, buf, 0, length, position, opts)`. */
  write(fd: number, buf: Uint8Array, position: number, length?: number, opts?: FileOptions): Promise<number>;
  write(fd: number, buf: Uint8Array, a?: number, b?: number, c?: number | FileOptions, d?: FileOptions): Promise<number> {
    return this.rw(u.OP.WRITE, 'write', fd, buf, rwArgs<FileOptions>(a, b, c, d));
  } // prettier-ignore
  /** READ, WRITE, or READ_FIXED (`buf`: the registered buffer's index). */
  private rw(op: number, name: string, fd: number, buf: unknown, [off, len, pos, o]: RwArgs<FileOptions>, pinIt = true) {
    const [f, sqeFlags] = fdOrIndex(fd, o);
    const fixed = op === u.OP.READ_FIXED;
    const b = fixed ? this.fixedBuf(buf as number) : v.liveBytes(buf);
    const [start, l] = v.slice(b, off, len);
    const p = position(pos);
    if (!fixed && pinIt) pin(b); // a registered buffer was pinned by registerBuffers
    const e = { fd: f, buf: b, offset: start, length: l, position: p, bufIndex: fixed ? (buf as number) : 0, sqeFlags };
    const prep = fixed ? sqe.prepReadFixed : op === u.OP.READ ? sqe.prepRead : sqe.prepWrite;
    const done = this.op(name, (userData) => prep(this.raw, { ...e, userData }), b, o);
    return sqeFlags === 0 ? explainDirect(done, name, f, b, start, l, p) : done;
  } // prettier-ignore

  /** preadv2(2) at `position` (-1: the current file position) into `bufs` in order: resolves with the bytes read. */
  readv(fd: number, bufs: readonly Uint8Array[], pos: number, opts?: FileOptions): Promise<number> {
    return this.vec(u.OP.READV, 'readv', fd, bufs, pos, opts);
  }
  /** pwritev2(2) of `bufs` in order at `position` (-1: the current file position): resolves with the bytes written. */
  writev(fd: number, bufs: readonly Uint8Array[], pos: number, opts?: FileOptions): Promise<number> {
    return this.vec(u.OP.WRITEV, 'writev', fd, bufs, pos, opts);
  }
  private vec(op: number, name: string, fd: number, bufs: readonly Uint8Array[], pos: number, o?: FileOptions) {
    const [f, sqeFlags] = fdOrIndex(fd, o);
    const list = v.bytesList('buffers', bufs, 'an array'); // read once: `bufs` is not used again
    const p = position(pos);
    const iov = new Uint8Array(16 * Math.max(1, list.length)); // struct iovec[]: kept with the op
    pinAll(list); // the kernel reads the iovecs' addresses at submission, the bytes until completion
    this.raw.fillIovecs(iov, list);
    const e = { fd: f, iovecs: iov, count: list.length, position: p, sqeFlags };
    const prep = op === u.OP.READV ? sqe.prepReadv : sqe.prepWritev;
    return this.op(name, (userData) => prep(this.raw, { ...e, userData }), [iov, list], o);
  }

  /** fsync(2), or fdatasync(2) with `{ datasync: true }`: resolves with 0. */
  fsync(fd: number, opts?: FileOptions & { datasync?: boolean }): Promise<number> {
    const [f, sqeFlags] = fdOrIndex(fd, opts);
    const datasync = v.object<{ datasync?: boolean }>('opts', opts).datasync === true;
    return this.op('fsync', (userData) => sqe.prepFsync(this.raw, { fd: f, datasync, userData, sqeFlags }), null, opts);
  }

  /** openat(2) relative to `dirFd` (AT_FDCWD is -100); the new fd is close-on-exec. */
  openat(dirFd: number, path: string, flags: number, mode = 0o644, opts?: OpOptions): Promise<number> {
    const d = v.int('dirFd', dirFd, AT_FDCWD, 0x7fffffff);
    const p = cstring(path);
    const fl = (v.int('flags', flags, 0, 0x7fffffff) | O_CLOEXEC) >>> 0;
    const m = v.int('mode', mode, 0, 0o7777);
    const e = { dirFd: d, path: p, flags: fl, mode: m };
    return this.op('openat', (userData) => sqe.prepOpenat(this.raw, { ...e, userData }), p, opts);
  }

  /** `close()` closes the ring; `close(fd)` is IORING_OP_CLOSE on a file descriptor. */
  close(): void;
  close(fd: number, opts?: OpOptions): Promise<number>;
  close(fd?: number, opts?: OpOptions): Promise<number> | void {
    if (fd === undefined) return this.closeRing();
    const f = v.fd(fd);
    return this.op('close', (userData) => sqe.prepClose(this.raw, { fd: f, userData }), null, opts);
  }
  /** `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.closeRing();
  }

  /** statx(2) of `path` relative to `dirFd`; an empty path stats `dirFd` itself. */
  statx(dirFd: number, path: string, opts?: OpOptions): Promise<RingStat> {
    const d = v.int('dirFd', dirFd, AT_FDCWD, 0x7fffffff);
    const p = cstring(path);
    const out = new Uint8Array(256);
    const fl = path === '' ? AT_EMPTY_PATH : 0;
    const e = { dirFd: d, path: p, flags: fl, mask: STATX_MASK, statxbuf: out };
    const prep = (userData: number) => sqe.prepStatx(this.raw, { ...e, userData });
    return this.op('statx', prep, [p, out], opts).then(() => statxResult(out));
  }

  /** accept4(2): the new connection's fd, non-blocking and close-on-exec. */
  accept(fd: number, opts?: FileOptions): Promise<number> {
    const [f, sqeFlags] = fdOrIndex(fd, opts);
    const prep = (userData: number) => sqe.prepAccept(this.raw, { fd: f, flags: SOCK_FLAGS, userData, sqeFlags });
    return this.op('accept', prep, null, opts);
  }

  /** recv(2) into `buf` (or its `offset` / `length` slice): resolves with the bytes received, 0 at end of stream. */
  recv(fd: number, buf: Uint8Array, opts?: SocketOptions): Promise<number> {
    return this.sock(u.OP.RECV, 'recv', fd, buf, opts, 0);
  }
  /**
   * send(2) of `buf` (or its `offset` / `length` slice) with MSG_NOSIGNAL: resolves with
   * the bytes sent, maybe fewer.
   */
  send(fd: number, buf: Uint8Array, opts?: SocketOptions): Promise<number> {
    return this.sock(u.OP.SEND, 'send', fd, buf, opts, MSG_NOSIGNAL);
  }
  /**
   * IORING_OP_SEND_ZC (6.0): sends all of `buf` (or its `offset` / `length` slice) with
   * MSG_NOSIGNAL without copying it into socket memory, resubmitting the rest after a short
   * send. Resolves only once every request's notification has arrived, that is once the
   * kernel no longer reads the buffer: until then the ring holds `buf`, and the caller must
   * not write into it (the bytes on the wire would change). `copied` counts the requests the
   * kernel copied after all (6.2+; loopback always copies).
   * @example
   * const { bytes, copied } = await ring.sendZc(sockFd, body);
   */
  sendZc(fd: number, buf: Uint8Array, opts?: SocketOptions): Promise<SendZcResult> {
    const [f, sqeFlags] = fdOrIndex(fd, opts);
    const [off, len] = v.slice(v.liveBytes(buf), opts?.offset, opts?.length);
    const msgFlags = (opts?.flags === undefined ? 0 : v.int('flags', opts.flags, 0, 0x7fffffff)) | MSG_NOSIGNAL;
    const signal = opts?.signal;
    v.abortSignal('opts.signal', signal);
    pin(buf); // once for all the requests a short send takes
    return sendZcAll(
      (offset, length, more) => {
        const prep = (ud: number) =>
          sqe.prepSendZc(this.raw, { fd: f, buf, offset, length, userData: ud, msgFlags, sqeFlags });
        return this.op('send_zc', prep, buf, opts, 0, more);
      },
      off,
      len,
      signal,
    );
  }
  private sock(
    op: number,
    name: string,
    fd: number,
    buf: Uint8Array,
    o: SocketOptions | undefined,
    extra: number,
    pinIt = true,
  ) {
    const [f, sqeFlags] = fdOrIndex(fd, o);
    const so = v.object<SocketOptions>('opts', o);
    const [off, len] = v.slice(v.liveBytes(buf), so.offset, so.length);
    const fl = (so.flags === undefined ? 0 : v.int('flags', so.flags, 0, 0x7fffffff)) | extra;
    if (pinIt) pin(buf);
    const e = { fd: f, buf, offset: off, length: len, msgFlags: fl, sqeFlags };
    const prep = op === u.OP.RECV ? sqe.prepRecv : sqe.prepSend;
    return this.op(name, (userData) => prep(this.raw, { ...e, userData }), buf, o);
  }

  // ---- a subclass's own buffers: allocated by rawio and lent to no other code until the
  // operation settles, so no transfer can reach them, and they are not pinned (pin.ts)

  /** `read` into such a buffer: `(offset, length, position)` as `read` takes them. @internal */
  protected readOwn(fd: number, buf: Uint8Array, offset: number, length: number, position: number): Promise<number> {
    return this.rw(u.OP.READ, 'read', fd, buf, [offset, length, position, undefined], false);
  }
  /** `send` of such a buffer, with `send`'s options. @internal */
  protected sendOwn(fd: number, buf: Uint8Array, opts?: SocketOptions): Promise<number> {
    return this.sock(u.OP.SEND, 'send', fd, buf, opts, MSG_NOSIGNAL, false);
  }

  /** splice(2); a null offset means the fd's own position (and is required for pipes). */
  splice(
    inFd: number,
    inOff: number | null,
    outFd: number,
    outOff: number | null,
    len: number,
    flags = 0,
    opts?: OpOptions,
  ): Promise<number> {
    const i = v.fd(inFd, 'inFd');
    const o = v.fd(outFd, 'outFd');
    const io = inOff === null ? -1 : v.int('inOff', inOff);
    const oo = outOff === null ? -1 : v.int('outOff', outOff);
    const l = v.int('len', len, 0, 0xffffffff);
    const fl = v.int('flags', flags, 0, 0xffffffff);
    const e = { fdIn: i, offIn: io, fdOut: o, offOut: oo, length: l, flags: fl };
    return this.op('splice', (userData) => sqe.prepSplice(this.raw, { ...e, userData }), null, opts);
  }

  /** Resolves with 0 after `ms` milliseconds (IORING_OP_TIMEOUT; -ETIME is its success). */
  timeout(ms: number, opts?: OpOptions): Promise<number> {
    const ts = timespec(ms);
    return this.op('timeout', (userData) => sqe.prepTimeout(this.raw, { timespec: ts, userData }), ts, opts, ETIME);
  }

  /** IORING_OP_NOP: resolves with 0 (a measure of the ring's own overhead). */
  nop(opts?: OpOptions): Promise<number> {
    return this.op('nop', (userData) => sqe.prepNop(this.raw, { userData }), null, opts);
  }

  /**
   * Cancels every batch operation with this user data (IORING_ASYNC_CANCEL_ALL, 5.19; before
   * it, the first one): 0, or rejects ENOENT / EALREADY.
   */
  cancel(target: number, opts?: OpOptions): Promise<number> {
    const t = userData(target);
    const all = u.ringProbe().opcodes.includes('SOCKET'); // IORING_OP_SOCKET came with CANCEL_ALL, in 5.19
    const prep = (userData: number) => sqe.prepCancel(this.raw, { target: t, userData, all });
    // CANCEL_ALL's result is how many it cancelled: none is ENOENT, as the single cancel says it
    return this.op('io_uring_cancel', prep, null, opts).then((n) =>
      !all || n > 0 ? 0 : Promise.reject(errnoError(-ENOENT, 'io_uring_cancel')),
    );
  }

  /**
   * IORING_OP_READ_FIXED into registered buffer `bufIndex`, `[offset, offset + length)` of it
   * (default: all of it), at file `position` (-1: the current file position).
   */
  readFixed(
    fd: number,
    bufIndex: number,
    offset: number | undefined,
    length: number | undefined,
    position: number,
    opts?: FileOptions,
  ): Promise<number>;
  /** @deprecated `readFixed(fd, bufIndex, position, length?, opts?)`: use `readFixed(fd, bufIndex, 0, length, position, opts)`. */
  readFixed(fd: number, bufIndex: number, position: number, length?: number, opts?: FileOptions): Promise<number>;
  readFixed(fd: number, bufIndex: number, a?: number, b?: number, c?: number | FileOptions, d?: FileOptions): Promise<number> {
    return this.rw(u.OP.READ_FIXED, 'read', fd, bufIndex, rwArgs<FileOptions>(a, b, c, d));
  } // prettier-ignore
}

/** The fields of a struct statx the kernel wrote into `out`. */
function statxResult(out: Uint8Array): RingStat {
  const dv = new DataView(out.buffer);
  const ts = (o: number) => Number(dv.getBigInt64(o, true)) * 1000 + dv.getUint32(o + 8, true) / 1e6;
  return {
    blksize: dv.getUint32(4, true),
    nlink: dv.getUint32(16, true),
    uid: dv.getUint32(20, true),
    gid: dv.getUint32(24, true),
    mode: dv.getUint16(28, true),
    ino: Number(dv.getBigUint64(32, true)),
    size: Number(dv.getBigUint64(40, true)),
    mtimeMs: ts(112),
    dioMemAlign: dv.getUint32(152, true),
    dioOffsetAlign: dv.getUint32(156, true),
  };
}
