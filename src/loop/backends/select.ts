/**
 * select(2) as a Poller. fd_set is a bitmap of FD_SETSIZE (1024) bits, so an fd of 1024 or
 * more cannot be watched: `add` throws RangeError rather than write past the bitmap (the
 * native side checks again). POLLIN → readfds, POLLOUT → writefds, POLLPRI → exceptfds;
 * select has no HUP, so a peer close is reported as readable (read then returns 0).
 */
import { constants } from '../../sys/constants.js';
import { type NativePollerSet, native } from '../../sys/native.js';
import * as v from '../../sys/validate.js';
import type { Poller } from '../poller.js';
import { ctl, mask, waitArgs } from './common.js';

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
    ctl(this.#live().add(selectFd(fd), mask(m)), 'select');
  }

  modify(fd: number, m: number): void {
    ctl(this.#live().modify(selectFd(fd), mask(m)), 'select');
  }

  remove(fd: number): void {
    ctl(this.#live().remove(selectFd(fd)), 'select');
  }

  wait(out: Int32Array, timeoutMs: number): number {
    waitArgs(out, timeoutMs);
    return this.#live().wait(out, timeoutMs);
  }

  /** Drops the set (there is no kernel object to close); later calls throw. */
  close(): void {
    this.#set = undefined;
  }

  /** `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }

  #live(): NativePollerSet {
    if (this.#set === undefined) throw new Error('SelectSet is closed');
    return this.#set;
  }
}

function selectFd(fd: unknown): number {
  return v.int('fd', fd, 0, FD_SETSIZE - 1);
}
