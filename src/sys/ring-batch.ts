/**
 * The batch face of `Ring` (ring.ts), with the resources it registers: each `prep*` call fills
 * one SQE with the caller's own user data (0 … 2^31 - 1) and returns false when the submission
 * queue is full; nothing is sent before `submit()`, as in liburing's examples. The buffers an
 * entry names stay referenced until its completion is reaped (RingCore.holdBatch), and a
 * caller's buffer is pinned (pin.ts) as its entry is prepared. `registerBuffers` and
 * `registerFiles` hold what READ_FIXED and IOSQE_FIXED_FILE refer to (the buffers pinned).
 * Ring adds the promise API on top.
 */
import { EBADF } from './errno.js';
import { check } from './errors.js';
import { pin, pinAll } from './pin.js';
import { INTERNAL, RingCore } from './ring-core.js';
import { position, timespec, userData } from './ring-args.js';
import * as u from './uring.js';
import * as sqe from './uring-prep.js';
import { MSG_NOSIGNAL, SOCK_FLAGS } from './uring-prep.js';
import * as v from './validate.js';

/**
 * The IOSQE_* bits of a batch entry: the addon's range check, here so that null is not read
 * as 0, and two bits refused. IOSQE_CQE_SKIP_SUCCESS (1 << 6) posts no completion on success,
 * and the ring counts on one per entry to release its buffer and to know when the kernel is
 * done (close() would wait forever); IOSQE_BUFFER_SELECT (1 << 5) reads into a provided
 * buffer that the batch API has no way to hand back. Other bits go to the kernel, which fails
 * an entry with one it does not know (EINVAL in its completion).
 */
function sqeFlagsArg(sqeFlags: number): void {
  v.int('sqeFlags', sqeFlags, 0, 255);
  if ((sqeFlags & (u.IOSQE_CQE_SKIP_SUCCESS | u.IOSQE_BUFFER_SELECT)) !== 0)
    throw v.rangeError('sqeFlags', 'without IOSQE_CQE_SKIP_SUCCESS and IOSQE_BUFFER_SELECT', sqeFlags);
}

/** `Ring`'s batch API and registered resources (see {@link Ring}). */
export class RingBatch extends RingCore {
  /** The buffers registered with `registerBuffers`, held while the kernel may use them. */
  private registered: Uint8Array[] = [];

  /** IORING_REGISTER_BUFFERS: pins the buffers for `readFixed`; they stay referenced until close. */
  registerBuffers(bufs: Uint8Array[]): void {
    this.checkUsable('io_uring_register');
    const list = v.bytesList('buffers', bufs, 'an array'); // read once: `bufs` is not used again
    if (this.registered.length > 0) this.raw.register(u.IORING_UNREGISTER_BUFFERS);
    this.registered = [];
    pinAll(list); // registered until close: their memory must not move to another owner
    check(this.raw.register(u.IORING_REGISTER_BUFFERS, list), 'io_uring_register');
    this.registered = list;
  }

  /** The registered buffer `index`. @internal */
  protected fixedBuf(index: number): Uint8Array {
    const buf = this.registered[v.int('bufIndex', index, 0, Math.max(0, this.registered.length - 1))];
    if (buf === undefined)
      throw v.rangeError('bufIndex', 'the index of a registered buffer (none are registered)', index);
    return buf;
  }

  /** IORING_REGISTER_FILES: ops given `{ fixedFile: true }` then take an index into `fds`. */
  registerFiles(fds: number[]): void {
    this.checkUsable('io_uring_register');
    if (!Array.isArray(fds)) throw v.typeError('fds', 'an array', fds);
    const list = fds.map((f, i) => v.fd(f, `fds[${i}]`));
    this.raw.register(u.IORING_UNREGISTER_FILES);
    check(this.raw.register(u.IORING_REGISTER_FILES, list), 'io_uring_register');
  }

  /** Prepares a read(2) of `len` bytes at `position` (-1: current) into `buf`, completing with user data `ud`. */
  prepRead(fd: number, buf: Uint8Array, pos: number, len: number, ud: number, sqeFlags = 0): boolean {
    return this.prepFile(u.OP.READ, fd, buf, pos, len, ud, sqeFlags);
  }
  /** Prepares a write(2) of `buf[0, len)` at `position` (-1: current), completing with user data `ud`. */
  prepWrite(fd: number, buf: Uint8Array, pos: number, len: number, ud: number, sqeFlags = 0): boolean {
    return this.prepFile(u.OP.WRITE, fd, buf, pos, len, ud, sqeFlags);
  }
  /** Prepares a recv(2) into `buf[off, off + len)`, completing with user data `ud`. */
  prepRecv(fd: number, buf: Uint8Array, off: number, len: number, ud: number): boolean {
    return this.prepBytes(fd, buf, off, len, ud, (e) => sqe.prepRecv(this.raw, e));
  }
  /** Prepares a send(2) of `buf[off, off + len)` with MSG_NOSIGNAL, completing with user data `ud`. */
  prepSend(fd: number, buf: Uint8Array, off: number, len: number, ud: number): boolean {
    return this.prepBytes(fd, buf, off, len, ud, (e) => sqe.prepSend(this.raw, { ...e, msgFlags: MSG_NOSIGNAL }));
  }
  /**
   * Prepares an IORING_OP_SEND_ZC (6.0) of `buf[off, off + len)` with MSG_NOSIGNAL. Two
   * completions carry `ud`: the result with IORING_CQE_F_MORE, then the notification
   * (IORING_CQE_F_NOTIF; its res has IORING_NOTIF_USAGE_ZC_COPIED when the kernel copied).
   * `buf` stays held (the batch references drop at a completion without IORING_CQE_F_MORE),
   * and must stay unmodified, until the notification.
   */
  prepSendZc(fd: number, buf: Uint8Array, off: number, len: number, ud: number): boolean {
    return this.prepBytes(fd, buf, off, len, ud, (e) => sqe.prepSendZc(this.raw, { ...e, msgFlags: MSG_NOSIGNAL }));
  }
  /** Prepares an IORING_OP_READ_FIXED into registered buffer `bufIndex` (see `registerBuffers`). */
  prepReadFixed(fd: number, bufIndex: number, pos: number, len: number, ud: number, sqeFlags = 0): boolean {
    this.checkUsable('io_uring_prep'); // an SQPOLL ring submits what is prepared
    const buf = this.fixedBuf(bufIndex);
    const length = v.slice(buf, 0, len)[1];
    sqeFlagsArg(sqeFlags);
    const f = v.fd(fd);
    const p = position(pos);
    const d = userData(ud);
    const ok = sqe.prepRwSlot(this.rwSlot, u.OP.READ_FIXED, f, buf, length, p, d, sqeFlags, bufIndex);
    if (ok) this.holdBatch(d, buf);
    return this.submitPrepared(ok, true);
  }
  /**
   * The batch read/write path, called once per operation: no object per call (spreading the
   * socket fields into a new literal once gave V8 a new shape per call and cost several
   * microseconds per read in megamorphic lookups), and one call into the addon, by slot.
   */
  private prepFile(op: number, fd: number, buf: Uint8Array, pos: number, len: number, ud: number, sqeFlags: number) {
    this.checkUsable('io_uring_prep'); // an SQPOLL ring submits what is prepared
    const p = position(pos);
    const f = v.fd(fd);
    const length = v.slice(v.liveBytes(buf), 0, len)[1];
    sqeFlagsArg(sqeFlags);
    const d = userData(ud);
    const ok = sqe.prepRwSlot(this.rwSlot, op, f, buf, length, p, d, sqeFlags, 0);
    if (ok) this.hold(d, buf);
    return this.submitPrepared(ok, true);
  } // prettier-ignore
  private prepBytes(fd: number, buf: Uint8Array, off: number, len: number, ud: number, prep: (e: sqe.SockFields) => boolean) {
    this.checkUsable('io_uring_prep'); // an SQPOLL ring submits what is prepared
    const f = v.fd(fd);
    const [offset, length] = v.slice(v.liveBytes(buf), off, len);
    const d = userData(ud);
    const ok = prep({ fd: f, buf, offset, length, userData: d });
    if (ok) this.hold(d, buf);
    return this.submitPrepared(ok);
  } // prettier-ignore
  /** A caller's buffer in a prepared entry: pinned before the caller gets control back, held until the completion. */
  private hold(ud: number, buf: Uint8Array): void {
    pin(buf);
    this.holdBatch(ud, buf);
  }

  /** accept4(2); `multishot` (5.19) posts one completion per connection with IORING_CQE_F_MORE set while it stays armed. */
  prepAccept(fd: number, ud: number, opts?: { multishot?: boolean }): boolean {
    this.checkUsable('io_uring_prep'); // an SQPOLL ring submits what is prepared
    const multishot = v.object<{ multishot?: boolean }>('opts', opts).multishot === true;
    const e = { fd: v.fd(fd), userData: userData(ud), flags: SOCK_FLAGS, multishot };
    return this.submitPrepared(sqe.prepAccept(this.raw, e));
  }
  /** Prepares a timeout of `ms` milliseconds; its completion carries `ud` and -ETIME when the time has passed. */
  prepTimeout(ms: number, ud: number): boolean {
    this.checkUsable('io_uring_prep'); // an SQPOLL ring submits what is prepared
    const ts = timespec(ms);
    const d = userData(ud);
    const ok = sqe.prepTimeout(this.raw, { timespec: ts, userData: d });
    if (ok) this.holdBatch(d, ts);
    return this.submitPrepared(ok);
  }
  /** IORING_OP_ASYNC_CANCEL of `target`; its own completion carries `ud` (or is dropped when omitted). */
  prepCancel(target: number, ud = INTERNAL): boolean {
    this.checkUsable('io_uring_prep'); // an SQPOLL ring submits what is prepared
    const t = userData(target);
    const d = ud === INTERNAL ? INTERNAL : userData(ud);
    return this.submitPrepared(sqe.prepCancel(this.raw, { target: t, userData: d }));
  }
  /** Prepares an IORING_OP_NOP, completing with 0 and user data `ud`. */
  prepNop(ud: number): boolean {
    this.checkUsable('io_uring_prep'); // an SQPOLL ring submits what is prepared
    return this.submitPrepared(sqe.prepNop(this.raw, { userData: userData(ud) }));
  }

  /**
   * Submits the prepared SQEs (and queued promise operations): the count, or -errno. With
   * `waitNr`, the same io_uring_enter(2) also waits for that many completions (then `reap`).
   */
  submit(waitNr = 0): number {
    if (this.closed) return -EBADF;
    return this.flush(v.int('waitNr', waitNr, 0, 0xffffffff));
  }
  /**
   * `submit(minComplete)` then `reap(out)`, as one call into the kernel and one into the
   * addon: submits what is prepared, waits in the same io_uring_enter(2) for `minComplete`
   * completions (at most what is in flight; default 1), and fills `out` with the batch
   * completions as `reap` does. Returns their count, or -errno (the submit failed, nothing
   * reaped; -EBADF once the ring is closed).
   * @example
   * ring.prepRead(fd, buf, 0, buf.length, 7);
   * const n = ring.submitAndReap(cqes); // 1: cqes[0] === 7, cqes[1] = bytes read or -errno
   */
  submitAndReap(out: Int32Array, minComplete = 1): number {
    if (!(out instanceof Int32Array)) throw v.typeError('out', 'an instance of Int32Array', out);
    v.int('minComplete', minComplete, 0, 0x7fffffff);
    return this.submitReap(out, minComplete);
  }
  /** Free SQ slots. */
  get sqSpace(): number {
    return this.closed ? 0 : this.raw.sqSpace();
  }
}
