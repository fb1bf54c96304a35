/**
 * A reactor thread: one Reactor in run() mode (it owns the thread and blocks in its
 * poller), serving connections with Sessions. It gets connections by accepting on a
 * listening fd (the single and worker-pool models) or from its inbox, where a main reactor
 * deals accepted fds (the multi-reactor models); the inbox's eventfd sits in the reactor's
 * own poller, as memcached's and Netty's sub-reactors are woken. With a pool, framed
 * requests go to the pool's channels and replies come back through the same inbox.
 */
import { Connection } from '../loop/connection.js';
import { Reactor } from '../loop/reactor.js';
import { createProtocol } from '../protocols/index.js';
import { copyOf } from '../protocols/bytes.js';
import type { Protocol, ProtocolKind, ProtocolOptions, Reply } from '../protocols/protocol.js';
import { constants } from '../sys/constants.js';
import { EAGAIN } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { ownFd } from '../sys/fd-owner.js';
import { Channel, type ChannelInit, type Message } from './channel.js';
import { CHUNK, MSG, readBody, readNewFd, readReply, writeRequest } from './messages.js';
import { BodyFeed } from './body-feed.js';
import type { PollerName } from './poller-name.js';
import { Session } from './session.js';
import { asyncWork, discardReply, LINGER_MS, sweepEvery, type ConnLimits } from './conn-core.js';
import { closeMmapCache, closePipePool } from '../transfer/index.js';
import { endTransferRing, setTransferRing } from '../transfer/uring.js';
import { Ring } from '../sys/ring.js';
import { TransferRing } from '../sys/ring-native.js';
import { REFUSED_CONN, Stats, type ConnectionGate } from './stats.js';
import type { ClientGate } from './client-table.js';
import { AcceptBackoff } from './accept-backoff.js';
import { takeQueued } from './drain.js';
import type { MmapTransferOptions } from '../transfer/mmap-options.js';

const EPOLLIN = constants.EPOLLIN as number;
const EPOLLEXCLUSIVE = constants.EPOLLEXCLUSIVE as number;

export interface ReactorThreadData {
  role: 'reactor';
  /** This reactor's index: its slot in the accept counts and in the pool's reply routing. */
  index: number;
  /** A listening fd to accept on, or -1 when connections arrive through the inbox. */
  listenFd: number;
  inbox: ChannelInit;
  /** The request channels of the handler pool; empty: handle requests on this thread. */
  pool: ChannelInit[];
  /** The pool threads' body credit slots (body-feed.ts), by pool index. */
  poolCredits?: SharedArrayBuffer[];
  protocol: ProtocolKind;
  protocolOptions: ProtocolOptions;
  backend: PollerName;
  transfer: string;
  directio: number;
  /** The `mmap` transfer's options (MAP_POPULATE, madvise, reused mappings). */
  mmap: MmapTransferOptions;
  maxQueue: number;
  /** Reply data of at least this many bytes is sent with MSG_ZEROCOPY; 0 or absent: never. */
  zerocopyThreshold?: number;
  /** The per-connection limits (conn-core.ts). */
  limits: ConnLimits;
  stats: ReturnType<Stats['share']>;
  /**
   * A count of connections kept beyond this process, judged with the stats' own limit (a
   * multi-process worker's board, on that process's main thread: never sent to a thread).
   */
  gate?: ConnectionGate;
  /** The per-client limit's count kept beyond this process (the multi-process board; as `gate`). */
  clientGate?: ClientGate;
  cpus?: number[];
  /** The mask the listening fd is watched with (EPOLLIN | EPOLLEXCLUSIVE for a shared listener). */
  listenMask?: number;
  /** Start with the listening fd unwatched (the accept mutex decides when to watch it). */
  listenPaused?: boolean;
}

export class ReactorThread {
  readonly reactor: Reactor;
  readonly #data: ReactorThreadData;
  /** The reserve fd and EMFILE pacing of this thread's accepts (unused without a listenFd). */
  readonly #backoff: AcceptBackoff;
  readonly #protocol: Protocol;
  readonly #stats: Stats;
  readonly #inbox: Channel;
  readonly #pool: Channel[];
  /** Live sessions by id; ids are never reused, so a late pool reply cannot reach a newer client. */
  readonly #sessions = new Map<number, Session>();
  /** Requests the pool had no room for, retried on a timer: nothing is dropped. */
  readonly #backlog: { session: number; seq: number; frame: Uint8Array }[] = [];
  #backlogTimer = -1;
  /** Reply pieces of large replies, by "session:seq". */
  readonly #partial = new Map<string, Uint8Array[]>();
  /** Bodies streamed from the pool, by "session:seq", until their last BODY message. */
  readonly #bodies = new Map<string, BodyFeed>();
  readonly #credits: Int32Array[];
  #next = 0;
  readonly #msg = {} as Message;
  /** The ring that file transfers (uring, direct, auto) use on this thread, if the kernel has io_uring. */
  readonly #ring: TransferRing | undefined;
  /** Called after each batch of accepts (the accept mutex releases its lock there). */
  onAccepted: (() => void) | undefined;
  /** Until when (performance.now()) this thread should not accept after accept(2) failed. */
  acceptHeldOffUntil = 0;
  /** Whether the listening fd is in the poller with its mask (pauseListen/resumeListen). */
  #listening = false;
  /** drain() was called: no more accepts, every connection closes once answered. */
  #draining = false;
  /** Called once every connection has closed after drain(). */
  #onDrained: (() => void) | undefined;

  /** `protocol`: serve this one instead of creating `data.protocol` (embedding, tests). */
  constructor(data: ReactorThreadData, protocol?: Protocol) {
    this.#data = data;
    // The protocol first: user code may throw in it, and the thread then holds no fd yet.
    this.#protocol = protocol ?? createProtocol(data.protocol, data.protocolOptions);
    // Then the transfer ring, before any other fd: on a thread whose ring was ended it throws.
    this.#ring = openTransferRing();
    this.#backoff = new AcceptBackoff(data.listenFd >= 0);
    if (data.cpus) native.setAffinity(data.cpus);
    this.#stats = Stats.attach(data.stats);
    if (data.gate) this.#stats.useGate(data.gate);
    if (data.clientGate) this.#stats.useClientGate(data.clientGate);
    this.#inbox = new Channel(data.inbox);
    this.#pool = data.pool.map((init) => new Channel(init));
    this.#credits = (data.poolCredits ?? []).map((sab) => new Int32Array(sab));
    this.reactor = new Reactor({ backend: data.backend });
    this.#inbox.arm();
    this.reactor.watch(data.inbox.signalFd, EPOLLIN, () => this.#drainInbox());
    if (this.#ring) {
      // run() never turns Node's loop: the ring's completions are reaped from this poller.
      const ring = this.#ring;
      this.reactor.watch(ring.eventFd, EPOLLIN, () => ring.drain());
    }
    // One sweep timer per thread rather than one per connection: 10 000 idle clients cost
    // one wake-up a second, and a timeout is enforced within a quarter of itself.
    this.reactor.setTimer(sweepEvery(data.limits), () => this.#sweep(), { repeat: true });
    // While replies are awaited, wake every ms so that libuv turns (see asyncWork).
    let tick = -1;
    asyncWork.onChange = (busy) => {
      if (busy) tick = this.reactor.setTimer(1, () => undefined, { repeat: true });
      else this.reactor.clearTimer(tick);
    };
    if (data.listenFd >= 0) {
      this.reactor.watch(data.listenFd, data.listenPaused ? 0 : this.#listenMask(), () => this.#acceptAll());
      this.#listening = data.listenPaused !== true;
    }
  }

  #listenMask(): number {
    return this.#data.listenMask ?? EPOLLIN;
  }

  /** This thread's own counters. */
  get stats(): Stats {
    return this.#stats;
  }

  // EPOLLEXCLUSIVE cannot be modified (epoll_ctl MOD says EINVAL), only removed and added.
  pauseListen(): void {
    if (!this.#listening) return;
    this.#listening = false;
    if (this.#listenMask() & EPOLLEXCLUSIVE) this.reactor.unwatch(this.#data.listenFd);
    else this.reactor.rewatch(this.#data.listenFd, 0);
  }

  resumeListen(): void {
    if (this.#listening || this.#draining) return;
    this.#listening = true;
    if (this.#listenMask() & EPOLLEXCLUSIVE) {
      this.reactor.watch(this.#data.listenFd, this.#listenMask(), () => this.#acceptAll());
    } else {
      this.reactor.rewatch(this.#data.listenFd, this.#listenMask());
    }
  }

  async run(): Promise<void> {
    try {
      await this.reactor.run();
    } finally {
      this.#shutdown();
    }
  }

  /**
   * The server closes gracefully (Server.close's drain): stop accepting, and let every
   * connection answer what it was asked and close (ConnCore.drain). `onDrained` is called
   * once none is left. A connection adopted from now on (one already dealt to this thread) is
   * drained as it comes.
   */
  drain(onDrained?: () => void): void {
    if (this.#draining) return;
    this.#draining = true;
    this.#onDrained = onDrained;
    if (this.#data.listenFd >= 0) this.pauseListen();
    for (const s of [...this.#sessions.values()]) s.core.drain();
    this.#checkDrained();
  }

  /**
   * A graceful close's first step where this thread accepts on a listening fd its caller
   * cannot take connections from (a multi-process worker's): accepts every connection queued
   * on it now, until EAGAIN (an error such as EMFILE ends the pass; what is left is reset by
   * the shutdown that follows), each admitted and served as one accepted before the drain.
   * Call it before drain().
   */
  takeQueued(): void {
    if (this.#data.listenFd < 0 || this.#draining) return;
    for (const fd of takeQueued(this.#data.listenFd)) {
      const ticket = this.#stats.admit(this.#data.index, fd);
      if (ticket !== REFUSED_CONN) this.#adopt(fd, ticket);
      else native.close(fd);
    }
  }

  #checkDrained(): void {
    if (!this.#draining || this.#sessions.size > 0 || this.#onDrained === undefined) return;
    const done = this.#onDrained;
    this.#onDrained = undefined;
    done();
  }

  #acceptAll(): void {
    if (this.#draining) return;
    for (;;) {
      const fd = native.accept(this.#data.listenFd, false);
      if (fd < 0) {
        if (fd !== -EAGAIN) {
          // EMFILE and friends: the listening fd stays readable; look away for a moment
          // (not after one connection's failure, ECONNABORTED …: the next is accepted at once).
          const pause = this.#backoff.failed(this.#data.listenFd, fd);
          if (pause === 0) continue;
          this.acceptHeldOffUntil = performance.now() + pause;
          // Under the accept mutex, letting go of it is the pause: the mutex is not taken
          // again before acceptHeldOffUntil, and another process may take it meanwhile.
          if (this.onAccepted === undefined) {
            this.pauseListen();
            this.reactor.setTimer(pause, () => this.resumeListen());
          }
        }
        this.onAccepted?.();
        return;
      }
      this.#backoff.accepted();
      // Past maxConnections (or maxConnectionsPerClient): closed at once, unread (the client
      // sees EOF), and accepting goes on.
      const ticket = this.#stats.admit(this.#data.index, fd);
      if (ticket !== REFUSED_CONN) this.#adopt(fd, ticket);
      else native.close(fd);
    }
  }

  /** `ticket`: what admit() gave the connection, given back when it closes (#forget). */
  #adopt(fd: number, ticket: number): void {
    // This thread serves it now, and closes it; or, when the thread ends first (a terminate()
    // in user code), the addon does (src/sys/fd-owner.ts).
    ownFd(fd);
    // TCP_NODELAY, as nginx and Redis set it: a reply written in pieces must not wait for the
    // client's delayed ACK (Nagle's algorithm turns pipelined replies into 40 ms stalls).
    native.setNoDelay(fd, true);
    // A closing reply ends in a lingering close (LINGER_MS): see ConnectionOptions.linger.
    const conn = new Connection(this.reactor, fd, { maxQueue: this.#data.maxQueue, linger: LINGER_MS });
    const id = this.#next++;
    const session = new Session(conn, {
      protocol: this.#protocol,
      stats: this.#stats,
      transfer: this.#data.transfer,
      directio: this.#data.directio,
      mmap: this.#data.mmap,
      zerocopyThreshold: this.#data.zerocopyThreshold ?? 0,
      limits: this.#data.limits,
      dispatch: this.#pool.length > 0 ? (s, seq, frame) => this.#dispatch(s, seq, frame) : undefined,
      onClose: () => this.#forget(id, ticket),
    });
    session.id = id;
    this.#sessions.set(id, session);
    if (this.#draining) session.core.drain();
  }

  #sweep(): void {
    const now = performance.now();
    for (const s of this.#sessions.values()) s.expire(now);
  }

  #forget(id: number, ticket: number): void {
    this.#sessions.delete(id);
    this.#stats.closed(ticket);
    this.#checkDrained();
  }

  #dispatch(session: Session, seq: number, frame: Uint8Array): Reply | Promise<Reply> | undefined {
    // A frame too large for one message is handled here rather than split across threads.
    if (frame.length > CHUNK) return this.#protocol.handle(frame);
    if (this.#backlog.length > 0 || !this.#pushRequest(session.id, seq, frame)) {
      this.#backlog.push({ session: session.id, seq, frame: copyOf(frame) });
      if (this.#backlogTimer < 0) this.#backlogTimer = this.reactor.setTimer(1, () => this.#retryBacklog());
    }
    return undefined;
  }

  #pushRequest(session: number, seq: number, frame: Uint8Array): boolean {
    // One pool thread per connection: its channel is FIFO with one consumer, so a client's
    // pipelined requests run in the order sent (SET then GET must not be reordered).
    const ch = this.#pool[session % this.#pool.length]!;
    return writeRequest(ch, { reactor: this.#data.index, session, seq, frame });
  }

  #retryBacklog(): void {
    // The backlog keeps arrival order across sessions, so each session's order holds too.
    this.#backlogTimer = -1;
    while (this.#backlog.length > 0) {
      const r = this.#backlog[0]!;
      if (!this.#pushRequest(r.session, r.seq, r.frame)) break;
      this.#backlog.shift();
    }
    if (this.#backlog.length > 0) this.#backlogTimer = this.reactor.setTimer(1, () => this.#retryBacklog());
  }

  #drainInbox(): void {
    const inbox = this.#inbox;
    inbox.disarm();
    for (let pass = 0; pass < 2; pass++) {
      while (inbox.pop(this.#msg)) this.#onMessage(this.#msg);
      // Re-arm, then look once more: a message pushed in between would not signal.
      if (pass === 0) inbox.arm();
    }
  }

  #onMessage(m: Message): void {
    if (m.tag === MSG.NEW_FD) {
      const fd = readNewFd(m);
      // The acceptor thread (or a drain, from the listen queue) deals every fd; the limits are
      // judged here, before anything is read.
      const ticket = this.#stats.admit(this.#data.index, fd);
      if (ticket !== REFUSED_CONN) this.#adopt(fd, ticket);
      else native.close(fd);
      this.#stats.handed();
    } else if (m.tag === MSG.REPLY) {
      this.#onReply(m);
    } else if (m.tag === MSG.BODY) {
      this.#onBody(m);
    } else if (m.tag === MSG.STOP) {
      this.reactor.stop();
    } else if (m.tag === MSG.DRAIN) {
      this.drain();
    }
  }

  #onReply(m: Message): void {
    const r = readReply(m);
    const key = `${r.session}:${r.seq}`;
    if (r.partial) {
      const parts = this.#partial.get(key) ?? [];
      parts.push(r.data.slice());
      this.#partial.set(key, parts);
      return;
    }
    const parts = this.#partial.get(key);
    let data: Uint8Array = r.data.slice();
    if (parts) {
      this.#partial.delete(key);
      data = Buffer.concat([...parts, data]);
    }
    const reply: Reply = { data, close: r.close };
    if (r.file) reply.file = r.file;
    if (r.body) {
      // Its chunks follow as BODY messages, naming the pool thread and credit slot.
      const feed = new BodyFeed();
      this.#bodies.set(key, feed);
      reply.body = feed;
    }
    const session = this.#sessions.get(r.session);
    // A reply to a connection gone meanwhile: its file closed, its body's producer stopped.
    if (session) session.deliver(r.seq, reply);
    else discardReply(reply);
  }

  #onBody(m: Message): void {
    const b = readBody(m);
    const key = `${b.session}:${b.seq}`;
    const credits = this.#credits[b.pool]!;
    const feed = this.#bodies.get(key);
    if (feed === undefined) {
      // Not ours (any more): hand the credit straight back.
      Atomics.sub(credits, b.slot, b.data.length);
      Atomics.notify(credits, b.slot);
      return;
    }
    feed.push(credits, b.slot, b.gen, b.data, b.last);
    if (b.last) this.#bodies.delete(key);
  }

  #shutdown(): void {
    this.#backoff.close();
    for (const s of [...this.#sessions.values()]) s.conn.destroy();
    this.#protocol.close();
    if (this.#ring) this.reactor.unwatch(this.#ring.eventFd);
    // Closed for good: a transfer that starts after this (a late reply) fails with EBADF
    // rather than making a ring nobody would close.
    endTransferRing();
    this.reactor.close();
    // The splice method keeps a per-thread pool of pipes: fds of the process, not the thread.
    closePipePool();
    closeMmapCache();
  }
}

/**
 * The ring that file transfers (uring, direct, auto) use on a reactor thread, made with
 * `{ attach: false }`: run() never turns Node's loop, so the thread watches its eventfd in its
 * own poller. Undefined where the kernel has no io_uring. Throws EBADF on a thread whose
 * transfer ring was ended.
 */
function openTransferRing(): TransferRing | undefined {
  if (!Ring.supported()) return undefined;
  const ring = new TransferRing({ entries: 64, attach: false });
  try {
    setTransferRing(ring);
  } catch (e) {
    ring.close();
    throw e;
  }
  ownFd(ring.eventFd); // closed with the ring, or with this thread (src/sys/fd-owner.ts)
  return ring;
}
