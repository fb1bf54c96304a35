/**
 * Files: open(2), openat2(2) with RESOLVE_BENEATH, pread(2)/pwrite(2), fstat(2), statx(2)'s
 * STATX_DIOALIGN (the kernel's own O_DIRECT rules), posix_fadvise(2), aligned buffers for
 * O_DIRECT (mmap(2) and madvise(2) are in mmap.ts, re-exported here). Every fd is opened close-on-exec. pread/pwrite are
 * hot-path calls (bytes or `-errno`); open, openBeneath and mmap throw an `ErrnoError`.
 */
import { readFileSync, realpathSync } from 'node:fs';
import { EINVAL } from './errno.js';
import { ErrnoError, check } from './errors.js';
import { native } from './native.js';
import { addonMemory } from './pin.js';
import * as v from './validate.js';

export { madvise, mmap, mmapAdviceNames, munmap, type MmapAdvice, type MmapOptions } from './mmap.js';

const O_DIRECTORY = native.constants.O_DIRECTORY!;
const O_RDONLY = native.constants.O_RDONLY!;
// openat2(2) resolve flags (linux/openat2.h); not in the constants table, which holds the
// flags of the public calls.
const RESOLVE_NO_MAGICLINKS = 0x02;
const RESOLVE_BENEATH = 0x08;
// st_mode's file type bits (sys/stat.h): what dioAlignment probes.
const S_IFMT = 0o170000;
const S_IFREG = 0o100000;
const S_IFBLK = 0o060000;

function path(name: string, p: unknown): string {
  return v.cstr(name, p);
}

/**
 * open(2) with O_CLOEXEC added; `mode` (default 0o666, less the umask) applies with O_CREAT.
 * Returns the new fd; a setup call, so it throws an ErrnoError (ENOENT, EACCES …), and a
 * TypeError / RangeError for a bad argument. `flags` are the kernel's (`constants.O_*`).
 * @example
 * const fd = sys.open('/tmp/data.bin', constants.O_RDWR | constants.O_CREAT, 0o600);
 * const n = sys.pwrite(fd, Buffer.from('hello'), undefined, undefined, 0); // 5 or -errno
 * sys.close(fd);
 */
export function open(p: string, flags: number, mode = 0o666): number {
  path('path', p);
  v.int('flags', flags, 0, 0x7fffffff);
  v.int('mode', mode, 0, 0o7777);
  return check(native.open(p, flags, mode), 'open', p);
}

/** A directory fd (O_RDONLY | O_DIRECTORY), the root for {@link openBeneath}. */
export function openDir(p: string): number {
  path('path', p);
  return check(native.open(p, O_RDONLY | O_DIRECTORY, 0), 'open', p);
}

/**
 * openat2(2) with RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS: opens `relPath` under `dirFd` and
 * refuses, with EXDEV, any path that would leave it (`..`, an absolute path, a symlink
 * pointing out), and with ELOOP any /proc magic link. A static-file server's guard.
 * openat2 needs Linux 5.6 (ENOSYS before); EAGAIN from a racing rename is retried.
 * @example
 * const root = sys.openDir('/srv/www');
 * const fd = sys.openBeneath(root, 'css/site.css', constants.O_RDONLY);
 */
export function openBeneath(dirFd: number, relPath: string, flags: number, mode = 0o666): number {
  v.fd(dirFd, 'dirFd');
  path('relPath', relPath);
  v.int('flags', flags, 0, 0x7fffffff);
  v.int('mode', mode, 0, 0o7777);
  const r = native.openat2(dirFd, relPath, flags, mode, RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS);
  return check(r, 'openat2', relPath);
}

function position(name: string, p: unknown): number {
  return v.int(name, p, 0, Number.MAX_SAFE_INTEGER);
}

/** pread(2) into `buf[off, off + len)` at file `position`: bytes read (0 at EOF) or `-errno`. */
export function pread(
  fd: number,
  buf: Uint8Array,
  off: number | undefined,
  len: number | undefined,
  pos: number,
): number {
  const [o, l, p] = v.positioned(fd, buf, off, len, pos);
  return native.pread(fd, buf, o, l, p);
}

/** pwrite(2) from `buf[off, off + len)` at file `position`: bytes written or `-errno`. */
export function pwrite(
  fd: number,
  buf: Uint8Array,
  off: number | undefined,
  len: number | undefined,
  pos: number,
): number {
  const [o, l, p] = v.positioned(fd, buf, off, len, pos);
  return native.pwrite(fd, buf, o, l, p);
}

/** What {@link fstat} returns (struct stat, fstat(2)). */
export interface Stat {
  /** Size in bytes. */
  size: number;
  /** The preferred I/O block size. */
  blksize: number;
  /** File type and permission bits (st_mode). */
  mode: number;
  /** 512-byte blocks allocated. */
  blocks: number;
  /** Inode number. */
  ino: number;
  /** Major number of the device holding the file (st_dev). */
  devMajor: number;
  /** Minor number of the device holding the file (st_dev). */
  devMinor: number;
  /** Last modification, seconds part (st_mtim.tv_sec). */
  mtimeSec: number;
  /** Last modification, nanoseconds part (st_mtim.tv_nsec). */
  mtimeNsec: number;
}

/** fstat(2); throws an ErrnoError (EBADF …). */
export function fstat(fd: number): Stat {
  const st = statOut;
  check(native.fstat(v.fd(fd), st), 'fstat');
  return {
    size: st[0]!,
    blksize: st[1]!,
    mode: st[2]!,
    blocks: st[3]!,
    ino: st[6]!,
    devMajor: st[4]!,
    devMinor: st[5]!,
    mtimeSec: st[7]!,
    mtimeNsec: st[8]!,
  };
}
const statOut = new Float64Array(9);

/** What {@link dioAlignment} returns: the O_DIRECT alignment rules of one file. */
export interface DioAlignment {
  /** Alignment O_DIRECT needs for the buffer's address (0 where direct IO is unsupported). */
  memAlign: number;
  /** Alignment O_DIRECT needs for the file position and the length. */
  offsetAlign: number;
  /** `statx`: the kernel said (STATX_DIOALIGN); `fallback`: rawio inferred it. */
  source: 'statx' | 'fallback';
  /** Whether this file accepts O_DIRECT at all. */
  supported: boolean;
  /** How the answer was reached, for messages and the probe. */
  detail: string;
}

/** The logical block size of block device `major:minor` (for a partition, its disk's). */
function logicalBlockSize(major: number, minor: number): number | undefined {
  try {
    const dev = realpathSync(`/sys/dev/block/${major}:${minor}`);
    for (const q of [`${dev}/queue/logical_block_size`, `${dev}/../queue/logical_block_size`]) {
      try {
        const n = Number(readFileSync(q, 'utf8').trim());
        if (Number.isInteger(n) && n > 0) return n;
      } catch {
        // a partition has no queue/ of its own: try its parent
      }
    }
  } catch {
    // no such block device in sysfs
  }
  return undefined;
}

/**
 * The O_DIRECT alignment rules of the file behind `fd`. The kernel's own answer where it
 * gives one (statx STATX_DIOALIGN, Linux 6.1+, filesystems that report it: ext4, xfs,
 * btrfs, f2fs, block devices); otherwise a fallback: the backing block device's logical
 * block size, or, with no block device (tmpfs, network filesystems), the file's st_blksize
 * — a conservative guess. `supported: false` when the filesystem refuses O_DIRECT, and
 * for anything but a regular file or a block device (a pipe, a socket, a character device),
 * which is never reopened to ask.
 */
export function dioAlignment(fd: number): DioAlignment {
  const r = native.dioAlign(v.fd(fd));
  if (typeof r === 'number') check(r, 'statx');
  const [got, mem, off, major, minor, blksize] = r as number[];
  if (got === 1 && mem! > 0) {
    return { memAlign: mem!, offsetAlign: off!, source: 'statx', supported: true, detail: 'statx STATX_DIOALIGN' };
  }
  if (got === 1) {
    return {
      memAlign: 0,
      offsetAlign: 0,
      source: 'statx',
      supported: false,
      detail: 'statx: no direct IO for this file',
    };
  }
  const type = (r as number[])[6]! & S_IFMT;
  if (type !== S_IFREG && type !== S_IFBLK) {
    // Not reopened to ask (a FIFO with no writer would block the open for ever).
    return {
      memAlign: 0,
      offsetAlign: 0,
      source: 'fallback',
      supported: false,
      detail: 'not a regular file or block device: no direct IO',
    };
  }
  const probe = native.probeDirect(fd);
  if (probe === -EINVAL) {
    return {
      memAlign: 0,
      offsetAlign: 0,
      source: 'fallback',
      supported: false,
      detail: 'open(O_DIRECT) refused: EINVAL',
    };
  }
  const lbs = major! > 0 ? logicalBlockSize(major!, minor!) : undefined;
  const align = lbs ?? blksize!;
  const why = lbs
    ? `logical block size of device ${major}:${minor}`
    : 'st_blksize (no block device: a safe alignment; the filesystem may accept less)';
  const note = probe === 0 ? '' : ` (O_DIRECT probe: ${new ErrnoError(probe, 'open').code})`;
  return {
    memAlign: align,
    offsetAlign: align,
    source: 'fallback',
    supported: probe === 0,
    detail: `no statx answer; ${why}${note}`,
  };
}

/** posix_fadvise(2): 0 or `-errno`. `len` 0 means "to the end of the file". */
export function fadvise(fd: number, offset: number, len: number, advice: number): number {
  v.fd(fd);
  position('offset', offset);
  position('len', len);
  v.int('advice', advice, 0, 7);
  return native.fadvise(fd, offset, len, advice);
}

/**
 * A zero-filled Buffer from posix_memalign(3), for O_DIRECT; freed when the Buffer is
 * collected. `align` must be a power of two >= 512 (RangeError otherwise); memory that
 * cannot be had is an ErrnoError ENOMEM, syscall `posix_memalign`.
 */
export function alignedBuffer(size: number, align = 4096): Buffer {
  v.int('size', size, 0, 0x7fffffff);
  v.int('align', align, 512, 2 ** 30);
  if ((align & (align - 1)) !== 0) throw v.rangeError('align', 'a power of two >= 512', align);
  const b = native.alignedBuffer(size, align);
  if (typeof b === 'number') throw new ErrnoError(b, 'posix_memalign', undefined, `${size} bytes aligned to ${align}`);
  return addonMemory(b);
}

/** The largest power of two (up to 2^30) dividing the address of `buf[off]`: what O_DIRECT checks. */
export function addressAlignment(buf: Uint8Array, off = 0): number {
  v.liveBytes(buf);
  v.int('offset', off, 0, buf.length);
  return native.addrAlign(buf, off);
}
