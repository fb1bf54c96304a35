/**
 * The header and idle clocks of one connection (ConnLimits.headerTimeout and idleTimeout),
 * kept by the connection core (conn-core.ts). A timeout measures only the client's own
 * slowness, never rawio's: while rawio has stopped reading the connection — a budget is
 * full (output, in flight, files; a pool reply awaited counts as in flight), or a blocking
 * model is writing the replies to what it read — the header clock does not run, and when
 * reading resumes both clocks start afresh. Fresh rather than the time left: a client
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

export class ConnClock {
  /** When the request now arriving started, or reading last resumed with one partial (NaN: none). */
  #partialAt = NaN;
  /** When rawio stopped reading this connection (NaN: it is reading). */
  #stoppedAt = NaN;
  #activeAt = performance.now();
  #seenProgress = -1;
  #seenMark = -1;

  /** After a read: `buffered` bytes of a request not yet whole; `framed`: the read completed a request. */
  read(buffered: number, framed: boolean): void {
    if (buffered === 0) this.#partialAt = NaN;
    else if (framed || Number.isNaN(this.#partialAt)) this.#partialAt = performance.now();
  }

  /** rawio stopped reading: the header clock stops. */
  stop(): void {
    if (Number.isNaN(this.#stoppedAt)) this.#stoppedAt = performance.now();
  }

  /** rawio reads again: both clocks start afresh. */
  resume(): void {
    if (Number.isNaN(this.#stoppedAt)) return;
    this.#stoppedAt = NaN;
    const now = performance.now();
    if (!Number.isNaN(this.#partialAt)) this.#partialAt = now;
    this.#activeAt = now;
  }

  /**
   * Which timeout has passed at `now` (performance.now()). `progress` moves whenever the
   * client takes bytes, `mark` whenever a request arrives; `making`: the server is still
   * making a reply.
   */
  expired(now: number, limits: ConnLimits, progress: number, mark: number, making: boolean): Expired {
    const reading = Number.isNaN(this.#stoppedAt);
    if (reading && now - this.#partialAt >= limits.headerTimeout) return 'header';
    if (making || progress !== this.#seenProgress || mark !== this.#seenMark) {
      this.#seenProgress = progress;
      this.#seenMark = mark;
      this.#activeAt = now;
      return undefined;
    }
    return now - this.#activeAt >= limits.idleTimeout ? 'idle' : undefined;
  }
}
