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
 */
import { waitAsync } from './channel.js';
import { CHUNK } from './messages.js';

/** Bytes of one body in flight between a pool thread and its reactor. */
export const BODY_WINDOW = 1 << 20;
/** Bodies a pool thread streams at once. */
export const CREDIT_SLOTS = 256;

export function createCredits(): SharedArrayBuffer {
  return new SharedArrayBuffer(4 * CREDIT_SLOTS);
}

async function waitBelow(credits: Int32Array, slot: number, limit: number): Promise<void> {
  for (let v = Atomics.load(credits, slot); v > limit; v = Atomics.load(credits, slot)) {
    await waitAsync(credits, slot, v, 100);
  }
}

/** The pool thread's side: slots, and streaming one body into BODY messages. */
export class BodySender {
  readonly #credits: Int32Array;
  readonly #free: number[] = [];

  constructor(sab: SharedArrayBuffer) {
    this.#credits = new Int32Array(sab);
    for (let i = CREDIT_SLOTS - 1; i >= 0; i--) this.#free.push(i);
  }

  async #slot(): Promise<number> {
    while (this.#free.length === 0) await new Promise((r) => setTimeout(r, 1));
    return this.#free.pop()!;
  }

  /**
   * Pulls `body` and sends its chunks (split to CHUNK) through `send(slot, piece, flags)`,
   * the last with BODY_END, or BODY_ERROR when the iterable threw.
   */
  async stream(
    body: AsyncIterable<Uint8Array>,
    send: (slot: number, piece: Uint8Array, last: 'end' | 'error' | false) => void,
  ): Promise<void> {
    const slot = await this.#slot();
    const credits = this.#credits;
    let how: 'end' | 'error' = 'end';
    try {
      for await (const chunk of body) {
        for (let off = 0; off < chunk.length; off += CHUNK) {
          const piece = chunk.subarray(off, Math.min(chunk.length, off + CHUNK));
          Atomics.add(credits, slot, piece.length);
          send(slot, piece, false);
          await waitBelow(credits, slot, BODY_WINDOW);
        }
      }
    } catch {
      how = 'error';
    }
    send(slot, new Uint8Array(0), how);
    // The reactor returns every byte's credit, taken or dropped: then the slot is free again.
    await waitBelow(credits, slot, 0);
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

  /** A BODY message's payload (copied: the channel reuses it) or its end. */
  push(credits: Int32Array, slot: number, piece: Uint8Array, last: 'end' | 'error' | false): void {
    this.#credits = credits;
    this.#slot = slot;
    if (this.#dropped) this.#give(piece.length);
    else if (piece.length > 0) this.#queue.push(piece.slice());
    if (last) this.#done = last;
    this.#wake?.();
  }

  #give(n: number): void {
    if (n === 0 || this.#credits === undefined) return;
    Atomics.sub(this.#credits, this.#slot, n);
    Atomics.notify(this.#credits, this.#slot);
  }

  #drop(): void {
    this.#dropped = true;
    for (const p of this.#queue.splice(0)) this.#give(p.length);
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
