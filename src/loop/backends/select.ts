/**
 * select(2) as a Poller. fd_set is a bitmap of FD_SETSIZE (1024) bits, so an fd of 1024 or
 * more cannot be watched: `add` throws RangeError rather than write past the bitmap (the
 * native side checks again). POLLIN → readfds, POLLOUT → writefds, POLLPRI → exceptfds;
 * select has no HUP, so a peer close is reported as readable (read then returns 0). A
 * watched fd closed behind the set's back makes select(2) fail whole with EBADF; the native
 * wait then reports the closed fds as POLLNVAL, as poll(2) would, with the others ready.
 */
import { constants } from '../../sys/constants.js';
import { type NativePollerSet, native } from '../../sys/native.js';
import * as v from '../../sys/validate.js';
import type { Poller } from '../poller.js';
import { EBADF, ctl, mask, waitArgs } from './common.js';

const FD_SETSIZE = constants.FD_SETSIZE as number;

/**
 * select(2) as a {@link Poller}. Only fds below FD_SETSIZE (1024) can be watched: `add`
 * throws a RangeError for a larger one. A peer's close is reported as readable (select has
 * no HUP). Has no fd of its own (`fd` is -1).
 */
export class SelectSet implements Poller {
  /** Always 'select'. */
  readonly name = 'select' as const;
  readonly fd = -1;
  #set: NativePollerSet | undefined = new native.SelectSet();

  add(fd: number, m: number): void {
    const f = selectFd(fd);
    const k = mask(m);
    ctl(this.#set === undefined ? -EBADF : this.#set.add(f, k), 'select');
  }

  modify(fd: number, m: number): void {
    const f = selectFd(fd);
    const k = mask(m);
    ctl(this.#set === undefined ? -EBADF : this.#set.modify(f, k), 'select');
  }

  remove(fd: number): void {
    const f = selectFd(fd);
    ctl(this.#set === undefined ? -EBADF : this.#set.remove(f), 'select');
  }

  wait(out: Int32Array, timeoutMs: number): number {
    waitArgs(out, timeoutMs);
    return this.#set === undefined ? -EBADF : this.#set.wait(out, timeoutMs);
  }

  /** Drops the set (there is no kernel object to close); later calls answer EBADF, as a closed Epoll does. */
  close(): void {
    this.#set = undefined;
  }

  /** `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function selectFd(fd: unknown): number {
  return v.int('fd', fd, 0, FD_SETSIZE - 1);
}
