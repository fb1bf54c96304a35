/**
 * What an acceptor does when accept(2) fails with anything but EAGAIN, the way nginx and
 * libuv do it. Out of fds (EMFILE, this process; ENFILE, the system), the connection stays
 * in the backlog and the listening socket stays readable: a level-triggered loop that
 * asked again at once would spin at 100% CPU. So the acceptor looks away for PAUSE_MS
 * (nginx disables its accept events for a while) and the waiting client is accepted once
 * fds free up. Clients must not hang in the backlog for good either: when EMFILE has lasted
 * SHED_AFTER_MS, the reserve fd (one /dev/null each acceptor holds, as libuv's emfile
 * trick) is let go to accept the waiting connections and close them at once, so their
 * clients see the close and may try again, then taken back.
 *
 * A failure that belongs to one connection rather than to the listening socket or the
 * process (CONNECTION_GONE) is no reason to look away: that connection has left the queue
 * with the failure, and the next may be accepted at once (libuv and nginx go on the same
 * way after ECONNABORTED). Pausing there would let one client that resets its connection
 * before it is accepted hold up every client queued behind it.
 */
import { readdirSync } from 'node:fs';
import { EMFILE } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { ownFd } from '../sys/fd-owner.js';
import { ACCEPT_CONNECTION_ERRNOS, constants } from '../sys/constants.js';
import { getrlimit } from '../sys/process.js';

/** ACCEPT_CONNECTION_ERRNOS as -errno (the kernel's values, from the addon's headers: Node's own table lacks some). */
const CONNECTION_GONE: ReadonlySet<number> = new Set(ACCEPT_CONNECTION_ERRNOS.map((name) => -constants[name]!));

/** How long an acceptor looks away from its listening socket after accept failed. */
export const PAUSE_MS = 20;
/** How long EMFILE may last before the waiting connections are shed. */
export const SHED_AFTER_MS = 1000;
/** At most this many connections are shed in one go (the rest wait for the next pause). */
const SHED_MAX = 256;

export class AcceptBackoff {
  #reserve = -1;
  /** When the current run of EMFILE began (performance.now()), or -1. */
  #since = -1;

  /** Takes the reserve fd unless `reserve` is false (an acceptor that never accepts). */
  constructor(reserve = true) {
    if (reserve) this.#takeReserve();
  }

  /** Call after a successful accept: the run of EMFILE, if any, is over. */
  accepted(): void {
    this.#since = -1;
  }

  /**
   * accept(2) on `listenFd` failed with `ret` (-errno, not -EAGAIN): sheds the waiting
   * connections when EMFILE has lasted long enough; returns how long to look away (ms), 0
   * for a failure of one connection that left the queue with it (CONNECTION_GONE): accept
   * again at once. `nonBlocking` says whether accept on `listenFd` returns at once when nobody waits
   * (a blocking listener is switched for the shedding, then back).
   */
  failed(listenFd: number, ret: number, nonBlocking = true): number {
    if (CONNECTION_GONE.has(ret)) return 0;
    if (ret !== -EMFILE) return PAUSE_MS;
    const now = performance.now();
    if (this.#since < 0) this.#since = now;
    else if (now - this.#since >= SHED_AFTER_MS) {
      this.#since = now;
      this.shed(listenFd, nonBlocking);
    }
    return PAUSE_MS;
  }

  /** Lets go of the reserve fd, accepts and closes what waits on `listenFd`; returns how many. */
  shed(listenFd: number, nonBlocking = true): number {
    if (this.#reserve < 0) this.#takeReserve();
    if (this.#reserve < 0) return 0; // another thread took the last fd first: next time
    native.close(this.#reserve);
    this.#reserve = -1;
    if (!nonBlocking) native.setBlocking(listenFd, false);
    let n = 0;
    for (; n < SHED_MAX; n++) {
      const fd = native.accept(listenFd, false);
      if (fd < 0) break;
      native.close(fd);
    }
    if (!nonBlocking) native.setBlocking(listenFd, true);
    this.#takeReserve();
    return n;
  }

  /** Gives the reserve fd back to the process. */
  close(): void {
    if (this.#reserve >= 0) native.close(this.#reserve);
    this.#reserve = -1;
  }

  #takeReserve(): void {
    const fd = native.open('/dev/null', constants.O_RDONLY as number, 0); // close-on-exec: native.open adds it
    this.#reserve = fd >= 0 ? fd : -1;
    if (fd >= 0) ownFd(fd); // closed with the thread if close() never runs (src/sys/fd-owner.ts)
  }
}

/**
 * How many more fds this process could open now: RLIMIT_NOFILE's soft limit less the fds
 * open (counted in /proc/self/fd, without the one the count itself holds); `Infinity`
 * without a limit. For an acceptor that must not start something whose fds would run out
 * halfway. Counting opens nothing more, so other threads racing for fds, and anyone watching
 * this process's fds, see no probe fds come and go.
 */
export function freeFds(): number {
  const { soft } = getrlimit(constants.RLIMIT_NOFILE as number);
  let open: number;
  try {
    open = readdirSync('/proc/self/fd').length - 1;
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    // Not even the directory could be opened; without /proc there is no telling.
    return code === 'EMFILE' || code === 'ENFILE' ? 0 : Infinity;
  }
  return soft - open;
}
