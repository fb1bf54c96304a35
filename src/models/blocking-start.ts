/**
 * The caller's side shared by the two blocking models, `iterative` and `thread-per-connection`:
 * what every blocking thread is handed to serve a client (the protocol to recreate, the transfer
 * method, the limits, the shared counters), and the start/close tail around the model's one
 * thread. Each model says only what its thread is and how to tell it to stop.
 */
import type { Protocol, ProtocolKind, ProtocolOptions } from '../protocols/protocol.js';
import { native } from '../sys/native.js';
import { localPort } from '../sys/socket.js';
import type { MmapTransferOptions } from '../transfer/mmap-options.js';
import { pickLimits, type ConnLimits } from './conn-core.js';
import type { Stats } from './stats.js';
import { exitWithin, startThread, type ModelThread } from './threads.js';
import type { ModelHandle, ResolvedServeOptions } from './types.js';

/** What a thread needs to serve a client with blocking I/O. */
export interface BlockingServeData {
  protocol: ProtocolKind;
  protocolOptions: ProtocolOptions;
  transfer: string;
  directio: number;
  /** The `mmap` transfer's options (MAP_POPULATE, madvise, reused mappings). */
  mmap: MmapTransferOptions;
  limits: ConnLimits;
  /** Bytes of a reply the kernel refused past which the connection is dropped (ServeOptions.maxQueue). */
  maxQueue: number;
  stats: ReturnType<Stats['share']>;
}

export function blockingServeData(opts: ResolvedServeOptions, protocol: Protocol, stats: Stats): BlockingServeData {
  return {
    protocol: opts.protocol,
    protocolOptions: protocol.options,
    transfer: opts.transfer,
    directio: opts.directio,
    mmap: opts.mmap,
    limits: pickLimits(opts),
    maxQueue: opts.maxQueue,
    stats: stats.share(),
  };
}

/** The serving fields of `d` alone, to hand on to another thread. */
export function copyServeData(d: BlockingServeData): BlockingServeData {
  const { protocol, protocolOptions, transfer, directio, mmap, limits, maxQueue, stats } = d;
  return { protocol, protocolOptions, transfer, directio, mmap, limits, maxQueue, stats };
}

/**
 * Starts the model's thread from `threadData()`; a start that fails closes the listening
 * socket and the protocol before it rethrows. close() calls `stop`, waits for the thread to
 * exit, then closes the listening socket and the protocol, once however often it is called.
 */
export async function startBlockingModel(
  listenFd: number,
  protocol: Protocol,
  stats: Stats,
  threadData: () => object,
  stop: (t: ModelThread) => void,
  graceMs: number,
): Promise<ModelHandle> {
  let t: ModelThread;
  try {
    t = await startThread(threadData());
  } catch (e) {
    native.close(listenFd);
    protocol.close();
    throw e;
  }
  let closing: Promise<void> | undefined;
  return {
    port: localPort(listenFd),
    stats: () => stats.snapshot(),
    close: () =>
      (closing ??= (async () => {
        stop(t);
        await exitWithin(t, graceMs);
        native.close(listenFd);
        protocol.close();
      })()),
  };
}
