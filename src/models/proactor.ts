/**
 * The `proactor` model: `workers` threads, each a ProactorThread with its own io_uring ring
 * in run() mode, all completing accepts on one listening socket (one thread: a multishot
 * accept where the kernel has it; more: each ring re-arms a one-shot accept after each
 * connection, so connections go round the rings waiting for one). The kernel does the I/O;
 * the threads react to completions. Where the kernel refuses io_uring, serve() fails with
 * the ring's own error.
 */
import { native } from '../sys/native.js';
import { Ring } from '../sys/ring.js';
import { eventfd, localPort } from '../sys/socket.js';
import { EVENTFD_ONE, EVENTFD_TWO } from '../sys/eventfd-one.js';
import type { ProactorThreadData } from './proactor-thread.js';
import { pickLimits } from './conn-core.js';
import { takeQueued, whenNoConnections } from './drain.js';
import { ringHandoff } from './proactor-thread.js';
import type { Channel } from './channel.js';
import { closeUnread, dealNewFds } from './messages.js';
import { Stats } from './stats.js';
import { exitWithin, startThread, type ModelThread } from './threads.js';
import type { ModelStarter } from './types.js';
import { openServer } from './open-server.js';

export const start: ModelStarter = async (opts) => {
  if (!Ring.supported()) new Ring().close(); // throws the kernel's reason (ENOSYS, EPERM …)
  // With one thread, it handles every request.
  const { protocol, listenFd } = openServer(opts, opts.workers === 1);
  const stats = new Stats(opts.workers).limit(opts.maxConnections, opts.maxConnectionsPerClient);
  const stopFds: number[] = [];
  const handoffs: Channel[] = [];
  const threads: ModelThread[] = [];
  const cleanup = async () => {
    for (const fd of stopFds) native.write(fd, EVENTFD_ONE, 0, 8);
    // New connects are refused from now on, not left in the backlog until the threads are gone.
    native.shutdown(listenFd, 2);
    await Promise.all(threads.map((t) => exitWithin(t, opts.idleTimeout)));
    for (const ch of handoffs) closeUnread(ch); // connections a drain handed over that no ring took
    for (const fd of stopFds) native.close(fd);
    native.close(listenFd);
    protocol.close();
  };
  try {
    for (let i = 0; i < opts.workers; i++) {
      stopFds.push(eventfd());
      handoffs.push(ringHandoff());
      const data: ProactorThreadData = {
        role: 'proactor',
        index: i,
        listenFd,
        sharedAccept: opts.workers > 1,
        stopFd: stopFds[i]!,
        handoff: handoffs[i]!.init,
        protocol: opts.protocol,
        protocolOptions: protocol.options,
        maxQueue: opts.maxQueue,
        zerocopyThreshold: opts.zerocopyThreshold,
        limits: pickLimits(opts),
        ring: opts.ring,
        stats: stats.share(),
        cpus: opts.cpus.length > 0 ? [opts.cpus[i % opts.cpus.length]!] : undefined,
      };
      threads.push(await startThread(data));
    }
  } catch (e) {
    await cleanup();
    throw e;
  }
  let closing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  // A graceful close: the listen queue taken (dealt to the rings), connects refused at once,
  // each thread drains (its stop eventfd's even count) and serves what it was dealt.
  const drain = (cut: Promise<void>) =>
    (draining ??= (() => {
      const queued = takeQueued(listenFd);
      native.shutdown(listenFd, 2);
      dealNewFds(queued, handoffs, stats);
      for (const fd of stopFds) native.write(fd, EVENTFD_TWO, 0, 8);
      return whenNoConnections(stats, cut);
    })());
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    drain,
    close: () => (closing ??= cleanup()),
  };
};
