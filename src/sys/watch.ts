/**
 * A uv_poll_t on one fd (native/watch.cc), the bridge from rawio's loops and waits into
 * Node's. Setting one up can fail (EPERM for a regular file or a directory, which epoll
 * refuses; EMFILE for the duplicate fd it polls): the addon's error is rethrown as the
 * ErrnoError every failing system call is, with its code, errno and syscall.
 */
import { errnoError } from './errors.js';
import { native, type NativeWatch } from './native.js';

export function openWatch(fd: number, callback: (status: number, events: number) => void): NativeWatch {
  try {
    return new native.Watch(fd, callback);
  } catch (e) {
    const { errno, syscall } = (e ?? {}) as { errno?: unknown; syscall?: unknown };
    if (typeof errno === 'number' && errno < 0 && typeof syscall === 'string') throw errnoError(errno, syscall);
    throw e;
  }
}
