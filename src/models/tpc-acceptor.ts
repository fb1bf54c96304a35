/**
 * The acceptor of the `thread-per-connection` model, on a thread of its own (so a busy
 * caller delays no accept): a Reactor attached to this thread's Node loop watches the
 * listening fd and hands each connection to a thread of its own, which serves it with
 * blocking I/O. A thread that has finished its client waits (cached) for the next one
 * rather than exiting; up to SPARE_THREADS idle threads are kept, the rest exit.
 *
 * At the cap (`workers` threads) the acceptor stops accepting: new clients complete the
 * TCP handshake and wait in the listen backlog, unanswered, until a thread frees up
 * (Apache's MaxRequestWorkers behaves the same); past the backlog the kernel drops their
 * SYNs and they retry.
 *
 * Starting a thread costs fds: Node opens the thread's modules all at once while it loads
 * (about 30 files), then the thread keeps 4 for its own event loop. A start that runs out
 * of them halfway fails, and Node may keep fds of the half-loaded thread for good, so fewer
 * and fewer are left. So a thread starts only with START_FDS free for each start under
 * way, at most MAX_STARTING at once; without that room the acceptor treats it as EMFILE
 * (accept-backoff.ts): it looks away, and sheds the waiting clients when it lasts. An idle
 * thread needs no room, only the client's own fd. A 'stop' message from the caller's thread ends every connection
 * thread, then this one.
 */
import { parentPort } from 'node:worker_threads';
import { Reactor } from '../loop/reactor.js';
import { constants } from '../sys/constants.js';
import { EAGAIN, EMFILE } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { FdSlot } from './blocking-session.js';
import { copyServeData, type BlockingServeData } from './blocking-start.js';
import type { BlockingThreadData } from './blocking-threads.js';
import { Channel, type ChannelInit, type Message } from './channel.js';
import { AcceptBackoff, freeFds } from './accept-backoff.js';
import { MSG, closeUnread, readNewFd, writeNewFd, writeStop } from './messages.js';
import { REFUSED_CONN, Stats } from './stats.js';
import { exitWithin, startThread, type ModelThread } from './threads.js';

const EPOLLIN = constants.EPOLLIN as number;
export const SPARE_THREADS = 16;
/** The free fds a connection thread's start needs (its module loading, then its own loop). */
export const START_FDS = 64;
/** At most this many connection threads start at once; more clients wait in the backlog. */
export const MAX_STARTING = 8;

export interface TpcAcceptorData extends BlockingServeData {
  role: 'tpc-acceptor';
  listenFd: number;
  /** Where drain() puts the connections it took from the listen queue (blocking-start.ts). */
  handoff: ChannelInit;
  /** The cap on connection threads. */
  workers: number;
}

interface ConnThread {
  slot: FdSlot;
  inbox: Channel;
  thread?: ModelThread;
  /** The thread once it started; undefined when it failed to. */
  started: Promise<ModelThread | undefined>;
}

class Acceptor {
  readonly #data: TpcAcceptorData;
  readonly #stats: Stats;
  readonly #reactor = new Reactor({ backend: 'epoll' });
  readonly #live = new Set<ConnThread>();
  readonly #idle: ConnThread[] = [];
  #accepting = true;
  /** Connection threads started and not yet ready (or failed). */
  #starting = 0;
  /** Looking away from the listening socket after accept failed. */
  #paused = false;
  /** The reserve fd and EMFILE pacing (accept-backoff.ts). */
  readonly #backoff = new AcceptBackoff();
  #closing: Promise<void> | undefined;
  /** A graceful close began: the listening socket (shut down by the caller) is no longer watched. */
  #draining = false;
  /** Connections the drain took from the listen queue, admitted, waiting for a thread (at the cap). */
  readonly #pending: { fd: number; ticket: number }[] = [];

  constructor(data: TpcAcceptorData) {
    this.#data = data;
    this.#stats = Stats.attach(data.stats);
    this.#reactor.watch(data.listenFd, EPOLLIN, () => this.#acceptAll());
    this.#reactor.attach();
  }

  /**
   * A graceful close: accept no more. The connection threads see the drain signal themselves
   * (blocking-session.ts); a thread freed meanwhile is cached until close() stops it.
   */
  drain(): void {
    if (this.#draining || this.#closing) return;
    this.#draining = true;
    if (!this.#paused && this.#accepting) this.#reactor.rewatch(this.#data.listenFd, 0);
    // What the caller took from the listen queue: admitted as an accept is, then served as
    // threads allow (an idle one, a new one under the cap, or one freed by its client).
    const handoff = new Channel(this.#data.handoff);
    const m = {} as Message;
    while (handoff.pop(m) && m.tag === MSG.NEW_FD) {
      const fd = readNewFd(m);
      const ticket = this.#stats.admit(0, fd);
      this.#stats.handed();
      if (ticket === REFUSED_CONN) native.close(fd);
      else this.#pending.push({ fd, ticket });
    }
    this.#dealPending();
  }

  /** Hands the connections the drain took to threads, as many as there are free or may start. */
  #dealPending(): void {
    while (this.#pending.length > 0 && !this.#closing) {
      const idle = this.#idle.pop();
      if (!idle && (this.#live.size >= this.#data.workers || this.#starting >= MAX_STARTING)) return;
      if (!idle && freeFds() < START_FDS * (this.#starting + 1)) return;
      const { fd, ticket } = this.#pending.shift()!;
      native.setNoDelay(fd, true);
      if (idle) writeNewFd(idle.inbox, fd, ticket);
      else this.#spawn(fd, ticket);
    }
  }

  #acceptAll(): void {
    if (this.#paused || this.#draining) return;
    for (;;) {
      if (this.#idle.length === 0) {
        if (this.#live.size >= this.#data.workers || this.#starting >= MAX_STARTING) return this.#setAccepting(false);
        if (freeFds() < START_FDS * (this.#starting + 1))
          return this.#pause(this.#backoff.failed(this.#data.listenFd, -EMFILE));
      }
      const fd = native.accept(this.#data.listenFd, false);
      if (fd < 0) {
        if (fd === -EAGAIN || this.#closing) return;
        // One connection's failure (ECONNABORTED …) left the queue with it: accept the next.
        const pause = this.#backoff.failed(this.#data.listenFd, fd);
        if (pause === 0) continue;
        return this.#pause(pause);
      }
      this.#backoff.accepted();
      // Past maxConnections (or maxConnectionsPerClient): closed at once, unread (the client
      // sees EOF), and accepting goes on.
      const ticket = this.#stats.admit(0, fd);
      if (ticket === REFUSED_CONN) {
        native.close(fd);
        continue;
      }
      native.setNoDelay(fd, true); // replies written in pieces must not wait for a delayed ACK
      const idle = this.#idle.pop();
      // The connection's thread gives its slots back when it ends (serveBlocking).
      if (idle) writeNewFd(idle.inbox, fd, ticket);
      else this.#spawn(fd, ticket);
    }
  }

  #setAccepting(on: boolean): void {
    if (on === this.#accepting || this.#closing || this.#draining) return;
    this.#accepting = on;
    if (!this.#paused) this.#reactor.rewatch(this.#data.listenFd, on ? EPOLLIN : 0);
  }

  /** accept(2) failed (EMFILE …): the listening fd stays readable, so look away for `ms`. */
  #pause(ms: number): void {
    this.#paused = true;
    this.#reactor.rewatch(this.#data.listenFd, 0);
    this.#reactor.setTimer(ms, () => {
      this.#paused = false;
      if (this.#closing || this.#draining || !this.#accepting) return;
      this.#reactor.rewatch(this.#data.listenFd, EPOLLIN);
      this.#acceptAll();
    });
  }

  #spawn(fd: number, ticket: number): void {
    const slotSab = FdSlot.create();
    const inbox = new Channel(Channel.create(256));
    const data: BlockingThreadData = {
      role: 'connection',
      fd,
      ticket,
      inbox: inbox.init,
      slot: slotSab,
      ...copyServeData(this.#data),
    };
    const t = { slot: new FdSlot(slotSab), inbox } as ConnThread;
    this.#live.add(t);
    this.#starting++;
    const started = () => {
      this.#starting--;
      this.#setAccepting(true);
      if (!this.#closing) this.#acceptAll();
      this.#dealPending();
    };
    t.started = startThread(data).then(
      (thread) => {
        t.thread = thread;
        started();
        thread.worker.on('message', () => this.#onIdle(t));
        void thread.exited.then(() => this.#onExit(t));
        return thread;
      },
      () => {
        native.close(fd);
        this.#stats.closed(ticket);
        this.#onExit(t);
        started();
        return undefined;
      },
    );
  }

  #onIdle(t: ConnThread): void {
    if (this.#closing || this.#idle.length >= SPARE_THREADS) writeStop(t.inbox);
    else this.#idle.push(t);
    this.#setAccepting(true);
    if (!this.#closing) this.#acceptAll();
    this.#dealPending();
  }

  #onExit(t: ConnThread): void {
    closeUnread(t.inbox, (ticket) => this.#stats.closed(ticket)); // a connection handed to it that it never took
    this.#live.delete(t);
    const i = this.#idle.indexOf(t);
    if (i >= 0) this.#idle.splice(i, 1);
    this.#setAccepting(true);
    this.#dealPending();
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#reactor.close();
      this.#backoff.close();
      for (const { fd, ticket } of this.#pending.splice(0)) {
        native.close(fd);
        this.#stats.closed(ticket);
      }
      const all = [...this.#live];
      for (const t of all) {
        t.slot.stop();
        writeStop(t.inbox);
      }
      // A thread whose handler never settles is ended after the idle timeout; one still
      // starting is waited for as it comes (it finds its stop), then given the same grace.
      const grace = this.#data.limits.idleTimeout;
      await Promise.all(
        all.map(async (t) => {
          const thread = await t.started;
          if (thread) await exitWithin(thread, grace);
        }),
      );
    })();
    return this.#closing;
  }
}

export async function runTpcAcceptor(data: TpcAcceptorData, ready: () => void): Promise<void> {
  await tryUserProtocol(data);
  const acceptor = new Acceptor(data);
  const port = parentPort!;
  const closed = new Promise<void>((resolve) => {
    port.on('message', (m) => {
      if (m === 'drain') return acceptor.drain();
      if (m !== 'stop') return;
      // Every connection thread gone, the port closed: the role is over (and the thread exits,
      // whatever timers the user module it loaded left running: worker-entry.ts).
      void acceptor.close().then(() => {
        port.close();
        resolve();
      });
    });
  });
  ready();
  await closed;
}

/**
 * Connection threads make their protocol only when a client arrives, so user code that
 * loads in the caller's thread but throws in any other (a module's create(), an HTTP
 * handler) would only close every connection. Making one instance here, in a thread,
 * before saying ready lets serve() reject with that error instead.
 */
async function tryUserProtocol(data: TpcAcceptorData): Promise<void> {
  if (data.protocolOptions.module === undefined && data.protocolOptions.handler === undefined) return;
  const { createProtocol } = await import('../protocols/index.js');
  createProtocol(data.protocol, data.protocolOptions).close?.();
}
