/**
 * epoll(7) as a Poller. Masks pass through raw, so `EPOLLET`, `EPOLLONESHOT` and
 * `EPOLLEXCLUSIVE` work as the man page says (EXCLUSIVE only on add: the kernel refuses it
 * on modify with EINVAL). With `{ edgeTriggered: true }` (the 'epoll-et' backend) every
 * add and modify carries `EPOLLET`.
 */
import { constants } from '../../sys/constants.js';
import { check } from '../../sys/errors.js';
import { type NativeEpoll, native } from '../../sys/native.js';
import * as v from '../../sys/validate.js';
import type { Poller } from '../poller.js';
import { ctl, mask, waitArgs } from './common.js';

export const EPOLLET = constants.EPOLLET as number;

/** Options of `new Epoll()`. */
export interface EpollOptions {
  /** Add EPOLLET to every mask ('epoll-et'). */
  edgeTriggered?: boolean;
}

/**
 * epoll(7) as a {@link Poller}. Masks go to epoll_ctl(2) as given, so EPOLLET,
 * EPOLLONESHOT and EPOLLEXCLUSIVE (on add only) work as the man page says.
 * @example
 * const ep = new Epoll({ edgeTriggered: true });
 * ep.add(sock, constants.EPOLLIN | constants.EPOLLRDHUP);
 * const out = new Int32Array(2 * 1024);
 * const n = ep.wait(out, -1); // (fd, revents) pairs in out[0 … 2n)
 * ep.close();
 */
export class Epoll implements Poller {
  /** 'epoll-et' when created with `{ edgeTriggered: true }`, else 'epoll'. */
  readonly name: 'epoll' | 'epoll-et';
  readonly #set: NativeEpoll;
  readonly #extra: number;
  #fd: number;

  /** epoll_create1(EPOLL_CLOEXEC); throws ErrnoError (EMFILE …). */
  constructor(opts?: EpollOptions) {
    const o = v.object<EpollOptions>('opts', opts);
    const et = o.edgeTriggered === undefined ? false : v.bool('edgeTriggered', o.edgeTriggered);
    this.name = et ? 'epoll-et' : 'epoll';
    this.#extra = et ? EPOLLET : 0;
    this.#set = new native.Epoll();
    this.#fd = check(this.#set.fd(), 'epoll_create1');
  }

  get fd(): number {
    return this.#fd;
  }

  add(fd: number, m: number): void {
    ctl(this.#set.add(v.fd(fd), (mask(m) | this.#extra) >>> 0), 'epoll_ctl');
  }

  modify(fd: number, m: number): void {
    ctl(this.#set.modify(v.fd(fd), (mask(m) | this.#extra) >>> 0), 'epoll_ctl');
  }

  remove(fd: number): void {
    ctl(this.#set.remove(v.fd(fd)), 'epoll_ctl');
  }

  wait(out: Int32Array, timeoutMs: number): number {
    waitArgs(out, timeoutMs);
    return this.#set.wait(out, timeoutMs);
  }

  /** Closes the epoll fd; the watched fds stay open. */
  close(): void {
    this.#set.close();
    this.#fd = -1;
  }

  /** `close()`, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}
