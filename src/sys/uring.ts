/**
 * io_uring's numbers (the opcodes and flags of <linux/io_uring.h>) and the run-time probe:
 * whether this kernel lets a process set up a ring at all (it may refuse with ENOSYS, with
 * EPERM from seccomp or `kernel.io_uring_disabled`), which opcodes IORING_REGISTER_PROBE
 * reports, and which IORING_FEAT_* bits io_uring_setup(2) returned.
 */
import { readFileSync } from 'node:fs';
import { release } from 'node:os';
import { errnoName } from './errors.js';
import { native } from './native.js';

/** Opcode numbers, in the kernel's enum order (each comment names the kernel that added the opcode). */
export const OP = Object.freeze({
  /** IORING_OP_NOP: does nothing; completes with 0 (5.1). */
  NOP: 0,
  /** IORING_OP_READV: preadv2(2) (5.1). */
  READV: 1,
  /** IORING_OP_WRITEV: pwritev2(2) (5.1). */
  WRITEV: 2,
  /** IORING_OP_FSYNC: fsync(2) (fdatasync(2) with IORING_FSYNC_DATASYNC) (5.1). */
  FSYNC: 3,
  /** IORING_OP_READ_FIXED: a read into a registered buffer (5.1). */
  READ_FIXED: 4,
  /** IORING_OP_WRITE_FIXED: a write from a registered buffer (5.1). */
  WRITE_FIXED: 5,
  /** IORING_OP_POLL_ADD: poll(2) on one fd (5.1). */
  POLL_ADD: 6,
  /** IORING_OP_TIMEOUT: completes with -ETIME when the time has passed (5.4). */
  TIMEOUT: 11,
  /** IORING_OP_ACCEPT: accept4(2) (5.5). */
  ACCEPT: 13,
  /** IORING_OP_ASYNC_CANCEL: cancels a request by its user data (5.5). */
  ASYNC_CANCEL: 14,
  /** IORING_OP_OPENAT: openat(2) (5.6). */
  OPENAT: 18,
  /** IORING_OP_CLOSE: close(2) (5.6). */
  CLOSE: 19,
  /** IORING_OP_STATX: statx(2) (5.6). */
  STATX: 21,
  /** IORING_OP_READ: read(2) / pread(2) (5.6). */
  READ: 22,
  /** IORING_OP_WRITE: write(2) / pwrite(2) (5.6). */
  WRITE: 23,
  /** IORING_OP_SEND: send(2) (5.6). */
  SEND: 26,
  /** IORING_OP_RECV: recv(2) (5.6). */
  RECV: 27,
  /** IORING_OP_SPLICE: splice(2) (5.7). */
  SPLICE: 30,
  /** IORING_OP_MSG_RING: posts a completion to another ring, or moves a registered file into its table (5.18; IORING_MSG_SEND_FD 6.0). */
  MSG_RING: 40,
  /** IORING_OP_SEND_ZC: a zero-copy send(2); a second completion (IORING_CQE_F_NOTIF) releases the buffer (6.0). */
  SEND_ZC: 47,
  /** IORING_OP_FIXED_FD_INSTALL: a registered file becomes an fd of the process (6.8). */
  FIXED_FD_INSTALL: 54,
});

/** Every opcode's name by number, through 6.16 (for `probe().opcodes`). */
const OP_NAMES = [
  'NOP', 'READV', 'WRITEV', 'FSYNC', 'READ_FIXED', 'WRITE_FIXED', 'POLL_ADD', 'POLL_REMOVE',
  'SYNC_FILE_RANGE', 'SENDMSG', 'RECVMSG', 'TIMEOUT', 'TIMEOUT_REMOVE', 'ACCEPT', 'ASYNC_CANCEL',
  'LINK_TIMEOUT', 'CONNECT', 'FALLOCATE', 'OPENAT', 'CLOSE', 'FILES_UPDATE', 'STATX', 'READ', 'WRITE',
  'FADVISE', 'MADVISE', 'SEND', 'RECV', 'OPENAT2', 'EPOLL_CTL', 'SPLICE', 'PROVIDE_BUFFERS',
  'REMOVE_BUFFERS', 'TEE', 'SHUTDOWN', 'RENAMEAT', 'UNLINKAT', 'MKDIRAT', 'SYMLINKAT', 'LINKAT',
  'MSG_RING', 'FSETXATTR', 'SETXATTR', 'FGETXATTR', 'GETXATTR', 'SOCKET', 'URING_CMD', 'SEND_ZC',
  'SENDMSG_ZC', 'READ_MULTISHOT', 'WAITID', 'FUTEX_WAIT', 'FUTEX_WAKE', 'FUTEX_WAITV',
  'FIXED_FD_INSTALL', 'FTRUNCATE', 'BIND', 'LISTEN', 'RECV_ZC', 'EPOLL_WAIT', 'READV_FIXED',
  'WRITEV_FIXED', 'PIPE',
]; // prettier-ignore

/** IORING_FEAT_* by bit. */
const FEATURE_NAMES = [
  'SINGLE_MMAP', 'NODROP', 'SUBMIT_STABLE', 'RW_CUR_POS', 'CUR_PERSONALITY', 'FAST_POLL',
  'POLL_32BITS', 'SQPOLL_NONFIXED', 'EXT_ARG', 'NATIVE_WORKERS', 'RSRC_TAGS', 'CQE_SKIP',
  'LINKED_FILE', 'REG_REG_RING', 'RECVSEND_BUNDLE', 'MIN_TIMEOUT', 'RW_ATTR', 'NO_IOWAIT',
]; // prettier-ignore

export const IORING_SETUP_SQPOLL = 1 << 1;
export const IORING_SETUP_SUBMIT_ALL = 1 << 7;
export const IORING_SETUP_COOP_TASKRUN = 1 << 8; // 5.19
export const IORING_SETUP_TASKRUN_FLAG = 1 << 9; // 5.19
export const IORING_SETUP_SINGLE_ISSUER = 1 << 12; // 6.0
export const IORING_SETUP_DEFER_TASKRUN = 1 << 13; // 6.1
export const IORING_FEAT_NODROP = 1 << 1;
export const IOSQE_FIXED_FILE = 1 << 0;
export const IORING_CQE_F_MORE = 1 << 1;
export const IORING_CQE_F_NOTIF = 1 << 3; // 6.0: SEND_ZC's notification, the buffer is free
export const IORING_SEND_ZC_REPORT_USAGE = 1 << 3; // 6.2, in sqe->ioprio
export const IORING_NOTIF_USAGE_ZC_COPIED = 0x80000000; // 6.2, in the notification's res
/**
 * Whether this kernel takes IORING_SEND_ZC_REPORT_USAGE (6.2): a SEND_ZC that asks for it on
 * 6.0 or 6.1 fails with EINVAL, so it is asked for only from 6.2 on (read from uname).
 */
export const SEND_ZC_REPORTS_USAGE = ((m) => m !== null && (Number(m[1]) > 6 || (m[1] === '6' && Number(m[2]) >= 2)))(
  /^(\d+)\.(\d+)/.exec(release()),
);
export const IORING_CQE_F_BUFFER = 1 << 0; // the buffer id is in the upper 16 bits of cqe->flags
export const IOSQE_BUFFER_SELECT = 1 << 5;
/** No completion on success (5.17): refused by rawio, which counts one completion per entry. */
export const IOSQE_CQE_SKIP_SUCCESS = 1 << 6;
export const IORING_RECV_MULTISHOT = 1 << 1; // 6.0, in sqe->ioprio
/** POLL_ADD: stay armed, one completion per readiness (5.13), in sqe->len. */
export const IORING_POLL_ADD_MULTI = 1 << 0;
export const IORING_RECVSEND_BUNDLE = 1 << 4; // 6.10, in sqe->ioprio
export const IORING_ACCEPT_MULTISHOT = 1 << 0;
export const IORING_ASYNC_CANCEL_ALL = 1 << 0; // 5.19
export const IORING_ASYNC_CANCEL_ANY = 1 << 2;
export const IORING_FSYNC_DATASYNC = 1 << 0;
export const IORING_REGISTER_BUFFERS = 0;
export const IORING_UNREGISTER_BUFFERS = 1;
export const IORING_REGISTER_FILES = 2;
export const IORING_UNREGISTER_FILES = 3;
export const IORING_REGISTER_EVENTFD = 4;
/** sqe->file_index: let the kernel pick a free slot of the registered file table (5.19). */
export const IORING_FILE_INDEX_ALLOC = 0xffffffff;
/** IORING_OP_MSG_RING's command in sqe->addr: move a registered file to the target ring (6.0). */
export const IORING_MSG_SEND_FD = 1;

/** What {@link probeRing} and `Ring.probe()` return: what io_uring this kernel offers. */
export interface RingProbe {
  /** A ring could be set up and probed. */
  supported: boolean;
  /** Why not: the negative errno io_uring_setup(2) returned. */
  errno?: number;
  /** Why not: the errno's name ('ENOSYS', 'EPERM' …). */
  code?: string;
  /** Names of the opcodes this kernel supports ('READ', 'ACCEPT', …; 'OP_63' past our table). */
  opcodes: string[];
  /** Names of the IORING_FEAT_* bits io_uring_setup returned. */
  features: string[];
  /** /proc/sys/kernel/io_uring_disabled: 0 allowed, 1 only for io_uring_group, 2 nobody; null if absent (< 6.6). */
  ioUringDisabled: number | null;
}

function readDisabled(): number | null {
  try {
    return Number(readFileSync('/proc/sys/kernel/io_uring_disabled', 'utf8').trim());
  } catch {
    return null;
  }
}

/** Sets up and tears down a two-entry ring to learn what this kernel offers. */
export function probeRing(): RingProbe {
  const ioUringDisabled = readDisabled();
  const r = native.Ring.probe();
  if (typeof r === 'number')
    return { supported: false, errno: r, code: errnoName(r), opcodes: [], features: [], ioUringDisabled };
  const features = FEATURE_NAMES.filter((_, bit) => (r.features & (1 << bit)) !== 0);
  for (let bit = FEATURE_NAMES.length; bit < 32; bit++) if ((r.features >>> bit) & 1) features.push(`FEAT_${bit}`);
  const opcodes = r.ops.map((op) => OP_NAMES[op] ?? `OP_${op}`);
  return { supported: true, opcodes, features, ioUringDisabled };
}

let cached: RingProbe | undefined;
/** The probe, computed once per thread. */
export function ringProbe(): RingProbe {
  cached ??= probeRing();
  return cached;
}

/** Why the kernel refused, in words, for the error `new Ring()` throws. */
export function refusalReason(p: RingProbe): string {
  if (p.code === 'ENOSYS') return 'io_uring is not built into this kernel (ENOSYS)';
  if (p.ioUringDisabled === 2) return 'io_uring is disabled by sysctl kernel.io_uring_disabled=2';
  if (p.ioUringDisabled === 1) return 'kernel.io_uring_disabled=1 allows io_uring only to io_uring_group members';
  if (p.code === 'EPERM') return 'io_uring is refused to this process (EPERM: seccomp or a container policy)';
  return `io_uring_setup failed (${p.code ?? 'unknown'})`;
}
