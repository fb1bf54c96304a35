/**
 * Zero-copy moves between fds, each one syscall returning bytes moved (maybe fewer than
 * asked) or `-errno`, never throwing for EAGAIN: sendfile(2) (file → anything), splice(2)
 * (to or from a pipe), tee(2) (pipe → pipe without consuming), copy_file_range(2) (file →
 * file, in the kernel, reflinked where the filesystem can). An offset of `null` uses and
 * advances the fd's own position; a number leaves the position alone. Pipes come from
 * `sys.pipe({ size })`.
 */
import { native } from './native.js';
import * as v from './validate.js';

function offset(name: string, o: unknown): number {
  return o === null ? -1 : v.int(name, o, 0, Number.MAX_SAFE_INTEGER);
}

function length(name: string, n: unknown): number {
  return v.int(name, n, 0, Number.MAX_SAFE_INTEGER);
}

function flags(f: unknown): number {
  return f === undefined ? 0 : v.int('flags', f, 0, 0xff);
}

/**
 * sendfile(2): up to `count` bytes of `inFd` (a file or anything mmap-able; not a pipe:
 * EINVAL) from `offset` to `outFd`. At most 0x7ffff000 bytes move per call. Returns the
 * bytes sent (0 at the end of the file) or `-errno` (`-EAGAIN` when a non-blocking socket is
 * full); throws only TypeError / RangeError for bad arguments.
 * @example
 * // one attempt; on -EAGAIN wait for the socket to turn writable and call again
 * const n = sys.sendfile(sock, fileFd, 0, size);
 * if (n < 0 && n !== -constants.EAGAIN) throw errnoError(n, 'sendfile');
 */
export function sendfile(outFd: number, inFd: number, off: number | null, count: number): number {
  v.fd(outFd, 'outFd');
  v.fd(inFd, 'inFd');
  return native.sendfile(outFd, inFd, offset('offset', off), length('count', count));
}

/**
 * splice(2): moves up to `len` bytes between two fds, one of which must be a pipe (EINVAL
 * otherwise). A pipe side takes a `null` offset (ESPIPE otherwise). Flags:
 * SPLICE_F_MOVE | SPLICE_F_NONBLOCK | SPLICE_F_MORE. Returns the bytes moved (0 at the end
 * of the input) or `-errno`; throws only TypeError / RangeError for bad arguments.
 * @example
 * // file → pipe → socket, without copying through user space
 * const [r, w] = sys.pipe();
 * const n = sys.splice(fileFd, 0, w, null, 65536, constants.SPLICE_F_MOVE);
 * if (n > 0) sys.splice(r, null, sock, null, n, constants.SPLICE_F_MOVE | constants.SPLICE_F_NONBLOCK);
 */
export function splice(
  inFd: number,
  inOff: number | null,
  outFd: number,
  outOff: number | null,
  len: number,
  f?: number,
): number {
  v.fd(inFd, 'inFd');
  v.fd(outFd, 'outFd');
  return native.splice(inFd, offset('inOff', inOff), outFd, offset('outOff', outOff), length('len', len), flags(f));
}

/** tee(2): copies up to `len` bytes from one pipe to another, leaving them in the first. */
export function tee(inFd: number, outFd: number, len: number, f?: number): number {
  v.fd(inFd, 'inFd');
  v.fd(outFd, 'outFd');
  return native.tee(inFd, outFd, length('len', len), flags(f));
}

/**
 * copy_file_range(2): copies up to `len` bytes between two files inside the kernel (EXDEV
 * across filesystems of different types; EINVAL for non-regular files).
 */
export function copyFileRange(
  inFd: number,
  inOff: number | null,
  outFd: number,
  outOff: number | null,
  len: number,
): number {
  v.fd(inFd, 'inFd');
  v.fd(outFd, 'outFd');
  return native.copyFileRange(inFd, offset('inOff', inOff), outFd, offset('outOff', outOff), length('len', len));
}
