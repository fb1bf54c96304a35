/**
 * The header and idle clocks of one connection (ConnLimits.headerTimeout, idleTimeout and
 * minRequestRate), kept by the connection core (conn-core.ts).
 *
 * The rule: a started request must arrive whole within `headerTimeout` plus one second for
 * every `minRequestRate` bytes of it that have arrived, i.e. it is cut at
 *   start + headerTimeout + bytesSoFar * 1000 / minRequestRate.
 * A request that arrives at minRequestRate or faster is never cut by this clock (a large
 * upload at a steady pace is served however long it takes); one arriving at r < R bytes a
 * second is cut at headerTimeout / (1 - r/R); a trickle of a byte a second at about
 * headerTimeout. With minRequestRate Infinity the bytes add nothing: a started request must
 * arrive whole within headerTimeout, as before the rate existed.
 *
 * The idle clock gets the same credit: it cuts a connection with no progress (no whole
 * request, no byte taken by the client, no reply being made) for idleTimeout plus one
 * second for every minRequestRate bytes of the request now arriving. So the bytes of a
 * request still arriving are progress only as far as they keep the rate: a steady upload
 * that lasts longer than idleTimeout is not cut as idle, while a trickle is still closed at
 * the idle timeout or the header timeout, whichever comes first.
 *
 * The bytes counted are those read since the last read that completed a request (the core
 * counts them itself, the same for every codec): of that read, only the codec's `buffered`
 * count, when it reports one, since the rest belonged to the requests it completed. Whether
 * a request has started at all is the codec's word (`buffered` > 0): a codec that does not
 * report `buffered` (a user module's may not) has no header clock, and the bytes read since
 * its last frame count toward the idle clock only.
 *
 * A timeout measures only the client's own
 * slowness, never rawio's: while rawio has stopped reading the connection — a budget is
 * full (output, in flight, files; a pool reply awaited counts as in flight), or a blocking
 * model is writing the replies to what it read — the header clock does not run, and when
 * reading resumes both clocks start afresh, the byte count from zero. Fresh rather than the
 * time left: a client
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
  /** Bytes of the request now arriving read since #partialAt (or, with no header clock, since the last frame). */
  #bytes = 0;
  /** When rawio stopped reading this connection (NaN: it is reading). */
  #stoppedAt = NaN;
  #activeAt = performance.now();
  #seenProgress = -1;
  #seenMark = -1;

  /**
   * After a read of `chunk` bytes: `buffered`, the codec's count of the bytes of a request not
   * yet whole (undefined: it does not say); `framed`: the read completed a request.
   */
  read(chunk: number, buffered: number | undefined, framed: boolean): void {
    if (framed) {
      // A whole request is progress; of this read, only the bytes the codec still holds
      // belong to the request now arriving (none known, when it does not say).
      this.#activeAt = performance.now();
      this.#partialAt = NaN;
      this.#bytes = Math.min(chunk, buffered ?? 0);
    } else {
      this.#bytes += chunk;
    }
    if (buffered === undefined) return;
    if (buffered === 0) {
      this.#partialAt = NaN;
      this.#bytes = 0;
    } else if (Number.isNaN(this.#partialAt)) {
      this.#partialAt = performance.now();
    }
  }

  /** rawio stopped reading: the header clock stops. */
  stop(): void {
    if (Number.isNaN(this.#stoppedAt)) this.#stoppedAt = performance.now();
  }

  /** rawio reads again: both clocks start afresh, the byte count from zero. */
  resume(): void {
    if (Number.isNaN(this.#stoppedAt)) return;
    this.#stoppedAt = NaN;
    const now = performance.now();
    if (!Number.isNaN(this.#partialAt)) this.#partialAt = now;
    this.#activeAt = now;
    this.#bytes = 0;
  }

  /**
   * Which timeout has passed at `now` (performance.now()). `progress` moves whenever the
   * client takes bytes, `mark` whenever a request arrives; `making`: the server is still
   * making a reply.
   */
  expired(now: number, limits: ConnLimits, progress: number, mark: number, making: boolean): Expired {
    const reading = Number.isNaN(this.#stoppedAt);
    // One second for every minRequestRate bytes of the request now arriving, on both clocks
    // (0 with a rate of Infinity).
    const earned = (this.#bytes * 1000) / limits.minRequestRate;
    if (reading && now - this.#partialAt - earned >= limits.headerTimeout) return 'header';
    if (making || progress !== this.#seenProgress || mark !== this.#seenMark) {
      this.#seenProgress = progress;
      this.#seenMark = mark;
      this.#activeAt = now;
      return undefined;
    }
    return now - this.#activeAt - earned >= limits.idleTimeout ? 'idle' : undefined;
  }
}
