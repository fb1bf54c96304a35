/**
 * One helper per io_uring operation, each filling one submission queue entry from named
 * fields, as liburing's `io_uring_prep_<op>()` do over its single `prep_rw`. The native ring
 * (native/uring.cc) writes SQEs from positional arguments — `prep` with every field, `prepRw`
 * and `prepSock` as the short fast paths — and this module is the only place that knows which
 * field of the entry each argument lands in: which op carries its flags in `ioprio` (the
 * multishot bits), which puts a count in `len` or an offset in `addr`.
 *
 * Every helper returns true when the entry was prepared, false when the SQ is full. Field
 * layout only: no argument checks beyond the native layer's bounds checks, and no pinning.
 * Callers (`Ring`, `Proactor`) validate at their public entry points, pin there the buffers
 * they are given, once per operation (src/sys/pin.ts lists where), and keep every buffer
 * referenced until the operation's completion is reaped; an entry prepared again for the
 * rest of the same operation (a short send or read) needs neither again.
 */
import { native, type NativeRing } from './native.js';
import * as u from './uring.js';

const { OP } = u;

/**
 * accept4(2) flags of every socket a ring accepts: SOCK_NONBLOCK | SOCK_CLOEXEC, which Linux
 * defines as O_NONBLOCK and O_CLOEXEC (the addon's values for this architecture).
 */
export const SOCK_FLAGS = ((c) => c.O_NONBLOCK | c.O_CLOEXEC)(
  native.constants as { O_NONBLOCK: number; O_CLOEXEC: number }, // both set by native/constants.cc
);
/** The same for a socket accepted into a ring's file table: with no fd, SOCK_CLOEXEC is refused (EINVAL). */
export const SOCK_FLAGS_DIRECT = (native.constants as { O_NONBLOCK: number }).O_NONBLOCK;
/** send(2)'s flag against SIGPIPE on a closed peer: every send on a ring carries it. */
export const MSG_NOSIGNAL = 0x4000;

/** Fields every entry has. */
export interface SqeFields {
  /** Returned in the completion (cqe->user_data, 32 bits here). */
  userData: number;
  /** IOSQE_* bits (IOSQE_FIXED_FILE …); default 0. */
  sqeFlags?: number;
}

/** The longest length an SQE's 32-bit len holds (4 GiB - 1); the addon refuses a longer one with a RangeError. */
export const MAX_SQE_LEN = 0xffffffff;

/** A read(2) / write(2) of `buf[offset, offset + length)`. */
export interface RwFields extends SqeFields {
  fd: number;
  buf: Uint8Array;
  /** Where the slice of `buf` starts; default 0. */
  offset?: number;
  length: number;
  /** File offset; -1: the fd's current position. */
  position: number;
  /** RWF_* (preadv2(2)); default 0. */
  rwFlags?: number;
}

/** A read into (or write from) registered buffer `bufIndex`, whose memory is `buf`. */
export interface FixedFields extends RwFields {
  bufIndex: number;
}

/** A readv / writev of the `count` struct iovecs in `iovecs` (filled by `fillIovecs`). */
export interface VecFields extends SqeFields {
  fd: number;
  iovecs: Uint8Array;
  count: number;
  position: number;
}

/** A send(2) / recv(2) of `buf[offset, offset + length)`. */
export interface SockFields extends SqeFields {
  fd: number;
  buf: Uint8Array;
  offset: number;
  length: number;
  /** MSG_* flags; default 0. */
  msgFlags?: number;
}

/** IORING_OP_SEND with MSG_NOSIGNAL by the static `Ring.prepSend`: the Proactor's replies, without an unwrap. */
export function prepSendSlot(slot: number, e: SockFields): boolean {
  return native.Ring.prepSend(slot, e.fd, e.buf, e.offset, e.length, e.userData);
}

/**
 * READ / WRITE / READ_FIXED of `buf[0, length)` with no RWF_* flags, by the static
 * `Ring.prepRwIn` on the ring in `slot`: the batch API's hot path, one call with six
 * arguments, no unwrap and no object per entry. `bufIndex` names the registered buffer
 * `buf` is (READ_FIXED), else 0. `slot` plus {@link SUBMIT_NOW} also submits the entry in
 * the same call (a `submitEach` ring's).
 */
/** Added to a slot for `prepRwIn`: the entry is submitted in the same call (native/uring.cc kSlotBits). */
export const SUBMIT_NOW = 2 ** 20;

export function prepRwSlot(
  slot: number,
  op: number,
  fd: number,
  buf: Uint8Array,
  length: number,
  position: number,
  userData: number,
  sqeFlags: number,
  bufIndex: number,
): boolean {
  const how = slot * 2 ** 32 + bufIndex * 2 ** 16 + sqeFlags * 2 ** 8 + op;
  return native.Ring.prepRwIn(how, fd, buf, length, position, userData);
}

function rw(ring: NativeRing, op: number, e: RwFields, bufIndex = 0): boolean {
  const { fd, buf, length, position, userData } = e;
  return ring.prepRw(op, fd, buf, e.offset ?? 0, length, position, userData, e.sqeFlags ?? 0, bufIndex, e.rwFlags ?? 0);
}

/** IORING_OP_READ: read(2) / pread(2). */
export function prepRead(ring: NativeRing, e: RwFields): boolean {
  return rw(ring, OP.READ, e);
}
/** IORING_OP_WRITE: write(2) / pwrite(2). */
export function prepWrite(ring: NativeRing, e: RwFields): boolean {
  return rw(ring, OP.WRITE, e);
}
/** IORING_OP_READ_FIXED: a read into a registered buffer. */
export function prepReadFixed(ring: NativeRing, e: FixedFields): boolean {
  return rw(ring, OP.READ_FIXED, e, e.bufIndex);
}

function vec(ring: NativeRing, op: number, e: VecFields): boolean {
  // len: how many struct iovecs sit at addr
  return ring.prep(op, e.fd, e.iovecs, 0, e.count, e.position, null, e.userData, 0, e.sqeFlags ?? 0, 0, 0, 0);
}
/** IORING_OP_READV: preadv2(2). */
export function prepReadv(ring: NativeRing, e: VecFields): boolean {
  return vec(ring, OP.READV, e);
}
/** IORING_OP_WRITEV: pwritev2(2). */
export function prepWritev(ring: NativeRing, e: VecFields): boolean {
  return vec(ring, OP.WRITEV, e);
}

/** IORING_OP_FSYNC: fsync(2), or fdatasync(2) with `datasync`. */
export function prepFsync(ring: NativeRing, e: SqeFields & { fd: number; datasync?: boolean }): boolean {
  const fl = e.datasync === true ? u.IORING_FSYNC_DATASYNC : 0;
  return ring.prep(OP.FSYNC, e.fd, null, 0, 0, 0, null, e.userData, fl, e.sqeFlags ?? 0, 0, 0, 0);
}

/** IORING_OP_OPENAT: openat(2) of the NUL-terminated `path`. */
export function prepOpenat(
  ring: NativeRing,
  e: SqeFields & { dirFd: number; path: Uint8Array; flags: number; mode: number },
): boolean {
  // len carries the mode, rw_flags the open flags
  return ring.prep(OP.OPENAT, e.dirFd, e.path, 0, e.mode, 0, null, e.userData, e.flags, e.sqeFlags ?? 0, 0, 0, 0);
}

/** IORING_OP_CLOSE: close(2). */
export function prepClose(ring: NativeRing, e: SqeFields & { fd: number }): boolean {
  return ring.prep(OP.CLOSE, e.fd, null, 0, 0, 0, null, e.userData, 0, e.sqeFlags ?? 0, 0, 0, 0);
}

/** IORING_OP_STATX: statx(2) of the NUL-terminated `path` into `statxbuf` (256 bytes). */
export function prepStatx(
  ring: NativeRing,
  e: SqeFields & { dirFd: number; path: Uint8Array; flags: number; mask: number; statxbuf: Uint8Array },
): boolean {
  // len carries the mask, addr2 (the native offBuf) the output struct
  const { dirFd, path, mask, statxbuf, userData, flags } = e;
  return ring.prep(OP.STATX, dirFd, path, 0, mask, 0, statxbuf, userData, flags, e.sqeFlags ?? 0, 0, 0, 0);
}

/**
 * IORING_OP_ACCEPT: accept4(2) with SOCK_* `flags`. `multishot` (5.19) keeps it armed: one
 * completion per connection, IORING_CQE_F_MORE set while it stays so.
 */
export function prepAccept(
  ring: NativeRing,
  e: SqeFields & { fd: number; flags: number; multishot?: boolean },
): boolean {
  const ioprio = e.multishot === true ? u.IORING_ACCEPT_MULTISHOT : 0; // accept's flags live in ioprio
  return ring.prep(OP.ACCEPT, e.fd, null, 0, 0, 0, null, e.userData, e.flags, e.sqeFlags ?? 0, ioprio, 0, 0);
}

/** IORING_OP_RECV: recv(2) into `buf[offset, offset + length)`. */
export function prepRecv(ring: NativeRing, e: SockFields): boolean {
  return sock(ring, OP.RECV, e);
}
/** IORING_OP_SEND: send(2) of `buf[offset, offset + length)`. */
export function prepSend(ring: NativeRing, e: SockFields): boolean {
  return sock(ring, OP.SEND, e);
}
/**
 * IORING_OP_SEND_ZC (6.0): a zero-copy send(2) of `buf[offset, offset + length)`. Two
 * completions carry the user data: the result with IORING_CQE_F_MORE, then the notification
 * (IORING_CQE_F_NOTIF) once the kernel no longer reads the buffer. `reportUsage`
 * (IORING_SEND_ZC_REPORT_USAGE; default: from 6.2 on, where the kernel takes it) makes the
 * notification's res say whether the kernel copied after all.
 */
export function prepSendZc(ring: NativeRing, e: SockFields & { reportUsage?: boolean }): boolean {
  // msg flags ride in the op's flag word, the zero-copy flags in ioprio
  const zc = (e.reportUsage ?? u.SEND_ZC_REPORTS_USAGE) ? u.IORING_SEND_ZC_REPORT_USAGE : 0;
  const { fd, buf, offset, length, userData } = e;
  return ring.prep(OP.SEND_ZC, fd, buf, offset, length, 0, null, userData, e.msgFlags ?? 0, e.sqeFlags ?? 0, zc, 0, 0);
}
function sock(ring: NativeRing, op: number, e: SockFields): boolean {
  const { fd, buf, offset, length, userData } = e;
  const sqeFlags = e.sqeFlags ?? 0;
  if (sqeFlags === 0) return ring.prepSock(op, fd, buf, offset, length, userData, e.msgFlags ?? 0);
  return ring.prepRw(op, fd, buf, offset, length, 0, userData, sqeFlags, 0, e.msgFlags ?? 0);
}

/**
 * IORING_OP_RECV with IORING_RECV_MULTISHOT (6.0) and IOSQE_BUFFER_SELECT: stays armed,
 * and the kernel picks each chunk's buffer from the registered group `bufGroup`; with
 * `bundle` (IORING_RECVSEND_BUNDLE, 6.10) a completion may fill several in a row.
 */
export function prepRecvMultishot(
  ring: NativeRing,
  e: SqeFields & { fd: number; bufGroup: number; bundle?: boolean },
): boolean {
  // recv's flags live in ioprio; buf_index names the buffer group
  const sqeFlags = (e.sqeFlags ?? 0) | u.IOSQE_BUFFER_SELECT;
  const ioprio = u.IORING_RECV_MULTISHOT | (e.bundle === true ? u.IORING_RECVSEND_BUNDLE : 0);
  return ring.prep(OP.RECV, e.fd, null, 0, 0, 0, null, e.userData, 0, sqeFlags, ioprio, e.bufGroup, 0);
}

/**
 * IORING_OP_POLL_ADD: poll(2) for `events` (POLLIN …) on one fd; the result is the revents.
 * `multishot` (IORING_POLL_ADD_MULTI, 5.13) keeps it armed: one completion with
 * IORING_CQE_F_MORE per readiness, until cancelled.
 */
export function prepPollAdd(
  ring: NativeRing,
  e: SqeFields & { fd: number; events: number; multishot?: boolean },
): boolean {
  // poll32_events in the op flags word; the multishot flag in len
  const len = e.multishot === true ? u.IORING_POLL_ADD_MULTI : 0;
  return ring.prep(OP.POLL_ADD, e.fd, null, 0, len, 0, null, e.userData, e.events, e.sqeFlags ?? 0, 0, 0, 0);
}

/** IORING_OP_SPLICE: splice(2); an offset of -1 means the fd's own position. */
export function prepSplice(
  ring: NativeRing,
  e: SqeFields & { fdIn: number; offIn: number; fdOut: number; offOut: number; length: number; flags: number },
): boolean {
  // fd / off are the output side; splice_fd_in and addr (splice_off_in) the input side
  const { fdIn, offIn, fdOut, offOut, length, flags, userData } = e;
  return ring.prep(OP.SPLICE, fdOut, null, offIn, length, offOut, null, userData, flags, e.sqeFlags ?? 0, 0, 0, fdIn);
}

/**
 * IORING_OP_TIMEOUT: completes with -ETIME once the struct __kernel_timespec `timespec` has
 * passed, or with 0 after `count` other completions (default 0: only the time counts).
 */
export function prepTimeout(ring: NativeRing, e: SqeFields & { timespec: Uint8Array; count?: number }): boolean {
  // len: one timespec at addr; off: the completion count
  return ring.prep(OP.TIMEOUT, -1, e.timespec, 0, 1, e.count ?? 0, null, e.userData, 0, e.sqeFlags ?? 0, 0, 0, 0);
}

/** IORING_OP_NOP: completes with 0. */
export function prepNop(ring: NativeRing, e: SqeFields): boolean {
  return ring.prep(OP.NOP, -1, null, 0, 0, 0, null, e.userData, 0, e.sqeFlags ?? 0, 0, 0, 0);
}

/**
 * IORING_OP_ASYNC_CANCEL of the first request whose user data is `target`, or of every one
 * with `all` (IORING_ASYNC_CANCEL_ALL, 5.19: the result is then how many were cancelled).
 */
export function prepCancel(ring: NativeRing, e: SqeFields & { target: number; all?: boolean }): boolean {
  // the target's user data goes in addr, as a u64; the cancel flags in the op flags word
  const fl = e.all === true ? u.IORING_ASYNC_CANCEL_ALL : 0;
  return ring.prep(OP.ASYNC_CANCEL, -1, null, e.target >>> 0, 0, 0, null, e.userData, fl, e.sqeFlags ?? 0, 0, 0, 0);
}

// ---- direct descriptors: files in a ring's registered table, named by slot, not by fd

/**
 * IORING_OP_ACCEPT into the registered file table (5.19): each connection lands in a free slot
 * the kernel picks (IORING_FILE_INDEX_ALLOC), and the completion carries the slot, not an fd.
 */
export function prepAcceptDirect(
  ring: NativeRing,
  e: SqeFields & { fd: number; flags: number; multishot?: boolean },
): boolean {
  const ioprio = e.multishot === true ? u.IORING_ACCEPT_MULTISHOT : 0;
  return ring.prepDirect(
    OP.ACCEPT,
    e.fd,
    e.userData,
    e.sqeFlags ?? 0,
    e.flags,
    ioprio,
    u.IORING_FILE_INDEX_ALLOC,
    0,
    0,
    0,
    0,
  );
}

/**
 * IORING_OP_MSG_RING with IORING_MSG_SEND_FD (6.0): moves the file in `slot` of this ring's
 * table into a free slot of the ring `ringFd`, which gets a completion with user data
 * `targetData` and the slot as its result. This ring keeps its own slot: close it after.
 */
export function prepMsgRingFd(
  ring: NativeRing,
  e: SqeFields & { ringFd: number; slot: number; targetData: number },
): boolean {
  const { ringFd, slot, targetData, userData } = e;
  // addr: the command; addr3: our slot; file_index: theirs; off: their completion's user data
  const alloc = u.IORING_FILE_INDEX_ALLOC;
  return ring.prepDirect(
    OP.MSG_RING,
    ringFd,
    userData,
    e.sqeFlags ?? 0,
    0,
    0,
    alloc,
    u.IORING_MSG_SEND_FD,
    0,
    targetData >>> 0,
    slot,
  );
}

/** IORING_OP_FIXED_FD_INSTALL (6.8): the file in `slot` becomes an fd (O_CLOEXEC); the slot stays. */
export function prepFixedFdInstall(ring: NativeRing, e: SqeFields & { slot: number }): boolean {
  const sqeFlags = (e.sqeFlags ?? 0) | u.IOSQE_FIXED_FILE; // the kernel requires it: fd names a slot
  return ring.prepDirect(OP.FIXED_FD_INSTALL, e.slot, e.userData, sqeFlags, 0, 0, 0, 0, 0, 0, 0);
}

/** IORING_OP_CLOSE of registered slot `slot` (5.15): file_index is the slot plus one. */
export function prepCloseDirect(ring: NativeRing, e: SqeFields & { slot: number }): boolean {
  return ring.prepDirect(OP.CLOSE, 0, e.userData, e.sqeFlags ?? 0, 0, 0, e.slot + 1, 0, 0, 0, 0);
}
