/**
 * A proactor thread: one Proactor (an io_uring ring) in run() mode. The kernel accepts
 * (multishot accept where it has it: one submission, a completion per connection), receives
 * and sends; this thread only reacts to completions, dispatched by user data to the
 * callback of the operation that finished. Nothing waits for readiness: each connection
 * keeps one multishot recv armed (6.0; its data lands in buffers the ring shares between all
 * connections, so an idle connection holds none), and one send at a time (replies that
 * arrive meanwhile are gathered into the next send). File bodies are read by the ring too, chunk by chunk, and
 * sent as they come: the `uring` transfer path, proactor-style.
 */
import { Proactor, type CompletionCallback, type RecvCallback } from '../loop/proactor.js';
import { createProtocol } from '../protocols/index.js';
import type { Codec, Protocol, ProtocolKind, ProtocolOptions, Reply } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import { Stats } from './stats.js';

export interface ProactorThreadData {
  role: 'proactor';
  index: number;
  listenFd: number;
  /** An eventfd: readable means stop. */
  stopFd: number;
  protocol: ProtocolKind;
  protocolOptions: ProtocolOptions;
  maxQueue: number;
  stats: ReturnType<Stats['share']>;
  cpus?: number[];
}

const FILE_CHUNK = 128 << 10;

type ConnHandler = (c: Conn, res: number) => void;
type DataHandler = (c: Conn, res: number, data: Uint8Array) => void;

class Conn {
  readonly codec: Codec;
  /** Replies waiting for the send in flight to finish. */
  readonly out: Reply[] = [];
  queued = 0;
  sending = false;
  closed = false;
  closeAfter = false;
  /** The file body to send once the send in flight (its head) is done. */
  file: Reply['file'] = undefined;
  // The completion callbacks, made once per connection rather than once per operation.
  readonly onRecv: RecvCallback;
  readonly onSent: CompletionCallback;

  constructor(
    readonly fd: number,
    protocol: Protocol,
    onRecv: DataHandler,
    onSent: ConnHandler,
  ) {
    this.codec = protocol.createCodec();
    this.onRecv = (n, data) => onRecv(this, n, data);
    this.onSent = (res) => onSent(this, res);
  }
}

export class ProactorThread {
  readonly proactor = new Proactor({ entries: 1024 });
  readonly #data: ProactorThreadData;
  readonly #protocol: Protocol;
  readonly #stats: Stats;
  readonly #conns = new Set<Conn>();
  readonly #stopBuf = new Uint8Array(8);
  #stopping = false;

  constructor(data: ProactorThreadData) {
    this.#data = data;
    if (data.cpus) native.setAffinity(data.cpus);
    this.#protocol = createProtocol(data.protocol, data.protocolOptions);
    this.#stats = Stats.attach(data.stats);
  }

  async run(): Promise<void> {
    const p = this.proactor;
    p.read(this.#data.stopFd, this.#stopBuf, -1, 8, () => this.#stop());
    this.#accept();
    try {
      await p.run();
    } finally {
      for (const c of [...this.#conns]) this.#close(c);
      p.close();
      this.#protocol.close();
    }
  }

  #accept(): void {
    this.proactor.accept(
      this.#data.listenFd,
      (fd) => {
        if (fd < 0) {
          // The listening socket failed (EMFILE …) or the multishot accept ended: re-arm after a
          // moment unless stopping (a ring timeout: run() never turns Node's loop, so no setTimeout).
          if (!this.#stopping) this.proactor.timeout(10, () => this.#accept());
          return;
        }
        if (this.#stopping) return void native.close(fd);
        this.#stats.accepted(this.#data.index);
        native.setNoDelay(fd, true); // replies written in pieces must not wait for a delayed ACK
        const c = new Conn(fd, this.#protocol, this.#onRecv, this.#onSent);
        this.#conns.add(c);
        this.#recv(c);
      },
      { multishot: true },
    );
  }

  /** One multishot recv per connection, armed once: each chunk lands in a buffer the kernel picks. */
  #recv(c: Conn): void {
    this.proactor.recvMultishot(c.fd, c.onRecv);
  }

  readonly #onRecv = (c: Conn, n: number, data: Uint8Array): void => {
    if (c.closed) return;
    if (n <= 0) return this.#close(c);
    const { frames, error } = c.codec.push(data); // the codec copies what it keeps: data is lent
    for (let i = 0; i < frames.length; i++) {
      this.#stats.requests();
      this.#queue(c, this.#protocol.handle(frames[i]!));
    }
    if (error) {
      this.#queue(c, { ...error, close: true });
      return this.#flush(c);
    }
    this.#flush(c);
    // Backpressure: a client that sends without reading is dropped past maxQueue.
    if (c.queued > this.#data.maxQueue) this.#close(c);
  };

  #queue(c: Conn, r: Reply): void {
    c.out.push(r);
    c.queued += r.data.length;
  }

  /** Starts the next send: every queued reply without a file body, gathered into one buffer. */
  #flush(c: Conn): void {
    if (c.sending || c.closed) return;
    if (c.out.length === 0) {
      if (c.closeAfter) this.#close(c);
      return;
    }
    let data: Uint8Array;
    const first = c.out.shift()!;
    if (!this.#took(c, first) || c.out.length === 0) {
      data = first.data; // the common case: one reply, no copy
    } else {
      const parts: Uint8Array[] = [first.data];
      while (c.out.length > 0) {
        const r = c.out.shift()!;
        parts.push(r.data);
        if (!this.#took(c, r)) break;
      }
      data = Buffer.concat(parts);
    }
    c.sending = true;
    this.#stats.sent(data.length);
    this.proactor.send(c.fd, data, 0, data.length, c.onSent);
  }

  /** Accounts for a reply leaving the queue for the send being built: whether more may join it. */
  #took(c: Conn, r: Reply): boolean {
    c.queued -= r.data.length;
    c.file = r.file;
    if (r.close) c.closeAfter = true;
    return r.file === undefined && r.close !== true;
  }

  readonly #onSent = (c: Conn, res: number): void => {
    const file = c.file;
    c.file = undefined;
    if (c.closed || res < 0) {
      if (file) native.close(file.fd);
      if (!c.closed) this.#close(c);
      return;
    }
    if (file) return this.#sendFile(c, file);
    c.sending = false;
    this.#flush(c);
  };

  #sendFile(c: Conn, file: NonNullable<Reply['file']>): void {
    const chunk = Buffer.allocUnsafe(Math.min(FILE_CHUNK, Math.max(1, file.length)));
    let done = 0;
    const finish = (ok: boolean) => {
      native.close(file.fd);
      if (!ok) return this.#close(c);
      c.sending = false;
      this.#flush(c);
    };
    const next = (): void => {
      if (c.closed) return finish(false);
      if (done >= file.length) return finish(true);
      const len = Math.min(chunk.length, file.length - done);
      this.proactor.read(file.fd, chunk, file.offset + done, len, (n) => {
        if (n <= 0 || c.closed) return finish(false);
        this.proactor.send(c.fd, chunk, 0, n, (sent) => {
          if (sent < 0) return finish(false);
          done += sent;
          this.#stats.sent(sent);
          next();
        });
      });
    };
    next();
  }

  #close(c: Conn): void {
    if (c.closed) return;
    c.closed = true;
    this.#conns.delete(c);
    for (const r of c.out) if (r.file) native.close(r.file.fd);
    c.out.length = 0;
    // shutdown first: the recv still in flight on this fd completes (with 0) instead of
    // waiting for a client that may never send again.
    native.shutdown(c.fd, 2);
    native.close(c.fd);
    this.#stats.closed();
  }

  #stop(): void {
    this.#stopping = true;
    for (const c of [...this.#conns]) this.#close(c);
    this.proactor.stop();
  }
}
