/**
 * The thread bodies of the two blocking models. `iterative`: one thread accepts on a
 * blocking listening socket and serves each client to the end before the next.
 * `connection` (thread-per-connection): a thread serves the one client it was given.
 */
import { createProtocol } from '../protocols/index.js';
import type { ProtocolName, ProtocolOptions } from '../protocols/protocol.js';
import { constants } from '../sys/constants.js';
import { native } from '../sys/native.js';
import { FdSlot, serveBlocking } from './blocking-session.js';
import { Stats } from './stats.js';
import { closePipePool } from '../transfer/index.js';

const EINTR = constants.EINTR as number;

export interface BlockingThreadData {
  role: 'iterative' | 'connection';
  /** iterative: the blocking listening fd; connection: the client's fd. */
  fd: number;
  slot: SharedArrayBuffer;
  protocol: ProtocolName;
  protocolOptions: ProtocolOptions;
  transfer: string;
  directio: number;
  stats: ReturnType<Stats['share']>;
  cpus?: number[];
}

export async function runBlockingThread(data: BlockingThreadData, ready: () => void): Promise<void> {
  if (data.cpus) native.setAffinity(data.cpus);
  const slot = new FdSlot(data.slot);
  const stats = Stats.attach(data.stats);
  const protocol = createProtocol(data.protocol, data.protocolOptions);
  const opts = { protocol, stats, transfer: data.transfer, directio: data.directio };
  ready();
  try {
    if (data.role === 'connection') {
      slot.publish(data.fd);
      await serveBlocking(data.fd, slot, opts);
      slot.release(data.fd);
      return;
    }
    while (!slot.stopping) {
      const fd = native.accept(data.fd, true);
      if (fd < 0) {
        if (fd === -EINTR) continue;
        // close() shuts the listening socket down, which ends a blocked accept with EINVAL.
        if (slot.stopping) return;
        await new Promise((r) => setTimeout(r, 10)); // EMFILE and the like: try again shortly
        continue;
      }
      stats.accepted(0);
      slot.publish(fd);
      await serveBlocking(fd, slot, opts);
      slot.release(fd);
    }
  } finally {
    protocol.close();
    closePipePool();
  }
}
