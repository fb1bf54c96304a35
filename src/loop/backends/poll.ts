/**
 * poll(2) as a Poller: the pollfd array lives in native memory and is handed to the kernel
 * whole on every wait, so the cost of a wait grows with the number of fds watched. Masks
 * are the poll bits (EPOLLET and the other epoll-only bits are ignored).
 */
import * as v from '../../sys/validate.js';
import { type NativePollerSet, native } from '../../sys/native.js';
import type { Poller } from '../poller.js';
import { EBADF, ctl, mask, waitArgs } from './common.js';

/**
 * poll(2) as a {@link Poller}: the whole pollfd array goes to the kernel on every wait, so
 * a wait costs in proportion to the fds watched. Has no fd of its own (`fd` is -1).
 */
export class PollSet implements Poller {
  /** Always 'poll'. */
  readonly name = 'poll' as const;
  readonly fd = -1;
  #set: NativePollerSet | undefined = new native.PollSet();

  add(fd: number, m: number): void {
    const f = v.fd(fd);
    const k = mask(m);
    ctl(this.#set === undefined ? -EBADF : this.#set.add(f, k), 'poll');
  }

  modify(fd: number, m: number): void {
    const f = v.fd(fd);
    const k = mask(m);
    ctl(this.#set === undefined ? -EBADF : this.#set.modify(f, k), 'poll');
  }

  remove(fd: number): void {
    const f = v.fd(fd);
    ctl(this.#set === undefined ? -EBADF : this.#set.remove(f), 'poll');
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
