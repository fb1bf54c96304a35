/**
 * One client connection of a reactor model: a Connection (the bytes), a Codec (framing)
 * and an ordered reply pipeline. Requests are handled inline (single, multi-reactor) or
 * handed to a worker pool (worker-pool, multi-reactor-pool), whose replies come back in
 * any order; either way replies leave in request order, as HTTP/1.1 pipelining and RESP
 * require. A reply with a file body is sent with transferFile once the bytes before it
 * have drained, and replies behind it wait for it.
 *
 * Backpressure: when the connection's write queue passes the high-water mark, reading
 * stops until it drains, so a client that sends without reading cannot grow the server's
 * memory beyond the queue bound (past `maxQueue` the Connection drops the client).
 */
import type { Connection } from '../loop/connection.js';
import type { Protocol, Reply } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import { transferFile } from '../transfer/index.js';
import type { Stats } from './stats.js';

const HIGH_WATER = 1 << 20;

export interface SessionOptions {
  protocol: Protocol;
  stats: Stats;
  transfer: string;
  directio: number;
  /** Hands a frame to a worker pool instead of handling it here; the reply comes back through deliver(). */
  dispatch?: (session: Session, seq: number, frame: Uint8Array) => void;
  /** Called once when the connection has closed. */
  onClose?: (session: Session) => void;
}

export class Session {
  readonly conn: Connection;
  readonly #opts: SessionOptions;
  readonly #codec;
  #nextSeq = 0;
  #nextSend = 0;
  readonly #pending = new Map<number, Reply>();
  #sendingFile = false;
  #closeAfter = false;
  /** A number a model may use to find this session again (its slot in a table). */
  id = -1;

  constructor(conn: Connection, opts: SessionOptions) {
    this.conn = conn;
    this.#opts = opts;
    this.#codec = opts.protocol.createCodec();
    conn.onData = (chunk) => this.#onData(chunk);
    conn.onDrain = () => this.#onDrain();
    conn.onClose = () => this.#onClose();
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
  }

  #onData(chunk: Buffer): void {
    if (this.#closeAfter) return;
    const { frames, error } = this.#codec.push(chunk);
    const { protocol, dispatch, stats } = this.#opts;
    for (let i = 0; i < frames.length; i++) {
      const seq = this.#nextSeq++;
      stats.requests();
      if (dispatch) dispatch(this, seq, frames[i]!);
      else this.deliver(seq, protocol.handle(frames[i]!));
      if (this.conn.closed) return;
    }
    if (error) {
      this.conn.pause();
      this.deliver(this.#nextSeq++, { ...error, close: true });
    }
    if (this.conn.queuedBytes > HIGH_WATER) this.conn.pause();
  }

  #onDrain(): void {
    if (!this.#closeAfter && !this.conn.closed) this.conn.resume();
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
    if (reply.data.length > 0) {
      // Counted before the write, so a client that has its reply sees it in stats().
      this.#opts.stats.sent(reply.data.length);
      conn.write(reply.data);
    }
    if (reply.file) {
      this.#sendingFile = true;
      void this.#sendFile(reply.file, reply.close === true);
      return;
    }
    if (reply.close) this.#finish();
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
  }

  #finish(): void {
    this.#closeAfter = true;
    this.conn.end();
  }

  #onClose(): void {
    for (const r of this.#pending.values()) if (r.file) native.close(r.file.fd);
    this.#pending.clear();
    this.#opts.onClose?.(this);
  }
}
