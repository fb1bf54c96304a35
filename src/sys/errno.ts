/**
 * The errno values rawio's TypeScript compares results with (errno(3)), from one source:
 * Node's `os.constants.errno`, which Node reads from the C headers of the platform it was
 * built for, so the numbers are the kernel's on every architecture. Results are `-errno`,
 * so call sites compare with the negated value (`r === -EAGAIN`). The `constants` object of
 * the public API carries the same values for the errnos it lists.
 */
import { constants } from 'node:os';

export const {
  EAGAIN,
  EBADF,
  ECANCELED,
  EEXIST,
  EFAULT,
  EINTR,
  EINVAL,
  EMFILE,
  ENFILE,
  ENOBUFS,
  ENOENT,
  ENOMEM,
  ENOTDIR,
  ENOTSOCK,
  EPERM,
  EPIPE,
  ERANGE,
  ETIME,
} = constants.errno;
