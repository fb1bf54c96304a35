/**
 * One client connection of a reactor model: a Connection (the bytes), a Codec (framing)
 * and an ordered reply pipeline. Requests are handled inline (single, multi-reactor) or
 * handed to a worker pool (worker-pool, multi-reactor-pool), whose replies come back in
 * any order; either way replies leave in request order, as HTTP/1.1 pipelining and RESP
 * require. A reply with a file body is sent with transferFile once the bytes before it
 * have drained, and replies behind it wait for it; so is reply data of `zerocopyThreshold`
 * bytes or more, with sendBuffer and MSG_ZEROCOPY, which holds the buffer until the kernel
 * reports it done (the connection's EPOLLERR then means completions to read).
 *
 * Backpressure: when the connection's write queue passes the high-water mark, reading
 * stops until it drains, so a client that sends without reading cannot grow the server's
 * memory beyond the queue bound (past `maxQueue` the Connection drops the client).
 * Pipelining is bounded the same way: past MAX_DEPTH requests awaiting their replies (a
 * pool that is behind, a file body holding the replies after it, each owning an open fd),
 * reading stops until half of them have gone out.
 *
 * Idleness: `expire()` (called by the model's sweep timer) closes a connection that has
 * made no progress for the idle timeout — no complete request from the client and no reply
 * bytes taken by it — while the server owes it nothing. That closes slowloris clients that
 * trickle a header forever, keep-alive clients that went quiet, and clients that stopped
 * reading with less than `maxQueue` queued (nginx's client_header_timeout and send_timeout
 * in one rule).
 */
import type { Connection } from '../loop/connection.js';
import type { Protocol, Reply } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import { forgetZerocopy, zerocopySocket } from '../sys/msg-zerocopy.js';
import { sendBuffer, transferFile } from '../transfer/index.js';
import type { Stats } from './stats.js';

const HIGH_WATER = 1 << 20;
/** Requests in flight (framed, reply not yet written) past which reading stops. */
export const MAX_DEPTH = 1024;

function timeoutError(ms: number): Error {
  const e = new Error(`no progress for ${ms} ms`) as Error & { code: string };
  e.code = 'ERR_RAWIO_IDLE_TIMEOUT';
  return e;
}

export interface SessionOptions {
  protocol: Protocol;
  stats: Stats;
  transfer: string;
  directio: number;
  /** Reply data of at least this many bytes is sent with MSG_ZEROCOPY; 0 or absent: never. */
  zerocopyThreshold?: number;
  /** Hands a frame to a worker pool instead of handling it here; the reply comes back through deliver(). */
  dispatch?: (session: Session, seq: number, frame: Uint8Array) => void;
  /** Called once when the connection has closed. */
  onClose?: (session: Session) => void;
}

export class Session {
  readonly conn: Connection;
  readonly #opts: SessionOptions;
  readonly #codec;
  readonly #zerocopy: number;
  /** sendBuffer's waits for MSG_ZEROCOPY completions, ended by the connection's EPOLLERR. */
  #zcWaits: (() => void)[] = [];
  #nextSeq = 0;
  #nextSend = 0;
  readonly #pending = new Map<number, Reply>();
  #sendingFile = false;
  #closeAfter = false;
  /** Reading stopped by this session (backpressure or depth), so only it resumes. */
  #paused = false;
  /** The client half-closed: close once every reply it is owed has gone out. */
  #eof = false;
  /** The progress markers seen by the last expire(), and when they last moved. */
  #seenSeq = 0;
  #seenWritten = 0;
  #activeAt = performance.now();
  /** A number a model may use to find this session again (its slot in a table). */
  id = -1;

  constructor(conn: Connection, opts: SessionOptions) {
    this.conn = conn;
    this.#opts = opts;
    this.#codec = opts.protocol.createCodec();
    conn.onData = (chunk) => this.#onData(chunk);
    conn.onDrain = () => this.#onDrain();
    conn.onClose = () => this.#onClose();
    conn.onEnd = () => this.#onEnd();
    this.#zerocopy = opts.zerocopyThreshold ?? 0;
    if (this.#zerocopy > 0) conn.onErrorQueue = () => this.#onErrorQueue();
  }

  /** A reply for request `seq` (from the pool, or inline). */
  deliver(seq: number, reply: Reply): void {
    if (this.conn.closed) {
      if (reply.file) native.close(reply.file.fd);
      return;
    }
    if (seq === this.#nextSend && !this.#sendingFile) {
      this.#nextSend++;
      this.#send(reply);
      if (this.#pending.size > 0) this.#flush();
    } else {
      this.#pending.set(seq, reply);
    }
    if (this.#paused) this.#maybeResume();
    if (this.#eof) this.#onEnd();
  }

  /**
   * Closes the connection when it has made no progress for `ms` (see the file comment);
   * `now` is performance.now(). Returns true when it closed it.
   */
  expire(now: number, ms: number): boolean {
    const written = this.conn.bytesWritten;
    // Replies still owed (a busy pool, a file being sent) are the server's delay, not the client's.
    const owed = this.#nextSend < this.#nextSeq || this.#sendingFile;
    if (owed || written !== this.#seenWritten || this.#nextSeq !== this.#seenSeq) {
      this.#seenWritten = written;
      this.#seenSeq = this.#nextSeq;
      this.#activeAt = now;
      return false;
    }
    if (now - this.#activeAt < ms || this.conn.closed) return false;
    this.conn.destroy(timeoutError(ms));
    return true;
  }

  #onData(chunk: Buffer): void {
    if (this.#closeAfter) return;
    const { frames, error } = this.#codec.push(chunk);
    const { protocol, dispatch, stats } = this.#opts;
    const { conn } = this;
    // The replies to one read's requests leave together: one writev for a pipelined batch.
    if (frames.length > 1) conn.cork();
    if (frames.length > 0) stats.requests(frames.length);
    for (let i = 0; i < frames.length; i++) {
      const seq = this.#nextSeq++;
      if (dispatch) dispatch(this, seq, frames[i]!);
      else this.deliver(seq, protocol.handle(frames[i]!));
      if (conn.closed) return;
    }
    conn.uncork();
    if (error) {
      this.conn.pause();
      this.deliver(this.#nextSeq++, { ...error, close: true });
    }
    if (this.conn.queuedBytes > HIGH_WATER || this.#nextSeq - this.#nextSend > MAX_DEPTH) this.#pause();
  }

  #onEnd(): void {
    this.#eof = true;
    // A half-closed client still gets the replies to what it sent (a pool may be behind).
    if (this.#nextSend === this.#nextSeq && !this.#sendingFile && !this.#closeAfter) this.#finish();
  }

  #pause(): void {
    this.#paused = true;
    this.conn.pause();
  }

  #maybeResume(): void {
    if (this.#closeAfter || this.conn.closed) return;
    if (this.conn.queuedBytes > HIGH_WATER || this.#nextSeq - this.#nextSend > MAX_DEPTH / 2) return;
    this.#paused = false;
    this.conn.resume();
  }

  #onDrain(): void {
    if (this.#paused) this.#maybeResume();
  }

  #flush(): void {
    while (!this.#sendingFile && !this.conn.closed) {
      const reply = this.#pending.get(this.#nextSend);
      if (reply === undefined) return;
      this.#pending.delete(this.#nextSend++);
      this.#send(reply);
    }
  }

  #send(reply: Reply): void {
    const { conn } = this;
    if (this.#zerocopy > 0 && reply.data.length >= this.#zerocopy) {
      conn.uncork();
      this.#sendingFile = true;
      void this.#sendZerocopy(reply);
      return;
    }
    if (reply.data.length > 0) {
      // Counted before the write, so a client that has its reply sees it in stats().
      this.#opts.stats.sent(reply.data.length);
      conn.write(reply.data);
    }
    if (reply.file) {
      // Headers held by a cork must reach the socket before the body that transferFile sends.
      conn.uncork();
      this.#sendingFile = true;
      void this.#sendFile(reply.file, reply.close === true);
      return;
    }
    if (reply.close) this.#finish();
  }

  /** Large reply data with MSG_ZEROCOPY (after what is queued), then the reply's file body if any. */
  async #sendZerocopy(reply: Reply): Promise<void> {
    const { conn } = this;
    try {
      while (conn.queuedBytes > 0) await conn.waitWritable();
      this.#opts.stats.sent(reply.data.length);
      const r = await sendBuffer(conn.fd, reply.data, {
        zerocopy: true,
        wait: () => conn.waitWritable(),
        completions: () => new Promise<void>((resolve) => this.#zcWaits.push(resolve)),
      });
      conn.bytesWritten += reply.data.length;
      this.#opts.stats.zerocopy(r.zerocopySends, r.copied);
    } catch (e) {
      if (reply.file) native.close(reply.file.fd);
      conn.destroy(e instanceof Error ? e : new Error(String(e)));
      return;
    }
    if (reply.file) return this.#sendFile(reply.file, reply.close === true);
    this.#sendingFile = false;
    if (reply.close === true) this.#finish();
    else this.#flush();
    if (this.#eof && !this.conn.closed) this.#onEnd();
  }

  async #sendFile(file: { fd: number; offset: number; length: number }, close: boolean): Promise<void> {
    const { conn } = this;
    try {
      // The headers queued before the body must reach the socket first.
      while (conn.queuedBytes > 0) await conn.waitWritable();
      const n = await transferFile(conn.fd, file.fd, {
        offset: file.offset,
        length: file.length,
        method: this.#opts.transfer as 'auto',
        directio: this.#opts.directio,
        wait: () => conn.waitWritable(),
      });
      this.#opts.stats.sent(n);
    } catch (e) {
      conn.destroy(e instanceof Error ? e : new Error(String(e)));
    } finally {
      native.close(file.fd);
    }
    this.#sendingFile = false;
    if (close) this.#finish();
    else this.#flush();
    if (this.#eof && !this.conn.closed) this.#onEnd();
  }

  #finish(): void {
    this.#closeAfter = true;
    this.conn.end();
  }

  #onErrorQueue(): void {
    zerocopySocket(this.conn.fd).reap();
    this.#wakeZerocopy();
  }

  #wakeZerocopy(): void {
    const waits = this.#zcWaits;
    this.#zcWaits = [];
    for (const w of waits) w();
  }

  #onClose(): void {
    if (this.#zerocopy > 0) {
      forgetZerocopy(this.conn.fd); // before the fd number is reused; no completion will come
      this.#wakeZerocopy();
    }
    for (const r of this.#pending.values()) if (r.file) native.close(r.file.fd);
    this.#pending.clear();
    this.#opts.onClose?.(this);
  }
}
