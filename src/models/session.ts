/**
 * One client connection of a reactor model: a Connection (the bytes) driving a ConnCore
 * (framing, the ordered reply pipeline and every per-connection limit, conn-core.ts).
 * Requests are handled inline (single, multi-reactor, multi-process) or handed to a worker
 * pool (worker-pool, multi-reactor-pool), whose replies come back through deliver(); a
 * file body goes out with transferFile once the bytes before it have left, and a write of
 * `zerocopyThreshold` bytes or more with MSG_ZEROCOPY (zerocopy-writer.ts).
 *
 * Idleness and slow headers: `expire()` (called by the model's sweep timer) closes a
 * connection past its header or idle timeout (see ConnLimits).
 */
import type { Connection } from '../loop/connection.js';
import type { Protocol, Reply } from '../protocols/protocol.js';
import { shutdown } from '../sys/socket.js';
import { CONN_DEFAULTS, ConnCore, type ConnIO, type ConnLimits } from './conn-core.js';
import { inputWaiting } from './conn-contract.js';
import type { Stats } from './stats.js';
import { ZerocopyWriter } from './zerocopy-writer.js';
import { FileBodySender, type FileBodyOptions } from './file-body.js';

/** The default in-flight bound (ConnLimits.maxInFlight). */
export const MAX_DEPTH = CONN_DEFAULTS.maxInFlight;

export interface SessionOptions extends FileBodyOptions {
  protocol: Protocol;
  stats: Stats;
  /** Writes of at least this many bytes go out with MSG_ZEROCOPY; 0 or absent: never. */
  zerocopyThreshold?: number;
  /** The per-connection limits; default CONN_DEFAULTS. */
  limits?: Partial<ConnLimits>;
  /**
   * Hands a frame to a worker pool instead of handling it here: returns undefined, and the
   * reply comes back through deliver() (or returns the reply when it handled it after all).
   */
  dispatch?: (session: Session, seq: number, frame: Uint8Array) => Reply | Promise<Reply> | undefined;
  /** Called once when the connection has closed. */
  onClose?: (session: Session) => void;
}

/** A ConnIO over a reactor Connection. */
class ConnectionIO implements ConnIO {
  /** Bytes written since cork(): held by the Connection, not yet in its queue. */
  #corked = 0;
  #corking = false;
  #fileProgress = 0;
  /** The file body in flight, aborted when the connection closes (see destroy()). */
  readonly #file: FileBodySender;
  readonly zc: ZerocopyWriter | undefined;

  constructor(
    readonly conn: Connection,
    readonly opts: SessionOptions,
  ) {
    this.#file = new FileBodySender(opts, (bytes) => {
      this.#fileProgress += bytes; // the client's progress, for the idle timeout
    });
    const t = opts.zerocopyThreshold ?? 0;
    if (t > 0) this.zc = new ZerocopyWriter(conn, t, opts.stats, () => this.uncork());
  }

  get queued(): number {
    return this.conn.queuedBytes + this.#corked + (this.zc?.queued ?? 0);
  }

  get progress(): number {
    return this.conn.bytesWritten + this.#fileProgress + (this.zc?.progress ?? 0);
  }

  get closed(): boolean {
    return this.conn.closed;
  }

  get lingering(): boolean {
    return this.conn.lingering;
  }

  inputWaiting(): boolean {
    return !this.conn.closed && inputWaiting(this.conn.fd);
  }

  write(data: Uint8Array): void {
    if (this.zc?.write(data) === true) return;
    if (this.#corking) this.#corked += data.length;
    this.conn.write(data);
  }

  cork(): void {
    this.conn.cork();
    this.#corking = true;
  }

  uncork(): void {
    this.#corking = false;
    this.#corked = 0;
    this.conn.uncork();
  }

  async drain(bytes: number): Promise<void> {
    while (this.queued - this.#corked > bytes) {
      if (this.zc?.busy === true) await this.zc.idle();
      else await this.conn.waitWritable();
    }
  }

  async sendFile(file: NonNullable<Reply['file']>): Promise<number> {
    const { conn } = this;
    // The headers held by a cork or queued must reach the socket before the body.
    await this.zc?.idle();
    this.uncork();
    while (conn.queuedBytes > 0) await conn.waitWritable();
    return this.#file.send(conn.fd, file, () => conn.waitWritable());
  }

  /**
   * The connection has closed (however it did): a file body still in flight submits
   * nothing more to this fd number, which the kernel may give to another client at once.
   */
  onClosed(): void {
    this.#file.abort();
  }

  pause(): void {
    this.conn.pause();
  }

  resume(): void {
    this.conn.resume();
  }

  end(): void {
    if (this.zc?.deferEnd() !== true) this.conn.end();
  }

  destroy(error?: Error): void {
    // A file body sent through io_uring (the uring and direct methods) is a send the kernel
    // holds, with the socket, until the client takes its bytes: close(2) alone would leave a
    // timed-out connection open. shutdown(2) reaches the socket itself, so that send fails now.
    // (sendsInKernel decides when: close(2) is enough for the other methods.)
    if (this.#file.inKernel && !this.conn.closed) shutdown(this.conn.fd, 'both');
    this.conn.destroy(error);
  }
}

export class Session {
  readonly conn: Connection;
  readonly core: ConnCore;
  /** A number a model may use to find this session again (its slot in a table). */
  id = -1;

  constructor(conn: Connection, opts: SessionOptions) {
    this.conn = conn;
    const { dispatch } = opts;
    const limits = { ...CONN_DEFAULTS, ...opts.limits };
    const io = new ConnectionIO(conn, opts);
    this.core = new ConnCore(
      io,
      opts.protocol,
      opts.stats,
      limits,
      dispatch ? (seq, frame) => dispatch(this, seq, frame) : undefined,
    );
    conn.onData = (chunk) => this.core.push(chunk);
    conn.onDrain = () => this.core.writable();
    conn.onEnd = () => this.core.end();
    conn.onClose = () => {
      io.onClosed();
      io.zc?.closed();
      this.core.closed();
      opts.onClose?.(this);
    };
  }

  /** A reply for request `seq` (from the pool). */
  deliver(seq: number, reply: Reply): void {
    this.core.deliver(seq, reply);
  }

  /** Closes the connection past its header or idle timeout; `now` is performance.now(). */
  expire(now: number): boolean {
    return this.core.expire(now);
  }
}
