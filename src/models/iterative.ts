/**
 * The `iterative` model, the first of the classic sequence: one thread, blocking accept,
 * then read → handle → write for that client until it leaves, then the next. A slow client
 * stalls everyone; that is the flaw the next models fix.
 */
import { native } from '../sys/native.js';
import { FdSlot } from './blocking-session.js';
import { blockingDrainSignal, blockingHandoff, blockingServeData, startBlockingModel } from './blocking-start.js';
import type { BlockingThreadData } from './blocking-threads.js';
import { Stats } from './stats.js';
import type { ModelStarter } from './types.js';
import { openServer } from './open-server.js';

export const start: ModelStarter = async (opts) => {
  // One thread handles every request.
  const { protocol, listenFd } = openServer(opts, true, { blocking: true });
  const stats = new Stats(1).limit(opts.maxConnections, opts.maxConnectionsPerClient);
  const slotSab = FdSlot.create();
  const drain = blockingDrainSignal();
  const handoff = blockingHandoff();
  const data = (): BlockingThreadData => ({
    role: 'iterative',
    fd: listenFd,
    slot: slotSab,
    handoff: handoff.init,
    ...blockingServeData(opts, protocol, stats, drain),
    cpus: opts.cpus.length > 0 ? [opts.cpus[0]!] : undefined,
  });
  return startBlockingModel(
    listenFd,
    protocol,
    stats,
    drain,
    handoff,
    data,
    () => {
      new FdSlot(slotSab).stop();
      // A blocked accept(2) ends with EINVAL once the listening socket is shut down.
      native.shutdown(listenFd, 2);
    },
    opts.idleTimeout,
  );
};
