/**
 * The reactor family's shared shape: reactor threads (each a ReactorThread in run()
 * mode), optionally a main reactor that accepts and deals fds round-robin to them, and
 * optionally a pool of handler threads. The four reactor models are settings of it:
 *
 *   single              1 reactor thread, accepting itself, handlers inline
 *   worker-pool         1 reactor thread, accepting itself, handlers on `workers` pool threads
 *   multi-reactor       main reactor (the caller's thread) + `workers` sub-reactor threads
 *   multi-reactor-pool  main reactor + `workers` sub-reactors + `pool` handler threads
 */
import { Reactor } from '../loop/reactor.js';
import { AcceptBackoff } from './accept-backoff.js';
import { createProtocol } from '../protocols/index.js';
import type { Protocol } from '../protocols/protocol.js';
import { constants } from '../sys/constants.js';
import { EAGAIN } from '../sys/errno.js';
import { native } from '../sys/native.js';
import { eventfd, listenTcp, localPort } from '../sys/socket.js';
import { Channel } from './channel.js';
import { CHANNEL_BYTES, writeNewFd, writeStop } from './messages.js';
import type { PoolThreadData } from './pool-thread.js';
import type { ReactorThreadData } from './reactor-thread.js';
import { createCredits } from './body-feed.js';
import { pickLimits } from './conn-core.js';
import { Stats } from './stats.js';
import { startThread, type ModelThread } from './threads.js';
import type { ModelHandle, ResolvedServeOptions } from './types.js';

const EPOLLIN = constants.EPOLLIN as number;

export interface GroupShape {
  reactors: number;
  mainAcceptor: boolean;
  pool: number;
}

export async function startReactorGroup(opts: ResolvedServeOptions, shape: GroupShape): Promise<ModelHandle> {
  const listenFd = listenTcp(opts.host, opts.port, { backlog: opts.backlog });
  // Handlers all on one reactor thread (no pool, which would also take frames): the RESP
  // keyspace can be that thread's own table.
  const local = shape.reactors === 1 && shape.pool === 0;
  const protocolOptions = local ? { ...opts.protocolOptions, localKeyspace: true } : opts.protocolOptions;
  const group = new Group(listenFd, createProtocol(opts.protocol, protocolOptions));
  try {
    await group.start(opts, shape);
  } catch (e) {
    await group.close();
    throw e;
  }
  const stats = group.stats;
  return { port: localPort(listenFd), stats: () => stats.snapshot(), close: () => group.close() };
}

class Group {
  stats = new Stats(1);
  readonly #eventfds: number[] = [];
  readonly #inboxes: Channel[] = [];
  readonly #pool: Channel[] = [];
  readonly #threads: ModelThread[] = [];
  readonly #poolThreads: ModelThread[] = [];
  #acceptor: Reactor | undefined;
  #backoff: AcceptBackoff | undefined;
  #closing: Promise<void> | undefined;

  constructor(
    readonly listenFd: number,
    readonly protocol: Protocol,
  ) {}

  async start(opts: ResolvedServeOptions, shape: GroupShape): Promise<void> {
    this.stats = new Stats(shape.reactors);
    const pinned = opts.cpus.length > 0;
    for (let i = 0; i < shape.reactors; i++) {
      this.#eventfds.push(eventfd());
      this.#inboxes.push(new Channel(Channel.create(CHANNEL_BYTES, this.#eventfds[i])));
    }
    const replies = this.#inboxes.map((c) => c.init);
    const credits: SharedArrayBuffer[] = [];
    for (let i = 0; i < shape.pool; i++) {
      credits.push(createCredits());
      const requests = new Channel(Channel.create(CHANNEL_BYTES));
      this.#pool.push(requests);
      const data: PoolThreadData = {
        role: 'pool',
        index: i,
        requests: requests.init,
        replies,
        credits: credits[i]!,
        protocol: opts.protocol,
        protocolOptions: this.protocol.options,
        cpus: pinned ? opts.cpus : undefined,
      };
      this.#poolThreads.push(await startThread(data));
    }
    for (let i = 0; i < shape.reactors; i++) {
      const data: ReactorThreadData = {
        role: 'reactor',
        index: i,
        listenFd: shape.mainAcceptor ? -1 : this.listenFd,
        inbox: replies[i]!,
        pool: this.#pool.map((c) => c.init),
        poolCredits: credits,
        protocol: opts.protocol,
        protocolOptions: this.protocol.options,
        backend: opts.backend,
        transfer: opts.transfer,
        directio: opts.directio,
        maxQueue: opts.maxQueue,
        zerocopyThreshold: opts.zerocopyThreshold,
        limits: pickLimits(opts),
        stats: this.stats.share(),
        cpus: pinned ? [opts.cpus[i % opts.cpus.length]!] : undefined,
      };
      this.#threads.push(await startThread(data));
    }
    if (shape.mainAcceptor) this.#startAcceptor();
  }

  /** The main reactor: accepts in the caller's thread (inside Node's loop) and deals fds round-robin. */
  #startAcceptor(): void {
    const acceptor = new Reactor({ backend: 'epoll' });
    const backoff = (this.#backoff = new AcceptBackoff());
    let next = 0;
    acceptor.watch(this.listenFd, EPOLLIN, () => {
      for (;;) {
        const fd = native.accept(this.listenFd, false);
        if (fd < 0) {
          if (fd !== -EAGAIN) pauseAccepting(acceptor, this.listenFd, backoff.failed(this.listenFd, fd));
          return;
        }
        backoff.accepted();
        // An inbox is full only when its reactor is stuck; shed the connection then.
        if (!this.#deal(fd, next++)) native.close(fd);
      }
    });
    acceptor.attach();
    this.#acceptor = acceptor;
  }

  #deal(fd: number, start: number): boolean {
    const n = this.#inboxes.length;
    for (let k = 0; k < n; k++) {
      if (writeNewFd(this.#inboxes[(start + k) % n]!, fd)) return true;
    }
    return false;
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    this.#acceptor?.close();
    this.#backoff?.close();
    native.close(this.listenFd);
    for (const inbox of this.#inboxes) while (!writeStop(inbox)) await delay(1);
    await Promise.all(this.#threads.map((t) => t.exited));
    for (const ch of this.#pool) while (!writeStop(ch)) await delay(1);
    await Promise.all(this.#poolThreads.map((t) => t.exited));
    for (const fd of this.#eventfds) native.close(fd);
    this.protocol.close();
  }
}

/**
 * accept(2) failed with something other than EAGAIN (EMFILE, ENFILE, ENOBUFS): the listening
 * fd stays readable, so stop watching it for `ms` instead of spinning on it.
 */
function pauseAccepting(reactor: Reactor, listenFd: number, ms: number): void {
  reactor.rewatch(listenFd, 0);
  reactor.setTimer(ms, () => reactor.rewatch(listenFd, EPOLLIN));
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));
