/**
 * The Poller contract: one interface over select(2), poll(2) and epoll(7), in the manner of
 * Redis's `ae` backends. A backend registers interest per fd and, on `wait`, writes the
 * ready fds into one reused `Int32Array` as (fd, revents) pairs, so a loop dispatches
 * without allocating. Masks use the Linux values, which poll and epoll share (`POLLIN` =
 * `EPOLLIN` = 1, `POLLOUT` = `EPOLLOUT` = 4, ERR 8, HUP 16, RDHUP 0x2000).
 */
import { Epoll } from './backends/epoll.js';
import { PollSet } from './backends/poll.js';
import { SelectSet } from './backends/select.js';
import * as v from '../sys/validate.js';

/**
 * One readiness multiplexer: {@link SelectSet}, {@link PollSet} or {@link Epoll}, made by
 * {@link createPoller}. Registration calls throw an ErrnoError; `wait` returns a count or
 * `-errno`.
 * @example
 * const p = createPoller('epoll');
 * p.add(fd, constants.EPOLLIN);
 * const out = new Int32Array(2 * 64);
 * const n = p.wait(out, 1000); // out[0] = fd, out[1] = revents, …
 * p.close();
 */
export interface Poller {
  /** The backend: the syscall it waits in ('epoll-et': epoll with EPOLLET on every mask). */
  readonly name: 'select' | 'poll' | 'epoll' | 'epoll-et';
  /** The epoll fd; -1 for select and poll. */
  readonly fd: number;
  /** Watches `fd` for `mask`; throws ErrnoError (EBADF, EEXIST …). */
  add(fd: number, mask: number): void;
  /** Changes the interest of a watched fd; throws ErrnoError (ENOENT …). */
  modify(fd: number, mask: number): void;
  /** Stops watching `fd`; throws ErrnoError (ENOENT …). */
  remove(fd: number): void;
  /**
   * Waits up to `timeoutMs` (-1: forever, 0: poll) and fills `out` with (fd, revents)
   * pairs, at most `out.length / 2`; returns their count or `-errno`. A wait cut short by a
   * signal returns 0. When more fds are ready than `out` holds, the next wait reports the
   * others first (epoll's ready list rotates; select and poll resume their scan after the
   * last fd reported), so fds that stay ready cannot starve the rest.
   */
  wait(out: Int32Array, timeoutMs: number): number;
  /**
   * Releases the poller (closes the epoll fd); the watched fds stay open. Every backend
   * then answers as a closed epoll fd: registration calls throw EBADF, `wait` returns -EBADF.
   */
  close(): void;
  /** `close()`, for `using`. */
  [Symbol.dispose](): void;
}

/**
 * The revents bit of a watched fd that was closed behind the poller's back (the Linux
 * value, 0x20). poll(2) reports it per fd; select(2) fails whole with EBADF, so the select
 * backend finds the closed fds and reports them with this bit too. epoll(7) has no such
 * event: the kernel drops a registration with the file's last close, silently. Only the
 * last: while a duplicate of the fd is open (dup, fork, SCM_RIGHTS), the registration lives
 * on, is still reported under the closed fd's number, and no `remove` can reach it any more
 * (EBADF). Remove an fd before closing it.
 */
export const POLLNVAL = 0x20;

/** A backend's name, as {@link createPoller} and `ReactorOptions.backend` take it. */
export type PollerName = Poller['name'];

/** Every {@link PollerName}. */
export const pollerNames: readonly PollerName[] = ['select', 'poll', 'epoll', 'epoll-et'];

/**
 * A Poller by name. `'epoll-et'` is an {@link Epoll} that adds `EPOLLET` to every mask
 * (its users must read and write until EAGAIN).
 * @example
 * const p = createPoller('epoll-et');
 * p.close();
 */
export function createPoller(name: PollerName): Poller {
  switch (name) {
    case 'select':
      return new SelectSet();
    case 'poll':
      return new PollSet();
    case 'epoll':
      return new Epoll();
    case 'epoll-et':
      return new Epoll({ edgeTriggered: true });
    default:
      throw v.typeError('name', `one of ${pollerNames.map((n) => `'${n}'`).join(', ')}`, name);
  }
}
