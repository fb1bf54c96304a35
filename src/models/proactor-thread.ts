/**
 * A proactor thread: one Proactor (an io_uring ring) in run() mode. The kernel accepts
 * (multishot accept where it has it: one submission, a completion per connection), receives
 * and sends; this thread only reacts to completions, dispatched by user data to the
 * callback of the operation that finished. Nothing waits for readiness: each connection
 * keeps one multishot recv armed (6.0; its data lands in buffers the ring shares between all
 * connections, so an idle connection holds none), cancelled while the connection's core
 * has paused reading and armed again when it resumes, and one send at a time: the replies
 * to one read's requests (the core corks around them) and those that arrive while a send is
 * in flight are gathered into one buffer and leave in the next send, so a pipelined client
 * costs one send per batch, not per reply (counted in stats as `sends`). maxQueue counts what
 * the kernel refuses, as for a reactor's write: a batch larger than it is first offered with a
 * non-blocking write(2) and only the rest is judged and sent by the ring (#offer); bytes behind
 * a send in flight are judged when the socket has no room. The per-connection policy —
 * order, limits, close rules — is the ConnCore every model shares (conn-core.ts); a recv hands
 * the core at most READ_TURN bytes a turn of the loop, so one client cannot hold the thread. File
 * bodies are read by the ring too, chunk by chunk, and sent as they come: the `uring`
 * transfer path, proactor-style.
 *
 * The `multi-proactor` model runs the same thread in two more roles. Its main ring
 * (`subRings` set) accepts into its registered file table and moves each connection's file
 * into a sub-ring's table with IORING_OP_MSG_RING (IORING_MSG_SEND_FD, 6.0): no syscall and
 * no channel between them. A sub-ring (`sub` set) accepts nothing: each file that arrives
 * in its inbox becomes an fd again (IORING_OP_FIXED_FD_INSTALL, 6.8) and is served as here.
 */
import { queueFullError } from '../loop/connection.js';
import { Proactor, type CompletionCallback, type ProactorOptions } from '../loop/proactor.js';
import { COPY_MAX, Tail, writeParts } from '../loop/write-batch.js';
import { EMPTY } from '../loop/proactor-req.js';
import { createProtocol } from '../protocols/index.js';
import { copyOf } from '../protocols/bytes.js';
import type { Protocol, ProtocolKind, ProtocolOptions, Reply } from '../protocols/protocol.js';
import { ECANCELED } from '../sys/errno.js';
import { constants } from '../sys/constants.js';
import { native } from '../sys/native.js';
import { ownFd } from '../sys/fd-owner.js';
import { errnoError } from '../sys/errors.js';
import { getrlimit } from '../sys/process.js';
import { ringProbe } from '../sys/uring.js';
import { AcceptBackoff } from './accept-backoff.js';
import { asyncWork, ConnCore, connError, LINGER_MS, sweepEvery, type ConnIO, type ConnLimits } from './conn-core.js';
import { inputWaiting } from './conn-contract.js';
import { Channel, type ChannelInit, type Message } from './channel.js';
import { MSG, readNewFd } from './messages.js';
import { PROACTOR_RING_ENTRIES } from './serve-options.js';
import { REFUSED_CONN, Stats } from './stats.js';
import type { RingSetup } from './types.js';

export interface ProactorThreadData {
  role: 'proactor';
  index: number;
  listenFd: number;
  /**
   * An eventfd: its counter read odd means stop; even (EVENTFD_TWO added) means drain (a
   * graceful close: accept no more, close each connection once it has answered what it read).
   */
  stopFd: number;
  protocol: ProtocolKind;
  protocolOptions: ProtocolOptions;
  maxQueue: number;
  /** Reply data of at least this many bytes is sent with IORING_OP_SEND_ZC; 0: never. */
  zerocopyThreshold: number;
  limits: ConnLimits;
  stats: ReturnType<Stats['share']>;
  cpus?: number[];
  /**
   * Other rings accept on `listenFd` too (`proactor` with more than one worker): accept one
   * connection per submission and re-arm, never multishot (see #accept).
   */
  sharedAccept?: boolean;
  /** A sub-ring: connections come from the main ring's MSG_RING, not from `listenFd`. */
  sub?: boolean;
  /** The main ring: hand each connection round-robin to these sub-rings. */
  subRings?: SubRing[];
  /** How the ring is set up (ServeOptions.ring). */
  ring?: RingSetup;
  /**
   * Where the caller puts the connections a drain took from the listen queue (NEW_FD
   * messages), read once this thread drains; none on the main ring of multi-proactor.
   */
  handoff?: ChannelInit;
}

/** Where a main ring sends connections: a sub-ring's fd and its inbox token. */
export interface SubRing {
  ringFd: number;
  token: number;
}

/** The ready message of a proactor thread; a sub-ring's says where to send connections. */
export interface ProactorHello {
  ready: true;
  subRing?: SubRing;
}

/** Reads the SubRing out of a sub-ring thread's ready message. */
export function readSubRing(m: unknown): SubRing {
  const s = (m as Partial<ProactorHello> | null)?.subRing;
  if (typeof s?.ringFd !== 'number' || typeof s.token !== 'number') throw new Error('sub-ring sent no ring');
  return s;
}

/**
 * Slots of the registered file table of a main or sub ring: connections in transit only.
 * The kernel refuses a table larger than RLIMIT_NOFILE (EMFILE).
 */
const fileSlots = (): number => Math.max(1, Math.min(4096, getrlimit(constants.RLIMIT_NOFILE!).soft));

const FILE_CHUNK = 128 << 10;
/**
 * What one connection's recv may hand its core in one turn of the thread (one
 * io_uring_enter and the completions it reaps), as a reactor reads one 64 KiB buffer per
 * readiness: a client that keeps its socket full would otherwise have every chunk the
 * kernel received for it (up to the whole buffer ring) handled before another connection's
 * completion behind them. The chunks past it are copied and held, the recv cancelled, and
 * the held bytes handed over one share a turn (after a zero timeout, whose completion comes
 * behind the others' already reaped), then the recv armed again.
 */
const READ_TURN = 64 << 10;
const POLLOUT = constants.POLLOUT as number;

/** One connection: a ConnIO over ring sends and a multishot recv, driving its ConnCore. */
class RingConn implements ConnIO {
  readonly core: ConnCore;
  /** What Stats.admit gave this connection, given back when it closes. */
  ticket = 0;
  /** Replies for the next send: #out[0, #outN), slots reused (no truncation per send). */
  #out: Uint8Array[] = [];
  #outN = 0;
  /**
   * Where small writes that wait for the next send are gathered (write-batch.ts): a streamed
   * body of tiny chunks behind a send the client does not take would otherwise hold a buffer
   * object per chunk, many times the bytes maxOutput counts. Dropped when #out is sent.
   */
  readonly #tail = new Tail();
  #outBytes = 0;
  /** Bytes of the send in flight. */
  #sending = 0;
  /** The send in flight's request (what the kernel has not taken of it: Proactor.untaken). */
  #sendId = -1;
  /**
   * The send in flight is a SEND_ZC: until its last notification the socket's send queue
   * holds our buffer's pages, so a cut of the connection resets it (ProactorThread.closed).
   */
  zerocopyInFlight = false;
  #recvId = -1;
  #paused = false;
  /** The armed recv was cancelled (reading paused); its last completion is still to come. */
  #cancelled = false;
  #ending = false;
  /** The client has finished sending (a recv said 0): an end needs no linger. */
  #eof = false;
  /** Ended and shut down for writing: discarding what the client sends until it closes (#linger). */
  #lingering = false;
  #lingerTimer = -1;
  /** The thread's turn in which #turnBytes were handed to the core. */
  #turn = -1;
  #turnBytes = 0;
  /** Chunks received past this turn's share (READ_TURN), copied, oldest first; and whether the end of stream came behind them. */
  #held: Uint8Array[] = [];
  #heldEnd = false;
  #holding = false;
  /** Writes are held for one send until uncork() (the core, around a read's replies). */
  #corked = false;
  #waiters: { bytes: number; resolve: () => void; reject: (e: Error) => void }[] = [];
  progress = 0;
  closed = false;

  constructor(
    readonly fd: number,
    readonly thread: ProactorThread,
    protocol: Protocol,
    stats: Stats,
    limits: ConnLimits,
  ) {
    this.core = new ConnCore(this, protocol, stats, limits);
    this.#arm();
  }

  get queued(): number {
    return this.#outBytes + this.#sending;
  }

  #proactor(): ThreadProactor {
    return this.thread.proactor;
  }

  #arm(): void {
    this.#recvId = this.#proactor().recvMultishot(this.fd, this.#onRecv);
  }

  get lingering(): boolean {
    return this.#lingering;
  }

  get readPending(): boolean {
    return this.#holding || this.#cancelled;
  }

  /**
   * Whether the kernel holds bytes (or the EOF) of this connection that no recv has taken
   * yet: one adopted as the drain begins, whose recv is not under way yet (a connection the
   * drain took from the listen queue, or one accepted just then), or one whose recv is short
   * of buffers. A draining core reads them as a request begun (ConnIO.inputWaiting).
   * Otherwise the recv in flight may have taken bytes already, its completion not reaped yet
   * (it came in the same batch as the drain's): it is cancelled, so that what it took
   * arrives before the core decides (readPending until then, #readSettled after).
   */
  inputWaiting(): boolean {
    if (inputWaiting(this.fd)) return true;
    this.#cancelRecv();
    return false;
  }

  /** Nothing read waits for the core any more: a draining core may end now (ConnCore.drain). */
  #readSettled(): void {
    if (this.core.draining && !this.closed) this.core.writable();
  }

  readonly #onRecv = (n: number, data: Uint8Array): void => {
    if (this.closed) return;
    if (this.#lingering) return this.#discard(n);
    if (n > 0) {
      // The codec copies what it keeps: data is lent.
      if (!this.#holding && this.#share(n)) return this.core.push(data);
      return this.#hold(data);
    }
    this.#recvId = -1;
    // A cancelled recv may also end with what stopped it first (ENOBUFS, EAGAIN).
    if (n === -ECANCELED || (n < 0 && this.#cancelled)) {
      this.#cancelled = false;
      if (!this.#paused && !this.#holding) this.#arm(); // resumed while the cancel was in flight
      this.#readSettled();
    } else if (n === 0) {
      this.#eof = true;
      if (this.#holding) this.#heldEnd = true;
      else this.core.end();
    } else {
      this.destroy();
    }
  };

  /** Whether `n` more bytes fit this turn's share (READ_TURN); counts them if so. */
  #share(n: number): boolean {
    const turn = this.#proactor().turn;
    if (turn !== this.#turn) {
      this.#turn = turn;
      this.#turnBytes = 0;
    }
    if (this.#turnBytes >= READ_TURN) return false;
    this.#turnBytes += n;
    return true;
  }

  /** Keeps a chunk past this turn's share for a later turn, and stops receiving meanwhile. */
  #hold(data: Uint8Array): void {
    this.#held.push(copyOf(data)); // without provided buffers, data is a Buffer view of the recv's own buffer
    if (this.#holding) return;
    this.#holding = true;
    this.#cancelRecv();
    this.#proactor().timeout(0, this.#release);
  }

  /** A later turn: hands the core a share of what was held; the recv is armed again once all has gone. */
  readonly #release = (): void => {
    if (this.closed || this.#lingering) return;
    const held = this.#held;
    let i = 0;
    while (i < held.length && !this.closed && this.#share(held[i]!.length)) this.core.push(held[i++]!);
    held.splice(0, i);
    if (this.closed) return;
    if (held.length > 0) return void this.#proactor().timeout(0, this.#release);
    this.#holding = false;
    if (this.#heldEnd) return this.core.end();
    this.#readSettled();
    if (!this.#paused && this.#recvId < 0) this.#arm();
  };

  write(data: Uint8Array): void {
    if (this.closed || this.#ending || data.length === 0) return;
    // A small write behind a send in flight waits for the client: it is gathered. Any other
    // is kept as written: sent now (by reference), or gathered with the rest of a cork's
    // batch when it is sent (#kick), or large.
    if (data.length <= COPY_MAX && this.#sending > 0) {
      this.#outN = this.#tail.add(this.#out, 0, this.#outN, data, this.#outBytes);
    } else this.#out[this.#outN++] = data;
    this.#outBytes += data.length;
    if (this.#sending === 0) return this.#kick();
    // Behind a send in flight these bytes cannot be offered to the kernel yet. Together with
    // what the send in flight still holds (the bytes of it the kernel has not taken) they are
    // what a reactor's queue would hold, and count against maxQueue as that does once the
    // kernel refuses: when the socket has no room (the send in flight waits for it too);
    // otherwise #kick judges them after it.
    if (this.#unsent() > this.thread.maxQueue && !this.thread.writable(this.fd)) this.#queueFull();
  }

  /** Bytes written and not yet taken by the kernel: those queued, and the rest of the send in flight. */
  #unsent(): number {
    return this.#outBytes + (this.#sending > 0 ? this.#proactor().untaken(this.#sendId) : 0);
  }

  #queueFull(): void {
    this.destroy(queueFullError(this.thread.maxQueue));
  }

  cork(): void {
    this.#corked = true;
  }

  uncork(): void {
    this.#corked = false;
    this.#kick();
  }

  /** Starts the next send: everything queued, gathered into one buffer. */
  #kick(): void {
    if (this.#sending > 0 || this.#corked || this.closed) return;
    const n = this.#outN;
    if (n === 0) {
      if (this.#ending) this.#linger();
      return;
    }
    const out = this.#out;
    const bytes = this.#outBytes;
    // A batch past maxQueue is offered to the kernel first (#offer); any other is one ring send.
    const over = bytes > this.thread.maxQueue ? out.slice(0, n) : undefined;
    let data = over ? EMPTY : n === 1 ? out[0]! : Buffer.concat(out.slice(0, n), bytes);
    // The gathered copy is the thread's own, lent to no code until the send is done: not
    // pinned (pin.ts), nor is a tail of small writes. A single write goes as written, maybe a
    // handler's buffer: pinned.
    const own = !over && (n > 1 || this.#tail.holds(data));
    // The tail's bytes are the send's now: later small writes start a fresh one.
    this.#tail.drop();
    // Held by the send now; a long batch's slots are dropped.
    if (n === 1) out[0] = EMPTY;
    else if (n > 64) this.#out = [];
    else out.fill(EMPTY, 0, n);
    this.#outN = 0;
    this.#outBytes = 0;
    this.thread.stats.send();
    if (over) {
      const rest = this.#offer(over, bytes);
      if (rest === undefined) return; // dropped, or the kernel took it all
      data = rest;
    }
    this.#sending = data.length;
    const threshold = this.thread.zerocopyThreshold;
    const zc = threshold > 0 && data.length >= threshold;
    this.zerocopyInFlight = zc;
    const p = this.#proactor();
    if (own) this.#sendId = p.sendOwn(this.fd, data, 0, data.length, zc ? this.#onSentZc : this.#onSent, zc);
    else if (zc) this.#sendId = p.sendZc(this.fd, data, 0, data.length, this.#onSentZc);
    else this.#sendId = p.send(this.fd, data, 0, data.length, this.#onSent);
  }

  /**
   * A batch larger than maxQueue: the kernel sees it first, as a reactor connection's write
   * does — a non-blocking write(v) of what it takes now — and only the rest, the bytes it
   * refused, is judged against maxQueue (past it the connection is dropped) and left to the
   * ring. Returns that rest, or undefined when nothing is left to send or the connection was
   * dropped. Small batches never come here: their one ring send costs no extra syscall.
   */
  #offer(parts: Uint8Array[], bytes: number): Uint8Array | undefined {
    const taken = writeParts(this.fd, parts);
    if (taken < 0) {
      this.destroy();
      return undefined;
    }
    this.progress += taken;
    const rest = bytes - taken;
    if (rest > this.thread.maxQueue) {
      this.#queueFull();
      return undefined;
    }
    if (rest === 0) {
      // Gone at once: nothing is in flight (the core looks at its budgets after each write).
      this.#wake();
      return undefined;
    }
    let i = 0;
    let left = taken;
    while (left >= parts[i]!.length) left -= parts[i++]!.length;
    return i === parts.length - 1
      ? parts[i]!.subarray(left)
      : Buffer.concat([parts[i]!.subarray(left), ...parts.slice(i + 1)], rest);
  }

  /** A SEND_ZC's callback, after its last notification: the kernel is done with the data. */
  readonly #onSentZc = (res: number): void => {
    this.thread.countZerocopy();
    this.#onSent(res);
  };

  readonly #onSent = (res: number): void => {
    this.#sending = 0;
    this.#sendId = -1;
    this.zerocopyInFlight = false;
    if (this.closed) return;
    if (res < 0) return this.destroy();
    this.progress += res;
    this.#wake();
    this.#kick();
    if (!this.closed) this.core.writable();
  };

  #wake(): void {
    if (this.#waiters.length === 0) return; // the common case: no allocation per send
    const q = this.queued;
    const ready = this.#waiters.filter((w) => q <= w.bytes);
    if (ready.length === 0) return;
    this.#waiters = this.#waiters.filter((w) => q > w.bytes);
    for (const w of ready) w.resolve();
  }

  drain(bytes: number): Promise<void> {
    if (this.closed) return Promise.reject(new Error('connection closed'));
    if (this.queued <= bytes) return Promise.resolve();
    return new Promise((resolve, reject) => this.#waiters.push({ bytes, resolve, reject }));
  }

  /** Reads the file with the ring, chunk by chunk, sending each as it comes. */
  async sendFile(file: NonNullable<Reply['file']>): Promise<number> {
    await this.drain(0);
    // Only the ring reads into it and sends from it: not pinned (pin.ts).
    const chunk = Buffer.allocUnsafe(Math.min(FILE_CHUNK, Math.max(1, file.length)));
    const p = this.#proactor();
    let done = 0;
    while (done < file.length && !this.closed) {
      const len = Math.min(chunk.length, file.length - done);
      const n = await new Promise<number>((r) => p.readOwn(file.fd, chunk, 0, len, file.offset + done, r));
      if (n <= 0 || this.closed) break; // 0: the file ended early
      this.thread.stats.send();
      const sent = await new Promise<number>((r) => p.sendOwn(this.fd, chunk, 0, n, r, false));
      if (sent < 0) {
        // The errno (ECONNRESET: the client left) is the cause: the core tells a peer gone from a short file by it.
        const cause = errnoError(sent, 'send');
        throw Object.assign(connError('ERR_RAWIO_SEND', `send failed: ${cause.code}`), { cause });
      }
      done += sent;
      this.progress += sent;
    }
    return done;
  }

  pause(): void {
    if (this.#lingering) return; // the recv discards until the client closes
    this.#paused = true;
    this.#cancelRecv();
  }

  #cancelRecv(): void {
    if (this.#recvId < 0 || this.#cancelled) return;
    this.#cancelled = true;
    this.#proactor().cancel(this.#recvId);
  }

  resume(): void {
    this.#paused = false;
    // Held chunks go first: the recv is armed again once they have (#release).
    if (this.#recvId < 0 && !this.closed && !this.#holding) this.#arm();
  }

  end(): void {
    this.#ending = true;
    if (this.#sending === 0 && this.#outN === 0) this.#linger();
  }

  /**
   * Every reply has been taken by the kernel: a lingering close (LINGER_MS, conn-contract.ts)
   * unless the client has finished sending. The write side is shut down, so the client sees
   * the reply and EOF; the recv stays armed (armed again if reading was paused) and what it
   * receives is discarded, never handed to the core, until the client's EOF, an error or the
   * bound; only then is the fd closed, with no unread bytes to make the kernel send a reset.
   */
  #linger(): void {
    if (this.closed || this.#lingering) return;
    if (this.#eof || this.#heldEnd) return this.destroy();
    this.#lingering = true;
    native.shutdown(this.fd, 1);
    this.#held = [];
    this.#holding = false;
    this.#paused = false;
    // A recv being cancelled is armed again by its last completion (#discard).
    if (this.#recvId < 0) this.#arm();
    this.#lingerTimer = this.#proactor().timeout(LINGER_MS, (res) => {
      this.#lingerTimer = -1;
      if (res !== -ECANCELED) this.destroy();
    });
  }

  /** A recv's completion while lingering: data is dropped; the end of the stream or an error closes. */
  #discard(n: number): void {
    if (n > 0) return;
    this.#recvId = -1;
    if (n === -ECANCELED || (n < 0 && this.#cancelled)) {
      this.#cancelled = false;
      return this.#arm();
    }
    this.destroy();
  }

  /** Closes now (`error`, such as ERR_RAWIO_QUEUE_FULL, says why; nothing reports it). */
  destroy(_error?: Error): void {
    if (this.closed) return;
    this.closed = true;
    if (this.#lingerTimer >= 0) this.#proactor().cancel(this.#lingerTimer);
    this.#held = [];
    this.#tail.drop();
    const waiters = this.#waiters;
    this.#waiters = [];
    for (const w of waiters) w.reject(new Error('connection closed'));
    this.thread.closed(this);
  }
}

/**
 * The thread's Proactor: publishes the Stats it holds (Stats.deferred) before each submit,
 * and sends and reads the thread's own buffers (gathered replies, file chunks, the stop
 * eventfd's counter) without pinning them.
 */
class ThreadProactor extends Proactor {
  constructor(
    opts: ProactorOptions,
    private readonly counts: Stats,
  ) {
    super(opts);
    this.ownNewFds(); // its connections are this thread's from their accept's completion on
  }
  /** Counts the turns of the thread's loop (a submit and the completions reaped after it): see READ_TURN. */
  turn = 0;
  protected override beforeSubmit(): void {
    this.turn++;
    this.counts.flush();
  }
  override sendOwn(fd: number, buf: Uint8Array, off: number, len: number, cb: CompletionCallback, zerocopy: boolean): number {
    return super.sendOwn(fd, buf, off, len, cb, zerocopy);
  } // prettier-ignore
  override readOwn(fd: number, buf: Uint8Array, off: number, len: number, pos: number, cb: CompletionCallback): number {
    return super.readOwn(fd, buf, off, len, pos, cb);
  } // prettier-ignore
}

/** Room for this many connections taken from the listen queue on each ring's hand-off (64 bytes each). */
const HANDOFF_CONNS = 4096;

/** A ring thread's hand-off channel (ProactorThreadData.handoff), read by the ring without waiting. */
export function ringHandoff(): Channel {
  return new Channel(Channel.create(HANDOFF_CONNS * 64));
}

export class ProactorThread {
  readonly proactor: ThreadProactor;
  readonly #data: ProactorThreadData;
  #zcCounted = { sends: 0, copied: 0 };
  readonly #zcThreshold: number;
  readonly #protocol: Protocol;
  readonly #stats: Stats;
  readonly #conns = new Set<RingConn>();
  readonly #stopBuf = new Uint8Array(8);
  #pollSet: InstanceType<typeof native.PollSet> | undefined;
  readonly #pollOut = new Int32Array(2);
  /** The reserve fd and EMFILE pacing of the accepts. */
  readonly #backoff: AcceptBackoff;
  #stopping = false;
  /**
   * The ring is being closed (run()'s end): the callbacks still pending run with -ECANCELED,
   * and a slot of its file table goes with the ring, so none is emptied by hand then.
   */
  #ringClosing = false;
  /** drain() was called: no more accepts, every connection closes once answered. */
  #draining = false;
  /** A sub-ring's inbox token; -1 elsewhere. */
  readonly #token: number = -1;
  #next = 0;

  /** `protocol`: serve this one instead of creating `data.protocol` (embedding, tests). */
  constructor(data: ProactorThreadData, protocol?: Protocol) {
    this.#data = data;
    // The protocol first: user code may throw in it, and the thread then holds no fd yet.
    this.#protocol = protocol ?? createProtocol(data.protocol, data.protocolOptions);
    this.#backoff = new AcceptBackoff();
    if (data.cpus) native.setAffinity(data.cpus);
    const r = data.ring ?? {};
    this.#stats = Stats.attach(data.stats).deferred();
    const opts: ProactorOptions = {
      entries: PROACTOR_RING_ENTRIES,
      cqEntries: r.cqEntries,
      submitAll: r.submitAll,
      registerRingFd: r.registerRingFd,
      recvBuffers: { bundle: r.recvBundle, incremental: r.incrementalBuffers },
    };
    this.proactor = new ThreadProactor(opts, this.#stats);
    const sendZc = ringProbe().opcodes.includes('SEND_ZC');
    this.#zcThreshold = data.zerocopyThreshold > 0 && sendZc ? data.zerocopyThreshold : 0;
    if (data.sub === true || data.subRings !== undefined) this.proactor.registerFileSlots(fileSlots());
    if (data.sub === true) this.#token = this.proactor.inbox((slot) => this.#adoptSlot(slot));
  }

  /** What the thread's ready message carries. */
  hello(): ProactorHello {
    if (this.#token < 0) return { ready: true };
    return { ready: true, subRing: { ringFd: this.proactor.ring.fd, token: this.#token } };
  }

  get stats(): Stats {
    return this.#stats;
  }

  get maxQueue(): number {
    return this.#data.maxQueue;
  }

  /**
   * Whether the kernel has room for more bytes of `fd` now (poll(2), no wait): asked only
   * when a connection's bytes behind a send in flight pass maxQueue, never per reply.
   */
  writable(fd: number): boolean {
    const set = (this.#pollSet ??= new native.PollSet());
    if (set.add(fd, POLLOUT) < 0) return false;
    const n = set.wait(this.#pollOut, 0);
    set.remove(fd);
    return n > 0 && (this.#pollOut[1]! & POLLOUT) !== 0;
  }

  /** The data's threshold, or 0 (plain sends) on a kernel without IORING_OP_SEND_ZC (before 6.0). */
  get zerocopyThreshold(): number {
    return this.#zcThreshold;
  }

  /** Adds the zero-copy notifications since the last call to the stats. */
  countZerocopy(): void {
    const { sends, copied } = this.proactor.zerocopy;
    this.#stats.zerocopy(sends - this.#zcCounted.sends, copied - this.#zcCounted.copied);
    this.#zcCounted = { sends, copied };
  }

  async run(): Promise<void> {
    const p = this.proactor;
    // While replies are awaited, complete a timeout every ms so that libuv turns (see asyncWork).
    let ticking = false;
    const tick = (): void => {
      ticking = asyncWork.count > 0 && !this.#stopping;
      if (ticking) p.timeout(1, tick);
    };
    asyncWork.onChange = (busy) => {
      if (busy && !ticking) tick();
    };
    this.#readStop();
    if (this.#data.subRings !== undefined) this.#acceptDirect(this.#data.subRings);
    else if (this.#data.sub !== true) this.#accept();
    this.#sweep();
    try {
      await p.run();
    } finally {
      try {
        for (const c of [...this.#conns]) c.destroy();
        this.#ringClosing = true;
        p.close();
      } finally {
        // Also after a callback threw in close(): the counts, the reserve fd and the
        // protocol (a user module's close()) are not left behind.
        this.#stats.flush(); // what the last batch counted
        this.#backoff.close();
        this.#protocol.close();
      }
    }
  }

  /** Reads the stop eventfd: an odd count (or a failed read) stops the thread, an even one drains it. */
  #readStop(): void {
    this.proactor.readOwn(this.#data.stopFd, this.#stopBuf, 0, 8, -1, (res: number) => {
      const count = new DataView(this.#stopBuf.buffer, this.#stopBuf.byteOffset, 8).getBigUint64(0, true);
      if (res !== 8 || (count & 1n) === 1n) return this.#stop();
      this.#drain();
      this.#readStop();
    });
  }

  /** A graceful close: accept no more (the caller shut the listening socket down), drain each connection. */
  #drain(): void {
    if (this.#draining || this.#stopping) return;
    this.#draining = true;
    for (const c of [...this.#conns]) c.core.drain();
    // The connections the caller took from the listen queue before shutting it down (it put
    // them here before it told this thread to drain): served as ones accepted before the
    // drain, so drained as they come (#adopt).
    if (this.#data.handoff === undefined) return;
    const handoff = new Channel(this.#data.handoff);
    const m = {} as Message;
    while (handoff.pop(m)) {
      if (m.tag !== MSG.NEW_FD) continue;
      this.#adopt(readNewFd(m));
      this.#stats.handed();
    }
  }

  /**
   * The header and idle timeouts: one ring timeout a thread, re-armed each time. The
   * connections are judged once the batch the timeout came in has been dispatched (a
   * microtask runs after it), so that a receive completed in the same batch — bytes that
   * arrived while this thread was kept from running — is credited first: the clocks measure
   * the client's slowness, not this thread's, as the reactor's do (events before timers).
   */
  #sweep(): void {
    if (this.#stopping) return;
    this.proactor.timeout(sweepEvery(this.#data.limits), () => {
      queueMicrotask(() => {
        const now = performance.now();
        for (const c of this.#conns) c.core.expire(now);
      });
      this.#sweep();
    });
  }

  /**
   * Accepts on the listening socket. Alone on it, one multishot accept serves every
   * connection. Shared with other rings, each ring accepts one connection per submission and
   * re-arms after it: an armed accept waits on the socket as an exclusive waiter, and the
   * kernel wakes the first in its queue, so a multishot accept, never leaving the queue,
   * would take every connection for the first ring armed (sequential connects all landed on
   * one ring, and a ring stalled in a handler went on being dealt new clients while the
   * others idled). One-shot, a ring leaves the queue as it is woken and rejoins at its end
   * when it has taken the connection: connections go round the rings that are waiting, and
   * not to one that is busy until it asks again.
   */
  #accept(): void {
    // A re-arm after a pause runs when its timeout completes, also cancelled by close().
    if (this.#stopping || this.#draining) return;
    const multishot = this.#data.sharedAccept !== true;
    this.proactor.accept(
      this.#data.listenFd,
      (fd) => {
        if (fd < 0) {
          // The listening socket failed (EMFILE …) and the accept ended: re-arm after a pause
          // unless stopping (a ring timeout: run() never turns Node's loop, so no setTimeout).
          // (One connection's failure, ECONNABORTED …, pauses for nothing: re-armed at once.)
          const pause = this.#backoff.failed(this.#data.listenFd, fd);
          if (this.#stopping || this.#draining) return;
          if (pause === 0) this.#accept();
          else this.proactor.timeout(pause, () => this.#accept());
          return;
        }
        this.#backoff.accepted();
        if (!multishot) this.#accept();
        this.#adopt(fd);
      },
      { multishot },
    );
  }

  /** Serves a connection's fd: from our own accept, or installed from a sub-ring's inbox. */
  #adopt(fd: number): void {
    if (this.#stopping) return void native.close(fd);
    // Past maxConnections (or maxConnectionsPerClient): closed at once, unread (the client
    // sees EOF), and accepting goes on.
    const ticket = this.#stats.admit(this.#data.index, fd);
    if (ticket === REFUSED_CONN) return void native.close(fd);
    ownFd(fd); // closed by closed(), or by the addon if this thread ends first (src/sys/fd-owner.ts)
    native.setNoDelay(fd, true); // replies written in pieces must not wait for a delayed ACK
    const conn = new RingConn(fd, this, this.#protocol, this.#stats, this.#data.limits);
    conn.ticket = ticket;
    this.#conns.add(conn);
    // Accepted as the drain began, or taken from the listen queue by it: drained at once (what
    // the client sent is read as a request begun; one that sent nothing is closed).
    if (this.#draining) conn.core.drain();
  }

  /** The main ring: accept into file slots, and move each to the next sub-ring. */
  #acceptDirect(subs: SubRing[]): void {
    if (this.#stopping || this.#draining) return; // as in #accept
    const p = this.proactor;
    p.acceptDirect(this.#data.listenFd, (slot) => {
      if (slot < 0) {
        // ENFILE (a full file table), or the listening socket failed: as #accept does
        const pause = this.#backoff.failed(this.#data.listenFd, slot);
        if (this.#stopping || this.#draining) return;
        if (pause === 0) this.#acceptDirect(subs);
        else p.timeout(pause, () => this.#acceptDirect(subs));
        return;
      }
      this.#backoff.accepted();
      if (this.#stopping) return void this.#closeSlot(slot);
      const sub = subs[this.#next++ % subs.length]!;
      // Handed over until the sub-ring has it (a drain waits for it: Stats.handing). While a
      // drain goes on this ring stays (it stops only with close()), so a send to a sub-ring
      // busy in user code completes when that ring comes back, rather than being cancelled.
      this.#stats.handing(1);
      // Sent or not (a sub-ring gone, its table full, the send cancelled by close), our slot
      // is emptied: on failure that drops the connection, whose file had no other holder.
      p.sendFd(sub.ringFd, slot, sub.token, (res) => {
        if (res < 0) this.#stats.handing(-1);
        this.#closeSlot(slot);
      });
    });
  }

  /** Empties `slot` of the ring's file table, unless the ring is closing (which frees every slot). */
  #closeSlot(slot: number): void {
    if (!this.#ringClosing) this.proactor.closeSlot(slot);
  }

  /** A sub-ring: a connection's file arrived in `slot` (or -ECANCELED at close). */
  #adoptSlot(slot: number): void {
    if (slot < 0) return;
    const p = this.proactor;
    p.installFd(slot, (fd) => {
      this.#closeSlot(slot); // the fd holds the file now (or, on EMFILE, nothing does: dropped)
      if (fd >= 0) this.#adopt(fd);
      this.#stats.handed(); // the main ring's send (#acceptDirect)
    });
  }

  /** A connection has closed (RingConn.destroy): release its fd and what its core holds. */
  closed(c: RingConn): void {
    this.#conns.delete(c);
    c.core.closed();
    // A SEND_ZC whose notification is still to come: its bytes wait in the socket's send
    // queue, maybe for a client that never reads (a zero window). A plain close would orphan
    // the socket with that queue, which the kernel keeps for minutes, and the ring's close
    // waits for every notification (until then the kernel reads the buffer): close() would
    // hang. SO_LINGER 0 makes the close a reset, which frees the queue at once, and the
    // notification comes. Such a connection is being cut anyway: its reply is not complete.
    if (c.zerocopyInFlight) native.setLingerZero(c.fd);
    // shutdown first: the recv still in flight on this fd completes (with 0) instead of
    // waiting for a client that may never send again.
    native.shutdown(c.fd, 2);
    native.close(c.fd);
    this.#stats.closed(c.ticket);
  }

  #stop(): void {
    this.#stopping = true;
    for (const c of [...this.#conns]) c.destroy();
    this.proactor.stop();
  }
}
