/**
 * The `thread-per-connection` model: an acceptor (in the caller's thread, inside Node's
 * loop) hands each connection to a thread of its own, which serves it with blocking I/O.
 * Simple, and it uses every core — until the threads themselves are the cost: each Node
 * worker thread is a V8 isolate of several MiB, and starting one takes milliseconds. A
 * thread that has finished its client waits (cached) for the next one rather than exiting;
 * up to SPARE_THREADS idle threads are kept, the rest exit.
 *
 * At the cap (`workers` threads, default 256) the acceptor stops accepting: new clients
 * complete the TCP handshake and wait in the listen backlog, unanswered, until a thread
 * frees up (Apache's MaxRequestWorkers behaves the same); past the backlog the kernel
 * drops their SYNs and they retry.
 */
import { Reactor } from '../loop/reactor.js';
import { createProtocol } from '../protocols/index.js';
import type { Protocol } from '../protocols/protocol.js';
import { constants } from '../sys/constants.js';
import { native } from '../sys/native.js';
import { EAGAIN } from '../sys/errno.js';
import { listenTcp, localPort } from '../sys/socket.js';
import { FdSlot } from './blocking-session.js';
import type { BlockingThreadData } from './blocking-threads.js';
import { Channel } from './channel.js';
import { writeNewFd, writeStop } from './messages.js';
import { AcceptBackoff } from './accept-backoff.js';
import { pickLimits } from './conn-core.js';
import { Stats } from './stats.js';
import { startThread, type ModelThread } from './threads.js';
import type { ModelHandle, ModelStarter, ResolvedServeOptions } from './types.js';

const EPOLLIN = constants.EPOLLIN as number;
export const SPARE_THREADS = 16;

interface ConnThread {
  slot: FdSlot;
  inbox: Channel;
  thread?: ModelThread;
  exited: Promise<void>;
}

class ThreadPerConnection implements ModelHandle {
  readonly port: number;
  readonly #opts: ResolvedServeOptions;
  readonly #listenFd: number;
  readonly #protocol: Protocol;
  readonly #stats = new Stats(1);
  readonly #acceptor = new Reactor({ backend: 'epoll' });
  readonly #live = new Set<ConnThread>();
  readonly #idle: ConnThread[] = [];
  #accepting = true;
  /** Looking away from the listening socket after accept failed. */
  #paused = false;
  readonly #backoff: AcceptBackoff;
  #closing: Promise<void> | undefined;

  constructor(opts: ResolvedServeOptions) {
    this.#opts = opts;
    this.#listenFd = listenTcp(opts.host, opts.port, { backlog: opts.backlog });
    this.port = localPort(this.#listenFd);
    this.#protocol = createProtocol(opts.protocol, opts.protocolOptions);
    this.#backoff = new AcceptBackoff();
    this.#acceptor.watch(this.#listenFd, EPOLLIN, () => this.#acceptAll());
    this.#acceptor.attach();
  }

  stats() {
    return this.#stats.snapshot();
  }

  #acceptAll(): void {
    if (this.#paused) return;
    for (;;) {
      if (this.#idle.length === 0 && this.#live.size >= this.#opts.workers) return this.#setAccepting(false);
      const fd = native.accept(this.#listenFd, false);
      if (fd < 0) {
        if (fd !== -EAGAIN) this.#pause(this.#backoff.failed(this.#listenFd, fd));
        return;
      }
      this.#backoff.accepted();
      this.#stats.accepted(0);
      native.setNoDelay(fd, true); // replies written in pieces must not wait for a delayed ACK
      native.setBlocking(fd, true);
      const idle = this.#idle.pop();
      if (idle) writeNewFd(idle.inbox, fd);
      else this.#spawn(fd);
    }
  }

  #setAccepting(on: boolean): void {
    if (on === this.#accepting || this.#closing) return;
    this.#accepting = on;
    if (!this.#paused) this.#acceptor.rewatch(this.#listenFd, on ? EPOLLIN : 0);
  }

  /** accept(2) failed (EMFILE …): the listening fd stays readable, so look away for `ms`. */
  #pause(ms: number): void {
    this.#paused = true;
    this.#acceptor.rewatch(this.#listenFd, 0);
    this.#acceptor.setTimer(ms, () => {
      this.#paused = false;
      if (this.#closing || !this.#accepting) return;
      this.#acceptor.rewatch(this.#listenFd, EPOLLIN);
      this.#acceptAll();
    });
  }

  #spawn(fd: number): void {
    const slotSab = FdSlot.create();
    const inbox = new Channel(Channel.create(256));
    const data: BlockingThreadData = {
      role: 'connection',
      fd,
      inbox: inbox.init,
      slot: slotSab,
      protocol: this.#opts.protocol,
      protocolOptions: this.#protocol.options,
      transfer: this.#opts.transfer,
      directio: this.#opts.directio,
      limits: pickLimits(this.#opts),
      stats: this.#stats.share(),
    };
    let done!: () => void;
    const t: ConnThread = { slot: new FdSlot(slotSab), inbox, exited: new Promise((r) => (done = r)) };
    this.#live.add(t);
    startThread(data).then(
      (thread) => {
        t.thread = thread;
        thread.worker.on('message', () => this.#onIdle(t));
        void thread.exited.then(() => this.#onExit(t, done));
      },
      () => {
        native.close(fd);
        this.#stats.closed();
        this.#onExit(t, done);
      },
    );
  }

  #onIdle(t: ConnThread): void {
    if (this.#closing || this.#idle.length >= SPARE_THREADS) writeStop(t.inbox);
    else this.#idle.push(t);
    this.#setAccepting(true);
    if (!this.#closing) this.#acceptAll();
  }

  #onExit(t: ConnThread, done: () => void): void {
    this.#live.delete(t);
    const i = this.#idle.indexOf(t);
    if (i >= 0) this.#idle.splice(i, 1);
    done();
    this.#setAccepting(true);
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      this.#acceptor.close();
      this.#backoff.close();
      native.close(this.#listenFd);
      const all = [...this.#live];
      for (const t of all) {
        t.slot.stop();
        writeStop(t.inbox);
      }
      await Promise.all(all.map((t) => t.exited));
      this.#protocol.close();
    })();
    return this.#closing;
  }
}

export const start: ModelStarter = async (opts) => new ThreadPerConnection(opts);
