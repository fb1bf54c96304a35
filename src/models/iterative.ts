/**
 * The `iterative` model, the first of the classic sequence: one thread, blocking accept,
 * then read → handle → write for that client until it leaves, then the next. A slow client
 * stalls everyone; that is the flaw the next models fix.
 */
import { native } from '../sys/native.js';
import { localPort } from '../sys/socket.js';
import { FdSlot } from './blocking-session.js';
import type { BlockingThreadData } from './blocking-threads.js';
import { pickLimits } from './conn-core.js';
import { Stats } from './stats.js';
import { startThread } from './threads.js';
import type { ModelStarter } from './types.js';
import { openServer } from './open-server.js';

export const start: ModelStarter = async (opts) => {
  // One thread handles every request.
  const { protocol, listenFd } = openServer(opts, true, { blocking: true });
  const stats = new Stats(1);
  const slotSab = FdSlot.create();
  const data: BlockingThreadData = {
    role: 'iterative',
    fd: listenFd,
    slot: slotSab,
    protocol: opts.protocol,
    protocolOptions: protocol.options,
    transfer: opts.transfer,
    directio: opts.directio,
    mmap: opts.mmap,
    limits: pickLimits(opts),
    stats: stats.share(),
    cpus: opts.cpus.length > 0 ? [opts.cpus[0]!] : undefined,
  };
  let thread;
  try {
    thread = await startThread(data);
  } catch (e) {
    native.close(listenFd);
    protocol.close();
    throw e;
  }
  const t = thread;
  let closing: Promise<void> | undefined;
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    close: () =>
      (closing ??= (async () => {
        new FdSlot(slotSab).stop();
        native.shutdown(listenFd, 2);
        await t.exited;
        native.close(listenFd);
        protocol.close();
      })()),
  };
};
