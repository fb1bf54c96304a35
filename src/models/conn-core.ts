/**
 * The connection contract every server model enforces, in one place: framing requests out
 * of the byte stream, handing them to the protocol in order, and writing the replies back
 * in request order (HTTP/1.1 pipelining and RESP require it), within per-connection limits.
 * It does no I/O itself: a model drives it with a {@link ConnIO} over its own kind of
 * socket (a reactor Connection, a blocking fd, io_uring sends), and feeds it what it reads.
 *
 * A framed request is handled only while the connection is within every budget, checked
 * before the handler runs, so nothing is built that the budgets could not hold:
 *   in flight     requests handled whose reply has not been written (maxInFlight);
 *   output        reply bytes written but not yet taken by the kernel, plus replies built
 *                 and waiting for their turn (maxOutput);
 *   files         reply file bodies open (maxFiles): each is an fd of the process.
 * Frames past a budget wait, unhandled, and reading stops while any wait; whenever a
 * budget frees (a reply leaves, a file body ends, the kernel takes bytes) the waiting
 * frames are handled and reading resumes — it never stalls for want of a wake-up.
 *
 * Replies that are not ready at once (a Promise from handle(), or a request dispatched to
 * a pool thread) are "unknown": their size and file are counted at the worst the budgets
 * allow — a promise reply is awaited before the next request is handled (so a reply that
 * closes the connection is known before anything after it runs), and dispatches to a pool
 * go one at a time until a reply has come back, then stay within the output and file
 * budgets as if each could be as large as the largest reply seen so far.
 *
 * Closing: a reply with `close` (Connection: close, HTTP/1.0 without keep-alive, QUIT, a
 * framing error) is the last: no later request is handled, later replies are dropped, and
 * the connection ends once it is written. A file body that ends short (the file shrank)
 * or a body iterable that throws ends the connection after what was sent; a short file is
 * counted in stats. A connection that closes while a body's producer makes its next chunk
 * ends that producer at once (its return(), and destroy() for a Node stream), not when the
 * chunk comes: a producer waiting for an event that never comes would hold what it owns.
 * Timeouts are checked by `expire()`, which the model calls from a timer; they measure the
 * client's slowness only, so the header clock stops while reading is stopped for a budget
 * and both restart when it resumes (conn-clock.ts).
 *
 * Draining (`drain()`, a server's graceful close): every request already framed is answered
 * (its reply, file and streamed body whole); a request started but not yet whole may still
 * arrive, and is answered too; nothing after it is read. Once every reply is written the
 * connection ends as after a closing reply (lingering); one owing nothing, with nothing
 * started, is closed at once, unless the kernel holds bytes the driver has not read yet
 * (ConnIO.inputWaiting): those are read as a request started.
 */
import type { Codec, Protocol, Reply } from '../protocols/protocol.js';
import { CODEC_FAILED } from '../protocols/module.js';
import { copyOf, EmptyRun, loopTurn } from '../protocols/bytes.js';
import { close } from '../sys/socket.js';
import { ownFd } from '../sys/fd-owner.js';
import {
  asyncBegin,
  asyncEnd,
  tailBegin,
  tailEnd,
  connError,
  discardReply,
  type ConnIO,
  type ConnLimits,
  type Handle,
} from './conn-contract.js';
import { ConnClock } from './conn-clock.js';
import type { Stats } from './stats.js';

export {
  asyncSettled,
  asyncWork,
  CONN_DEFAULTS,
  connError,
  discardReply,
  LINGER_MS,
  pickLimits,
  sweepEvery,
  type ConnIO,
  type ConnLimits,
  type Handle,
} from './conn-contract.js';

export class ConnCore {
  readonly #io: ConnIO;
  readonly #codec: Codec;
  readonly #limits: ConnLimits;
  readonly #stats: Stats;
  readonly #handle: Handle;
  /** Framed requests not handled yet (a budget is spent), oldest at #head. */
  #frames: Uint8Array[] = [];
  #head = 0;
  /** A framing error: its reply goes after the frames before it, and closes. */
  #error: Reply | undefined;
  #nextSeq = 0;
  /** Replies written (their data; a file or body may still be going out). */
  #nextSend = 0;
  /**
   * Replies accepted and not written: the one for #nextSend in #ready (the common case, a
   * reply made at once, costs no map operations), any other in #pending by seq.
   */
  #ready: Reply | undefined;
  readonly #pending = new Map<number, Reply>();
  #pendingBytes = 0;
  /** Requests handled whose reply has not come yet (a promise, a pool). */
  #unknown = 0;
  #awaiting = false;
  /** A streamed body's producer is making its next chunk (not waiting for the client). */
  #producing = false;
  #files = 0;
  /** The largest reply seen: what an unknown reply is assumed to cost. */
  #largest = 0;
  /** Replies seen, and whether one had a file (then every unknown reply may hold an fd). */
  #seen = 0;
  #sawFile = false;
  /** A file or body is being sent: later replies wait. */
  #busy = false;
  /** The seq of the reply that closes the connection, once known. */
  #closeSeq = Infinity;
  #ended = false;
  #eof = false;
  #paused = false;
  #pumping = false;
  /** drain() was called: reading stops once no request is half read. */
  #draining = false;
  /** Draining, and the request half read when it began has not arrived whole yet: reading goes on. */
  #drainPartial = false;
  /** The header and idle timeouts: they run only while rawio reads (conn-clock.ts). */
  readonly #clock: ConnClock;
  #idleWaiters: (() => void)[] = [];
  /** Ends the wait for a streamed body's next chunk: the connection has closed. */
  #bodyGone: (() => void) | undefined;

  constructor(io: ConnIO, protocol: Protocol, stats: Stats, limits: ConnLimits, handle?: Handle) {
    this.#io = io;
    this.#codec = protocol.createCodec();
    this.#limits = limits;
    this.#clock = new ConnClock(limits);
    this.#stats = stats;
    this.#handle = handle ?? ((_seq, frame) => protocol.handle(frame));
    // A module whose createCodec() threw owes this client its error reply and a close now,
    // not once the client sends (it may be waiting to be spoken to): once the model has
    // finished setting the connection up, push it nothing.
    if ((this.#codec as { [CODEC_FAILED]?: boolean })[CODEC_FAILED]) queueMicrotask(() => this.push(EMPTY));
  }

  /** Requests handled whose reply is not written yet. */
  get inFlight(): number {
    return this.#nextSeq - this.#nextSend;
  }

  /** Reply file bodies open now. */
  get openFiles(): number {
    return this.#files;
  }

  /** Bytes the client sent, as read. The chunk is not kept. */
  push(chunk: Uint8Array): void {
    if (this.#closing()) return;
    const { frames, error, interim } = this.#codec.push(chunk);
    const lent = this.#frames.length;
    for (const f of frames) this.#frames.push(f);
    // An interim response asked for (100 Continue) is answered in order but is no request.
    const requests = frames.length - (interim ?? 0);
    if (requests > 0) this.#stats.requests(requests);
    if (error) this.#error = error;
    // Draining: the request started when it began is whole (or the stream broke): read no more.
    if (this.#drainPartial && (frames.length > 0 || error || (this.#codec.buffered ?? 0) === 0)) {
      this.#drainPartial = false;
    }
    // The clocks' rule (conn-clock.ts): a started request has headerTimeout in hand, and
    // every minRequestRate bytes of it that arrive give a second back, up to that much.
    this.#clock.read(chunk.byteLength, this.#codec.buffered, frames.length > 0);
    // A model that reads only once every reply is written stops reading while it writes.
    if (frames.length > 0 && this.#io.readsWhenIdle) this.#clock.stop();
    this.#pump();
    // Frames may be views into the chunk (Codec in protocol.ts); those left waiting for a
    // budget or a promise reply outlive it, so they keep copies. Only this chunk's: the older
    // ones are copies already, and copying them again at every read grows with the backlog.
    // (copyOf: a frame that is a Buffer view of the chunk is copied too; Buffer#slice would not copy it.)
    for (let i = Math.max(this.#head, lent); i < this.#frames.length; i++) this.#frames[i] = copyOf(this.#frames[i]!);
  }

  /** The client finished sending: close once every reply it is owed has gone. */
  end(): void {
    this.#eof = true;
    this.#maybeFinish();
  }

  /** The kernel took bytes (or the socket turned writable): a budget may have freed. */
  writable(): void {
    if (!this.#io.closed) this.#pump();
  }

  /** The reply to request `seq`, from a pool or a promise. */
  deliver(seq: number, reply: Reply): void {
    this.#unknown--;
    this.#accept(seq, reply);
    this.#flush();
    this.#pump();
  }

  /**
   * The server closes gracefully: answer what was asked, then close (see the header). Any
   * frame the model still pushes is answered too (it was read); the model stops reading
   * through pause() as usual. Safe to call more than once, and on a closing connection.
   */
  drain(): void {
    if (this.#draining || this.#closing()) return;
    this.#draining = true;
    this.#drainPartial = (this.#codec.buffered ?? 0) > 0;
    if (this.#idle() && !this.#drainPartial && this.#io.readPending !== true) {
      // Bytes the client sent before the drain began that this thread has not read yet (it
      // was busy, or the connection was just accepted): a request begun, read and answered
      // as one half read is, rather than dropped unread with the connection reset under it.
      if (this.#io.inputWaiting?.() === true) this.#drainPartial = true;
      // Unless the model has set a read to settle first (a ring's recv in flight may hold
      // bytes whose completion is not reaped yet: inputWaiting cancelled it): what it brings
      // is answered, and once it has settled (writable()) the connection ends (#maybeFinish),
      // the client seeing EOF at once as below. Otherwise idle between requests, nothing
      // started: closed now (as an idle timeout closes), not lingering, when nothing is left
      // to send; replies still queued go out first.
      else if (!this.#readSettling()) {
        if (this.#io.queued === 0) return this.#io.destroy();
        return this.#finish();
      }
    }
    // Called from within a write (a blocking model's tick): the pump under way decides.
    if (!this.#pumping) this.#pump();
  }

  /** Whether the model holds or awaits bytes it read that the core has not seen (ConnIO.readPending). */
  #readSettling(): boolean {
    return this.#io.readPending === true;
  }

  /** drain() was called. */
  get draining(): boolean {
    return this.#draining;
  }

  /** The connection closed: releases every reply still held. */
  closed(): void {
    this.#bodyGone?.();
    if (this.#ready) discardReply(this.#ready);
    this.#ready = undefined;
    for (const r of this.#pending.values()) discardReply(r);
    this.#pending.clear();
    this.#frames = [];
    this.#checkIdle();
  }

  /**
   * Resolves once every request read so far has been answered in full, or the connection
   * is closing (a blocking model reads on only then).
   */
  whenIdle(): Promise<void> {
    if (this.#idle()) return Promise.resolve();
    return new Promise((resolve) => this.#idleWaiters.push(resolve));
  }

  #idle(): boolean {
    if (this.#ended || this.#io.closed) return true;
    return this.#head === this.#frames.length && !this.#error && this.#nextSend === this.#nextSeq && !this.#busy;
  }

  #checkIdle(): void {
    if (this.#idleWaiters.length === 0 || !this.#idle()) return;
    const waiters = this.#idleWaiters;
    this.#idleWaiters = [];
    for (const w of waiters) w();
  }

  /**
   * Closes the connection past a timeout (see ConnLimits); `now` is performance.now().
   * Returns true when it closed it.
   */
  expire(now: number): boolean {
    // A lingering close has its own bound (LINGER_MS), kept by the driver.
    if (this.#io.closed || this.#io.lingering === true) return false;
    const limits = this.#limits;
    // A reply the server is still making (a promise, a pool, a streamed body's next chunk)
    // is the server's delay, not the client's.
    const making = this.#unknown > 0 || this.#producing;
    const expired = this.#clock.expired(now, this.#io.progress, this.#nextSeq, making);
    if (expired === 'header') return this.#timeout('ERR_RAWIO_HEADER_TIMEOUT', limits.headerTimeout);
    if (expired === 'idle') return this.#timeout('ERR_RAWIO_IDLE_TIMEOUT', limits.idleTimeout);
    return false;
  }

  #timeout(code: string, ms: number): boolean {
    this.#io.destroy(connError(code, `no progress for ${ms} ms`));
    return true;
  }

  #closing(): boolean {
    return this.#closeSeq !== Infinity || this.#ended || this.#io.closed;
  }

  /** Whether the next frame may be handled now (every budget has room). */
  #room(): boolean {
    if (this.#awaiting || this.#closing()) return false;
    const { maxInFlight, maxOutput, maxFiles } = this.#limits;
    if (this.#nextSeq - this.#nextSend >= maxInFlight) return false;
    const unknown = this.#unknown;
    // Until a reply has come back nothing is known of their size: one at a time.
    if (this.#seen === 0) return unknown === 0;
    const output = this.#io.queued + this.#pendingBytes + unknown * this.#largest;
    const files = this.#sawFile ? this.#files + unknown : this.#files;
    return output < maxOutput && files < maxFiles;
  }

  #pump(): void {
    if (this.#pumping) return;
    // Room is judged with a corked batch counted as queued; uncork() hands it to the kernel,
    // which may take it all, and then no drain event comes to say the budget has room:
    // look again, or the frames left would wait for ever.
    let again = true;
    while (again) again = this.#pumpBatch() && this.#head < this.#frames.length && this.#room();
    this.#readingIf(
      this.#head === this.#frames.length &&
        this.#error === undefined &&
        !this.#closing() &&
        (!this.#draining || this.#drainPartial),
    );
    if (!this.#paused && (!this.#io.readsWhenIdle || this.#idle())) this.#clock.resume();
    this.#maybeFinish();
    this.#checkIdle();
  }

  /** Handles waiting frames while every budget has room; true when it corked a batch. */
  #pumpBatch(): boolean {
    this.#pumping = true;
    const io = this.#io;
    const many = this.#frames.length - this.#head > 1;
    // The replies to one read's requests leave together: one writev for a pipelined batch.
    if (many) io.cork?.();
    try {
      while (this.#head < this.#frames.length && this.#room()) {
        const frame = this.#frames[this.#head]!;
        this.#frames[this.#head++] = EMPTY;
        this.#run(this.#nextSeq++, frame);
      }
      if (this.#head === this.#frames.length) {
        this.#frames = [];
        this.#head = 0;
        if (this.#error && !this.#closing() && !this.#awaiting) {
          const error = this.#error;
          this.#error = undefined;
          this.#unknown++;
          this.deliver(this.#nextSeq++, { ...error, close: true });
        }
      }
    } finally {
      // Still pumping while the batch is written: a blocking driver's uncork() may sleep
      // until the client reads and, at its ticks, call drain(), which must leave the
      // decision to this pump as it does during any other write.
      try {
        if (many) io.uncork?.();
      } finally {
        this.#pumping = false;
      }
    }
    return many;
  }

  #run(seq: number, frame: Uint8Array): void {
    let r: Reply | Promise<Reply> | undefined;
    try {
      r = this.#handle(seq, frame);
    } catch (e) {
      return this.#io.destroy(e instanceof Error ? e : new Error(String(e)));
    }
    if (r === undefined) {
      this.#unknown++;
    } else if (typeof (r as Promise<Reply>).then === 'function') {
      this.#unknown++;
      this.#awaiting = true;
      asyncBegin();
      (r as Promise<Reply>).then(
        (reply) => {
          asyncEnd();
          this.#awaiting = false;
          this.deliver(seq, reply);
        },
        (e: unknown) => {
          asyncEnd();
          this.#awaiting = false;
          this.#io.destroy(e instanceof Error ? e : new Error(String(e)));
        },
      );
    } else if (
      seq === this.#nextSend &&
      this.#ready === undefined &&
      this.#pending.size === 0 &&
      !this.#busy &&
      !this.#ended
    ) {
      // Its turn, and nothing is waiting: written at once, past the table of pending replies
      // (the common case: every reply of a pipelined batch handled inline).
      if (this.#note(seq, r as Reply)) this.#emit(seq, r as Reply);
    } else {
      this.#accept(seq, r as Reply);
      this.#flush();
    }
  }

  /** Counts a reply against the budgets; false when it is dropped (after the closing one). */
  #note(seq: number, reply: Reply): boolean {
    if (this.#io.closed || seq > this.#closeSeq) {
      discardReply(reply);
      return false;
    }
    if (reply.close) this.#closeSeq = seq;
    if (reply.data.length > this.#largest) this.#largest = reply.data.length;
    this.#seen++;
    if (reply.file) {
      // The file is this connection's to close now (#sendTail), on this thread: it owns the fd,
      // so that the addon closes it if the thread ends with the body in flight.
      ownFd(reply.file.fd);
      this.#files++;
      this.#sawFile = true;
    }
    return true;
  }

  #accept(seq: number, reply: Reply): void {
    if (!this.#note(seq, reply)) return;
    if (seq === this.#nextSend && this.#ready === undefined) this.#ready = reply;
    else this.#pending.set(seq, reply);
    this.#pendingBytes += reply.data.length;
  }

  #flush(): void {
    const io = this.#io;
    while (!this.#busy && !io.closed && !this.#ended) {
      const seq = this.#nextSend;
      const reply = this.#ready ?? this.#pending.get(seq);
      if (reply === undefined) return;
      if (this.#ready !== undefined) this.#ready = undefined;
      else this.#pending.delete(seq);
      this.#pendingBytes -= reply.data.length;
      if (!this.#emit(seq, reply)) return;
    }
  }

  /** Writes reply `seq` (its turn has come); false when later replies must wait or are dropped. */
  #emit(seq: number, reply: Reply): boolean {
    if (reply.data.length > 0) {
      // Counted before the write, so a client that has its reply sees it in stats().
      this.#stats.sent(reply.data.length);
      this.#io.write(reply.data);
    }
    if (reply.file || reply.body) {
      this.#busy = true;
      void this.#sendTail(seq, reply);
      return false;
    }
    this.#nextSend++;
    if (seq !== this.#closeSeq) return true;
    this.#finish();
    return false;
  }

  /** Sends a reply's file region and body after its data, then the replies behind it. */
  async #sendTail(seq: number, reply: Reply): Promise<void> {
    const io = this.#io;
    let ok = true;
    if (reply.file) {
      const { file } = reply;
      tailBegin(); // the thread stays until the file fd is closed below
      try {
        const n = await io.sendFile(file);
        this.#stats.sent(n);
        if (n < file.length) {
          // The file shrank: what follows would land inside the promised body. Unless the
          // connection closed meanwhile (the client reset it, seen by a receive while the
          // proactor read the file's next chunk): then the file is whole, the client gone.
          if (!io.closed) this.#stats.shortBody();
          ok = false;
        }
      } catch (e) {
        // A file that shrank under mmap says EFAULT. A socket the client reset or shut is no
        // short body, whether or not the model has seen the close yet (a blocking thread, a
        // reactor whose hang-up event comes after the failed send, differ only in timing).
        if (!io.closed && !peerGone(e)) this.#stats.shortBody();
        ok = false;
      } finally {
        close(file.fd);
        this.#files--;
        tailEnd();
      }
    }
    if (ok && reply.body && !io.closed) ok = await this.#sendBody(reply.body);
    else if (reply.body) discardReply({ data: EMPTY, body: reply.body });
    this.#busy = false;
    this.#nextSend++;
    if (!ok || seq === this.#closeSeq) this.#finish();
    else this.#flush();
    this.#pump();
  }

  async #sendBody(body: AsyncIterable<Uint8Array>): Promise<boolean> {
    const io = this.#io;
    const high = this.#limits.maxOutput;
    let it: AsyncIterator<Uint8Array>;
    try {
      it = body[Symbol.asyncIterator]();
    } catch {
      return false; // a producer that cannot even start is a body that failed at once
    }
    /** The producer ended by itself (done, or it threw): otherwise it is ended with return(), as for-await does. */
    let ended = false;
    /** The connection closed while the producer made its next chunk, which may never come. */
    let gone = false;
    const empty = new EmptyRun();
    asyncBegin();
    try {
      for (;;) {
        // While the producer makes its next chunk the idle clock stands, as for a promise
        // reply; while the client takes what was sent (drain, below) it runs.
        this.#producing = true;
        let next: IteratorResult<Uint8Array> | undefined;
        try {
          // A fresh promise per chunk, settled by the chunk or by closed() (not a race with
          // one long-lived promise, which would keep a reaction per chunk until the body ends).
          next = io.closed
            ? undefined
            : await new Promise<IteratorResult<Uint8Array> | undefined>((resolve, reject) => {
                this.#bodyGone = () => resolve(undefined);
                it.next().then(resolve, reject);
              });
        } catch (e) {
          ended = true;
          throw e;
        } finally {
          this.#producing = false;
        }
        if (next === undefined) {
          gone = true;
          return false;
        }
        if (next.done) {
          ended = true;
          return !io.closed;
        }
        if (io.closed) return false;
        const chunk = next.value;
        if (chunk.length === 0) {
          if (empty.empty()) await loopTurn(); // no output, no backpressure (EmptyRun)
          continue;
        }
        empty.reset();
        this.#stats.sent(chunk.length);
        io.write(chunk);
        if (io.queued > high) await io.drain(high >> 1);
      }
    } catch {
      return false;
    } finally {
      this.#bodyGone = undefined;
      if (gone) {
        // The client left while the producer was making a chunk: end it now, not once that
        // chunk comes (a return() queued behind the pending next() would wait for it). A Node
        // stream is destroyed; rawio's handler bodies end their source in return().
        const { destroy } = body as { destroy?: unknown };
        if (typeof destroy === 'function') destroy.call(body);
        void Promise.resolve()
          .then(() => it.return?.())
          .catch(() => undefined)
          .finally(asyncEnd);
      } else {
        if (!ended) {
          try {
            await it.return?.(); // a producer's return() that throws is its own error, not the connection's
          } catch {
            // ignored, as for-await ignores it when leaving on an error
          }
        }
        asyncEnd();
      }
    }
  }

  #readingIf(on: boolean): void {
    if (on === !this.#paused || this.#io.closed) return;
    this.#paused = !on;
    if (on) this.#io.resume();
    else {
      this.#clock.stop();
      this.#io.pause();
    }
  }

  #maybeFinish(): void {
    if (this.#ended || this.#io.closed) return;
    // The client finished sending, or the server drains and reads no more (and the model
    // holds nothing it read that the core has not seen).
    if (!this.#eof && !(this.#draining && !this.#drainPartial && this.#io.readPending !== true)) return;
    // A half-closed client still gets the replies to what it sent (a pool may be behind).
    if (this.#head < this.#frames.length || this.#error || this.#nextSend < this.#nextSeq || this.#busy) return;
    this.#finish();
  }

  #finish(): void {
    if (this.#ended) return;
    this.#ended = true;
    this.#frames = [];
    this.#head = 0;
    this.#io.end();
    this.#checkIdle();
  }
}

const EMPTY = new Uint8Array(0);

/** The errors of a send to a client that has gone (reset, shut down, timed out) or was aborted on close. */
const PEER_GONE = new Set(['EPIPE', 'ECONNRESET', 'ENOTCONN', 'ESHUTDOWN', 'ECONNABORTED', 'ETIMEDOUT', 'ABORT_ERR']);

/** Whether a file body's send failed for the client's sake: by its code, or its cause's (ERR_RAWIO_SEND). */
function peerGone(e: unknown): boolean {
  for (let x = e as { code?: unknown; cause?: unknown } | null, depth = 0; x && depth < 2; depth++) {
    if (typeof x.code === 'string' && PEER_GONE.has(x.code)) return true;
    x = x.cause as typeof x;
  }
  return false;
}
