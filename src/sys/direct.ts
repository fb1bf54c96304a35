/**
 * O_DIRECT reads and writes with an error that explains itself. With O_DIRECT the kernel
 * answers a misaligned buffer address, file position or length with a bare EINVAL;
 * `directRead`/`directWrite` turn that EINVAL into an error naming the alignment
 * {@link dioAlignment} requires and which of the three missed it. Other failures (EAGAIN,
 * EIO …) stay `-errno` returns, as on every hot path. `directIoError` is the same
 * explanation for callers that issue the IO elsewhere (an io_uring read, say).
 */
import { ErrnoError } from './errors.js';
import { EINVAL } from './errno.js';
import { dioAlignment } from './file.js';
import { native } from './native.js';
import * as v from './validate.js';

/**
 * The error for an O_DIRECT IO on `fd` that failed with `ret`: for EINVAL, the message says
 * what `dioAlignment(fd)` requires and what was misaligned (the buffer address, the position,
 * the length); for other errors, the plain errno error.
 * @example
 * const r = sys.pread(fd, buf, 0, 100, 0);
 * if (r < 0) throw sys.directIoError(r, 'pread', fd, buf, 0, 100, 0);
 */
export function directIoError(
  ret: number,
  syscall: string,
  fd: number,
  buf: Uint8Array,
  off: number,
  len: number,
  position: number,
): ErrnoError {
  // Checked as directRead checks them: the explanation below computes with each.
  v.positioned(fd, buf, off, len, position);
  if (ret !== -EINVAL) return new ErrnoError(ret, syscall);
  const a = dioAlignment(fd);
  if (!a.supported) return new ErrnoError(ret, syscall, undefined, `O_DIRECT is not supported here: ${a.detail}`);
  const wrong: string[] = [];
  const addr = native.addrAlign(buf, off);
  if (addr < a.memAlign) wrong.push(`buffer address (aligned to ${addr} only)`);
  if (position % a.offsetAlign !== 0) wrong.push(`position ${position}`);
  if (len % a.offsetAlign !== 0) wrong.push(`length ${len}`);
  const need =
    `O_DIRECT here needs the buffer address aligned to ${a.memAlign} bytes and the position and length ` +
    `to multiples of ${a.offsetAlign} (dioAlignment: ${a.detail}); ` +
    (wrong.length > 0 ? `misaligned: ${wrong.join(', ')}` : 'all three were aligned');
  return new ErrnoError(ret, syscall, undefined, need);
}

/** pread(2) on an O_DIRECT fd: bytes or `-errno`, but EINVAL throws an explaining error. */
export function directRead(
  fd: number,
  buf: Uint8Array,
  off: number | undefined,
  len: number | undefined,
  pos: number,
): number {
  const [o, l, p] = v.positioned(fd, buf, off, len, pos);
  const r = native.pread(fd, buf, o, l, p);
  if (r === -EINVAL) throw directIoError(r, 'pread', fd, buf, o, l, p);
  return r;
}

/** pwrite(2) on an O_DIRECT fd: bytes or `-errno`, but EINVAL throws an explaining error. */
export function directWrite(
  fd: number,
  buf: Uint8Array,
  off: number | undefined,
  len: number | undefined,
  pos: number,
): number {
  const [o, l, p] = v.positioned(fd, buf, off, len, pos);
  const r = native.pwrite(fd, buf, o, l, p);
  if (r === -EINVAL) throw directIoError(r, 'pwrite', fd, buf, o, l, p);
  return r;
}
