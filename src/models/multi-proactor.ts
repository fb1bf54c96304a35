/**
 * The `multi-proactor` model, the main/sub-reactor model on io_uring: one main ring, on a
 * thread of its own, accepts (multishot accept, each connection into a slot of its
 * registered file table) and hands each connection to one of `workers` sub-ring threads
 * with IORING_OP_MSG_RING fd passing (IORING_MSG_SEND_FD, 6.0): the kernel moves the file
 * from ring to ring, with no syscall and no channel message between the threads. Each
 * sub-ring makes it an fd again (IORING_OP_FIXED_FD_INSTALL, 6.8) and serves it exactly as
 * the `proactor` model does (proactor-thread.ts). Where the kernel lacks either opcode,
 * serve() rejects and says which.
 */
import { native } from '../sys/native.js';
import { Ring } from '../sys/ring.js';
import { eventfd, localPort } from '../sys/socket.js';
import { EVENTFD_ONE, EVENTFD_TWO } from '../sys/eventfd-one.js';
import { ringProbe } from '../sys/uring.js';
import type { ProactorThreadData, SubRing } from './proactor-thread.js';
import { readSubRing } from './proactor-thread.js';
import { pickLimits } from './conn-core.js';
import { takeQueued, whenNoConnections } from './drain.js';
import { ringHandoff } from './proactor-thread.js';
import type { Channel } from './channel.js';
import { closeUnread, dealNewFds } from './messages.js';
import { Stats } from './stats.js';
import { exitWithin, startThread, type ModelThread } from './threads.js';
import type { ModelStarter, ResolvedServeOptions } from './types.js';
import { openServer } from './open-server.js';

/** Why this kernel cannot run the model, or undefined when it can. */
export function multiProactorUnsupported(): string | undefined {
  const p = ringProbe();
  if (!p.supported) return `io_uring is refused (${p.code ?? 'unknown'})`;
  const missing = [
    ['MSG_RING', 'IORING_OP_MSG_RING fd passing (IORING_MSG_SEND_FD, Linux 6.0)'],
    ['FIXED_FD_INSTALL', 'IORING_OP_FIXED_FD_INSTALL (Linux 6.8)'],
  ].filter(([op]) => !p.opcodes.includes(op!));
  if (missing.length === 0) return undefined;
  return `multi-proactor needs ${missing.map(([, what]) => what).join(' and ')}, which this kernel lacks`;
}

/** One thread that stops when its eventfd is written. */
interface Stoppable {
  thread: ModelThread;
  stopFd: number;
}

export const start: ModelStarter = async (opts) => {
  if (!Ring.supported()) new Ring().close(); // throws the kernel's reason (ENOSYS, EPERM …)
  const why = multiProactorUnsupported();
  if (why !== undefined) throw Object.assign(new Error(why), { code: 'ERR_RAWIO_UNSUPPORTED' });
  const { protocol, listenFd } = openServer(opts, false);
  const stats = new Stats(opts.workers).limit(opts.maxConnections, opts.maxConnectionsPerClient);
  const subs: Stoppable[] = [];
  /** Each sub-ring's: where a drain deals the connections it took from the listen queue. */
  const handoffs: Channel[] = [];
  let main: Stoppable | undefined;
  const stop = async (t: Stoppable): Promise<void> => {
    native.write(t.stopFd, EVENTFD_ONE, 0, 8);
    await exitWithin(t.thread, opts.idleTimeout);
    native.close(t.stopFd);
  };
  let mainStopped: Promise<void> | undefined;
  /** New connects are refused from now on, not left in the backlog until the threads are gone. */
  const stopAccepting = () =>
    (mainStopped ??= (() => {
      native.shutdown(listenFd, 2);
      return main ? stop(main) : Promise.resolve(); // first: nothing is sent to a sub-ring that is gone
    })());
  const cleanup = async () => {
    await stopAccepting();
    await Promise.all(subs.map(stop));
    for (const ch of handoffs) closeUnread(ch); // connections a drain handed over that no ring took
    native.close(listenFd);
    protocol.close();
  };
  const data = (i: number, stopFd: number): ProactorThreadData => ({
    role: 'proactor',
    index: i,
    listenFd,
    stopFd,
    protocol: opts.protocol,
    protocolOptions: protocol.options,
    maxQueue: opts.maxQueue,
    limits: pickLimits(opts),
    ring: opts.ring,
    zerocopyThreshold: opts.zerocopyThreshold,
    stats: stats.share(),
    cpus: cpuOf(opts, i),
  });
  try {
    const rings: SubRing[] = [];
    for (let i = 0; i < opts.workers; i++) {
      const stopFd = eventfd();
      const handoff = ringHandoff();
      handoffs.push(handoff);
      const thread = await startThread({ ...data(i, stopFd), sub: true, handoff: handoff.init }).catch((e: unknown) => {
        native.close(stopFd);
        throw e;
      });
      subs.push({ thread, stopFd });
      rings.push(readSubRing(thread.hello));
    }
    const stopFd = eventfd();
    const thread = await startThread({ ...data(opts.workers, stopFd), subRings: rings }).catch((e: unknown) => {
      native.close(stopFd);
      throw e;
    });
    main = { stopFd, thread };
  } catch (e) {
    await cleanup();
    throw e;
  }
  let closing: Promise<void> | undefined;
  let draining: Promise<void> | undefined;
  // A graceful close: the listen queue taken (dealt to the sub-rings), connects refused, each
  // sub-ring drains (its stop eventfd's even count), the main ring stops.
  const drain = (cut: Promise<void>) =>
    (draining ??= (async () => {
      const queued = takeQueued(listenFd);
      native.shutdown(listenFd, 2);
      dealNewFds(queued, handoffs, stats);
      // The sub-rings first: one the main ring still deals a connection to drains it as it comes.
      for (const t of subs) native.write(t.stopFd, EVENTFD_TWO, 0, 8);
      // The main ring accepts no more but stays until close(): a connection it sent to a
      // sub-ring busy in user code arrives when that ring comes back (a stop would cancel it).
      if (main) native.write(main.stopFd, EVENTFD_TWO, 0, 8);
      await whenNoConnections(stats, cut);
    })());
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    drain,
    close: () => (closing ??= cleanup()),
  };
};

function cpuOf(opts: ResolvedServeOptions, i: number): number[] | undefined {
  return opts.cpus.length > 0 ? [opts.cpus[i % opts.cpus.length]!] : undefined;
}
