/**
 * The `thread-per-connection` model: an acceptor thread (tpc-acceptor.ts) hands each
 * connection to a thread of its own, which serves it with blocking I/O. Simple, and it
 * uses every core — until the threads themselves are the cost: each Node worker thread is
 * a V8 isolate of several MiB, and starting one takes milliseconds. This file is the
 * caller's side: it listens, creates the protocol (whose options every thread recreates
 * it from), starts the acceptor and stops it.
 */
import { native } from '../sys/native.js';
import { localPort } from '../sys/socket.js';
import { pickLimits } from './conn-core.js';
import { Stats } from './stats.js';
import { startThread } from './threads.js';
import type { TpcAcceptorData } from './tpc-acceptor.js';
import type { ModelStarter } from './types.js';
import { openServer } from './open-server.js';

export const start: ModelStarter = async (opts) => {
  const { protocol, listenFd } = openServer(opts, false);
  const stats = new Stats(1);
  let acceptor;
  try {
    const data: TpcAcceptorData = {
      role: 'tpc-acceptor',
      listenFd,
      workers: opts.workers,
      protocol: opts.protocol,
      protocolOptions: protocol.options,
      transfer: opts.transfer,
      directio: opts.directio,
      mmap: opts.mmap,
      limits: pickLimits(opts),
      stats: stats.share(),
    };
    acceptor = await startThread(data);
  } catch (e) {
    native.close(listenFd);
    protocol.close();
    throw e;
  }
  const t = acceptor;
  let closing: Promise<void> | undefined;
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    close: () =>
      (closing ??= (async () => {
        t.worker.postMessage('stop');
        await t.exited;
        native.close(listenFd);
        protocol.close();
      })()),
  };
};
