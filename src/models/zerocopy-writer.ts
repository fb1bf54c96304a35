/**
 * Zero-copy writes for a reactor connection (`zerocopyThreshold`): a write of at least the
 * threshold goes out with sendBuffer and MSG_ZEROCOPY once every byte before it has left,
 * and the writes after it wait behind it, in order, until the kernel has reported it done
 * (only then may its buffer be reused); then they leave together, as one write. The connection's EPOLLERR with no socket error means
 * completions on the error queue: `onErrorQueue` reads them and wakes the wait, which no Node
 * timer could do while a reactor in run() blocks in its poller.
 *
 * maxQueue holds as for plain writes: it counts the bytes the kernel refused. A zero-copy
 * write larger than maxQueue is first offered with a plain non-blocking send, and the
 * connection is dropped if the rest is past maxQueue; while a zero-copy write waits for
 * room, what the kernel has not taken of it and the writes held behind it count together.
 */
import { queueFullError, type Connection } from '../loop/connection.js';
import { forgetZerocopy, send, zerocopySocket } from '../sys/msg-zerocopy.js';
import { EAGAIN } from '../sys/errno.js';
import { errnoError } from '../sys/errors.js';
import { sendBuffer } from '../transfer/index.js';
import { COPY_MAX, Tail } from '../loop/write-batch.js';
import type { Stats } from './stats.js';

export class ZerocopyWriter {
  /** Moves whenever the kernel takes bytes of a zero-copy write (for the idle timeout). */
  progress = 0;
  readonly #held: Uint8Array[] = [];
  #heldBytes = 0;
  /**
   * Where small held writes are gathered (write-batch.ts): a streamed body of tiny chunks
   * behind a zero-copy write the client does not take would otherwise hold a buffer object
   * per chunk, many times the bytes maxOutput counts. Dropped when the held writes are taken.
   */
  readonly #tail = new Tail();
  #inFlight = 0;
  #busy = false;
  #idle: Promise<void> = Promise.resolve();
  #endAfter = false;
  #waits: (() => void)[] = [];
  /** The zero-copy write in flight waits for room (the kernel refused the rest of it). */
  #refused = false;

  constructor(
    readonly conn: Connection,
    readonly threshold: number,
    readonly stats: Stats,
    /** Sends what a cork holds: it was written before the zero-copy write. */
    readonly uncork: () => void,
  ) {
    conn.onErrorQueue = () => {
      zerocopySocket(conn.fd).reap();
      this.#wake();
    };
  }

  /** Bytes taken by write() that the kernel has not taken yet. */
  get queued(): number {
    return this.#heldBytes + this.#inFlight;
  }

  /** Takes `data` when it goes zero-copy or must wait behind one that does; false: write it plainly. */
  write(data: Uint8Array): boolean {
    if (!this.#busy && data.length < this.threshold) return false;
    const held = this.#held;
    // Behind a zero-copy write a small one waits for the client: gathered. A large one is
    // kept as written (it may go zero-copy itself).
    if (this.#busy && data.length <= COPY_MAX) this.#tail.add(held, 0, held.length, data, this.#heldBytes);
    else held.push(data);
    this.#heldBytes += data.length;
    if (!this.#busy) {
      this.#busy = true;
      this.#idle = this.#pump();
    } else if (this.#refused) this.#judge();
    return true;
  }

  /**
   * The writes held while the kernel refuses the zero-copy write before them are bytes it
   * refused, as a plain write's queue is, and so is the rest of that write: together, past
   * maxQueue, the connection is dropped.
   */
  #judge(): void {
    if (this.queued > this.conn.maxQueue && !this.conn.closed) this.conn.destroy(queueFullError(this.conn.maxQueue));
  }

  /** Resolves once no zero-copy write is pending. */
  async idle(): Promise<void> {
    while (this.#busy) await this.#idle;
  }

  get busy(): boolean {
    return this.#busy;
  }

  /** The connection should end: true when that waits for the pending writes (done here). */
  deferEnd(): boolean {
    if (this.#busy) this.#endAfter = true;
    return this.#busy;
  }

  /** The connection has closed: no completion will come for its fd. */
  closed(): void {
    forgetZerocopy(this.conn.fd); // before the fd number is reused
    this.#tail.drop();
    this.#wake();
  }

  #wake(): void {
    const waits = this.#waits;
    this.#waits = [];
    for (const w of waits) w();
  }

  /**
   * Every write held, as one buffer: the replies queued behind a zero-copy write leave together,
   * not one send (and one wait for its completion) each, which a pipelining client would pay
   * per reply.
   */
  #takeHeld(): Uint8Array {
    const held = this.#held.splice(0);
    this.#heldBytes = 0;
    this.#tail.drop(); // its bytes are being sent (maybe zero-copy): later writes start a fresh one
    return held.length === 1 ? held[0]! : Buffer.concat(held);
  }

  async #pump(): Promise<void> {
    const { conn } = this;
    try {
      while (this.#held.length > 0 && !conn.closed) {
        const data = this.#takeHeld();
        if (data.length < this.threshold) {
          conn.write(data);
          continue;
        }
        this.uncork();
        while (conn.queuedBytes > 0) await conn.waitWritable();
        let from = 0;
        if (data.length > conn.maxQueue) {
          // As a plain write is judged: the kernel takes what it can now (a copy), and only
          // the bytes it refuses count against maxQueue; those go zero-copy.
          const n = send(conn.fd, data);
          if (n < 0 && n !== -EAGAIN) throw errnoError(n, 'send');
          from = Math.max(n, 0);
          this.progress += from;
          if (data.length - from > conn.maxQueue) {
            conn.destroy(queueFullError(conn.maxQueue));
            break;
          }
        }
        if (from < data.length) {
          this.#inFlight = data.length - from;
          const r = await sendBuffer(conn.fd, data, {
            offset: from,
            zerocopy: true,
            wait: async () => {
              // The kernel refuses: the writes held behind this one count against maxQueue now.
              this.#refused = true;
              this.#judge();
              try {
                await conn.waitWritable();
              } finally {
                this.#refused = false;
              }
              this.progress++;
            },
            completions: () => new Promise<void>((resolve) => this.#waits.push(resolve)),
            onSent: (n) => (this.#inFlight -= n),
          });
          this.stats.zerocopy(r.zerocopySends, r.copied);
        }
        this.#inFlight = 0;
        conn.bytesWritten += data.length;
      }
    } catch (e) {
      conn.destroy(e instanceof Error ? e : new Error(String(e)));
    } finally {
      this.#inFlight = 0;
      this.#busy = false;
      if (this.#endAfter && !conn.closed) conn.end();
      // Room freed with no drain event (the queue was empty throughout): the core, paused by
      // its output budget, must hear of it or it stalls.
      else if (!conn.closed) conn.onDrain?.();
    }
  }
}
