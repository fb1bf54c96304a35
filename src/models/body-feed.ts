/**
 * Streamed reply bodies across threads. A handler on a pool thread may return a Reply
 * whose `body` is an async iterable: the pool thread pulls it and sends each chunk to the
 * reactor that owns the connection as a BODY message, and the reactor hands the core a
 * BodyFeed — an async iterable fed by those messages — as the reply's body.
 *
 * Backpressure is a credit count per body in shared memory (a slot of the pool thread's
 * credit array): the pool adds a chunk's bytes before sending it and waits, without
 * blocking its other work, while more than BODY_WINDOW are outstanding; the reactor
 * subtracts them once the core has taken the chunk (or dropped it, when the connection is
 * gone). A slot is reused only once its count is back to zero, so no count is ever lost.
 *
 * A body nobody will send (its connection closed, or the reply was dropped) is stopped at
 * its producer: the reactor writes the body's generation into the slot's stop word, and
 * the pool thread, which numbers each use of a slot, ends the iteration at its next chunk
 * (return() runs the producer's finally blocks) instead of pulling an endless body for no
 * one — or at once, while the producer is still making a chunk: the pool thread waits for
 * the stop word as well as for that chunk. The generation keeps a late stop from reaching
 * a later body in the same slot. A pool thread told to stop ends every body it streams the
 * same way.
 */
import { waitAsync } from './channel.js';
import { CHUNK } from './messages.js';
import { loopTurn } from '../protocols/bytes.js';

/** Bytes of one body in flight between a pool thread and its reactor. */
export const BODY_WINDOW = 1 << 20;
/** Bodies a pool thread streams at once. */
export const CREDIT_SLOTS = 256;

/** Each slot's credit count, then (at CREDIT_SLOTS + slot) the generation to stop. */
export function createCredits(): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * 2 * CREDIT_SLOTS);
}

/** Waits until the slot's count is at most `limit`, or `stopped()`. */
async function waitBelow(credits: Int32Array, slot: number, limit: number, stopped: () => boolean): Promise<void> {
  for (let v = Atomics.load(credits, slot); v > limit && !stopped(); v = Atomics.load(credits, slot)) {
    await waitAsync(credits, slot, v, 100);
  }
}

const STOPPED = Symbol('stopped');
/** Empty body chunks in a row after which the pool thread's event loop gets a turn. */
const EMPTY_RUN = 64;

/**
 * Resolves once `stopped()` (or `finished()`), waking on the slot's stop word (BodyFeed's
 * #stop notifies it) and looking every 100 ms (a stopping thread sets no word).
 */
async function watchStop(
  credits: Int32Array,
  slot: number,
  stopped: () => boolean,
  finished: () => boolean,
): Promise<void> {
  const at = CREDIT_SLOTS + slot;
  while (!stopped() && !finished()) await waitAsync(credits, at, Atomics.load(credits, at), 100);
}

/** The pool thread's side: slots, and streaming one body into BODY messages. */
export class BodySender {
  readonly #credits: Int32Array;
  readonly #free: number[] = [];
  /** The generation of each slot's current (or last) body. */
  readonly #gens = new Int32Array(CREDIT_SLOTS);
  #stopping = false;

  constructor(sab: SharedArrayBuffer) {
    this.#credits = new Int32Array(sab);
    for (let i = CREDIT_SLOTS - 1; i >= 0; i--) this.#free.push(i);
  }

  async #slot(): Promise<number> {
    while (this.#free.length === 0) await new Promise((r) => setTimeout(r, 1));
    return this.#free.pop()!;
  }

  /** Ends every body being streamed at its next chunk (the thread is stopping). */
  stopAll(): void {
    this.#stopping = true;
  }

  /**
   * Pulls `body` and sends its chunks (split to CHUNK) through `send(slot, gen, piece, flags)`,
   * the last with BODY_END, or BODY_ERROR when the iterable threw; ends the iteration early
   * once the reactor stops this slot's generation `gen`.
   */
  async stream(
    body: AsyncIterable<Uint8Array>,
    send: (slot: number, gen: number, piece: Uint8Array, last: 'end' | 'error' | false) => void,
  ): Promise<void> {
    const slot = await this.#slot();
    const credits = this.#credits;
    const gen = (this.#gens[slot] = (this.#gens[slot]! + 1) | 0 || 1);
    const stopped = () => this.#stopping || Atomics.load(credits, CREDIT_SLOTS + slot) === gen;
    let how: 'end' | 'error' = 'end';
    // Watches for a stop while the producer makes its next chunk, which may never come: it
    // settles the wait for that chunk (a fresh promise per chunk; a race with one long-lived
    // promise would keep a reaction per chunk until the body ends).
    let finished = false;
    let wake = (): void => {};
    void watchStop(credits, slot, stopped, () => finished).then(() => wake());
    let it: AsyncIterator<Uint8Array> | undefined;
    let ended = false; // the producer ended by itself (done, or it threw)
    let empty = 0; // empty chunks in a row
    try {
      outer: for (;;) {
        const source = (it ??= body[Symbol.asyncIterator]());
        const next = stopped()
          ? STOPPED
          : await new Promise<IteratorResult<Uint8Array> | typeof STOPPED>((resolve, reject) => {
              wake = () => resolve(STOPPED);
              source.next().then(resolve, reject);
            });
        if (next === STOPPED) break;
        if (next.done) {
          ended = true;
          break;
        }
        const chunk = next.value;
        // An empty chunk sends nothing, so no credit ever stops its producer: every run of
        // them gives the thread a turn of its event loop (its other requests, its timers).
        if (chunk.length === 0 && ++empty === EMPTY_RUN) {
          empty = 0;
          await loopTurn();
        } else if (chunk.length > 0) empty = 0;
        for (let off = 0; off < chunk.length; off += CHUNK) {
          if (stopped()) break outer;
          const piece = chunk.subarray(off, Math.min(chunk.length, off + CHUNK));
          Atomics.add(credits, slot, piece.length);
          send(slot, gen, piece, false);
          await waitBelow(credits, slot, BODY_WINDOW, stopped);
        }
      }
    } catch {
      ended = true;
      how = 'error';
    }
    finished = true;
    // Stopped: return() ends the producer, without waiting for a chunk it may still be making.
    if (!ended && it !== undefined)
      void Promise.resolve()
        .then(() => it.return?.())
        .catch(() => undefined);
    send(slot, gen, new Uint8Array(0), how);
    // The reactor returns every byte's credit, taken or dropped: then the slot is free again.
    // (A stopping thread's reactor may never return them: the slot is not needed again.)
    await waitBelow(credits, slot, 0, () => this.#stopping);
    this.#free.push(slot);
  }
}

/** The reactor's side: the body of one reply, as the core pulls it. */
export class BodyFeed implements AsyncIterable<Uint8Array> {
  readonly #queue: Uint8Array[] = [];
  #done: 'end' | 'error' | undefined;
  #dropped = false;
  #wake: (() => void) | undefined;
  /** The pool thread's credit array and this body's slot, named by its BODY messages. */
  #credits: Int32Array | undefined;
  #slot = 0;
  #gen = 0;

  /** A BODY message's payload (copied: the channel reuses it) or its end. */
  push(credits: Int32Array, slot: number, gen: number, piece: Uint8Array, last: 'end' | 'error' | false): void {
    this.#credits = credits;
    this.#slot = slot;
    this.#gen = gen;
    if (last) this.#done = last;
    if (this.#dropped) {
      this.#stop(); // dropped before its first chunk came: the producer learns it now
      this.#give(piece.length);
    } else if (piece.length > 0) this.#queue.push(piece.slice());
    this.#wake?.();
  }

  /** Tells the pool thread to end this body's producer (unless it has ended already). */
  #stop(): void {
    if (this.#credits === undefined || this.#done !== undefined) return;
    Atomics.store(this.#credits, CREDIT_SLOTS + this.#slot, this.#gen);
    Atomics.notify(this.#credits, this.#slot);
    Atomics.notify(this.#credits, CREDIT_SLOTS + this.#slot); // a producer busy making a chunk
  }

  #give(n: number): void {
    if (n === 0 || this.#credits === undefined) return;
    Atomics.sub(this.#credits, this.#slot, n);
    Atomics.notify(this.#credits, this.#slot);
  }

  #drop(): void {
    this.#dropped = true;
    this.#stop();
    for (const p of this.#queue.splice(0)) this.#give(p.length);
    this.#wake?.(); // a next() waiting for a chunk ends
  }

  [Symbol.asyncIterator](): AsyncIterator<Uint8Array> {
    let taken = 0;
    return {
      next: async () => {
        this.#give(taken); // the core has written the last chunk: its bytes are no longer ours
        taken = 0;
        while (this.#queue.length === 0 && this.#done === undefined && !this.#dropped) {
          await new Promise<void>((r) => (this.#wake = r));
          this.#wake = undefined;
        }
        const chunk = this.#queue.shift();
        if (chunk !== undefined) {
          taken = chunk.length;
          return { value: chunk, done: false };
        }
        if (this.#done === 'error') throw new Error('the reply body failed on its pool thread');
        return { value: undefined, done: true };
      },
      return: async () => {
        this.#give(taken);
        taken = 0;
        this.#drop();
        return { value: undefined, done: true };
      },
    };
  }
}
