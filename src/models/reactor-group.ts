/**
 * The reactor family's shared shape: reactor threads (each a ReactorThread in run()
 * mode), optionally a main reactor that accepts and deals fds round-robin to them, and
 * optionally a pool of handler threads. The four reactor models are settings of it:
 *
 *   single              1 reactor thread, accepting itself, handlers inline
 *   worker-pool         1 reactor thread, accepting itself, handlers on `workers` pool threads
 *   multi-reactor       main reactor (an acceptor thread) + `workers` sub-reactor threads
 *   multi-reactor-pool  main reactor + `workers` sub-reactors + `pool` handler threads
 */
import type { Protocol } from '../protocols/protocol.js';
import { EVENTFD_ONE } from '../sys/eventfd-one.js';
import { native } from '../sys/native.js';
import { eventfd, localPort } from '../sys/socket.js';
import { Channel } from './channel.js';
import { CHANNEL_BYTES, closeUnread, dealNewFds, writeDrain, writeStop } from './messages.js';
import type { AcceptorThreadData } from './acceptor-thread.js';
import type { PoolThreadData } from './pool-thread.js';
import type { ReactorThreadData } from './reactor-thread.js';
import { createCredits } from './body-feed.js';
import { pickLimits } from './conn-core.js';
import { takeQueued, whenNoConnections } from './drain.js';
import { Stats } from './stats.js';
import { exitWithin, startThread, type ModelThread } from './threads.js';
import type { ModelHandle, ResolvedServeOptions } from './types.js';
import { openServer } from './open-server.js';

export interface GroupShape {
  reactors: number;
  mainAcceptor: boolean;
  pool: number;
}

export async function startReactorGroup(opts: ResolvedServeOptions, shape: GroupShape): Promise<ModelHandle> {
  // Every handler on one reactor thread when there is no pool (which would also take frames).
  const { protocol, listenFd } = openServer(opts, shape.reactors === 1 && shape.pool === 0);
  const group = new Group(listenFd, protocol);
  try {
    await group.start(opts, shape);
  } catch (e) {
    await group.close();
    throw e;
  }
  const stats = group.stats;
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    drain: (cut) => group.drain(cut),
    close: () => group.close(),
  };
}

class Group {
  stats = new Stats(1);
  readonly #eventfds: number[] = [];
  readonly #inboxes: Channel[] = [];
  readonly #pool: Channel[] = [];
  readonly #threads: ModelThread[] = [];
  readonly #poolThreads: ModelThread[] = [];
  #acceptor: ModelThread | undefined;
  #acceptorStop = -1;
  #closing: Promise<void> | undefined;
  #draining: Promise<void> | undefined;
  /** The main reactor has stopped (or is stopping): nothing is dealt any more. */
  #acceptorStopped: Promise<void> | undefined;
  /** How long close() waits for a thread kept alive by user code (the idle timeout). */
  #grace = 0;

  constructor(
    readonly listenFd: number,
    readonly protocol: Protocol,
  ) {}

  async start(opts: ResolvedServeOptions, shape: GroupShape): Promise<void> {
    this.#grace = opts.idleTimeout;
    this.stats = new Stats(shape.reactors).limit(opts.maxConnections, opts.maxConnectionsPerClient);
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
        stats: this.stats.share(),
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
        ...reactorServing(opts, this.protocol),
        stats: this.stats.share(),
        cpus: pinned ? [opts.cpus[i % opts.cpus.length]!] : undefined,
      };
      this.#threads.push(await startThread(data));
    }
    if (shape.mainAcceptor) await this.#startAcceptor(opts);
  }

  /** The main reactor, on a thread of its own (acceptor-thread.ts). */
  async #startAcceptor(opts: ResolvedServeOptions): Promise<void> {
    this.#acceptorStop = eventfd();
    const data: AcceptorThreadData = {
      role: 'acceptor',
      listenFd: this.listenFd,
      stopFd: this.#acceptorStop,
      inboxes: this.#inboxes.map((c) => c.init),
      stats: this.stats.share(),
      cpus: opts.cpus.length > 0 ? opts.cpus : undefined,
    };
    this.#acceptor = await startThread(data);
  }

  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  /**
   * A graceful close begins (Server.close's drain): the connections queued on the listening
   * socket are taken (accepted here, on the caller's thread, and dealt to the reactors as the
   * main reactor deals), then connects are refused from now on, and every reactor drains its
   * connections (ReactorThread.drain), those dealt now too. Resolves once no connection is
   * open; close() still ends the threads.
   */
  drain(cut: Promise<void>): Promise<void> {
    this.#draining ??= (async () => {
      // The queue first: a shutdown resets every connection still in it. Then refused at once:
      // shut down, not closed, while a reactor may still watch it (each stops watching it
      // when it drains; close() closes it).
      const queued = takeQueued(this.listenFd);
      native.shutdown(this.listenFd, 2);
      dealNewFds(queued, this.#inboxes, this.stats);
      // The reactors first: a connection the main reactor still deals is drained as it comes.
      for (const inbox of this.#inboxes) while (!writeDrain(inbox)) await delay(1);
      await this.#stopAcceptor();
      await whenNoConnections(this.stats, cut);
    })();
    return this.#draining;
  }

  #stopAcceptor(): Promise<void> {
    this.#acceptorStopped ??= (async () => {
      if (!this.#acceptor) return;
      native.write(this.#acceptorStop, EVENTFD_ONE, 0, 8);
      await this.#acceptor.exited;
    })();
    return this.#acceptorStopped;
  }

  async #close(): Promise<void> {
    await this.#stopAcceptor();
    if (this.#acceptorStop >= 0) native.close(this.#acceptorStop);
    // New connects are refused from now on. The fd itself is closed only once no reactor
    // thread watches it: a reactor that accepts on it (single, worker-pool) may be in
    // accept(2) or epoll_ctl on it as close() begins, and the number, closed under it, could
    // be another file's by then (EBADF, ENOENT, or another socket's connections accepted).
    native.shutdown(this.listenFd, 2);
    for (const inbox of this.#inboxes) while (!writeStop(inbox)) await delay(1);
    await Promise.all(this.#threads.map((t) => exitWithin(t, this.#grace)));
    native.close(this.listenFd);
    for (const ch of this.#pool) while (!writeStop(ch)) await delay(1);
    await Promise.all(this.#poolThreads.map((t) => exitWithin(t, this.#grace)));
    // Every reader and writer is gone: what a terminated reactor never took is closed here.
    for (const inbox of this.#inboxes) closeUnread(inbox);
    for (const fd of this.#eventfds) native.close(fd);
    this.protocol.close();
  }
}

const delay = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** The serving settings a reactor thread takes from the resolved options, whatever its model. */
export type ReactorServing = Pick<
  ReactorThreadData,
  | 'protocol'
  | 'protocolOptions'
  | 'backend'
  | 'transfer'
  | 'directio'
  | 'mmap'
  | 'maxQueue'
  | 'zerocopyThreshold'
  | 'limits'
>;

export function reactorServing(opts: ResolvedServeOptions, protocol: Protocol): ReactorServing {
  return {
    protocol: opts.protocol,
    protocolOptions: protocol.options,
    backend: opts.backend,
    transfer: opts.transfer,
    directio: opts.directio,
    mmap: opts.mmap,
    maxQueue: opts.maxQueue,
    zerocopyThreshold: opts.zerocopyThreshold,
    limits: pickLimits(opts),
  };
}
