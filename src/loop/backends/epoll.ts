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

export interface EpollOptions {
  /** Add EPOLLET to every mask ('epoll-et'). */
  edgeTriggered?: boolean;
}

export class Epoll implements Poller {
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

  close(): void {
    this.#set.close();
    this.#fd = -1;
  }

  [Symbol.dispose](): void {
    this.close();
  }
}
