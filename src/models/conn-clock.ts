/**
 * The header and idle clocks of one connection (ConnLimits.headerTimeout, idleTimeout and
 * minRequestRate), kept by the connection core (conn-core.ts).
 *
 * Each clock is a budget of time (a token bucket) that runs down with the wall clock; the
 * connection is cut when one runs out. A started request's header budget starts at
 * `headerTimeout`; the idle budget starts at `idleTimeout` and is filled again by every
 * progress (a whole request, a byte taken by the client, a reply being made). Every
 * `minRequestRate` bytes of the request now arriving give both budgets one second back, but
 * never above their full `headerTimeout` / `idleTimeout`. So:
 * - a request that arrives at minRequestRate or faster is never cut (a large upload at a
 *   steady pace is served however long it takes), by either clock;
 * - one arriving at r < R bytes a second is cut at headerTimeout / (1 - r/R), a trickle of
 *   a byte a second at about headerTimeout (or idleTimeout, whichever is first);
 * - a burst buys at most a full budget: a client cannot send a large part of a request at
 *   once and then hold the connection, and the memory it fills, for minutes;
 * - with minRequestRate Infinity the bytes give nothing back: a started request must arrive
 *   whole within headerTimeout, as before the rate existed.
 *
 * The bytes counted are those read since the last read that completed a request (the core
 * counts them itself, the same for every codec): of that read, only the codec's `buffered`
 * count, when it reports one, since the rest belonged to the requests it completed. Whether
 * a request has started at all is the codec's word (`buffered` > 0): a codec that does not
 * report `buffered` (a user module's may not) has no header clock, and the bytes it reads
 * between frames credit the idle budget only.
 *
 * A timeout measures only the client's own
 * slowness, never rawio's: while rawio has stopped reading the connection — a budget is
 * full (output, in flight, files; a pool reply awaited counts as in flight), or a blocking
 * model is writing the replies to what it read — the header clock does not run, and when
 * reading resumes both budgets start full again. Full rather than what was left: a client
 * gets a pause only by sending whole requests that fill a budget, so it cannot stretch
 * one slow header this way, and a remainder would punish it for a wait it did not cause.
 *
 * While reading is stopped for a full output or file budget, the idle clock still runs,
 * but any byte the client takes (the kernel accepting more of the queued output) counts
 * as progress: a client draining slowly is never idle, one that reads nothing at all is,
 * or it could hold its budget's memory and fds for ever. A reply the server itself is
 * still making (a promise, a pool, a streamed body's producer making its next chunk)
 * always counts as progress.
 */
import type { ConnLimits } from './conn-contract.js';

export type Expired = 'header' | 'idle' | undefined;

/** Time in hand (ms) that runs down with the clock: a token bucket topped up by credit. */
class Budget {
  #left = NaN;
  #at = 0;

  /** Whether it is running (a header budget runs only while a request is arriving). */
  get running(): boolean {
    return !Number.isNaN(this.#left);
  }

  fill(now: number, ms: number): void {
    this.#left = ms;
    this.#at = now;
  }

  clear(): void {
    this.#left = NaN;
  }

  /** Gives `ms` back, up to `cap`; one already run out stays out. */
  credit(now: number, ms: number, cap: number): void {
    if (ms === 0) return;
    const left = this.left(now);
    if (!(left > 0)) return;
    this.#left = Math.min(cap, left + ms);
    this.#at = now;
  }

  left(now: number): number {
    return this.#left - (now - this.#at);
  }
}

export class ConnClock {
  readonly #limits: ConnLimits;
  /** Running while a request is arriving. */
  readonly #header = new Budget();
  readonly #idle = new Budget();
  /** When rawio stopped reading this connection (NaN: it is reading). */
  #stoppedAt = NaN;
  #seenProgress = -1;
  #seenMark = -1;

  /** `now`: performance.now() by default (the times are handed in by tests of the rule). */
  constructor(limits: ConnLimits, now = performance.now()) {
    this.#limits = limits;
    this.#idle.fill(now, limits.idleTimeout);
  }

  /**
   * After a read of `chunk` bytes at `now` (performance.now() when not handed in, and only
   * taken when a budget starts or is credited: a read that leaves no request arriving, the
   * common case, needs no clock); `buffered`, the codec's count of the bytes of a request
   * not yet whole (undefined: it does not say); `framed`: the read completed a request.
   *
   * A whole request is progress, but the idle budget is not filled here: every request
   * moves the core's request count, and expired() fills the budget when it sees the count
   * move (as it does for bytes the client takes), so a read that completes requests costs
   * no clock reading at all.
   */
  read(chunk: number, buffered: number | undefined, framed: boolean, now?: number): void {
    // No request arriving: the header clock ends; bytes that complete requests or start
    // none (blank lines before one) earn nothing.
    if (buffered === 0) {
      this.#header.clear();
      return;
    }
    const { headerTimeout, idleTimeout, minRequestRate } = this.#limits;
    // Of a read that completed requests, only the bytes the codec still holds belong to
    // the request now arriving (none known, when it does not say).
    const bytes = framed ? Math.min(chunk, buffered ?? 0) : chunk;
    const starts = buffered !== undefined && (framed || !this.#header.running);
    if (bytes === 0 && !starts) return;
    const at = now ?? performance.now();
    if (starts) this.#header.fill(at, headerTimeout);
    // One second back for every minRequestRate bytes of a request (none with a rate of Infinity).
    const earned = (bytes * 1000) / minRequestRate;
    if (this.#header.running) this.#header.credit(at, earned, headerTimeout);
    this.#idle.credit(at, earned, idleTimeout);
  }

  /** rawio stopped reading: the header clock stops (`now`, as for read(), read only when it is needed). */
  stop(now?: number): void {
    if (Number.isNaN(this.#stoppedAt)) this.#stoppedAt = now ?? performance.now();
  }

  /** rawio reads again: both budgets start full again. */
  resume(now?: number): void {
    if (Number.isNaN(this.#stoppedAt)) return;
    this.#stoppedAt = NaN;
    const at = now ?? performance.now();
    if (this.#header.running) this.#header.fill(at, this.#limits.headerTimeout);
    this.#idle.fill(at, this.#limits.idleTimeout);
  }

  /**
   * Which timeout has passed at `now` (performance.now()). `progress` moves whenever the
   * client takes bytes, `mark` whenever a request arrives; `making`: the server is still
   * making a reply.
   */
  expired(now: number, progress: number, mark: number, making: boolean): Expired {
    const reading = Number.isNaN(this.#stoppedAt);
    if (reading && this.#header.running && this.#header.left(now) <= 0) return 'header';
    if (making || progress !== this.#seenProgress || mark !== this.#seenMark) {
      this.#seenProgress = progress;
      this.#seenMark = mark;
      this.#idle.fill(now, this.#limits.idleTimeout);
      return undefined;
    }
    return this.#idle.left(now) <= 0 ? 'idle' : undefined;
  }
}
