/**
 * The `thread-per-connection` model: an acceptor thread (tpc-acceptor.ts) hands each
 * connection to a thread of its own, which serves it with blocking I/O. Simple, and it
 * uses every core — until the threads themselves are the cost: each Node worker thread is
 * a V8 isolate of several MiB, and starting one takes milliseconds. This file is the
 * caller's side: it listens, creates the protocol (whose options every thread recreates
 * it from), starts the acceptor and stops it.
 */
import { blockingDrainSignal, blockingHandoff, blockingServeData, startBlockingModel } from './blocking-start.js';
import { shutdown } from '../sys/socket.js';
import { Stats } from './stats.js';
import type { ModelThread } from './threads.js';
import type { TpcAcceptorData } from './tpc-acceptor.js';
import type { ModelStarter } from './types.js';
import { openServer } from './open-server.js';

export const start: ModelStarter = async (opts) => {
  const { protocol, listenFd } = openServer(opts, false);
  const stats = new Stats(1).limit(opts.maxConnections, opts.maxConnectionsPerClient);
  const drain = blockingDrainSignal();
  const handoff = blockingHandoff();
  const data = (): TpcAcceptorData => ({
    role: 'tpc-acceptor',
    listenFd,
    handoff: handoff.init,
    workers: opts.workers,
    ...blockingServeData(opts, protocol, stats, drain),
  });
  const stop = (t: ModelThread) => {
    t.worker.postMessage('stop');
    // New connects are refused from now on, not left in the backlog until the threads are gone.
    shutdown(listenFd, 'both');
  };
  // The acceptor stops watching the listening socket (shut down by drain()) and serves what
  // drain() took from its queue (the hand-off); each connection thread sees the drain signal itself.
  const onDrain = (t: ModelThread) => t.worker.postMessage('drain');
  return startBlockingModel(listenFd, protocol, stats, drain, handoff, data, stop, opts.idleTimeout, onDrain);
};
