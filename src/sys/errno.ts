/**
 * The errno values rawio's TypeScript compares results with (errno(3)), from one source:
 * Node's `os.constants.errno`, which Node reads from the C headers of the platform it was
 * built for, so the numbers are the kernel's on every architecture. Results are `-errno`,
 * so call sites compare with the negated value (`r === -EAGAIN`). The `constants` object of
 * the public API carries the same values for the errnos it lists.
 */
import { constants } from 'node:os';

const e = constants.errno;

export const EAGAIN = e.EAGAIN;
export const EBADF = e.EBADF;
export const ECANCELED = e.ECANCELED;
export const EEXIST = e.EEXIST;
export const EINTR = e.EINTR;
export const EINVAL = e.EINVAL;
export const ENOBUFS = e.ENOBUFS;
export const ENOENT = e.ENOENT;
export const ENOMEM = e.ENOMEM;
export const EPERM = e.EPERM;
export const EPIPE = e.EPIPE;
export const ERANGE = e.ERANGE;
export const ETIME = e.ETIME;
