/**
 * The kernel's own values for the flags rawio's calls take (epoll, poll, open, splice,
 * posix_fadvise, rlimits, send/recv MSG_*, io_uring IOSQE_* and CQE flags, AT_FDCWD, the
 * errnos the loops test for), read from the C headers when the addon was built (native/
 * constants.cc), so they are right on every architecture. The names are listed once here:
 * `constants` has exactly these keys (a misspelt name fails to compile), and loading checks
 * that the addon provides every one, so a stale build fails at import, not as `undefined`.
 */
import { native } from './native.js';

/**
 * accept(2)'s failures of one queued connection, which the failure takes out of the queue:
 * ECONNABORTED (reset while it waited), EPERM (refused by a firewall rule), EPROTO, and the
 * errors of the new socket that Linux passes on from accept (accept(2)'s "ENETDOWN, EPROTO,
 * ENOPROTOOPT, EHOSTDOWN, ENONET, EHOSTUNREACH, EOPNOTSUPP, and ENETUNREACH"). An acceptor
 * accepts the next connection at once after one (src/models/accept-backoff.ts).
 */
export const ACCEPT_CONNECTION_ERRNOS = [
  'ECONNABORTED',
  'EPERM',
  'EPROTO',
  'ENETDOWN',
  'ENOPROTOOPT',
  'EHOSTDOWN',
  'ENONET',
  'EHOSTUNREACH',
  'EOPNOTSUPP',
  'ENETUNREACH',
] as const;

/** Every name `constants` holds, in native/constants.cc's order. */
export const constantNames = [
  'EPOLLIN',
  'EPOLLPRI',
  'EPOLLOUT',
  'EPOLLERR',
  'EPOLLHUP',
  'EPOLLRDHUP',
  'EPOLLEXCLUSIVE',
  'EPOLLWAKEUP',
  'EPOLLONESHOT',
  'EPOLLET',
  'POLLIN',
  'POLLPRI',
  'POLLOUT',
  'POLLERR',
  'POLLHUP',
  'POLLNVAL',
  'POLLRDHUP',
  'FD_SETSIZE',
  'O_RDONLY',
  'O_WRONLY',
  'O_RDWR',
  'O_CREAT',
  'O_EXCL',
  'O_TRUNC',
  'O_APPEND',
  'O_NONBLOCK',
  'O_NOCTTY',
  'O_DIRECTORY',
  'O_NOFOLLOW',
  'O_CLOEXEC',
  'O_DIRECT',
  'SPLICE_F_MOVE',
  'SPLICE_F_NONBLOCK',
  'SPLICE_F_MORE',
  'SPLICE_F_GIFT',
  'POSIX_FADV_NORMAL',
  'POSIX_FADV_RANDOM',
  'POSIX_FADV_SEQUENTIAL',
  'POSIX_FADV_WILLNEED',
  'POSIX_FADV_DONTNEED',
  'POSIX_FADV_NOREUSE',
  'EAGAIN',
  'EINTR',
  'EBADF',
  'EINVAL',
  'EPIPE',
  'ECONNRESET',
  'EINPROGRESS',
  'ECANCELED',
  'ENOSYS',
  ...ACCEPT_CONNECTION_ERRNOS,
  'RLIMIT_NOFILE',
  'RLIMIT_MEMLOCK',
  'MSG_OOB',
  'MSG_PEEK',
  'MSG_DONTROUTE',
  'MSG_CTRUNC',
  'MSG_TRUNC',
  'MSG_DONTWAIT',
  'MSG_EOR',
  'MSG_WAITALL',
  'MSG_NOSIGNAL',
  'MSG_MORE',
  'MSG_ERRQUEUE',
  'MSG_ZEROCOPY',
  'MSG_CMSG_CLOEXEC',
  'IOSQE_FIXED_FILE',
  'IOSQE_IO_DRAIN',
  'IOSQE_IO_LINK',
  'IOSQE_IO_HARDLINK',
  'IOSQE_ASYNC',
  'IOSQE_BUFFER_SELECT',
  'IOSQE_CQE_SKIP_SUCCESS',
  'IORING_CQE_F_BUFFER',
  'IORING_CQE_F_MORE',
  'AT_FDCWD',
] as const;

/** A name of {@link constants}. */
export type ConstantName = (typeof constantNames)[number];

/**
 * Picks `names` out of the addon's table; throws when one is missing (an addon built from
 * other sources than this JavaScript), naming it.
 */
export function pickConstants(
  table: Readonly<Record<string, number>>,
  names: readonly ConstantName[] = constantNames,
): Readonly<Record<ConstantName, number>> {
  const out = {} as Record<ConstantName, number>;
  for (const name of names) {
    const value = table[name];
    if (typeof value !== 'number') {
      throw new Error(`rawio: the native addon has no constant ${name}: rebuild it (npm run build:native)`);
    }
    out[name] = value;
  }
  // a copy: the object built a name at a time is in dictionary mode (a hash lookup per read of
  // `constants.X`); the spread copy has fast properties
  return Object.freeze({ ...out });
}

/** The kernel's values, by name. */
export const constants: Readonly<Record<ConstantName, number>> = pickConstants(native.constants);
