/**
 * Streamed reply bodies across threads. A handler on a pool thread may return a Reply
 * whose `body` is an async iterable: the pool thread pulls it and sends its chunks to the
 * reactor that owns the connection as BODY messages (small chunks gathered into one, up to
 * GATHER bytes), and the reactor hands the core a BodyFeed — an async iterable fed by those
 * messages — as the reply's body.
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
import { EmptyRun, loopTurn } from '../protocols/bytes.js';
import { uncopied } from '../protocols/user-checks.js';

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
const TURN = Symbol('turn');
/**
 * Bytes of small chunks a pool thread gathers into one BODY message. One message per 16 KiB
 * spreads a message's costs (the channel, the reactor's wake and copy, the core's write) over
 * that many one-byte chunks, and keeps each streamed body's buffer small (CREDIT_SLOTS
 * bodies a thread: 4 MiB at most). A gather of CHUNK (1 MiB, all of BODY_WINDOW) would hold
 * up to 256 MiB a thread, and a fast producer's bytes would wait for a whole window to be
 * copied before the reactor could write any of them.
 */
export const GATHER = 16 * 1024;

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
   * Pulls `body` and sends its chunks through `send(slot, gen, piece, flags)`, the last with
   * BODY_END, or BODY_ERROR when the iterable threw; ends the iteration early once the
   * reactor stops this slot's generation `gen`. Chunks smaller than GATHER are copied into a
   * gather buffer and sent together: when it is full, when the producer's next chunk is not
   * there by the thread's next loop turn, or with the end (or the error: the bytes yielded
   * before it are sent, as a one-thread model writes them). Larger chunks go as they are,
   * split to CHUNK. A stopped body drops what it gathered: no one will read it.
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
    const empty = new EmptyRun();
    // The gather buffer: `held` bytes of small chunks, copied (a producer may reuse its own).
    let gather: Uint8Array | undefined;
    let held = 0;
    // One loop turn is awaited per run of gathered bytes (a setImmediate, not one per chunk):
    // once it has come, the bytes go before the producer's next chunk is awaited any longer.
    let armed = false; // a setImmediate is pending
    let turned = false; // it came while bytes were held
    let turn = (): void => {}; // settles the wait for a chunk with TURN
    const onTurn = (): void => {
      armed = false;
      if (held === 0) return;
      turned = true;
      turn();
    };
    const hold = (chunk: Uint8Array): void => {
      if (held === 0) {
        turned = false;
        if (!armed) {
          armed = true;
          setImmediate(onTurn);
        }
      }
      (gather ??= new Uint8Array(GATHER)).set(chunk, held);
      held += chunk.length;
    };
    // A piece goes with its bytes counted first, then waits while the window is full.
    const put = async (piece: Uint8Array): Promise<void> => {
      Atomics.add(credits, slot, piece.length);
      send(slot, gen, piece, false); // copied into the channel at once: `gather` is free again
      await waitBelow(credits, slot, BODY_WINDOW, stopped);
    };
    const flush = (): Promise<void> => {
      const piece = gather!.subarray(0, held);
      held = 0;
      turned = false;
      return put(piece);
    };
    // The producer's next() in flight: kept across a flush, so it is never called twice.
    let pending: Promise<IteratorResult<Uint8Array>> | undefined;
    try {
      outer: for (;;) {
        if (stopped()) break;
        if (held > 0 && turned) {
          await flush();
          continue;
        }
        // Every chunk is copied here before the next is asked for (into `gather`, or into the
        // channel by send()): a module's body need not copy it first as well.
        const source = (it ??= uncopied(body)[Symbol.asyncIterator]());
        const chunkP = (pending ??= source.next());
        const next = await new Promise<IteratorResult<Uint8Array> | typeof STOPPED | typeof TURN>((resolve, reject) => {
          wake = () => resolve(STOPPED);
          turn = () => resolve(TURN);
          chunkP.then(resolve, reject);
        });
        if (next === STOPPED) break;
        if (next === TURN) {
          // The producer is slow: what it yielded so far goes now, its next() still awaited.
          await flush();
          continue;
        }
        pending = undefined;
        if (next.done) {
          ended = true;
          break;
        }
        const chunk = next.value;
        // An empty chunk sends nothing and spends no credit (EmptyRun).
        if (chunk.length === 0) {
          if (empty.empty()) await loopTurn();
          continue;
        }
        empty.reset();
        if (held + chunk.length > GATHER && held > 0) await flush();
        if (chunk.length < GATHER) {
          hold(chunk);
          if (held === GATHER) await flush();
          continue;
        }
        for (let off = 0; off < chunk.length; off += CHUNK) {
          if (stopped()) break outer;
          await put(chunk.subarray(off, Math.min(chunk.length, off + CHUNK)));
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
    // What is still gathered goes with the end or the error, unless no one will read it.
    let tail: Uint8Array = new Uint8Array(0);
    if (held > 0 && !stopped()) {
      tail = gather!.subarray(0, held);
      Atomics.add(credits, slot, held);
    }
    held = 0;
    send(slot, gen, tail, how);
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
